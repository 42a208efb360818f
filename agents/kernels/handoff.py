"""The buffer hand-off: a layer writes its output straight into the wider input buffer of the matmul it feeds.

A fused matmul that reads ``[x | extra columns]`` (the joint LoRA matmul reads ``[x, A x]``) would otherwise
concatenate: copy ``x`` into a fresh buffer. Its producer (the norm before it, the MLP product) can write ``x``
there in the first place. The two ends meet in one :class:`Handoff`, made by the consumer at install and held
by the producer from then on; nothing else passes buffers between layers.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

__all__ = ["Handoff"]


class Handoff:
    """Where a producer writes the input of one consumer (see the module docstring).

    Without gradients the producer asks :meth:`buffer` where to write its output (None: as usual), writes it
    there last and passes that very tensor to the consumer; the consumer's :meth:`take` gives back the whole
    buffer, its last ``extra`` columns free to fill. Any other input takes nothing, and each offer is taken
    (or dropped) once.
    """

    def __init__(self, width: int, extra: int, dtype: Callable[[], torch.dtype]) -> None:
        self.width, self.extra = width, extra
        self._dtype = dtype  # the consumer's compute dtype now (autocast's or its weights')
        self._offered: tuple[torch.Tensor, torch.Tensor] | None = None  # (the view given out, its buffer)

    def buffer(self, shape: torch.Size, dtype: torch.dtype, device: torch.device) -> torch.Tensor | None:
        """A tensor of ``shape`` whose rows continue with ``extra`` free columns; None where it would not help
        (gradients on: the consumer then builds its input differently; or not the consumer's compute dtype)."""
        if torch.is_grad_enabled() or dtype != self._dtype():
            return None
        buf = torch.empty(*shape[:-1], self.width + self.extra, dtype=dtype, device=device)
        view = buf[..., :self.width]
        self._offered = (view, buf)
        return view

    def take(self, x: torch.Tensor) -> torch.Tensor | None:
        """The buffer behind ``x`` when ``x`` is the view :meth:`buffer` last gave out, else None."""
        offered, self._offered = self._offered, None
        return offered[1] if offered is not None and offered[0] is x else None

    def drop(self) -> None:
        """Forget an offer the consumer will not take (it runs another form for this call)."""
        self._offered = None
