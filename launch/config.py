"""The typed config of ``multiverse train``: YAML plus ``key=value`` overrides, every field documented.

    config = load_config("launch/configs/smoke.yaml", ["rollout.workers=1", "run.iterations=2"])

A bad field, value or env id raises :class:`ConfigError` naming it (and the
nearest valid name), before anything starts. ``describe_fields()`` renders the
tree for ``multiverse train --help``; the docs are the attribute docstrings.
"""

from __future__ import annotations

import difflib
import os
import types
import typing
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

__all__ = ["CONFIG_DIR", "ConfigError", "RunConfig", "describe_fields", "find_config", "load_config", "to_yaml"]

#: the shipped configs (package data)
CONFIG_DIR = Path(__file__).parent / "configs"


class ConfigError(ValueError):
    """A config that cannot run: the message names the field and what to do."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True, validate_assignment=True)


class ModelSection(_Section):
    """The policy's language model and how it acts."""

    name: str = "default"
    """'default' (the packaged SmolLM2-135M-Instruct), 'tiny-test' (tests), a Hugging Face id or a local folder."""
    lora: bool = True
    """Train LoRA adapters on a frozen base (false: full fine-tuning)."""
    lora_rank: int = Field(8, ge=1)
    """LoRA rank r."""
    lora_alpha: float = Field(16.0, gt=0)
    """LoRA scale numerator (updates are scaled by alpha / r)."""
    dtype: Literal["float32", "bfloat16", "float16"] | None = None
    """Weight dtype (null: the model's own with LoRA, float32 for full fine-tuning)."""
    compute_dtype: Literal["bfloat16", "float32"] = "bfloat16"
    """CPU autocast dtype of the matmuls."""
    seed: int = 0
    """Seed of tiny-test's random weights and the LoRA initialisation."""
    temperature: float = Field(1.0, gt=0)
    """Sampling temperature over the legal actions during training rollouts."""
    score_norm: Literal["sum", "mean"] = "sum"
    """A legal action's score: the sum of its tokens' log-probs (its likelihood) or their mean (long actions such
    as select(2, "Purple") are penalised less)."""
    history_steps: int = Field(2, ge=0)
    """Recent (observation, action) pairs shown in the prompt."""
    max_prompt_tokens: int = Field(1024, ge=16)
    """Prompt token budget (history is dropped first to fit)."""
    max_text_tokens: int = Field(16, ge=1)
    """Most generated tokens for a free-text action argument (type(id, <text>))."""
    system_prompt: str | None = None
    """System message (null: the default one)."""


class EnvsSection(_Section):
    """Which envs train jointly, how they are sampled, and which are held out."""

    train: dict[str, float] = Field(default_factory=lambda: {"games/Catch-v0": 1.0})
    """Env ids to train on, each with its mixture weight (weights are normalised)."""
    params: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """Pinned randomization parameters per env id (for training and evaluation), e.g. {games/Catch-v0: {width: 5}}."""
    split: Literal["train", "heldout"] = "train"
    """Randomization split sampled for training episodes (when ADR is off)."""
    adr: bool = False
    """Automatic domain randomization: ranges start at the nominal values and widen where the policy succeeds."""
    adr_step: float = Field(0.1, gt=0, le=1)
    """ADR widening/narrowing step, as a share of each parameter's train range."""
    adr_buffer: int = Field(8, ge=1)
    """Boundary episodes ADR collects before it moves a boundary."""
    curriculum: Literal["none", "learning_progress"] = "learning_progress"
    """Env sampler: 'none' (mixture weights only) or 'learning_progress' (more groups where success is changing)."""
    curriculum_mix: float = Field(0.5, ge=0, le=1)
    """Share of the sampling distribution given to learning progress (the rest follows the mixture weights)."""
    progress_fast: float = Field(0.5, gt=0, le=1)
    """Rate of the fast moving average of each env's success (learning progress = |fast - slow|)."""
    progress_slow: float = Field(0.1, gt=0, le=1)
    """Rate of the slow moving average of each env's success."""
    heldout_ids: list[str] = Field(default_factory=list)
    """Env ids never trained on, only evaluated (generalization to new tasks)."""
    eval_split: Literal["train", "heldout", "both"] = "heldout"
    """Randomization split of the evaluation episodes ('heldout' measures generalization to new variants; 'both'
    evaluates every env id on the train and the held-out split, twice the episodes)."""
    randomize: bool = True
    """false: train on each env's nominal parameters only (the no-randomization ablation; evaluation still uses
    eval_split)."""

    @model_validator(mode="after")
    def _check(self) -> EnvsSection:
        if not self.train:
            raise ValueError("envs.train is empty; name at least one env id with a weight (multiverse envs list)")
        if self.adr and not self.randomize:
            raise ValueError("envs.adr=true widens randomization ranges, envs.randomize=false turns randomization "
                             "off; choose one")
        for env_id, w in self.train.items():
            if not w >= 0:
                raise ValueError(f"envs.train: weight of {env_id!r} must be >= 0, got {w}")
        if not sum(self.train.values()) > 0:
            raise ValueError("envs.train: the mixture weights sum to 0; give at least one env a positive weight")
        if self.progress_slow >= self.progress_fast:
            raise ValueError(f"envs.progress_slow ({self.progress_slow}) must be < envs.progress_fast ({self.progress_fast})")
        return self


