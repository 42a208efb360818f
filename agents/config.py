"""The RL loop's settings (:mod:`multiverse.agents.loop`): typed dataclasses, one docstring per field.

    config = TrainerConfig(envs=EnvsConfig(train={"games/Catch-v0": 1.0}), schedule=ScheduleConfig(iterations=3))

These, with the model, policy, prompt, learner and loss configs they hold, are the one definition of every
training setting: ``multiverse train``'s YAML sections are built from them (:mod:`multiverse.launch.config`),
so a new field here is a new YAML key, documented in ``multiverse train --help`` by its docstring. Bounds are
``Annotated`` metadata (``annotated_types``), which the YAML validation enforces; checks across fields run in
``__post_init__``, so a config built in Python gets them too.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any, Literal

from annotated_types import Ge, Gt, Le

from multiverse.agents.learner import LearnerConfig
from multiverse.agents.losses import PPOConfig

__all__ = ["AlgorithmConfig", "EnvsConfig", "RolloutConfig", "ScheduleConfig", "TrainerConfig"]


@dataclasses.dataclass(frozen=True)
class EnvsConfig:
    """Which envs train jointly, how they are sampled, and which are held out."""

    train: dict[str, float] = dataclasses.field(default_factory=lambda: {"games/Catch-v0": 1.0})
    """Env ids to train on, each with its mixture weight (weights are normalised)."""
    params: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    """Pinned randomization parameters per env id (for training and evaluation), e.g. {games/Catch-v0: {width: 5}}."""
    eval_params: dict[str, dict[str, Any]] | None = None
    """Pinned parameters per env id for evaluation only (null: envs.params), e.g. pin a board's wording in training
    and only some of it in evaluation."""
    split: Literal["train", "heldout"] = "train"
    """Randomization split sampled for training episodes (when ADR is off)."""
    adr: bool = False
    """Automatic domain randomization: ranges start at the nominal values and widen where the policy succeeds."""
    adr_step: Annotated[float, Gt(0), Le(1)] = 0.1
    """ADR widening/narrowing step, as a share of each parameter's train range."""
    adr_buffer: Annotated[int, Ge(1)] = 8
    """Boundary episodes ADR collects before it moves a boundary."""
    curriculum: Literal["none", "learning_progress"] = "learning_progress"
    """Env sampler: 'none' (mixture weights only) or 'learning_progress' (more groups where success is changing)."""
    curriculum_mix: Annotated[float, Ge(0), Le(1)] = 0.5
    """Share of the sampling distribution given to learning progress (the rest follows the mixture weights)."""
    progress_fast: Annotated[float, Gt(0), Le(1)] = 0.5
    """Rate of the fast moving average of each env's success (learning progress = |fast - slow|)."""
    progress_slow: Annotated[float, Gt(0), Le(1)] = 0.1
    """Rate of the slow moving average of each env's success."""
    heldout_ids: list[str] = dataclasses.field(default_factory=list)
    """Env ids never trained on, only evaluated (generalization to new tasks)."""
    eval_split: Literal["train", "heldout", "both"] = "heldout"
    """Randomization split of the evaluation episodes ('heldout' measures generalization to new variants; 'both'
    evaluates every env id on the train and the held-out split, twice the episodes)."""
    randomize: bool = True
    """false: train on each env's nominal parameters only (the no-randomization ablation; evaluation still uses
    eval_split)."""

    def __post_init__(self) -> None:
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
            raise ValueError(f"envs.progress_slow ({self.progress_slow}) must be < envs.progress_fast "
                             f"({self.progress_fast})")

    def train_ids(self) -> list[str]:
        """Training env ids, in config order."""
        return list(self.train)

    def eval_ids(self) -> list[str]:
        """Every env id evaluated: the training ones, then the held-out ones."""
        return self.train_ids() + [i for i in self.heldout_ids if i not in self.train]

    def eval_splits(self) -> list[str]:
        return ["train", "heldout"] if self.eval_split == "both" else [self.eval_split]

    def reset_options(self, env_id: str, split: str, params: dict[str, Any] | None = None, *,
                      training: bool) -> dict[str, Any]:
        """An episode's reset options: the split, the parameters (``params``, e.g. ADR's, else the pinned ones),
        and for training episodes of the no-randomization ablation ``randomize=False``."""
        opts: dict[str, Any] = {"split": split}
        pins = self.params if training or self.eval_params is None else self.eval_params
        chosen = params if params is not None else pins.get(env_id)
        if chosen:
            opts["params"] = dict(chosen)
        if training and not self.randomize:
            opts["randomize"] = False
        return opts


