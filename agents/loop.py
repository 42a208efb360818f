"""The RL loop, written once: plan, roll out, compute advantages, update, log, evaluate, checkpoint.

    state = TrainerState.new(config)              # or .load_state_dict(a checkpoint's trainer.json)
    train_loop(config, learner, rollout, log, state)

``learner`` is a :class:`~multiverse.agents.update.LearnerHandle` (here, or in launch's Ray actor), ``rollout`` a
:class:`~multiverse.agents.rollout.Rollout` (an in-process env pool, or launch's Ray worker pool) and ``log`` a
:class:`~multiverse.agents.runlog.RunLog` (a run dir, or a JSONL file); the loop knows none of them. No Ray here.
One iteration:

1. plan: the sampler splits the iteration's groups over the env ids (mixture weights + learning progress); each
   group gets a seed and its parameters (from ADR, or sampled by the env from the configured split); groups are
   packed into tasks of ``rollout.groups_per_task``;
2. rollout: the tasks run (a task lost with its worker loses only its episodes);
3. episodes cut short by the env's machinery (``infra_error``: a crashed browser) are counted and never trained
   on: an infra error is never a reward. ADR boundaries and the curriculum see the rest;
4. advantages (group-relative for grpo, GAE on the value head for ppo; the row's ``adv/*`` metrics compare the two
   on the same episodes when there is a value head), PPO steps on the learner, and the rollout gets the new weights;
5. one metrics row; a greedy evaluation on fixed seeds and a checkpoint every N iterations and after the last.
"""

from __future__ import annotations

import dataclasses
import math
import random
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from multiverse.agents.config import TrainerConfig
from multiverse.agents.losses import EnvReturnScaler
from multiverse.agents.rollout import Episode, EpisodeSpec, Rollout, Task, TaskResult, compute_advantages, to_samples
from multiverse.agents.runlog import RunLog
from multiverse.agents.sampler import ADRBank, EnvSampler
from multiverse.agents.update import LearnerHandle

__all__ = ["EVAL_SEED_BASE", "Plan", "TrainerState", "eval_tasks", "evaluate", "plan_iteration", "train_loop"]

EVAL_SEED_BASE = 1_000_000  # evaluation seeds: the same every time, far from training's
TOTALS = ("env_steps", "episodes", "episodes_lost", "workers_restarted", "infra_errors", "seconds")