class AlgorithmSection(_Section):
    """The RL objective and optimizer."""

    name: Literal["grpo", "ppo"] = "grpo"
    """'grpo': PPO-clip with group-relative advantages (no value); 'ppo': PPO-clip with GAE on a value head."""
    value_head: bool | None = None
    """Learn a value head (null: on for ppo, off for grpo). ppo needs it."""
    epochs: int = Field(1, ge=1)
    """Passes over each iteration's samples."""
    minibatch: int = Field(64, ge=1)
    """Samples per optimizer step."""
    micro_batch: int = Field(8, ge=1)
    """Samples per forward/backward inside a minibatch (bounds memory; gradients add up)."""
    lr: float = Field(1e-4, gt=0)
    """AdamW learning rate."""
    weight_decay: float = Field(0.0, ge=0)
    """AdamW weight decay."""
    grad_clip: float | None = Field(1.0, gt=0)
    """Global gradient-norm clip (null: none)."""
    clip_eps: float = Field(0.2, gt=0)
    """PPO clip range of the importance ratio."""
    entropy_coef: float = Field(0.01, ge=0)
    """Entropy bonus weight (over the legal-action distribution)."""
    kl_coef: float = Field(0.0, ge=0)
    """Weight of the exact KL to the initial policy (0: off; with full fine-tuning it keeps a reference copy)."""
    value_coef: float = Field(0.5, ge=0)
    """Value loss weight (ppo)."""
    skip_zero_advantage: bool = False
    """grpo: train only on samples with a nonzero advantage (groups whose episodes all scored the same carry only
    the entropy/KL terms, at full cost); update/samples_used counts what was trained on."""
    gamma: float = Field(1.0, gt=0, le=1)
    """Discount."""
    lam: float = Field(0.95, ge=0, le=1)
    """GAE lambda (ppo)."""

    @property
    def uses_value_head(self) -> bool:
        return self.value_head if self.value_head is not None else self.name == "ppo"

    @model_validator(mode="after")
    def _check(self) -> AlgorithmSection:
        if self.name == "ppo" and self.value_head is False:
            raise ValueError("algorithm.name=ppo needs a value head for GAE; set algorithm.value_head=true or name=grpo")
        return self


