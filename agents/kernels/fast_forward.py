"""Two leaner eager forms of transformers' decoder pieces on a CPU, computing the same bits as transformers' own.

Part of the ``cpu_fused`` kernels (:mod:`multiverse.agents.kernels`).

* **Attention** (``multiverse_sdpa``): transformers' ``sdpa`` given a mask copies the grouped key and
  value heads of a GQA model (SmolLM2: 3 for 9 query heads) out to full size in every layer, because
  CUDA kernels cannot read them in place under a mask. torch's CPU kernel can (``enable_gqa``), with
  the same values. The policy's packed forward always passes a mask, so this is every layer's
  attention there; anything else (no mask, a KV cache, softcap) is transformers' ``sdpa``. Registered
  with transformers' attention and mask interfaces and set on the model by :func:`install_fast_forward`.
* **MLP** (Llama-style ``down(act(gate(x)) * up(x))`` with SiLU): without gradients the activation
  runs in place on the gate projection's output and the product goes straight into the down
  projection's joint LoRA input where it has one (its :class:`~multiverse.agents.kernels.handoff.Handoff`),
  instead of filling two fresh (tokens x intermediate) tensors. With gradients it is transformers'
  forward (SiLU's backward needs its input).

What each form buys is measured in bench/README.md (policy throughput).
"""

from __future__ import annotations

import types
from typing import Any

import torch
import torch.nn.functional as F
from transformers import AttentionInterface
from transformers.activations import SiLUActivation
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask

from multiverse.agents.kernels.joint_lora import handoff_of

__all__ = ["ATTENTION", "install_fast_forward"]

#: the attention implementation's name in transformers' registries
ATTENTION = "multiverse_sdpa"
#: MLP classes whose forward is exactly ``down_proj(act_fn(gate_proj(x)) * up_proj(x))``
GATED_MLPS = ("LlamaMLP", "MistralMLP", "Qwen2MLP", "Qwen3MLP")


def multiverse_sdpa(module: torch.nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                    attention_mask: torch.Tensor | None, dropout: float = 0.0, scaling: float | None = None,
                    is_causal: bool | None = None, **kwargs: Any) -> tuple[torch.Tensor, None]:
    """transformers' ``sdpa`` attention, reading grouped key/value heads in place when a mask is given."""
    grouped = query.shape[1] != key.shape[1]
    special = kwargs.get("softcap") is not None or kwargs.get("position_bias") is not None or kwargs.get("cache") is not None
    if attention_mask is None or not grouped or query.shape[2] != key.shape[2] or special:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      is_causal=is_causal, **kwargs)
    out = F.scaled_dot_product_attention(query, key, value, attn_mask=attention_mask, dropout_p=dropout, scale=scaling,
                                         enable_gqa=True)
    return out.transpose(1, 2).contiguous(), None


AttentionInterface.register(ATTENTION, multiverse_sdpa)
ALL_MASK_ATTENTION_FUNCTIONS.register(ATTENTION, sdpa_mask)


def _mlp_forward(self: Any, x: torch.Tensor) -> torch.Tensor:
    if torch.is_grad_enabled():
        return type(self).forward(self, x)
    up = self.up_proj(x)
    act = F.silu(self.gate_proj(x), inplace=True)
    handoff = self._handoff  # into down's joint matmul input, where it has one
    out = handoff.buffer(act.shape, act.dtype, act.device) if handoff is not None else None
    return self.down_proj(torch.mul(act, up, out=out) if out is not None else act.mul_(up))


def install_fast_forward(model: torch.nn.Module) -> None:
    """Use both forms in ``model`` (a transformers model, peft-wrapped or not: after
    :func:`~multiverse.agents.kernels.joint_lora.install_joint_lora`, whose hand-offs the MLP writes into).
    Idempotent.

    The attention form applies where the model is on ``sdpa``; the MLP form to the gated SiLU MLPs
    of :data:`GATED_MLPS`.
    """
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    if getattr(base.config, "_attn_implementation", None) == "sdpa" and base._can_set_attn_implementation():
        base.set_attn_implementation(ATTENTION)
    for m in base.modules():
        if type(m).__name__ in GATED_MLPS and isinstance(getattr(m, "act_fn", None), (SiLUActivation, torch.nn.SiLU)):
            m._handoff = handoff_of(m.down_proj)
            m.forward = types.MethodType(_mlp_forward, m)