@dataclasses.dataclass
class TrainerState:
    """What a checkpoint holds besides the learner: the iteration, RNGs, sampler, ADR, return scaler, counters."""

    iteration: int
    rng: random.Random
    np_rng: np.random.Generator
    sampler: EnvSampler
    adr: ADRBank | None
    scaler: EnvReturnScaler | None
    """Per-env reward scale for the value head (ppo)."""
    totals: dict[str, float]

    @classmethod
    def new(cls, config: TrainerConfig) -> TrainerState:
        e, seed = config.envs, config.schedule.seed
        sampler = EnvSampler(e.train, curriculum=e.curriculum, mix=e.curriculum_mix, fast=e.progress_fast,
                             slow=e.progress_slow)
        adr = ADRBank(e.train_ids(), e.params, step=e.adr_step, buffer=e.adr_buffer) if e.adr else None
        scaler = EnvReturnScaler() if config.algorithm.name == "ppo" else None
        totals: dict[str, float] = dict.fromkeys(TOTALS, 0) | {"seconds": 0.0}
        return cls(0, random.Random(seed), np.random.default_rng(seed), sampler, adr, scaler, totals)

    def state_dict(self) -> dict[str, Any]:
        """Plain JSON (a checkpoint's trainer.json)."""
        return {"iteration": self.iteration, "rng": list(self.rng.getstate()),
                "np_rng": self.np_rng.bit_generator.state, "sampler": self.sampler.state_dict(),
                "adr": self.adr.state_dict() if self.adr is not None else None,
                "scaler": self.scaler.state_dict() if self.scaler is not None else None, "totals": dict(self.totals)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.iteration = int(state["iteration"])
        version, internal, gauss = state["rng"]
        self.rng.setstate((version, tuple(internal), gauss))
        self.np_rng.bit_generator.state = state["np_rng"]
        self.sampler.load_state_dict(state["sampler"])
        if self.adr is not None and state.get("adr"):
            self.adr.load_state_dict(state["adr"])
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.totals.update(state["totals"])


@dataclasses.dataclass
class Plan:
    """An iteration's groups and the tasks that run them."""

    group_env: list[str]
    boundaries: list[str | None]
    """The ADR boundary each group tests (None: none)."""
    tasks: list[Task]
    owner: list[list[int]]
    """owner[t][j]: the group of task t's j-th episode."""
    update_seed: int


def plan_iteration(config: TrainerConfig, state: TrainerState) -> Plan:
    """Env, seed and parameters of every group, the groups packed into tasks, and the update's seed."""
    ro, envs = config.rollout, config.envs
    group_env = state.sampler.allocate(ro.groups_per_iteration, state.rng)
    specs, boundaries = [], []
    for env_id in group_env:
        seed = state.rng.randrange(2**31)
        params, boundary = state.adr.sample(env_id, state.np_rng) if state.adr is not None else (None, None)
        specs.append(EpisodeSpec(env_id, seed, envs.reset_options(env_id, envs.split, params, training=True)))
        boundaries.append(boundary)
    tasks, owner = [], []
    for g0 in range(0, len(group_env), ro.groups_per_task):
        gs = range(g0, min(g0 + ro.groups_per_task, len(group_env)))
        tasks.append(Task(len(tasks), [specs[g] for g in gs for _ in range(ro.group_size)],
                          seed=state.rng.randrange(2**31), max_steps=ro.max_steps))
        owner.append([g for g in gs for _ in range(ro.group_size)])
    return Plan(group_env, boundaries, tasks, owner, update_seed=state.rng.randrange(2**31))


def eval_tasks(config: TrainerConfig) -> list[Task]:
    """Greedy episodes on fixed seeds: every training and held-out id, on the evaluation split(s)."""
    envs, ro, n = config.envs, config.rollout, config.schedule.eval_episodes
    tasks = []
    for env_id in envs.eval_ids():
        specs = [EpisodeSpec(env_id, EVAL_SEED_BASE + i, envs.reset_options(env_id, split, training=False))
                 for split in envs.eval_splits() for i in range(n)]
        for k in range(0, len(specs), ro.envs_per_worker):
            tasks.append(Task(len(tasks), specs[k:k + ro.envs_per_worker], seed=0, greedy=True,
                              max_steps=ro.max_steps, keep_episodes=config.schedule.record_eval))
    return tasks


def _nanmean(xs: Sequence[float]) -> float:
    xs = [x for x in xs if not math.isnan(x)]
    return float(np.mean(xs)) if xs else float("nan")


def evaluate(config: TrainerConfig, learner: LearnerHandle, rollout: Rollout, log: RunLog, state: TrainerState,
             iteration: int) -> list[dict[str, Any]]:
    """Run :func:`eval_tasks`, log one row per (env, split) and return the rows (infra errors left out)."""
    results, faults = rollout.run(eval_tasks(config))
    done = [r for r in results if r is not None]
    if config.schedule.record_eval:
        log.record("eval", [e for r in done for e in r.episodes], iteration, learner.step())
    state.totals["episodes_lost"] += faults["episodes_lost"]
    state.totals["workers_restarted"] += faults["workers_restarted"]
    summaries = [s for r in done for s in r.summaries if not s.infra_error]
    rows = []
    for env_id in config.envs.eval_ids():
        for split in config.envs.eval_splits():
            mine = [s for s in summaries if s.env_id == env_id and s.split == split]
            rows.append({"env": env_id, "split": split,
                         "role": "train" if env_id in config.envs.train else "held-out",
                         "success": _nanmean([float(s.success) for s in mine]),
                         "return": _nanmean([s.return_ for s in mine]),
                         "length": _nanmean([float(s.length) for s in mine]), "episodes": len(mine)})
    log.evaluation(iteration, rows)
    return rows


def _gather(plan: Plan, results: Sequence[TaskResult | None]) -> tuple[list[Episode], list[int]]:
    """The episodes of the tasks that came back, and the group of each."""
    episodes, groups = [], []
    for t, res in enumerate(results):
        if res is not None:
            episodes += res.episodes
            groups += plan.owner[t]
    return episodes, groups


def _observe(state: TrainerState, plan: Plan, usable: Sequence[tuple[Episode, int]],
             env_ids: Sequence[str]) -> dict[str, list[Episode]]:
    """ADR boundaries and the curriculum see the usable episodes; returns them per training env id."""
    if state.adr is not None:
        for ep, g in usable:
            state.adr.update(plan.group_env[g], plan.boundaries[g], float(ep.success))
    per_env = {env_id: [e for e, _ in usable if e.env_id == env_id] for env_id in env_ids}
    for env_id, eps in per_env.items():
        if eps:
            state.sampler.update(env_id, float(np.mean([e.success for e in eps])))
    return per_env


def _update(config: TrainerConfig, learner: LearnerHandle, state: TrainerState, episodes: list[Episode],
            seed: int) -> tuple[dict[str, float], dict[str, float], int]:
    """Advantages and PPO steps on ``episodes``: (update metrics, advantage metrics, samples)."""
    if not episodes:
        return {}, {}, 0
    alg = config.algorithm
    advs, targets, adv_metrics = compute_advantages(episodes, mode=alg.advantage, gamma=alg.gamma, lam=alg.lam,
                                                    scaler=state.scaler, timeout_reward=alg.timeout_reward)
    samples = to_samples(episodes, advs, targets)
    if not samples:
        return {}, adv_metrics, 0
    return learner.update(samples, epochs=alg.epochs, minibatch=alg.minibatch, seed=seed), adv_metrics, len(samples)


@dataclasses.dataclass
class _Outcome:
    """What one iteration produced: what its metrics row reports."""

    plan: Plan
    results: list[TaskResult | None]
    faults: dict[str, int]
    episodes: list[Episode]
    trained: list[Episode]
    """The episodes without an infra error, in order."""
    per_env: dict[str, list[Episode]]
    update: dict[str, float]
    advantages: dict[str, float]
    samples: int
    seconds: tuple[float, float, float]
    """(iteration, rollout, update)."""

    @property
    def infra_errors(self) -> int:
        return sum(1 for e in self.episodes if e.infra_error)

    @property
    def env_steps(self) -> int:
        return sum(r.env_steps for r in self.results if r is not None)

    @property
    def tokens(self) -> int:
        return sum(r.tokens for r in self.results if r is not None)


def _count(state: TrainerState, out: _Outcome) -> None:
    for k, v in (("env_steps", out.env_steps), ("episodes", len(out.episodes)), ("seconds", out.seconds[0]),
                 ("episodes_lost", out.faults["episodes_lost"]), ("workers_restarted", out.faults["workers_restarted"]),
                 ("infra_errors", out.infra_errors)):
        state.totals[k] += v


def _episode_means(prefix: str, eps: Sequence[Episode]) -> dict[str, float]:
    return {f"train/success{prefix}": _nanmean([float(e.success) for e in eps]),
            f"train/return{prefix}": _nanmean([e.total_return for e in eps]),
            f"train/length{prefix}": _nanmean([float(e.length) for e in eps])}


def _metrics(state: TrainerState, out: _Outcome) -> dict[str, Any]:
    """The iteration's metrics row (names as in launch/README.md, the run dir)."""
    row: dict[str, Any] = _episode_means("", out.trained)
    probs = state.sampler.probabilities()
    for env_id, eps in out.per_env.items():
        row |= _episode_means(f"/{env_id}", eps)
        lp = state.sampler.progress(env_id)
        row |= {f"train/groups/{env_id}": out.plan.group_env.count(env_id), f"sampler/prob/{env_id}": probs[env_id],
                f"sampler/progress/{env_id}": float("nan") if lp is None else lp}
    row |= {f"update/{k}": v for k, v in out.update.items()} | {f"adv/{k}": v for k, v in out.advantages.items()}
    if state.adr is not None:
        row |= state.adr.metrics()
    seconds, t_rollout, t_update = out.seconds
    rate = (lambda n: n / t_rollout) if t_rollout > 0 else (lambda n: float("nan"))
    return row | {
        "perf/iteration_s": seconds, "perf/rollout_s": t_rollout, "perf/update_s": t_update,
        "perf/episodes": len(out.episodes), "perf/samples": out.samples, "perf/env_steps": out.env_steps,
        "perf/env_steps_per_s": rate(out.env_steps), "perf/tokens_per_s": rate(out.tokens),
        "perf/total_env_steps": state.totals["env_steps"],
        "faults/episodes_lost": out.faults["episodes_lost"], "faults/tasks_lost": out.faults["tasks_lost"],
        "faults/workers_restarted": out.faults["workers_restarted"], "faults/infra_errors": out.infra_errors,
    }


def _budget_spent(config: TrainerConfig, state: TrainerState) -> bool:
    limit = config.schedule.max_env_steps
    return limit is not None and state.totals["env_steps"] >= limit


def _checkpoint(learner: LearnerHandle, log: RunLog, state: TrainerState) -> None:
    log.checkpoint(state.iteration, learner, state.state_dict() | {"learner_step": learner.step()})


def train_loop(config: TrainerConfig, learner: LearnerHandle, rollout: Rollout, log: RunLog,
               state: TrainerState) -> None:
    """Iterations ``state.iteration + 1`` to ``schedule.iterations`` (see the module docstring)."""
    s = config.schedule
    if state.iteration == 0 and (s.eval_before or s.iterations == 0):
        evaluate(config, learner, rollout, log, state, 0)
    for it in range(state.iteration + 1, s.iterations + 1):
        if _budget_spent(config, state):  # a resumed run that had already spent schedule.max_env_steps
            break
        t0 = time.perf_counter()
        # -- plan, then roll out
        plan = plan_iteration(config, state)
        results, faults = rollout.run(plan.tasks)
        t_rollout = time.perf_counter() - t0
        episodes, groups = _gather(plan, results)
        if s.record_every:
            seen = int(state.totals["episodes"])  # every Nth episode counted over the run
            log.record("train", [e for k, e in enumerate(episodes) if (seen + k) % s.record_every == 0], it,
                       learner.step(), state.adr)
        # -- infra errors are never a reward: left out; ADR and the curriculum see the rest
        usable = [(e, g) for e, g in zip(episodes, groups) if not e.infra_error]
        per_env = _observe(state, plan, usable, config.envs.train_ids())
        # -- advantages and the update; the rollout acts with the new weights from now on
        t1 = time.perf_counter()
        trained = [e for e, _ in usable]
        update, advantages, n_samples = _update(config, learner, state, trained, plan.update_seed)
        rollout.sync(learner)
        seconds = (time.perf_counter() - t0, t_rollout, time.perf_counter() - t1)
        # -- log
        out = _Outcome(plan, results, faults, episodes, trained, per_env, update, advantages, n_samples, seconds)
        _count(state, out)
        log.iteration(it, _metrics(state, out))
        state.iteration = it
        # -- evaluate and checkpoint every N iterations, and after the last
        last = it == s.iterations or _budget_spent(config, state)
        if last or (s.eval_every and it % s.eval_every == 0):
            evaluate(config, learner, rollout, log, state, it)
        if last or (s.checkpoint_every and it % s.checkpoint_every == 0):
            _checkpoint(learner, log, state)
        if last:
            break