class RolloutSection(_Section):
    """Ray rollout workers and how an iteration's episodes are made."""

    workers: int = Field(2, ge=1)
    """Rollout worker actors; each owns envs of every id it is sent and a policy replica."""
    envs_per_worker: int = Field(8, ge=1)
    """Env instances per env id inside a worker, stepped in lockstep (the policy's batch)."""
    groups_per_iteration: int = Field(8, ge=1)
    """Groups per iteration, spread over the envs by the sampler. A group shares env, seed and parameters."""
    group_size: int = Field(4, ge=1)
    """Episodes per group (GRPO compares returns within a group)."""
    groups_per_task: int = Field(2, ge=1)
    """Groups per unit of work sent to a worker. Smaller: finer load balance, less lost when a worker dies."""
    max_steps: int | None = Field(None, ge=1)
    """Truncate episodes after this many steps (null: each env's own limit)."""
    torch_threads: int = Field(1, ge=1)
    """torch threads per worker (also OMP_NUM_THREADS); oversubscribed CPUs make the policy many times slower."""
    worker_cpus: float = Field(1.0, gt=0)
    """CPUs Ray reserves per worker."""
    max_restarts: int = Field(3, ge=-1)
    """Dead rollout workers the pool replaces over the run (-1: every one). A death costs the episodes in flight on
    the worker (counted); past this number a dead worker is not replaced and the run goes on with the others, and
    stops, saying so, when none is left."""


class RunSection(_Section):
    """Length, outputs, checkpoints and evaluation."""

    root: str = "runs"
    """Folder that holds run dirs (relative to the current directory)."""
    name: str | None = None
    """Run dir name under root (null: <config name>-<date>-<time>)."""
    iterations: int = Field(10, ge=0)
    """Training iterations (rollout + update); 0 only evaluates the initial policy."""
    max_env_steps: int | None = Field(None, ge=1)
    """Stop after the iteration at which the run's env steps reach this (null: run.iterations alone decides)."""
    checkpoint_every: int = Field(5, ge=0)
    """Checkpoint every N iterations, and always after the last (0: only after the last)."""
    keep_checkpoints: int = Field(3, ge=1)
    """Most recent checkpoints kept."""
    eval_every: int = Field(5, ge=0)
    """Evaluate every N iterations, and before the first and after the last (0: only before and after)."""
    eval_episodes: int = Field(16, ge=1)
    """Greedy evaluation episodes per env id (fixed seeds, the same every time)."""
    eval_before: bool = True
    """Evaluate the initial policy before the first iteration."""
    seed: int = 0
    """Seeds env seeds, the sampler, minibatch order and the policy's sampling."""
    record_eval: bool = False
    """Record every evaluation episode to RUN_DIR/episodes/eval (Parquet; multiverse replay DIR --verify)."""
    record_every: int = Field(0, ge=0)
    """Record every Nth training episode to RUN_DIR/episodes/train, with its log-probs (0: off)."""
    progress: bool = True
    """Show a progress bar in the terminal."""


class RaySection(_Section):
    """Where Ray runs."""

    address: str | None = None
    """Cluster to join (null: RAY_ADDRESS if set, else an embedded Ray in this process)."""
    dashboard: bool = False
    """Embedded Ray only: start the dashboard (on 127.0.0.1 only)."""
    num_cpus: int | None = Field(None, ge=1)
    """Embedded Ray only: CPUs it may use (null: this machine's, at least what the workers ask for)."""
    learner: Literal["auto", "driver", "actor"] = "auto"
    """Where the learner runs: in the driver, in an actor, or 'auto' (an actor with a GPU when the cluster has GPUs)."""
    learner_gpus: float = Field(1.0, ge=0)
    """GPUs the learner actor asks for (ray.learner=actor with more than the cluster has is an error)."""
    learner_threads: int | None = Field(None, ge=1)
    """torch threads of the learner (null: torch's choice)."""


class RunConfig(_Section):
    """``multiverse train``'s whole config."""

    model: ModelSection = Field(default_factory=ModelSection)
    """The policy's language model."""
    envs: EnvsSection = Field(default_factory=EnvsSection)
    """Training mixture, curriculum, ADR, held-out evaluation."""
    algorithm: AlgorithmSection = Field(default_factory=AlgorithmSection)
    """Objective and optimizer."""
    rollout: RolloutSection = Field(default_factory=RolloutSection)
    """Rollout workers."""
    run: RunSection = Field(default_factory=RunSection)
    """Length, outputs, checkpoints, evaluation."""
    ray: RaySection = Field(default_factory=RaySection)
    """Ray cluster."""

    def env_ids(self) -> list[str]:
        """Training env ids, in config order."""
        return list(self.envs.train)

    def eval_ids(self) -> list[str]:
        """Every env id evaluated: the training ones, then the held-out ones."""
        return self.env_ids() + [i for i in self.envs.heldout_ids if i not in self.envs.train]

    def cpu_demand(self) -> tuple[float, str]:
        """The CPUs the run's actors ask Ray for, and which fields ask for them (for messages)."""
        ro = self.rollout
        cpus = ro.workers * ro.worker_cpus
        fields = f"rollout.workers={ro.workers} x rollout.worker_cpus={ro.worker_cpus:g}"
        if self.ray.learner == "actor":  # "auto" picks an actor only where the cluster has a GPU: known after joining
            cpus, fields = cpus + 1, fields + " + 1 for ray.learner=actor"
        return cpus, fields


