"""LoRA linears in the joint form: peft's values and gradients, one rounding under bf16, a fresh cache."""

from __future__ import annotations

import torch

from agent_helpers import tiny_lora


def _model(dtype: str = "float32", seed: int = 0) -> torch.nn.Module:
    return tiny_lora(dtype, seed).model


def _peft(model: torch.nn.Module) -> torch.nn.Module:
    """The same model running peft's own LoRA forward (the reference)."""
    for m in model.modules():
        m.__dict__.pop("forward", None)
    return model


def _ids() -> torch.Tensor:
    return torch.randint(0, 250, (3, 19), generator=torch.Generator().manual_seed(0))


def _grads(model: torch.nn.Module, logits: torch.Tensor) -> dict[str, torch.Tensor]:
    model.zero_grad()
    logits.square().mean().backward()
    return {n: p.grad for n, p in model.named_parameters() if p.requires_grad}


def test_the_joint_form_gives_pefts_values_and_gradients() -> None:
    joint, peft = _model(), _peft(_model())
    members = [m for m in joint.modules() if hasattr(m, "_joint_lora")]
    assert len(members) == 2 * 7  # tiny-test: 2 layers x (q, k, v, o, gate, up, down)
    attn = joint.get_base_model().model.layers[0].self_attn
    assert attn.q_proj._joint_lora[0] is attn.v_proj._joint_lora[0] is not attn.o_proj._joint_lora[0]
    a, b = joint(input_ids=_ids()).logits, peft(input_ids=_ids()).logits
    assert torch.allclose(a, b, atol=1e-5, rtol=1e-5), (a - b).abs().max()
    ga, gb = _grads(joint, a), _grads(peft, b)
    assert set(ga) == set(gb) and all(n.count("lora_") for n in ga)  # adapters only: the base stays frozen
    for n in ga:
        assert torch.allclose(ga[n], gb[n], atol=1e-6, rtol=1e-4), (n, (ga[n] - gb[n]).abs().max())
    assert all(float(g.abs().sum()) > 0 for g in ga.values())


def test_bf16_scores_are_the_same_bits_with_and_without_gradients_and_track_updates() -> None:
    model = _model("bfloat16")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        with torch.no_grad():
            cached = model(input_ids=_ids()).logits
        graded = model(input_ids=_ids()).logits  # rebuilt from the float32 adapters, differentiable
        assert graded.requires_grad and torch.equal(cached, graded.detach())
        peft = _peft(_model("bfloat16"))(input_ids=_ids()).logits
        assert 0 < float((peft.detach().float() - graded.detach().float()).abs().max()) < 0.1  # peft rounds the two parts apart
        with torch.no_grad():
            for n, p in model.named_parameters():
                if "lora_B" in n:
                    p.mul_(-1.0)  # an in-place update, as the optimizer makes: the cached joint weights go stale
            updated = model(input_ids=_ids()).logits
            fresh = _model("bfloat16")
            for n, p in fresh.named_parameters():
                if "lora_B" in n:
                    p.mul_(-1.0)
            assert not torch.equal(updated, cached)
            assert torch.equal(updated, fresh(input_ids=_ids()).logits)


def test_a_member_called_on_its_own_input_and_disabled_adapters_still_give_pefts_values() -> None:
    joint, peft = _model(), _peft(_model())
    x = torch.randn(2, 5, 64, generator=torch.Generator().manual_seed(1))
    for layer in ("k_proj", "up_proj"):  # the second member of a group, without its siblings' call first
        parent = "self_attn" if layer == "k_proj" else "mlp"
        mj = getattr(getattr(joint.get_base_model().model.layers[1], parent), layer)
        mp = getattr(getattr(peft.get_base_model().model.layers[1], parent), layer)
        assert torch.allclose(mj(x), mp(x), atol=1e-6, rtol=1e-5)
        assert not torch.allclose(mj(x), mj.base_layer(x), atol=1e-3)  # the adapter is live
    with torch.no_grad(), joint.disable_adapter(), peft.disable_adapter():
        assert torch.allclose(joint(input_ids=_ids()).logits, peft(input_ids=_ids()).logits, atol=1e-5, rtol=1e-5)
