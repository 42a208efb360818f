"""The kernels switch: reference and cpu_fused score and train alike behind one API; devices resolve with clear errors."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from multiverse.agents import kernels
from multiverse.agents.kernels.fast_forward import ATTENTION
from multiverse.agents.learner import Learner, LearnerConfig, Sample
from multiverse.agents.losses import PPOConfig, PPOLoss
from multiverse.agents.models import ModelConfig, build_model, for_run, load_model
from multiverse.agents.policy import Policy

from agent_helpers import FP32, _turns_for_learner

BF16 = dataclasses.replace(FP32, compute_dtype="bfloat16")


def _learner(kernel_set: str, dtype: str) -> Learner:
    """tiny-test with LoRA on ``kernel_set``, its adapters given the same nonzero values whatever the kernels."""
    model = ModelConfig(name="tiny-test", lora=True, lora_rank=4, dtype=dtype, device="cpu", kernels=kernel_set)
    lrn = Learner(LearnerConfig(model=model, policy=FP32 if dtype == "float32" else BF16, lr=3e-3))
    with torch.no_grad():
        for n, p in lrn.policy.trainable_parameters().items():
            p.copy_(torch.randn(p.shape, generator=torch.Generator().manual_seed(len(n))) * 0.1)
    return lrn


def _grads(lrn: Learner, batch: list[Sample]) -> dict[str, torch.Tensor]:
    lrn.forward_backward(batch, PPOLoss(PPOConfig(entropy_coef=0.01)))
    return {n: p.grad.clone() for n, p in lrn.policy.trainable_parameters().items()}


def _gap(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    """|a - b| / |b| over every tensor together."""
    return float(torch.cat([(a[n] - b[n]).flatten() for n in b]).norm() / torch.cat([t.flatten() for t in b.values()]).norm())


def _float32_twin() -> Learner:
    """The bf16 learners' model computed in float32 (base weights rounded to bf16 as theirs are): the truth that
    measures what bf16 rounding alone moves."""
    lrn = _learner("reference", "float32")
    with torch.no_grad():
        for p in lrn.policy.model.parameters():
            if not p.requires_grad:
                p.copy_(p.to(torch.bfloat16))
    return lrn


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_reference_and_cpu_fused_give_the_same_scores_and_gradients(dtype: str) -> None:
    ref, fused = _learner("reference", dtype), _learner("cpu_fused", dtype)
    assert (kernels.installed(ref.policy.model).name, kernels.installed(fused.policy.model).name) == (
        "reference", "cpu_fused")
    turns = _turns_for_learner()
    decisions = fused.act(turns, temperature=2.0, generator=torch.Generator().manual_seed(0))
    batch = [Sample.from_decision(d, advantage=1.0 if i % 2 else -1.0) for i, d in enumerate(decisions)]
    scores = {name: torch.cat(x.policy.score(turns)) for name, x in (("ref", ref), ("fused", fused))}
    with torch.no_grad():
        logps = {name: x.policy.evaluate(decisions).logp_N for name, x in (("ref", ref), ("fused", fused))}
    grads = {"ref": _grads(ref, batch), "fused": _grads(fused, batch)}
    if dtype == "float32":  # float32 rounding only (scores reach -85, where 1e-5 is a couple of ulps)
        score_tol, grad_tol = 1e-5, 1e-5
    else:  # within what bf16 rounding moves them from float32: the joint matmul rounds where peft does not
        twin = _float32_twin()
        score_tol = 3 * float((torch.cat(twin.policy.score(turns)) - scores["ref"]).abs().max())
        grad_tol = 3 * _gap(grads["ref"], _grads(twin, batch))
        assert 0 < score_tol < 0.1 and 0 < grad_tol < 0.2, (score_tol, grad_tol)  # ~0.006 and ~0.02 here
    assert float((scores["ref"] - scores["fused"]).abs().max()) <= score_tol
    assert float((logps["ref"] - logps["fused"]).abs().max()) <= score_tol
    assert _gap(grads["fused"], grads["ref"]) <= grad_tol, _gap(grads["fused"], grads["ref"])
    assert float(torch.cat([g.flatten() for g in grads["ref"].values()]).abs().max()) > 0


def test_switching_kernels_changes_no_api(tmp_path) -> None:
    """The same calls, the same results' shapes and names, and checkpoints that load across the two."""
    ref, fused = _learner("reference", "float32"), _learner("cpu_fused", "float32")
    turns = _turns_for_learner()
    da, db = (x.act(turns, temperature=2.0, generator=torch.Generator().manual_seed(1)) for x in (ref, fused))
    assert [d.action for d in da] == [d.action for d in db]
    assert [(d.prompt_ids, d.candidates, d.gen_ids) for d in da] == [(d.prompt_ids, d.candidates, d.gen_ids)
                                                                     for d in db]
    batch = [Sample.from_decision(d, advantage=1.0) for d in da]
    ma, mb = (x.forward_backward(batch, PPOLoss()) for x in (ref, fused))
    assert set(ma) == set(mb) and ma["loss"] == pytest.approx(mb["loss"], abs=1e-5)
    assert set(ref.optim_step()) == set(fused.optim_step())
    with torch.no_grad():  # re-scoring without gradients after acting (inference mode) and an update
        ea, eb = ref.policy.evaluate(da), fused.policy.evaluate(db)
    assert torch.allclose(ea.logp_N, eb.logp_N, atol=1e-5)
    wa, wb = ref.get_weights(), fused.get_weights()
    assert {n: w.shape for n, w in wa.items()} == {n: w.shape for n, w in wb.items()}
    fused.save(tmp_path / "fused")
    ref.load(tmp_path / "fused")  # a checkpoint of one kernel set loads into a learner on the other
    assert all(torch.equal(w, fused.get_weights()[n]) for n, w in ref.get_weights().items())
    for x in (ref, fused):
        assert x.policy.for_rollout() is x.policy