# --------------------------------------------------------------------------- loading


def _did_you_mean(name: str, options: Sequence[str], prefix: str = "") -> str:
    close = difflib.get_close_matches(name, list(options), n=1, cutoff=0.6)
    return f"; did you mean {prefix + close[0]!r}?" if close else f"; valid: {', '.join(options)}"


def _model_field(cls: type[BaseModel], name: str) -> Any:
    return cls.model_fields[name] if name in cls.model_fields else None


def _section_class(annotation: Any) -> type[BaseModel] | None:
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


def _set_dotted(tree: dict[str, Any], key: str, value: Any, root: type[BaseModel] | None = None) -> None:
    """Set ``a.b.c=value`` in a nested dict, walking the model's fields (``root``, default :class:`RunConfig`)
    so dict fields take the rest as a key."""
    parts = key.split(".")
    cls: type[BaseModel] | None = root or RunConfig
    node = tree
    path: list[str] = []
    i = 0
    while i < len(parts):
        name = parts[i]
        if cls is None:  # inside a dict field: the rest of the key is one dict key (env ids may hold dots)
            node[".".join(parts[i:])] = value
            return
        field = _model_field(cls, name)
        if field is None:
            prefix = "".join(p + "." for p in path)
            raise ConfigError(f"unknown field {prefix + name!r}{_did_you_mean(name, list(cls.model_fields), prefix)}")
        path.append(name)
        if i == len(parts) - 1:
            node[name] = value
            return
        sub = _section_class(field.annotation)
        if sub is None and typing.get_origin(field.annotation) is not dict:
            raise ConfigError(f"{'.'.join(path)} is a value, not a section; write {'.'.join(path)}=VALUE")
        if not isinstance(node.get(name), dict):
            node[name] = {}
        node = node[name]
        cls = sub
        i += 1


def _parse_value(raw: str) -> Any:
    """An override's value as YAML (numbers, booleans, null, lists, mappings), else the plain string."""
    try:
        return yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        return raw


def _format_error(error: ValidationError) -> str:
    lines = []
    for e in error.errors():
        loc = ".".join(str(x) for x in e["loc"] if not str(x).startswith("function-"))
        if e["type"] == "extra_forbidden":
            parent, _, name = loc.rpartition(".")
            cls: Any = RunConfig
            for part in [p for p in parent.split(".") if p]:
                cls = _section_class(cls.model_fields[part].annotation) if cls and part in cls.model_fields else None
            hint = _did_you_mean(name, list(cls.model_fields), parent + "." if parent else "") if cls else ""
            lines.append(f"unknown field {loc!r}{hint}")
        else:
            msg = e["msg"].removeprefix("Value error, ")
            got = f" (got {e['input']!r})" if "input" in e and not isinstance(e["input"], dict) else ""
            lines.append(f"{loc}: {msg}{got}" if loc and not msg.startswith(loc) else f"{msg}{got}")
    return "; ".join(lines)


def find_config(name: str | Path) -> Path:
    """A config file: a path, or the name of a shipped config ('smoke', 'local', 'cluster')."""
    path = Path(name).expanduser()
    if path.is_file():
        return path
    shipped = CONFIG_DIR / f"{path.stem}.yaml"
    if shipped.is_file() and (len(path.parts) == 1 or path.parent.parts[-2:] == ("launch", "configs")):
        return shipped  # a bare name, or launch/configs/X.yaml run from another folder
    names = sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))
    raise ConfigError(f"config file {str(name)!r} not found; pass a YAML path or one of the shipped configs {names}")


