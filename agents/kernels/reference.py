"""The ``reference`` kernels: plain transformers + peft, attention on torch SDPA. Runs on any device.

What a model runs as loaded (:func:`~multiverse.agents.models.load_model` asks for transformers' ``sdpa``
attention): nothing is installed, and an acting copy keeps peft's own layout.
"""

from __future__ import annotations

import torch

from multiverse.agents.kernels import Kernels

__all__ = ["Reference"]


class Reference(Kernels):
    """transformers' and peft's own forwards (see the module docstring)."""

    name = "reference"
    device_types = None

    def install(self, model: torch.nn.Module) -> None:
        return None

    def share_weights(self, model: torch.nn.Module, dtype: torch.dtype) -> None:
        return None  # peft holds each base weight once already
