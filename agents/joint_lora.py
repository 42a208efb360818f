"""LoRA linears as one matmul: ``[x, A x] @ [W, s B]^T``, for sibling projections that share an input.

peft computes an adapted linear as ``W x + s * B (A x)``: three matmuls, one of them with an inner size
of r (8), and a pass over every output to add the two. On this CPU that was about a third of a scoring
forward, though the adapters hold under 2% of the FLOPs. Here the adapter rides along in the base
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
"""

from __future__ import annotations

import types
from typing import Any

import torch
import torch.nn.functional as F

__all__ = ["install_joint_lora", "share_base_weights"]

#: sibling projections that read the same input in HF decoders (Llama, Mistral, Qwen2, SmolLM, ...)
SIBLINGS = (("q_proj", "k_proj", "v_proj"), ("gate_proj", "up_proj"))


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
    """``F.linear(X, W, b)`` whose backward gives ``W`` a gradient only in its adapter columns (``k:``).

    The base columns are frozen; autograd's own linear would compute their (M x N x K) gradient anyway.
    """

    @staticmethod
    def forward(ctx: Any, X: torch.Tensor, W: torch.Tensor, bias: torch.Tensor | None, k: int) -> torch.Tensor:
        ctx.save_for_backward(X, W)
        ctx.k = k
        return F.linear(X, W, bias)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        X, W = ctx.saved_tensors
        grad_X = grad.matmul(W.to(grad.dtype)) if ctx.needs_input_grad[0] else None
        grad_W = None
        if ctx.needs_input_grad[1]:
            grad_W = torch.zeros_like(W)
            grad_W[:, ctx.k:] = grad.t().matmul(X[:, ctx.k:].to(grad.dtype)).to(W.dtype)
        return grad_X, grad_W, None, None


class _JointGroup:
    """Sibling LoRA linears computed as one joint matmul (see the module docstring)."""

    def __init__(self, members: list[Any]) -> None:
        self.members = members
        self.k = members[0].base_layer.in_features
        self.ranks = [m.lora_A["default"].out_features for m in members]
        self.widths = [m.base_layer.out_features for m in members]
        self._cache: tuple[tuple, torch.Tensor, torch.Tensor, torch.Tensor | None] | None = None
        self._stash: tuple[torch.Tensor, dict[int, torch.Tensor]] | None = None

    def _adapters(self) -> list[tuple[torch.Tensor, torch.Tensor, float]]:
        return [(m.lora_A["default"].weight, m.lora_B["default"].weight, float(m.scaling["default"]))
                for m in self.members]

    def _build(self, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(A stacked, joint weight, joint bias) in ``dtype``; differentiable in the adapters."""
        adapters = self._adapters()
        A = torch.cat([a.to(dtype) for a, _, _ in adapters])
        rows = []
        col = 0
        for (_, b, scale), rank, m in zip(adapters, self.ranks, self.members):
            block = b.to(dtype) * scale
            pad = (col, sum(self.ranks) - col - rank)
            rows.append(torch.cat([m.base_layer.weight.to(dtype), F.pad(block, pad)], 1))
            col += rank
        biases = [m.base_layer.bias for m in self.members]
        bias = None
        if any(bb is not None for bb in biases):
            bias = torch.cat([bb.to(dtype) if bb is not None else torch.zeros(w, dtype=dtype)
                              for bb, w in zip(biases, self.widths)])
        return A, torch.cat(rows), bias

    def _key(self, dtype: torch.dtype) -> tuple:
        return (dtype, *((t.data_ptr(), t._version) for m in self.members
                         for t in (m.lora_A["default"].weight, m.lora_B["default"].weight, m.base_layer.weight)))

    def _weights(self, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        if torch.is_grad_enabled() and any(t.requires_grad for a, b, _ in self._adapters() for t in (a, b)):
            return self._build(dtype)
        if self._cache is None or self._cache[0] != self._key(dtype):
            with torch.no_grad():
                built = self._build(dtype)
                if self._cache is not None and self._cache[0][0] == dtype:
                    for old, new in zip(self._cache[1:], built):  # in place: base weights may be views of it
                        if old is not None:
                            old.copy_(new)
                    built = self._cache[1:]
            self._cache = (self._key(dtype), *built)
        return self._cache[1:]

    def share_base(self, dtype: torch.dtype) -> None:
        """Make the members' base weights views of the cached joint weight: no second copy of them."""
        if self.members[0].base_layer.weight.dtype != dtype:
            return
        W = self._weights(dtype)[1]
        row = 0
        for m, width in zip(self.members, self.widths):
            if m.base_layer.weight.data_ptr() != W[row].data_ptr():
                m.base_layer.weight.data = W[row:row + width, :self.k]
            row += width
        self._cache = (self._key(dtype), *self._cache[1:])

    def _compute(self, x: torch.Tensor) -> list[torch.Tensor]:
        dtype = torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else self.members[0].base_layer.weight.dtype
        A, W, bias = self._weights(dtype)
        x2 = x.reshape(-1, self.k).to(dtype)
        X = torch.cat([x2, F.linear(x2, A)], 1)
        if W.requires_grad:
            out = _JointMatmul.apply(X, W, bias, self.k)
        else:
            out = F.linear(X, W, bias)
        outs, col = [], 0
        for width in self.widths:
            outs.append(out[:, col:col + width].view(*x.shape[:-1], width))
            col += width
        return outs

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
    return count


def share_base_weights(model: torch.nn.Module, dtype: torch.dtype) -> None:
    """For an acting-only copy: the joint weights in ``dtype`` are built now, and base weights of that
    dtype become views into them, so the model holds its linears once (a learner, whose joint weights
    are rebuilt with gradients, keeps its own layout)."""
    groups = {id(m._joint_lora[0]): m._joint_lora[0] for m in model.modules() if hasattr(m, "_joint_lora")}
    with torch.no_grad():
        for group in groups.values():
            group.share_base(dtype)
