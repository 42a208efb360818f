"""The typed config of ``multiverse train``: YAML plus ``key=value`` overrides, every field documented.

    config = load_config("launch/configs/smoke.yaml", ["rollout.workers=1", "run.iterations=2"])
    config.model.name, config.rollout.workers      # sections by attribute
    config.trainer()                               # the agents' TrainerConfig the loop runs

A bad field, value or env id raises :class:`ConfigError` naming it (and the
nearest valid name), before anything starts. Each section is built from
dataclasses (:func:`multiverse.launch.schema.section`): the agents' configs
(model, policy, prompt, learner, loss, and the loop's envs, algorithm, rollout
and schedule) and this module's Ray-side ones, so every setting is defined
once, where it is used, and its docstring is its ``multiverse train --help``
line. :data:`DERIVED` names the agents settings that no key holds and what sets
them.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import types
import typing
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from annotated_types import Ge, Gt, Le
from pydantic import BaseModel, Field, ValidationError

from multiverse.agents.config import AlgorithmConfig, EnvsConfig, RolloutConfig, ScheduleConfig, TrainerConfig
from multiverse.agents.learner import LearnerConfig
from multiverse.agents.losses import PPOConfig
from multiverse.agents.models import ModelConfig
from multiverse.agents.policy import PolicyConfig
from multiverse.agents.prompt import PromptConfig
from multiverse.launch.schema import Section, section

__all__ = ["CONFIG_DIR", "DERIVED", "ConfigError", "RunConfig", "Section", "describe_fields", "find_config",
           "format_error", "load_config", "parse_value", "read_tree", "set_dotted", "to_yaml"]

#: the shipped configs (package data)
CONFIG_DIR = Path(__file__).parent / "configs"


class ConfigError(ValueError):
    """A config that cannot run: the message names the field and what to do."""


# --------------------------------------------------------------------------- the Ray side's settings


@dataclasses.dataclass(frozen=True)
class WorkersConfig:
    """The Ray rollout workers (the rest of the rollout section is the loop's :class:`RolloutConfig`)."""

    workers: Annotated[int, Ge(1)] = 2
    """Rollout worker actors; each owns envs of every id it is sent and a policy replica."""
    torch_threads: Annotated[int, Ge(1)] = 1
    """torch threads per worker (also OMP_NUM_THREADS); oversubscribed CPUs make the policy many times slower."""
    worker_cpus: Annotated[float, Gt(0)] = 1.0
    """CPUs Ray reserves per worker."""
    worker_gpus: Annotated[float, Ge(0), Le(1)] = 0.0
    """GPUs Ray reserves per worker, a fraction to share one (0.25: 4 replicas per GPU). A worker holding one puts
    its policy replica on it (model.device=auto) and scores its envs' turns in batched forwards; 0: on the CPU."""
    max_restarts: Annotated[int, Ge(-1)] = 3
    """Dead rollout workers the pool replaces over the run (-1: every one). A death costs the episodes in flight on
    the worker (counted); past this number a dead worker is not replaced and the run goes on with the others, and
    stops, saying so, when none is left."""


@dataclasses.dataclass(frozen=True)
class OutputConfig:
    """The run dir (the rest of the run section is the loop's :class:`ScheduleConfig`)."""

    root: str = "runs"
    """Folder that holds run dirs (relative to the current directory)."""
    name: str | None = None
    """Run dir name under root (null: <config name>-<date>-<time>)."""
    keep_checkpoints: Annotated[int, Ge(1)] = 3
    """Most recent checkpoints kept."""
    progress: bool = True
    """Show a progress bar in the terminal."""


@dataclasses.dataclass(frozen=True)
class RayConfig:
    """Where Ray runs."""

    address: str | None = None
    """Cluster to join (null: RAY_ADDRESS if set, else an embedded Ray in this process)."""
    dashboard: bool = False
    """Embedded Ray only: start the dashboard (on 127.0.0.1 only)."""
    num_cpus: Annotated[int, Ge(1)] | None = None
    """Embedded Ray only: CPUs it may use (null: this machine's, at least what the workers ask for)."""
    learner: Literal["auto", "driver", "actor"] = "auto"
    """Where the learner runs: in the driver, in an actor, or 'auto' (an actor with a GPU when the cluster has GPUs)."""
    learner_gpus: Annotated[float, Ge(0)] = 1.0
    """GPUs the learner actor asks for (ray.learner=actor with more than the cluster has is an error)."""
    learner_threads: Annotated[int, Ge(1)] | None = None
    """torch threads of the learner (null: torch's choice)."""


# --------------------------------------------------------------------------- the sections


#: agents settings that no YAML key holds, and what sets each (``multiverse train --help`` lists them)
DERIVED: dict[tuple[type, str], str] = {
    (ModelConfig, "value_head"): "algorithm.value_head (null: on for ppo, off for grpo)",
    (PolicyConfig, "num_threads"): "rollout.torch_threads in a rollout worker, ray.learner_threads in the learner",
    (LearnerConfig, "keep_reference"): "on when algorithm.kl_coef > 0 and model.lora is false",
}

ModelSection = section("ModelSection", "The policy's language model, how it acts and its prompt.",
                       ModelConfig, PolicyConfig, PromptConfig, skip=DERIVED)
EnvsSection = section("EnvsSection", "Which envs train jointly, how they are sampled, and which are held out.",
                      EnvsConfig)
AlgorithmSection = section("AlgorithmSection", "The RL objective and optimizer.",
                           AlgorithmConfig, LearnerConfig, PPOConfig, skip=DERIVED)
RolloutSection = section("RolloutSection", "Ray rollout workers and how an iteration's episodes are made.",
                         WorkersConfig, RolloutConfig)
RunSection = section("RunSection", "Length, outputs, checkpoints and evaluation.", OutputConfig, ScheduleConfig)
RaySection = section("RaySection", "Where Ray runs.", RayConfig)


class RunConfig(Section):
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

    def trainer(self) -> TrainerConfig:
        """The agents' config of this run: every setting from its key, the :data:`DERIVED` ones from theirs."""
        algorithm = self.algorithm.build(AlgorithmConfig)
        model = self.model.build(ModelConfig, value_head=algorithm.uses_value_head)
        policy = self.model.build(PolicyConfig, prompt=self.model.build(PromptConfig))
        learner = self.algorithm.build(LearnerConfig, model=model, policy=policy,
                                       keep_reference=self.algorithm.kl_coef > 0 and not model.lora)
        return TrainerConfig(learner=learner, loss=self.algorithm.build(PPOConfig), envs=self.envs.build(EnvsConfig),
                             algorithm=algorithm, rollout=self.rollout.build(RolloutConfig),
                             schedule=self.run.build(ScheduleConfig))

    def env_ids(self) -> list[str]:
        """Training env ids, in config order."""
        return self.envs.build(EnvsConfig).train_ids()

    def eval_ids(self) -> list[str]:
        """Every env id evaluated: the training ones, then the held-out ones."""
        return self.envs.build(EnvsConfig).eval_ids()

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
    return cls.model_fields.get(name)


def _section_class(annotation: Any) -> type[BaseModel] | None:
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


def _holds_dict(annotation: Any) -> bool:
    """A dict field, or an optional one (``dict[...] | None``)."""
    options = typing.get_args(annotation) if typing.get_origin(annotation) in (typing.Union, types.UnionType) else ()
    return typing.get_origin(annotation) is dict or any(typing.get_origin(a) is dict for a in options)


def set_dotted(tree: dict[str, Any], key: str, value: Any, root: type[BaseModel] | None = None) -> None:
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
        if sub is None and not _holds_dict(field.annotation):
            raise ConfigError(f"{'.'.join(path)} is a value, not a section; write {'.'.join(path)}=VALUE")
        if not isinstance(node.get(name), dict):
            node[name] = {}
        node = node[name]
        cls = sub
        i += 1


def parse_value(raw: str) -> Any:
    """An override's value as YAML (numbers, booleans, null, lists, mappings), else the plain string."""
    try:
        return yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        return raw


def format_error(error: ValidationError) -> str:
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
        set_dotted(tree, key.strip(), parse_value(raw))
    try:
        config = RunConfig.model_validate(tree)
    except ValidationError as error:
        raise ConfigError(format_error(error)) from None
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
    for field, pinned in (("envs.params", config.envs.params), ("envs.eval_params", config.envs.eval_params or {})):
        for env_id, pins in pinned.items():
            if env_id not in config.eval_ids():
                raise ConfigError(f"{field} names {env_id!r}, which is neither in envs.train nor envs.heldout_ids")
            try:
                envs.randomization_space(env_id).check_pins(pins)
            except RandomizationError as error:
                raise ConfigError(f"{field}.{env_id}: {error}") from None


def to_yaml(config: RunConfig) -> str:
    """The resolved config as YAML (every field, defaults included)."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False, allow_unicode=True)


# --------------------------------------------------------------------------- --help


_BOUNDS = (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<"))


def _bounds(metadata: Sequence[Any]) -> str:
    """``annotated_types`` bounds as text, e.g. ' >= 1'."""
    return "".join(f" {op} {getattr(m, attr)}" for m in metadata for attr, op in _BOUNDS if hasattr(m, attr))


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is Annotated:
        return _type_name(args[0]) + _bounds(annotation.__metadata__)
    if origin is Literal:
        return "|".join(repr(a) if isinstance(a, str) else str(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        parts = [_type_name(a) for a in args if a is not type(None)]
        return " | ".join(parts) + (" | null" if type(None) in args else "")
    if origin in (dict, list, tuple):
        return f"{origin.__name__}[{', '.join('...' if a is Ellipsis else _type_name(a) for a in args)}]"
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
        default = yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()
        lines.append(f"  {key} ({_type_name(annotation)}{_bounds(field.metadata)}, default {default})")
        lines += textwrap.wrap(field.description or "", width=width, initial_indent="      ", subsequent_indent="      ")
    lines.append("\nset from other fields (no key of their own):")
    for (cls, name), how in DERIVED.items():
        lines += textwrap.wrap(f"{cls.__name__}.{name}: {how}", width=width, initial_indent="  ",
                               subsequent_indent="      ")
    return "\n".join(lines).lstrip("\n")


def default_run_name(config_path: str | Path | None) -> str:
    import time

    stem = Path(str(config_path)).stem if config_path else "run"
    return f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