@dataclasses.dataclass(frozen=True)
class AlgorithmConfig:
    """The RL objective's loop settings (its coefficients are PPOConfig's, the optimizer's LearnerConfig's)."""

    name: Literal["grpo", "ppo"] = "grpo"
    """'grpo': PPO-clip with group-relative advantages (no value); 'ppo': PPO-clip with GAE on a value head."""
    value_head: bool | None = None
    """Learn a value head (null: on for ppo, off for grpo). ppo needs it."""
    epochs: Annotated[int, Ge(1)] = 1
    """Passes over each iteration's samples."""
    minibatch: Annotated[int, Ge(1)] = 64
    """Samples per optimizer step."""
    gamma: Annotated[float, Gt(0), Le(1)] = 1.0
    """Discount."""
    lam: Annotated[float, Ge(0), Le(1)] = 0.95
    """GAE lambda (ppo)."""
    timeout_reward: float = 0.0
    """Added to the last reward of an episode that ran out of steps (truncated, not terminated, no success), for
    the advantages only: the logged returns stay the env's. 0: a timeout scores what the env gave it. Set it to
    the envs' failure reward (-1 for the web tasks) where stalling until the limit would otherwise beat a wrong
    answer: the policy would learn to loop rather than to answer."""

    def __post_init__(self) -> None:
        if self.name == "ppo" and self.value_head is False:
            raise ValueError("algorithm.name=ppo needs a value head for GAE; set algorithm.value_head=true or name=grpo")

    @property
    def uses_value_head(self) -> bool:
        return self.value_head if self.value_head is not None else self.name == "ppo"

    @property
    def advantage(self) -> Literal["group", "gae"]:
        """The advantage estimator (:func:`~multiverse.agents.rollout.compute_advantages`' mode) of ``name``."""
        return "gae" if self.name == "ppo" else "group"


@dataclasses.dataclass(frozen=True)
class RolloutConfig:
    """How an iteration's episodes are made: groups, and the tasks they are packed into."""

    envs_per_worker: Annotated[int, Ge(1)] = 8
    """Env instances per env id inside a worker, stepped in lockstep (the policy's batch)."""
    groups_per_iteration: Annotated[int, Ge(1)] = 8
    """Groups per iteration, spread over the envs by the sampler. A group shares env, seed and parameters."""
    group_size: Annotated[int, Ge(1)] = 4
    """Episodes per group (GRPO compares returns within a group)."""
    groups_per_task: Annotated[int, Ge(1)] = 2
    """Groups per unit of work sent to a worker. Smaller: finer load balance, less lost when a worker dies."""
    max_steps: Annotated[int, Ge(1)] | None = None
    """Truncate episodes after this many steps (null: each env's own limit)."""


@dataclasses.dataclass(frozen=True)
class ScheduleConfig:
    """How long the loop runs, and when it evaluates, checkpoints and records."""

    iterations: Annotated[int, Ge(0)] = 10
    """Training iterations (rollout + update); 0 only evaluates the initial policy."""
    max_env_steps: Annotated[int, Ge(1)] | None = None
    """Stop after the iteration at which the run's env steps reach this (null: run.iterations alone decides)."""
    checkpoint_every: Annotated[int, Ge(0)] = 5
    """Checkpoint every N iterations, and always after the last (0: only after the last)."""
    eval_every: Annotated[int, Ge(0)] = 5
    """Evaluate every N iterations, and before the first and after the last (0: only before and after)."""
    eval_episodes: Annotated[int, Ge(1)] = 16
    """Greedy evaluation episodes per env id (fixed seeds, the same every time)."""
    eval_before: bool = True
    """Evaluate the initial policy before the first iteration."""
    seed: int = 0
    """Seeds env seeds, the sampler, minibatch order and the policy's sampling."""
    record_eval: bool = False
    """Record every evaluation episode to RUN_DIR/episodes/eval (Parquet; multiverse replay DIR --verify)."""
    record_every: Annotated[int, Ge(0)] = 0
    """Record every Nth training episode to RUN_DIR/episodes/train, with its log-probs (0: off)."""


@dataclasses.dataclass(frozen=True)
class TrainerConfig:
    """Everything the loop needs: the learner (model, policy, optimizer), the loss, the envs, the algorithm, the
    rollout plan and the schedule."""

    learner: LearnerConfig = dataclasses.field(default_factory=LearnerConfig)
    loss: PPOConfig = dataclasses.field(default_factory=PPOConfig)
    envs: EnvsConfig = dataclasses.field(default_factory=EnvsConfig)
    algorithm: AlgorithmConfig = dataclasses.field(default_factory=AlgorithmConfig)
    rollout: RolloutConfig = dataclasses.field(default_factory=RolloutConfig)
    schedule: ScheduleConfig = dataclasses.field(default_factory=ScheduleConfig)

    def __post_init__(self) -> None:
        want = self.algorithm.uses_value_head
        if want != self.learner.model.value_head:
            raise ValueError(f"algorithm {self.algorithm.name!r} {'needs' if want else 'has no use for'} a value head "
                             f"but learner.model.value_head={self.learner.model.value_head}; set "
                             f"ModelConfig(value_head={want}) (or algorithm.value_head)")
