"""The ``cpu_fused`` kernels: the fused CPU forms of a forward, the same values as ``reference`` and faster there.

* LoRA linears as one joint matmul ``[x, A x] @ [W, s B]^T``, siblings sharing it (:mod:`.joint_lora`);
* grouped key/value heads read in place under the packed mask, SiLU and its product in place when acting
  (:mod:`.fast_forward`);
* the RMSNorms and the MLP product write into the joint matmuls' inputs (their :class:`~.handoff.Handoff`).

Bits: a learner and its rollout replicas on these kernels score the same bits; against ``reference`` the
joint matmul rounds once where peft rounds the base and the adapter parts apart (bf16: within bf16 rounding).
"""

from __future__ import annotations

import torch

from multiverse.agents.kernels import Kernels
from multiverse.agents.kernels.fast_forward import install_fast_forward
from multiverse.agents.kernels.joint_lora import install_joint_lora, share_base_weights

__all__ = ["CpuFused"]


class CpuFused(Kernels):
    """Joint LoRA matmuls and the leaner attention, MLP and norm forms (see the module docstring)."""

    name = "cpu_fused"
    device_types = ("cpu",)

    def install(self, model: torch.nn.Module) -> None:
        install_joint_lora(model)  # first: the MLP form writes into the joint groups' hand-offs
        install_fast_forward(model)

    def share_weights(self, model: torch.nn.Module, dtype: torch.dtype) -> None:
        share_base_weights(model, dtype)
