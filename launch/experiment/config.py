"""The experiment's config: ``experiment:`` (arms, seeds, budget, RLlib PPO) beside ``train:`` (a ``multiverse
train`` config tree for the LM arms), read from YAML with overrides and ``--budget``, or from the
``experiment.json`` a run wrote.

    exp = load_experiment("experiment_cpu", ["experiment.seeds=[0]"], budget=0.1)
    exp = load_recorded("bench/results/generalization")  # the settings a finished run used
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, model_validator

from multiverse.launch.config import (
    ConfigError,
    RunConfig,
    Section,
    format_error,
    load_config,
    parse_value,
    read_tree,
    set_dotted,
)
from multiverse.launch.experiment.stats import Categories

__all__ = ["ARMS", "Experiment", "ExperimentConfig", "ExperimentSection", "PPOSection", "game_ids",
           "load_experiment", "load_recorded"]

ARMS = ("zero_shot", "multiverse", "no_randomization", "ppo_value", "rllib_ppo")


class PPOSection(Section):
    """RLlib PPO's hyper-parameters (the from-scratch baseline)."""

    train_batch_size: int = Field(1000, ge=1)
    """Env steps per PPO iteration."""
    minibatch_size: int = Field(250, ge=1)
    """SGD minibatch size."""
    num_epochs: int = Field(4, ge=1)
    """SGD passes over each batch."""
    lr: float = Field(3e-4, gt=0)
    """Adam learning rate."""
    entropy_coeff: float = Field(0.0, ge=0)
    """Entropy bonus."""
    eval_every_steps: int = Field(2000, ge=1)
    """Evaluate after every this many env steps of a game's training (and at 0 and at the end)."""


class ExperimentSection(Section):
    """The experiment's arms, seeds and budget."""

    arms: list[Literal["zero_shot", "multiverse", "no_randomization", "ppo_value", "rllib_ppo"]] = Field(
        default_factory=lambda: list(ARMS))
    """Arms to run (zero_shot, multiverse, no_randomization, ppo_value, rllib_ppo)."""
    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2])
    """Seeds: each arm runs once per seed (run.seed and model.seed of the training arms, RLlib's seed)."""
    env_steps: int = Field(4000, ge=1)
    """Training env-step budget of every (arm, seed), scaled by --budget. The LM arms stop after the iteration
    that reaches it; RLlib splits it evenly over the training games."""
    eval_episodes: int = Field(16, ge=1)
    """Greedy evaluation episodes per env id and split, scaled by --budget (at least 2)."""
    heldout_envs_split: Literal["train", "heldout"] = "train"
    """Split of the held-out envs' episodes in the report (train: the env itself is what is new)."""
    ppo: PPOSection = Field(default_factory=PPOSection)
    """RLlib PPO (arm rllib_ppo)."""

    @model_validator(mode="after")
    def _check(self) -> ExperimentSection:
        if not self.arms:
            raise ValueError("experiment.arms is empty; name at least one of " + ", ".join(ARMS))
        if len(set(self.seeds)) != len(self.seeds) or not self.seeds:
            raise ValueError(f"experiment.seeds must be distinct and not empty, got {self.seeds}")
        return self


class ExperimentConfig(Section):
    """``multiverse experiment generalization``'s config: the experiment, and the training config of the LM arms."""

    experiment: ExperimentSection = Field(default_factory=ExperimentSection)
    train: dict[str, Any] = Field(default_factory=dict)
    """A ``multiverse train`` config tree (model, envs, algorithm, rollout, run, ray) for the LM arms."""


@dataclasses.dataclass
class Experiment:
    """A loaded experiment: its settings (budget applied) and the LM arms' validated training config."""

    settings: ExperimentSection
    train: RunConfig
    budget: float
    source: str

    @property
    def zero_shot_seed(self) -> int:
        """The multiverse arm's seed that evaluates before training: the zero-shot numbers (every other seed's
        evaluation would repeat it episode for episode)."""
        return self.settings.seeds[0]

    def categories(self) -> Categories:
        """Which report category an evaluation episode counts in: the training config's env ids, held-out envs
        and games, and the split the held-out envs are counted on."""
        train_ids = set(self.train.env_ids())
        return Categories(frozenset(train_ids), frozenset(set(self.train.envs.heldout_ids) - train_ids),
                          frozenset(game_ids(sorted(train_ids))), self.settings.heldout_envs_split)


def load_experiment(path: str | Path, overrides: Sequence[str] = (), *, budget: float = 1.0) -> Experiment:
    """Read an experiment YAML, apply ``experiment.X=...`` / ``train.X=...`` overrides and ``--budget``.

    Errors name the field (``ConfigError``); nothing runs."""
    if not budget > 0 or not math.isfinite(budget):
        raise ConfigError(f"--budget must be a positive number (1 = the config as written), got {budget}")
    file, tree = read_tree(path, "experiment, train")
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or key.split(".")[0] not in ("experiment", "train"):
            raise ConfigError(f"an override must be experiment.KEY=VALUE or train.KEY=VALUE, got {item!r}")
        section, _, rest = key.strip().partition(".")
        if section == "train":  # a multiverse train field, walked as that config's tree
            try:
                set_dotted(tree.setdefault("train", {}), rest, parse_value(raw))
            except ConfigError as error:
                raise ConfigError(f"{item}: {error}") from None
        else:
            set_dotted(tree, key.strip(), parse_value(raw), root=ExperimentConfig)
    try:
        cfg = ExperimentConfig.model_validate(tree)
    except ValidationError as error:
        raise ConfigError(format_error(error)) from None
    try:
        train = load_config(None, base=cfg.train)
    except ConfigError as error:
        raise ConfigError(f"train.{error}") from None
    s = cfg.experiment
    s.env_steps = max(1, round(s.env_steps * budget))
    s.eval_episodes = max(2, round(s.eval_episodes * budget))
    s.ppo.eval_every_steps = max(1, round(s.ppo.eval_every_steps * budget))
    if "rllib_ppo" in s.arms and not game_ids(train.env_ids()):
        raise ConfigError("experiment.arms has rllib_ppo, but train.envs.train has no game for it (RLlib's "
                          "baseline plays games only); add a games/... id or drop the arm")
    try:
        source = str(file.relative_to(Path.cwd()))
    except ValueError:
        source = str(file)
    return Experiment(s, train, budget, source)


def load_recorded(out: str | Path) -> Experiment:
    """The experiment a run under ``out`` was made with, from its ``experiment.json`` (budget already applied):
    what recomputing its report needs."""
    file = Path(out) / "experiment.json"
    try:
        made = json.loads(file.read_text())
        settings = ExperimentSection.model_validate(made["experiment"])
        train = load_config(None, base=made["train"], check_envs=False)
        return Experiment(settings, train, float(made["budget"]), str(made["config"]))
    except (OSError, ValueError, KeyError, TypeError) as error:  # ValidationError and ConfigError are ValueErrors
        raise ConfigError(f"{file} does not hold a recorded experiment ({str(error)[:200]}); pass the --out folder "
                          "of a multiverse experiment run") from None


def game_ids(ids: Sequence[str]) -> list[str]:
    """The ids among ``ids`` that are games (RLlib's baseline plays those only)."""
    from multiverse import envs

    return [i for i in ids if envs.lookup(i).kind == "game"]