def read_tree(path: str | Path, sections: str) -> tuple[Path, dict[str, Any]]:
    """A config file (a path, or a shipped config's name) as a mapping of sections; ConfigError when it is not."""
    file = find_config(path)
    try:
        loaded = yaml.safe_load(file.read_text()) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"{file} is not valid YAML: {error}") from error
    if not isinstance(loaded, dict):
        raise ConfigError(f"{file} must hold a mapping of sections ({sections}), got {type(loaded).__name__}")
    return file, loaded


def load_config(
    path: str | Path | None = None, overrides: Sequence[str] = (), *, base: dict[str, Any] | None = None,
    check_envs: bool = True,
) -> RunConfig:
    """Read a YAML config (or start from ``base``), apply ``key=value`` overrides, validate everything.

    ``check_envs`` looks every env id and pinned parameter up in the registry."""
    tree: dict[str, Any] = dict(base or {})
    if path is not None:
        _, tree = read_tree(path, "model, envs, ...")
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"an override must be KEY=VALUE (e.g. rollout.workers=2), got {item!r}")
        _set_dotted(tree, key.strip(), _parse_value(raw))
    try:
        config = RunConfig.model_validate(tree)
    except ValidationError as error:
        raise ConfigError(_format_error(error)) from None
    if check_envs:
        check_env_ids(config)
    return config


def check_env_ids(config: RunConfig) -> None:
    """Every env id is registered and every pinned parameter exists and lies in its space."""
    from multiverse import envs
    from multiverse.envs.randomization import RandomizationError
    from multiverse.envs.registry import RegistryError

    for field, ids in (("envs.train", config.env_ids()), ("envs.heldout_ids", config.envs.heldout_ids)):
        for env_id in ids:
            try:
                envs.lookup(env_id)
            except RegistryError as error:
                raise ConfigError(f"{field}: {error}") from None
    for env_id, pins in config.envs.params.items():
        if env_id not in config.eval_ids():
            raise ConfigError(f"envs.params names {env_id!r}, which is neither in envs.train nor envs.heldout_ids")
        try:
            envs.randomization_space(env_id).check_pins(pins)
        except RandomizationError as error:
            raise ConfigError(f"envs.params.{env_id}: {error}") from None


def to_yaml(config: RunConfig) -> str:
    """The resolved config as YAML (every field, defaults included)."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False, allow_unicode=True)


# --------------------------------------------------------------------------- --help


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is Literal:
        return "|".join(repr(a) if isinstance(a, str) else str(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        parts = [_type_name(a) for a in args if a is not type(None)]
        return " | ".join(parts) + (" | null" if type(None) in args else "")
    if origin in (dict, list):
        return f"{origin.__name__}[{', '.join(_type_name(a) for a in args)}]"
    return getattr(annotation, "__name__", str(annotation))


def _walk(cls: type[BaseModel], prefix: str = "") -> Iterator[tuple[str, Any, Any]]:
    for name, field in cls.model_fields.items():
        sub = _section_class(field.annotation)
        if sub is not None:
            yield f"{prefix}{name}", None, field
            yield from _walk(sub, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}", field.annotation, field


def describe_fields(width: int = 100) -> str:
    """Every config field with its type, default and doc, for ``--help``."""
    import textwrap

    defaults = RunConfig().model_dump(mode="json")
    lines = []
    for key, annotation, field in _walk(RunConfig):
        if annotation is None:
            lines.append(f"\n{key}:  {field.description or ''}")
            continue
        value: Any = defaults
        for part in key.split("."):
            value = value[part]
        head = f"  {key} ({_type_name(annotation)}, default {yaml.safe_dump(value, default_flow_style=True).strip().removesuffix('...').strip()})"
        lines.append(head)
        lines += textwrap.wrap(field.description or "", width=width, initial_indent="      ", subsequent_indent="      ")
    return "\n".join(lines).lstrip("\n")


def default_run_name(config_path: str | Path | None) -> str:
    import time

    stem = Path(str(config_path)).stem if config_path else "run"
    return f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