def test_auto_is_cpu_fused_when_every_policy_is_on_a_cpu_and_reference_otherwise() -> None:
    assert kernels.choose_kernels("auto", ["cpu"]) == "cpu_fused"
    assert kernels.choose_kernels("auto", ["cpu", torch.device("cpu")]) == "cpu_fused"
    assert kernels.choose_kernels("auto", ["cpu", "cuda:1"]) == "reference"  # e.g. a GPU learner, CPU replicas
    assert kernels.choose_kernels("reference", ["cpu", "cuda"]) == "reference"
    with pytest.raises(ValueError, match=r"model\.kernels='cpu_fused' runs on cpu only, but a policy of this run is on "
                                         r"cuda; set model\.kernels: auto or reference"):
        kernels.choose_kernels("cpu_fused", ["cpu", "cuda"])
    with pytest.raises(ValueError, match=r"model\.kernels must be one of auto, reference, cpu_fused, got 'fused'"):
        ModelConfig(kernels="fused")
    assert [load_model("tiny-test", device="cpu", kernels=k).kernels for k in ("auto", "reference")] == [
        "cpu_fused", "reference"]
    auto = build_model(ModelConfig(name="tiny-test", device="cpu"))
    assert (auto.device, auto.kernels) == (torch.device("cpu"), "cpu_fused")
    assert auto.model.get_base_model().config._attn_implementation == ATTENTION
    plain = build_model(ModelConfig(name="tiny-test", device="cpu", kernels="reference"))
    assert plain.kernels == "reference" and kernels.installed(plain.model).name == "reference"
    base = plain.model.get_base_model()
    assert base.config._attn_implementation == "sdpa"  # torch SDPA through transformers
    assert not any(hasattr(m, "_joint_lora") or "forward" in m.__dict__ for m in plain.model.modules())
    with pytest.raises(ValueError, match="already runs the cpu_fused kernels"):
        kernels.install(auto.model, "reference", "cpu")


def test_cuda_asked_for_without_cuda_is_one_line_naming_model_device() -> None:
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    for device in ("cuda", "cuda:1") if count == 0 else (f"cuda:{count}",):  # CI and this machine: no GPU
        with pytest.raises(ValueError) as error:
            build_model(ModelConfig(name="tiny-test", device=device))
        line = str(error.value)
        seen = "sees no CUDA device here" if count == 0 else f"sees {count} CUDA device(s)"
        assert line.startswith(f"model.device={device!r} but torch {seen}") and "\n" not in line, line
        assert "set model.device" in line
    assert kernels.resolve_device("auto") == torch.device("cuda" if count else "cpu")
    for bad in ("gpu", "cuda:x", "CPU", ""):
        with pytest.raises(ValueError, match=r"model.device must be auto \| cpu \| cuda \| cuda:N, got"):
            ModelConfig(device=bad)
    with pytest.raises(ValueError, match=r"model\.kernels='cpu_fused' runs on cpu only"):
        ModelConfig(device="cuda", kernels="cpu_fused")  # known wrong before any hardware is asked


