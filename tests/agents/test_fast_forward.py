"""The fast attention, MLP and norm forms compute transformers' own bits, and are what a loaded model runs."""

from __future__ import annotations

import torch

from multiverse.agents.kernels import Handoff, joint_lora
from multiverse.agents.kernels.fast_forward import ATTENTION, GATED_MLPS
from multiverse.agents.policy import Policy

from agent_helpers import _turns_for_learner, tiny_lora


def _policy() -> Policy:
    """tiny-test in bf16 weights with nonzero LoRA adapters, as the default model acts (bf16 autocast)."""
    loaded = tiny_lora("bfloat16")
    return Policy(loaded.model, loaded.tokenizer)


def _transformers_own(policy: Policy) -> Policy:
    """The same policy on transformers' sdpa attention, MLP and RMSNorm forwards (the joint LoRA concatenating)."""
    base = policy.model.get_base_model()
    base.set_attn_implementation("sdpa")
    for m in base.modules():
        if type(m).__name__ in GATED_MLPS + joint_lora.RMS_NORMS:
            m.__dict__.pop("forward", None)
    return policy


def test_fast_forms_are_installed_and_give_transformers_bits_in_bf16(monkeypatch) -> None:
    fast, own = _policy(), _transformers_own(_policy())
    base = fast.model.get_base_model()
    assert base.config._attn_implementation == ATTENTION
    assert base.config.num_key_value_heads < base.config.num_attention_heads  # grouped heads: the case it changes
    assert all("forward" in layer.mlp.__dict__ and "forward" in layer.input_layernorm.__dict__ for layer in base.model.layers)
    buffers = []
    offer = Handoff.buffer

    def counted(handoff: Handoff, *args):
        out = offer(handoff, *args)
        if out is not None:
            buffers.append(handoff)
        return out

    monkeypatch.setattr(Handoff, "buffer", counted)
    turns = _turns_for_learner()
    for a, b in zip(fast.score(turns), own.score(turns)):
        assert torch.equal(a, b), (a, b)
    # both norms and the MLP product wrote the joint matmuls' inputs in place: 3 per layer, in the fast policy only
    assert len(buffers) == 3 * len(base.model.layers)
    # acting: packed scoring, then generation of typed text with a KV cache (transformers' sdpa there)
    da = fast.act(turns, generator=torch.Generator().manual_seed(3))
    db = own.act(turns, generator=torch.Generator().manual_seed(3))
    assert [(d.action, d.logp) for d in da] == [(d.action, d.logp) for d in db]
    assert any(d.gen_ids for d in da)
    # with gradients (the learner's update) the MLP and norms are transformers' forwards: still the same bits
    ea, eb = fast.evaluate(da), own.evaluate(db)
    assert ea.logp_N.requires_grad and torch.equal(ea.logp_N, eb.logp_N)
