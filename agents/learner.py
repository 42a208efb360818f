"""The learner: a few primitives in the spirit of Tinker, with the RL loop written over them elsewhere.

* ``forward_backward(batch, loss_fn) -> metrics``: re-score the batch's chosen
  actions under the current weights and accumulate the loss's gradients;
* ``optim_step() -> metrics``: clip, AdamW step, zero the gradients;
* ``act(turns)``: the policy acting with the current weights;
* ``get_weights()`` / ``set_weights()``: only the trainable tensors (the LoRA
  adapters when LoRA is on, plus the value head), what replicas need;
* ``save(dir)`` / ``load(dir)``: safetensors + JSON, optimizer state and RNG
  included, written atomically (a temporary folder renamed into place), every
  file's sha256 recorded and checked on load. No pickle anywhere.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any

import torch
from annotated_types import Ge, Gt

from multiverse.agents.durable import file_problem, file_sha256, fsync_dir
from multiverse.agents.models import ModelConfig, build_model
from multiverse.agents.policy import Candidates, Decision, Policy, PolicyConfig, PolicyOutput, row_key, share_rows
from multiverse.agents.prompt import PromptConfig, Turn

__all__ = ["CheckpointError", "Learner", "LearnerConfig", "Sample", "config_from_dict", "rows_of"]

CHECKPOINT_FORMAT = "multiverse-learner"
CHECKPOINT_VERSION = 1
LossFn = Callable[[PolicyOutput, dict[str, torch.Tensor]], tuple[torch.Tensor, dict[str, float]]]


class CheckpointError(ValueError):
    """A checkpoint folder is missing, incomplete, corrupt or from an incompatible learner."""


@dataclasses.dataclass(frozen=True)
class LearnerConfig:
    """The model, how it acts, and how it is optimized."""

    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    """Which model, LoRA or full fine-tuning, value head."""
    policy: PolicyConfig = dataclasses.field(default_factory=PolicyConfig)
    """Prompting, temperature, generation, compute dtype, threads."""
    lr: Annotated[float, Gt(0)] = 1e-4
    """AdamW learning rate."""
    weight_decay: Annotated[float, Ge(0)] = 0.0
    """AdamW weight decay."""
    betas: tuple[float, float] = (0.9, 0.999)
    """AdamW betas."""
    adam_eps: Annotated[float, Gt(0)] = 1e-8
    """AdamW epsilon."""
    grad_clip: Annotated[float, Gt(0)] | None = 1.0
    """Clip the global gradient norm to this before each step (None: no clipping)."""
    micro_batch: Annotated[int, Ge(1)] = 8
    """Rows per forward/backward inside forward_backward (bounds activation memory; gradients add up). Items that
    score the same row (a group's equal first turns) share one."""
    keep_reference: bool = False
    """Full fine-tuning only: keep a frozen copy of the initial model for a KL penalty. With LoRA the
    base model with adapters disabled is the reference, at no memory cost."""


@dataclasses.dataclass
class Sample:
    """One action taken, with its training targets: what :meth:`Learner.forward_backward` consumes."""

    prompt_ids: list[int]
    candidates: Candidates
    index: int
    gen_ids: tuple[int, ...]
    behaviour_logp: float
    """log pi_behaviour(action) when it was taken (at the acting temperature)."""
    advantage: float
    return_: float = 0.0
    """The value target (return-to-go or GAE return)."""
    env_id: str = ""

    @classmethod
    def from_decision(cls, d: Decision, advantage: float, return_: float = 0.0, env_id: str = "") -> Sample:
        return cls(d.prompt_ids, d.candidates, d.index, d.gen_ids, d.logp, advantage, return_, env_id)


def rows_of(samples: Sequence[Sample]) -> list[list[Sample]]:
    """``samples`` by the forward row they score (:func:`~multiverse.agents.policy.row_key`), in first-seen order."""
    _, inverse = share_rows([row_key(s) for s in samples])
    rows: list[list[Sample]] = [[] for _ in range(max(inverse, default=-1) + 1)]
    for s, r in zip(samples, inverse):
        rows[r].append(s)
    return rows


def _chunks_of_rows(batch: Sequence[Sample], rows_per_chunk: int) -> list[list[Sample]]:
    """``batch`` in chunks of at most ``rows_per_chunk`` distinct rows, items that share a row in one chunk (their
    row is computed once: :meth:`Policy.evaluate`)."""
    rows = rows_of(batch)
    return [[s for row in rows[k:k + rows_per_chunk] for s in row] for k in range(0, len(rows), rows_per_chunk)]


def _row_tokens(items: Sequence[Sample]) -> int:
    """Tokens of the distinct rows ``items`` score (prompt, every candidate, generated text): what a forward computes."""
    rows = {row_key(s): s for s in items}.values()
    return sum(len(s.prompt_ids) + sum(map(len, s.candidates.blocks)) + len(s.gen_ids) for s in rows)


def config_from_dict(data: dict[str, Any]) -> LearnerConfig:
    """Rebuild a :class:`LearnerConfig` from ``dataclasses.asdict`` output (e.g. a checkpoint's JSON)."""
    d = dict(data)
    model = dict(d.pop("model", {}))
    if "lora_targets" in model:
        model["lora_targets"] = tuple(model["lora_targets"])
    policy = dict(d.pop("policy", {}))
    prompt = PromptConfig(**policy.pop("prompt", {}))
    if "betas" in d:
        d["betas"] = tuple(d["betas"])
    return LearnerConfig(model=ModelConfig(**model), policy=PolicyConfig(prompt=prompt, **policy), **d)


class Learner:
    """The trainable policy and its optimizer (see the module docstring)."""

    def __init__(self, config: LearnerConfig = LearnerConfig(), *, cache_dir: str | Path | None = None) -> None:
        self.config = config
        loaded = build_model(config.model, cache_dir=cache_dir)
        self.model_source = loaded.source
        self.policy = Policy(loaded.model, loaded.tokenizer, config.policy, value_head=config.model.value_head)
        params = self.policy.trainable_parameters()
        if not params:
            raise ValueError("the model has no trainable tensors; check ModelConfig (lora_targets match no module?)")
        self._names = list(params)  # optimizer param order, used to name optimizer state on save
        self.optimizer = torch.optim.AdamW(
            list(params.values()), lr=config.lr, betas=config.betas, eps=config.adam_eps,
            weight_decay=config.weight_decay,
        )
        self.step = 0
        self._reference: Any = None
        if config.keep_reference and not config.model.lora:
            self._reference = copy.deepcopy(self.policy.model).requires_grad_(False)

    # -- primitives

    def act(self, turns: Sequence[Turn], **kwargs: Any) -> list[Decision]:
        """The policy acting with the current weights (see :meth:`Policy.act`)."""
        return self.policy.act(turns, **kwargs)

    def _reference_logdist(self, items: Sequence[Sample]) -> torch.Tensor:
        with torch.no_grad():
            if self.config.model.lora:
                with self.policy.model.disable_adapter():
                    return self.policy.evaluate(items).logdist_NA
            if self._reference is None:
                raise ValueError(
                    "this loss needs the initial policy (kl_coef > 0) but the learner does full fine-tuning without "
                    "a reference copy; set LearnerConfig.keep_reference=True or use LoRA"
                )
            live = self.policy.model
            try:
                self.policy.model = self._reference
                return self.policy.evaluate(items).logdist_NA
            finally:
                self.policy.model = live

    def forward_backward(self, batch: Sequence[Sample], loss_fn: LossFn) -> dict[str, float]:
        """Accumulate gradients of ``loss_fn`` (a batch mean) over ``batch``; returns its metrics, averaged.

        ``loss_fn(out, tensors)`` gets a :class:`PolicyOutput` (with ``ref_logdist_NA`` when the loss has
        ``needs_reference``) and ``old_logp_N``, ``adv_N``, ``returns_N`` for one micro-batch."""
        if not batch:
            raise ValueError("forward_backward got an empty batch")
        n = len(batch)
        totals: dict[str, float] = {}
        tokens = 0
        for chunk in _chunks_of_rows(batch, self.config.micro_batch):
            tokens += _row_tokens(chunk)
            out = self.policy.evaluate(chunk)
            if getattr(loss_fn, "needs_reference", False):
                out.ref_logdist_NA = self._reference_logdist(chunk)
            on = {"dtype": torch.float32, "device": self.policy.device}
            tensors = {
                "old_logp_N": torch.tensor([s.behaviour_logp for s in chunk], **on),
                "adv_N": torch.tensor([s.advantage for s in chunk], **on),
                "returns_N": torch.tensor([s.return_ for s in chunk], **on),
            }
            loss, metrics = loss_fn(out, tensors)
            weight = len(chunk) / n  # the loss is a micro-batch mean; weight it to the batch mean
            (loss * weight).backward()
            for k, v in metrics.items():
                totals[k] = totals.get(k, 0.0) + weight * float(v)
        totals["samples"] = float(n)
        totals["tokens"] = float(tokens)
        return totals

    def optim_step(self) -> dict[str, float]:
        """Clip the accumulated gradients, take one AdamW step, zero the gradients."""
        params = [p for group in self.optimizer.param_groups for p in group["params"]]
        clip = self.config.grad_clip if self.config.grad_clip is not None else float("inf")
        grad_norm = float(torch.nn.utils.clip_grad_norm_(params, clip))
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        return {"grad_norm": grad_norm, "lr": float(self.optimizer.param_groups[0]["lr"]), "step": float(self.step)}

    def get_weights(self) -> dict[str, torch.Tensor]:
        """The trainable tensors by name (LoRA adapters when LoRA, plus the value head)."""
        return self.policy.get_weights()

    def set_weights(self, weights: dict[str, torch.Tensor]) -> None:
        self.policy.set_weights(weights)

    # -- checkpoints

    def save(self, path: str | Path) -> Path:
        """Write a checkpoint folder atomically; an existing one at ``path`` is replaced whole."""
        path = Path(path).expanduser().resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        from safetensors.torch import save_file

        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
        try:
            weights = {k: v.contiguous() for k, v in self.get_weights().items()}
            save_file(weights, str(tmp / "weights.safetensors"))
            opt = self.optimizer.state_dict()
            opt_tensors: dict[str, torch.Tensor] = {"rng/torch": torch.get_rng_state()}
            for idx, state in opt["state"].items():
                for key, value in state.items():
                    t = value if torch.is_tensor(value) else torch.tensor(value)
                    opt_tensors[f"{self._names[idx]}/{key}"] = t.detach().to("cpu", copy=True).contiguous()
            save_file(opt_tensors, str(tmp / "optimizer.safetensors"))
            groups = [{k: v for k, v in g.items() if k != "params"} for g in opt["param_groups"]]
            files = {}
            for name in ("weights.safetensors", "optimizer.safetensors"):
                files[name] = {"sha256": file_sha256(tmp / name), "bytes": (tmp / name).stat().st_size}
            meta = {
                "format": CHECKPOINT_FORMAT,
                "version": CHECKPOINT_VERSION,
                "config": dataclasses.asdict(self.config),
                "step": self.step,
                "model_source": self.model_source,
                "trainable": self._names,
                "param_groups": groups,
                "files": files,
            }
            (tmp / "learner.json").write_text(json.dumps(meta, indent=1, default=list) + "\n")
            for f in tmp.iterdir():
                with open(f, "rb") as fh:
                    os.fsync(fh.fileno())
            old = None
            if path.exists():
                old = path.parent / f".{path.name}.old-{os.getpid()}"
                os.rename(path, old)
            os.rename(tmp, path)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
            fsync_dir(path.parent)  # make the renames themselves durable
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return path

    @staticmethod
    def read_meta(path: str | Path) -> dict[str, Any]:
        """A checkpoint's JSON, checked for format and version."""
        path = Path(path).expanduser()
        meta_file = path / "learner.json"
        if not meta_file.is_file():
            left = sorted(path.parent.glob(f".{path.name}.old-*")) if not path.exists() else []
            if left:
                raise CheckpointError(
                    f"{str(path)!r} does not exist, but {left[-1]} does: a save was interrupted between replacing "
                    f"the old checkpoint and moving the new one in; rename {left[-1].name} back to {path.name}"
                )
            raise CheckpointError(
                f"{str(path)!r} is not a learner checkpoint: {'it does not exist' if not path.exists() else 'no learner.json in it'}"
                f"; pass a folder written by Learner.save"
            )
        try:
            meta = json.loads(meta_file.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise CheckpointError(f"checkpoint file {meta_file} is corrupt or truncated ({error}); use an earlier checkpoint") from error
        if meta.get("format") != CHECKPOINT_FORMAT or meta.get("version") != CHECKPOINT_VERSION:
            raise CheckpointError(
                f"{meta_file} is format {meta.get('format')!r} version {meta.get('version')!r}; this learner reads "
                f"{CHECKPOINT_FORMAT!r} version {CHECKPOINT_VERSION}"
            )
        return meta

    def _load_tensors(self, path: Path, name: str, meta: dict[str, Any]) -> dict[str, torch.Tensor]:
        from safetensors.torch import load_file

        file = path / name
        expected = meta["files"].get(name)
        if not file.is_file() or expected is None:
            raise CheckpointError(f"checkpoint {path} is incomplete: {name} is missing; use an earlier checkpoint")
        problem = file_problem(file, expected, name)
        if problem:
            raise CheckpointError(f"checkpoint file {file} is corrupt or truncated ({problem}); use an earlier checkpoint")
        try:
            return load_file(str(file))
        except Exception as error:  # safetensors raises its own error types for a bad header
            raise CheckpointError(f"checkpoint file {file} cannot be read ({error}); use an earlier checkpoint") from error

    def load(self, path: str | Path) -> None:
        """Restore weights, optimizer state, step count and torch's RNG from a checkpoint of this learner."""
        path = Path(path).expanduser()
        meta = self.read_meta(path)
        if meta["trainable"] != self._names:
            raise CheckpointError(
                f"checkpoint {path} holds {len(meta['trainable'])} trainable tensors that do not match this learner's "
                f"{len(self._names)} (another model or LoRA config?); build the learner with Learner.from_checkpoint"
            )
        weights = self._load_tensors(path, "weights.safetensors", meta)
        opt_tensors = self._load_tensors(path, "optimizer.safetensors", meta)
        self.set_weights(weights)
        state: dict[int, dict[str, Any]] = {}
        for idx, name in enumerate(self._names):
            entries = {k.split("/", 1)[1]: v for k, v in opt_tensors.items() if k.startswith(name + "/")}
            if entries:
                state[idx] = entries
        groups = [dict(g, params=list(range(len(self._names)))) for g in meta["param_groups"]]
        for g in groups:
            if "betas" in g:
                g["betas"] = tuple(g["betas"])
        self.optimizer.load_state_dict({"state": state, "param_groups": groups})
        if "rng/torch" in opt_tensors:
            torch.set_rng_state(opt_tensors["rng/torch"])
        self.step = int(meta["step"])

    @classmethod
    def from_checkpoint(cls, path: str | Path, *, cache_dir: str | Path | None = None) -> Learner:
        """A learner built from the checkpoint's own config, then loaded from it."""
        meta = cls.read_meta(path)
        learner = cls(config_from_dict(meta["config"]), cache_dir=cache_dir)
        learner.load(path)
        return learner
