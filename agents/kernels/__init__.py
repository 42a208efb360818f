"""The compute behind the policy: which device it runs on and which kernels run its forward.

A kernel set is a swappable part with one interface (:class:`Kernels`); the policy, the learner and the loss
never ask which one runs.

* ``reference`` (:mod:`.reference`): plain transformers + peft, torch SDPA attention. Runs on any device.
* ``cpu_fused`` (:mod:`.cpu_fused`): the fused CPU forms: LoRA linears as one joint matmul
  (:mod:`.joint_lora`), leaner attention and MLP (:mod:`.fast_forward`). CPU only; the same values as
  ``reference`` within bf16 rounding (float32: within float32 rounding), and faster there.
* ``auto``: ``cpu_fused`` when every policy of the run is on a CPU, else ``reference``
  (:func:`choose_kernels`). A run's learner and rollout replicas always run one kernel set, so they score
  the same bits.

The interface has three parts:

* **install** (:meth:`Kernels.install`): change a built model (after peft wrapping, on its device) to run
  these kernels. :func:`install` is the entry point: it resolves ``auto``, checks the device, installs and
  records which set a model runs (:func:`installed`).
* **share weights** (:meth:`Kernels.share_weights`): for an acting-only copy, hold each weight once in the
  layout the kernels compute with (``cpu_fused``: base weights become views of the joint weights).
* **the hand-off** (:class:`~.handoff.Handoff`): the one way a kernel lets a layer write its output straight
  into the buffer the next layer's matmul reads, instead of that layer copying it (``cpu_fused``: the
  RMSNorms and the MLP product into the joint LoRA input). Both ends hold the same named object, made at
  install; ``reference`` has none.

Devices: ``model.device`` is ``auto`` (CUDA where this process sees one, else the CPU), ``cpu``, ``cuda`` or
``cuda:N`` (:func:`resolve_device`).
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Iterable
from typing import ClassVar

import torch

from multiverse.agents.kernels.handoff import Handoff

__all__ = ["DEVICES", "KERNELS", "Handoff", "Kernels", "check_device_spec", "choose_kernels", "get", "install", "installed",
           "resolve_device", "share_weights"]

#: the values of ``model.kernels``
KERNELS = ("auto", "reference", "cpu_fused")
#: the forms of ``model.device``
DEVICES = "auto | cpu | cuda | cuda:N"
_DEVICE = re.compile(r"auto|cpu|cuda(:\d+)?")


class Kernels:
    """A kernel set (see the module docstring). Subclasses set :attr:`name` and :attr:`device_types`."""

    name: ClassVar[str]
    device_types: ClassVar[tuple[str, ...] | None] = None
    """The device types it runs on (None: any)."""

    def install(self, model: torch.nn.Module) -> None:
        """Make ``model`` (a transformers model, peft-wrapped or not, on its device) run these kernels."""
        raise NotImplementedError

    def share_weights(self, model: torch.nn.Module, dtype: torch.dtype) -> None:
        """For an acting-only copy: hold the weights of ``dtype`` once, in the layout these kernels compute with."""
        raise NotImplementedError


def check_device_spec(device: str) -> None:
    """ValueError unless ``device`` has one of the forms of :data:`DEVICES` (no hardware is asked)."""
    if not isinstance(device, str) or not _DEVICE.fullmatch(device):
        raise ValueError(f"model.device must be {DEVICES}, got {str(device)[:40]!r}")


def resolve_device(device: str) -> torch.device:
    """The device ``device`` names in this process: ``auto`` is CUDA where torch sees a GPU, else the CPU.

    CUDA asked for where there is none is a ValueError naming model.device and what to do."""
    check_device_spec(device)
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    resolved = torch.device(device)
    if resolved.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError(f"model.device={device!r} but torch sees no CUDA device here "
                             f"(torch {torch.__version__}, CUDA build: {torch.version.cuda or 'none'}); "
                             f"set model.device: cpu, or auto to use a GPU only where there is one")
        if (resolved.index or 0) >= count:
            raise ValueError(f"model.device={device!r} but torch sees {count} CUDA device(s) (cuda:0 to "
                             f"cuda:{count - 1}); set model.device to one of them, or auto")
    return resolved


def choose_kernels(kernels: str, devices: Iterable[torch.device | str]) -> str:
    """The kernel set of a run whose policies sit on ``devices``: ``auto`` is ``cpu_fused`` when every one is a
    CPU, else ``reference``. A named set is checked against the devices (ValueError naming model.kernels)."""
    if kernels not in KERNELS:
        raise ValueError(f"model.kernels must be one of {', '.join(KERNELS)}, got {str(kernels)[:40]!r}")
    types = {torch.device(d).type for d in devices}
    if kernels == "auto":
        return "cpu_fused" if types <= {"cpu"} else "reference"
    supported = get(kernels).device_types
    off = sorted(types - set(supported)) if supported is not None else []
    if off:
        raise ValueError(f"model.kernels={kernels!r} runs on {', '.join(supported or ())} only, but a policy of this "
                         f"run is on {off[0]}; set model.kernels: auto or reference")
    return kernels


def get(name: str) -> Kernels:
    """The kernel set called ``name`` (``reference`` or ``cpu_fused``)."""
    if name == "reference":
        from multiverse.agents.kernels.reference import Reference

        return Reference()
    if name == "cpu_fused":
        from multiverse.agents.kernels.cpu_fused import CpuFused

        return CpuFused()
    raise ValueError(f"unknown kernels {str(name)[:40]!r}; use reference or cpu_fused (or auto)")


#: which kernel set each installed model runs (weak: a model that goes away leaves no entry)
_INSTALLED: weakref.WeakKeyDictionary[torch.nn.Module, Kernels] = weakref.WeakKeyDictionary()


def install(model: torch.nn.Module, kernels: str, device: torch.device | str) -> Kernels:
    """Run ``model`` (already on ``device``) on ``kernels`` (``auto`` resolved for that device alone); returns the
    set. Installing the set a model already runs again is a no-op; another one is an error (build it again)."""
    impl = get(choose_kernels(kernels, [device]))
    current = _INSTALLED.get(model)
    if current is not None:
        if current.name != impl.name:
            raise ValueError(f"this model already runs the {current.name} kernels; build a new one for {impl.name}")
        return current
    impl.install(model)
    _INSTALLED[model] = impl
    return impl


def installed(model: torch.nn.Module) -> Kernels:
    """The kernel set ``model`` runs (``reference`` where none was installed: plain transformers + peft)."""
    return _INSTALLED.get(model) or get("reference")


def share_weights(model: torch.nn.Module, dtype: torch.dtype) -> None:
    """:meth:`Kernels.share_weights` of the set ``model`` runs."""
    installed(model).share_weights(model, dtype)