def test_a_runs_learner_and_replicas_get_one_kernel_set_and_score_the_same_bits() -> None:
    """for_run: what launch gives the learner (on a GPU where it holds one) and the replicas (on the CPU)."""
    learner_model, replica_model = for_run(ModelConfig(name="tiny-test"), learner_device="cpu")
    assert (learner_model.device, replica_model.device) == ("cpu", "cpu")
    assert learner_model.kernels == replica_model.kernels == "cpu_fused"
    on_gpu = for_run(ModelConfig(name="tiny-test"), learner_device="cuda")
    assert [(m.device, m.kernels) for m in on_gpu] == [("cuda", "reference"), ("cpu", "reference")]
    assert [m.device for m in for_run(ModelConfig(device="cuda:1", kernels="reference"), learner_device="cuda:1")] == [
        "cuda:1", "cuda:1"]  # a device named is every policy's
    with pytest.raises(ValueError, match=r"model\.kernels='cpu_fused' runs on cpu only, but a policy of this run is on "
                                         "cuda"):
        for_run(ModelConfig(kernels="cpu_fused"), learner_device="cuda")
    for kernel_set in ("reference", "cpu_fused"):  # a learner and a replica built from the two configs: same bits
        learner_model, replica_model = for_run(ModelConfig(name="tiny-test", lora=True, dtype="bfloat16",
                                                           kernels=kernel_set), learner_device="cpu")
        lrn = Learner(LearnerConfig(model=learner_model, policy=BF16))
        loaded = build_model(replica_model)
        replica = Policy(loaded.model, loaded.tokenizer, BF16).for_rollout()
        assert loaded.kernels == kernel_set
        with torch.no_grad():
            for n, p in lrn.policy.trainable_parameters().items():
                p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(len(n))) * 0.05)
        replica.set_weights(lrn.get_weights())
        turns = _turns_for_learner()
        a = lrn.act(turns, temperature=2.0, generator=torch.Generator().manual_seed(4))
        b = replica.act(turns, temperature=2.0, generator=torch.Generator().manual_seed(4))
        assert [(d.action, d.logp) for d in a] == [(d.action, d.logp) for d in b]


@pytest.mark.parametrize("kernel_set", ["reference", "cpu_fused"])
def test_the_policy_makes_every_tensor_on_its_device(kernel_set: str) -> None:
    """With torch's default device moved away from the model's, any tensor made without naming the model's device
    lands on 'meta' and the first op mixing it with the model's fails: so acting, re-scoring and the update name it.
    (What a CUDA model needs, checked on a CPU.)"""
    loaded = build_model(ModelConfig(name="tiny-test", lora=True, value_head=True, device="cpu", kernels=kernel_set))
    policy = Policy(loaded.model, loaded.tokenizer, BF16, value_head=True)
    turns = _turns_for_learner()
    torch.set_default_device("meta")
    try:
        decisions = policy.act(turns, generator=torch.Generator().manual_seed(2))
        assert any(d.gen_ids for d in decisions)  # generation with a KV cache ran too
        policy.score(turns)
        out = policy.evaluate(decisions)
        (out.logp_N.sum() + out.values_N.sum()).backward()
    finally:
        torch.set_default_device(None)
    assert out.logp_N.device == policy.device == torch.device("cpu")
    assert all(p.grad is not None for p in policy.trainable_parameters().values())


@pytest.mark.parametrize("kernel_set", ["reference", "cpu_fused"])
def test_adapters_on_the_last_layers_only_train_there_and_the_backward_stops_below(kernel_set: str) -> None:
    """model.lora_layers=N: adapters in the last N decoder layers only, both kernel sets agree, and the backward
    computes nothing below them (no gradient reaches the lower layers' inputs)."""
    cfg = ModelConfig(name="tiny-test", lora=True, lora_rank=4, lora_layers=1, device="cpu", kernels=kernel_set)
    lrn = Learner(LearnerConfig(model=cfg, policy=FP32, lr=3e-3))
    layers = lrn.policy.model.get_base_model().get_decoder().layers
    adapted = [i for i, layer in enumerate(layers) if any(p.requires_grad for p in layer.parameters())]
    assert adapted == [len(layers) - 1] and len(layers) > 1
    seen: list[bool] = []  # whether each decoder layer's output takes part in the backward
    for layer in layers:
        layer.register_forward_hook(lambda _m, _a, out: seen.append((out[0] if isinstance(out, tuple) else out)
                                                                     .requires_grad))
    decisions = lrn.act(_turns_for_learner(), temperature=2.0, generator=torch.Generator().manual_seed(0))
    batch = [Sample.from_decision(d, advantage=1.0) for d in decisions]
    seen.clear()
    grads = _grads(lrn, batch)
    assert seen[: len(layers)] == [False] * (len(layers) - 1) + [True]
    assert sum(float(g.abs().sum()) for g in grads.values()) > 0
    with pytest.raises(ValueError, match=r"model.lora_layers=99 but the model has \d+ decoder layers"):
        build_model(dataclasses.replace(cfg, lora_layers=99))
