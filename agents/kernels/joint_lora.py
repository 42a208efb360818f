"""LoRA linears as one matmul: ``[x, A x] @ [W, s B]^T``, for sibling projections that share an input.

peft computes an adapted linear as ``W x + s * B (A x)``: three matmuls, one of them with an inner size
of r (8), and a pass over every output to add the two. On a CPU that costs far more than the adapters'
share of the FLOPs (under 2%; bench/README.md). Here the adapter rides along in the base
matmul instead: the input gets ``A x`` appended as r extra columns, the weight gets ``s B`` appended as
r extra columns, and one matmul with an inner size of K + r gives the sum, rounded once. Siblings
that read the same input (a layer's q, k and v projections; gate and up) share one matmul too: their
rows are stacked and each member's ``s B`` sits in its own columns (zero elsewhere), so one ``A`` matmul
and one big matmul serve the group.

The form is the policy's numerics everywhere, so a learner and a rollout replica compute the same
bits. Under ``torch.no_grad`` the joint weight is built once per weight version (cached; the
optimizer's in-place update invalidates it); with gradients it is rebuilt from the trainable
adapters each forward, and its backward (:class:`_JointMatmul`) computes no gradient for the frozen
base weights. LoRA layers that are not plain (several adapters, DoRA, merged, a bias on B, dropout in
training, ``disable_adapter()``) run peft's own forward.

Without gradients the concatenation is skipped where the input's producer can write into a wider
buffer: each group owns a :class:`~multiverse.agents.kernels.handoff.Handoff` that the RMSNorm before
q/k/v and gate/up (installed here) and the MLP's product before down (:mod:`.fast_forward`) write into;
the group then writes ``A x`` into the buffer's last r columns. Same values, one copy of the input fewer
per group.
"""

from __future__ import annotations

import types
from typing import Any

import torch
import torch.nn.functional as F

from multiverse.agents.kernels.handoff import Handoff

__all__ = ["handoff_of", "install_joint_lora", "share_base_weights"]

#: sibling projections that read the same input in HF decoders (Llama, Mistral, Qwen2, SmolLM, ...)
SIBLINGS = (("q_proj", "k_proj", "v_proj"), ("gate_proj", "up_proj"))
#: in a decoder layer, the norm whose output is a projection's input
NORM_FEEDS = (("input_layernorm", "self_attn", "q_proj"), ("post_attention_layernorm", "mlp", "gate_proj"))
#: RMSNorm classes whose forward is exactly ``weight * (h.float() * rsqrt(mean(h.float()^2) + eps)).to(h.dtype)``
RMS_NORMS = ("LlamaRMSNorm", "MistralRMSNorm", "Qwen2RMSNorm", "Qwen3RMSNorm")


def _plain(module: Any) -> bool:
    """A peft LoRA ``Linear`` with one vanilla adapter on a frozen ``nn.Linear``."""
    if not (hasattr(module, "lora_A") and hasattr(module, "base_layer") and hasattr(module, "scaling")):
        return False
    base = module.base_layer
    return (
        isinstance(base, torch.nn.Linear)
        and list(module.lora_A) == ["default"]
        and list(module.active_adapters) == ["default"]
        and not getattr(module, "lora_variant", {})
        and module.lora_B["default"].bias is None
        and not any(p.requires_grad for p in base.parameters())
    )


class _JointMatmul(torch.autograd.Function):
    """``F.linear(X, [base | blocks], bias)``, differentiable in ``X`` and the adapter blocks only.

    The base weights are frozen: autograd's own linear would compute their (rows x K) gradient anyway.
    """

    @staticmethod
    def forward(ctx: Any, X: torch.Tensor, blocks: torch.Tensor, bias: torch.Tensor | None, group: _JointGroup) -> torch.Tensor:
        W = group.assemble(blocks)
        ctx.save_for_backward(X, W)
        ctx.k = group.k
        return F.linear(X, W, bias)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        X, W = ctx.saved_tensors
        grad_X = grad.matmul(W) if ctx.needs_input_grad[0] else None
        grad_blocks = grad.t().matmul(X[:, ctx.k:]) if ctx.needs_input_grad[1] else None
        return grad_X, grad_blocks, None, None


class _JointGroup:
    """Sibling LoRA linears computed as one joint matmul (see the module docstring)."""

    def __init__(self, members: list[Any]) -> None:
        self.members = members
        self.k = members[0].base_layer.in_features
        self.widths = [m.base_layer.out_features for m in members]
        starts = [sum(self.widths[:i]) for i in range(len(members))]
        #: each member's rows of the joint weight (its columns of the joint output)
        self.rows = [slice(start, start + width) for start, width in zip(starts, self.widths)]
        self._cache: tuple[tuple, torch.Tensor, torch.Tensor, torch.Tensor | None] | None = None
        self._stash: tuple[torch.Tensor, dict[int, torch.Tensor]] | None = None
        self.rank = sum(m.lora_A["default"].weight.shape[0] for m in members)
        #: where the producer of this group's input may write it, ``A x``'s r columns left free
        self.handoff = Handoff(self.k, self.rank, self.compute_dtype)

    def _adapters(self, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """(the members' A stacked, their ``s B`` as diagonal blocks) in ``dtype``, differentiable."""
        A = torch.cat([m.lora_A["default"].weight.to(dtype) for m in self.members])
        blocks = torch.block_diag(*(m.lora_B["default"].weight.to(dtype) * float(m.scaling["default"])
                                    for m in self.members))
        return A, blocks

    def _bias(self, dtype: torch.dtype) -> torch.Tensor | None:
        biases = [m.base_layer.bias for m in self.members]
        if all(b is None for b in biases):
            return None
        device = self.members[0].base_layer.weight.device
        return torch.cat([b.detach().to(dtype) if b is not None else torch.zeros(w, dtype=dtype, device=device)
                          for b, w in zip(biases, self.widths)])

    @torch.no_grad()
    def assemble(self, blocks: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """The joint weight ``[stacked base weights | blocks]`` in ``blocks``' dtype (written into ``out``)."""
        W = out if out is not None else torch.empty(sum(self.widths), self.k + blocks.shape[1], dtype=blocks.dtype,
                                                    device=blocks.device)
        for m, rows in zip(self.members, self.rows):
            if m.base_layer.weight.data_ptr() != W[rows.start].data_ptr():  # not already a view of W (share_base)
                W[rows, :self.k].copy_(m.base_layer.weight)
        W[:, self.k:].copy_(blocks)
        return W

    def _key(self, dtype: torch.dtype) -> tuple:
        return (dtype, *((t.data_ptr(), t._version) for m in self.members
                         for t in (m.lora_A["default"].weight, m.lora_B["default"].weight, m.base_layer.weight)))

    @torch.no_grad()
    def _cached(self, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(A stacked, joint weight, bias) for acting: rebuilt when a weight changed, in place when it can be."""
        if self._cache is None or self._cache[0] != self._key(dtype):
            A, blocks = self._adapters(dtype)
            old = self._cache[2] if self._cache is not None and self._cache[0][0] == dtype else None
            if old is not None and old.is_inference() and not torch.is_inference_mode_enabled():
                old = None  # made while acting (inference mode): torch forbids writing it outside, so make anew
            W = self.assemble(blocks, out=old)
            self._cache = (self._key(dtype), A, W, self._bias(dtype))  # keyed after the writes to base views
        return self._cache[1:]

    def share_base(self, dtype: torch.dtype) -> None:
        """Make the members' base weights views of the cached joint weight: no second copy of them."""
        if self.members[0].base_layer.weight.dtype != dtype:
            return
        W = self._cached(dtype)[1]
        for m, rows in zip(self.members, self.rows):
            if m.base_layer.weight.data_ptr() != W[rows.start].data_ptr():
                m.base_layer.weight.data = W[rows, :self.k]
        self._cache = (self._key(dtype), *self._cache[1:])

    def compute_dtype(self) -> torch.dtype:
        """The dtype the joint matmul runs in: autocast's, else the base weights'."""
        weight = self.members[0].base_layer.weight
        kind = weight.device.type
        return torch.get_autocast_dtype(kind) if torch.is_autocast_enabled(kind) else weight.dtype

    def _compute(self, x: torch.Tensor) -> list[torch.Tensor]:
        dtype = self.compute_dtype()
        x2 = x.reshape(-1, self.k).to(dtype)
        adapters = [t for m in self.members for t in (m.lora_A["default"].weight, m.lora_B["default"].weight)]
        joined = self.handoff.take(x)  # [x | r free columns] when the producer wrote x there
        if torch.is_grad_enabled() and any(t.requires_grad for t in adapters):
            A, blocks = self._adapters(dtype)
            X = torch.cat([x2, F.linear(x2, A)], 1)
            out = _JointMatmul.apply(X, blocks, self._bias(dtype), self)
        else:
            A, W, bias = self._cached(dtype)
            if joined is not None and x.dtype == dtype:
                X = joined.view(-1, self.k + self.rank)  # x is its first k columns already
                X[:, self.k:] = F.linear(x2, A)
            else:
                X = torch.cat([x2, F.linear(x2, A)], 1)
            out = F.linear(X, W, bias)
        return [out[:, rows].view(*x.shape[:-1], width) for rows, width in zip(self.rows, self.widths)]

    def output(self, x: torch.Tensor, index: int) -> torch.Tensor:
        """Member ``index``'s output for ``x``: computed with its siblings' on the first call, kept for theirs."""
        if self._stash is not None and self._stash[0] is x and index in self._stash[1]:
            out = self._stash[1].pop(index)
            if not self._stash[1]:
                self._stash = None
            return out
        outs = self._compute(x)
        rest = {i: o for i, o in enumerate(outs) if i != index}
        self._stash = (x, rest) if rest else None
        return outs[index]


def _joint_forward(self: Any, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
    group, index = self._joint_lora
    dropout = self.lora_dropout["default"]
    if (args or kwargs or self.disable_adapters or self.merged or list(self.active_adapters) != ["default"]
            or (self.training and not isinstance(dropout, torch.nn.Identity))):
        group.handoff.drop()  # a buffer written for the joint matmul goes unused
        return type(self).forward(self, x, *args, **kwargs)
    return group.output(x, index)


def install_joint_lora(model: torch.nn.Module) -> int:
    """Compute every plain peft LoRA linear of ``model`` in the joint form; returns how many. Idempotent."""
    count = 0
    for parent in model.modules():
        children = {name: m for name, m in parent.named_children() if _plain(m) and not hasattr(m, "_joint_lora")}
        groups = []
        for names in SIBLINGS:
            members = [children[n] for n in names if n in children]
            if len(members) == len(names) and len({(m.base_layer.in_features, m.base_layer.weight.dtype)
                                                    for m in members}) == 1:
                groups.append(members)
                for n in names:
                    del children[n]
        groups += [[m] for m in children.values()]
        for members in groups:
            group = _JointGroup(members)
            for index, m in enumerate(members):
                m._joint_lora = (group, index)
                m.forward = types.MethodType(_joint_forward, m)
                count += 1
    for layer in model.modules():
        for norm_name, block_name, proj_name in NORM_FEEDS:
            norm = getattr(layer, norm_name, None)
            proj = getattr(getattr(layer, block_name, None), proj_name, None)
            handoff = handoff_of(proj)
            if type(norm).__name__ in RMS_NORMS and handoff is not None:
                norm._handoff = handoff
                norm.forward = types.MethodType(_norm_forward, norm)
    return count


def handoff_of(consumer: Any) -> Handoff | None:
    """The hand-off into ``consumer``'s joint matmul, where it is a joint LoRA linear (else None)."""
    joint = getattr(consumer, "_joint_lora", None)
    return joint[0].handoff if joint is not None else None


def _norm_forward(self: Any, h: torch.Tensor) -> torch.Tensor:
    """transformers' RMSNorm (same ops, same bits), writing its output where the next joint matmul wants it."""
    x = h.to(torch.float32)
    x = (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.variance_epsilon)).to(h.dtype)
    out = self._handoff.buffer(x.shape, torch.promote_types(self.weight.dtype, x.dtype), x.device)
    return torch.mul(self.weight, x, out=out) if out is not None else self.weight * x


def share_base_weights(model: torch.nn.Module, dtype: torch.dtype) -> None:
    """For an acting-only copy: the joint weights in ``dtype`` are built now, and base weights of that
    dtype become views into them, so the model holds its linears once (a learner, whose joint weights
    are rebuilt with gradients, keeps its own layout)."""
    groups = {id(m._joint_lora[0]): m._joint_lora[0] for m in model.modules() if hasattr(m, "_joint_lora")}
    for group in groups.values():
        group.share_base(dtype)
