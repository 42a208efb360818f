"""Rollouts: many envs stepped in lockstep with one batched policy call per step, and episodes -> samples.

An :class:`Episode` holds what recording and replay need (env id, seed, reset
options, randomization, per step the observation, legal actions, action,
log-prob, reward and flags) plus, not serialized, the policy's
:class:`~multiverse.agents.policy.Decision` per step, so training re-scores
exactly the tokens that were sampled.

The loop (:mod:`multiverse.agents.loop`) hands a :class:`Rollout` its work as
:class:`Task` s: episode specs and the seed of the policy's sampling.
:func:`run_task` runs one over an :class:`EnvPool`; how many env instances per
id a task uses depends only on the task, so its episodes are the same wherever
it runs. :class:`InProcessRollout` runs the tasks here, one after the other,
with the learner's own policy; ``multiverse.launch.workers.WorkerPool`` runs
them on Ray rollout workers, each with a policy replica and its own pool.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import gymnasium as gym
import torch

import multiverse.envs as menvs
from multiverse.agents.learner import Sample
from multiverse.agents.losses import (
    EnvReturnScaler,
    advantage_variance,
    baseline_variances,
    discounted_returns,
    gae,
    group_ids,
    group_relative_advantages,
    normalize_by_env,
)
from multiverse.agents.policy import Decision, Policy
from multiverse.agents.prompt import Turn

__all__ = ["EnvPool", "Episode", "EpisodeSpec", "EpisodeSummary", "InProcessRollout", "Rollout", "Step", "Task",
           "TaskResult", "compute_advantages", "run_episodes", "run_task", "to_samples"]


@dataclasses.dataclass(frozen=True)
class EpisodeSpec:
    """One episode to run: which env, the reset seed and options."""

    env_id: str
    seed: int
    options: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Step:
    observation: str
    legal_actions: list[str]
    action: str
    logp: float
    probs: list[float]
    reward: float
    terminated: bool
    truncated: bool
    action_error: str | None = None
    value: float | None = None
    decision: Decision | None = dataclasses.field(default=None, repr=False)
    infra_error: str | None = None
    info: dict[str, Any] | None = None
    """The step's info as the env returned it (recorded episodes; mission, legal actions, randomization left out)."""
    image: bytes | None = dataclasses.field(default=None, repr=False)
    """The observation's image as PNG bytes (recorded with pixels on)."""
    action_descriptions: list[str] | None = None
    """The env's description of each legal action, in their order (None: the env gave none)."""

    def __post_init__(self) -> None:
        if self.action_descriptions is not None:  # given as any sequence (a Turn's tuple, a Parquet list): a list
            self.action_descriptions = list(self.action_descriptions)


@dataclasses.dataclass
class Episode:
    env_id: str
    seed: int
    options: dict[str, Any]
    mission: str
    randomization: dict[str, Any]
    steps: list[Step] = dataclasses.field(default_factory=list)
    success: bool = False
    final_observation: str = ""
    infra_error: str | None = None
    """Set when the env's machinery failed (e.g. Chromium crashed): the episode was cut short by no fault of
    the policy, so trainers usually leave it out of the update."""
    final_image: bytes | None = dataclasses.field(default=None, repr=False)
    """The last observation's image as PNG bytes (recorded with pixels on)."""

    @property
    def total_return(self) -> float:
        return float(sum(s.reward for s in self.steps))

    @property
    def length(self) -> int:
        return len(self.steps)

    @property
    def cut(self) -> bool:
        """Ended by a step limit (the env's or the rollout's ``max_steps``), not by the env: truncated, not
        terminated."""
        return bool(self.steps) and self.steps[-1].truncated and not self.steps[-1].terminated

    @property
    def group(self) -> str:
        """Episodes of the same env, seed and parameters share a group (GRPO)."""
        return group_ids([self.env_id], [self.seed], [self.randomization])[0]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready record (no token ids, no image bytes; :mod:`multiverse.agents.episodes` stores those)."""
        d = dataclasses.asdict(dataclasses.replace(self, steps=[]))
        d.pop("final_image")
        d["steps"] = [{k: v for k, v in dataclasses.asdict(dataclasses.replace(s, decision=None)).items()
                       if k not in ("decision", "image")} for s in self.steps]
        return d


def _env_id(env: gym.Env) -> str:
    spec = getattr(env, "spec", None) or getattr(env.unwrapped, "spec", None)
    if spec is None:
        raise ValueError(f"env {env!r} has no spec id; make it with multiverse.envs.make or pass env_ids=")
    return spec.id


def run_episodes(
    policy: Policy,
    envs: Sequence[gym.Env],
    specs: Sequence[EpisodeSpec],
    *,
    greedy: bool = False,
    temperature: float | None = None,
    seed: int = 0,
    max_steps: int | None = None,
    env_ids: Sequence[str] | None = None,
) -> list[Episode]:
    """Run every spec to its end, stepping all busy envs together: one ``policy.act`` per lockstep.

    Each env takes the next spec for its id when it is free, so ``len(envs)`` bounds the batch size.
    ``seed`` seeds the policy's sampling. ``max_steps`` truncates an episode the env itself has not ended.
    Returns the episodes in the order of ``specs``."""
    ids = list(env_ids) if env_ids is not None else [_env_id(e) for e in envs]
    if len(ids) != len(envs):
        raise ValueError(f"{len(ids)} env ids for {len(envs)} envs")
    missing = sorted({s.env_id for s in specs} - set(ids))
    if missing:
        raise ValueError(f"no env instance for {missing}; pass at least one env made with each id")
    queue = {env_id: [i for i, s in enumerate(specs) if s.env_id == env_id] for env_id in set(ids)}
    generator = torch.Generator().manual_seed(seed)
    results: list[Episode | None] = [None] * len(specs)
    active: dict[int, tuple[int, Episode, Any, dict[str, Any]]] = {}  # env slot -> (spec idx, episode, obs, info)

    def start(slot: int) -> None:
        pending = queue[ids[slot]]
        if not pending:
            return
        k = pending.pop(0)
        spec = specs[k]
        obs, info = envs[slot].reset(seed=spec.seed, options=dict(spec.options))
        ep = Episode(spec.env_id, spec.seed, dict(spec.options), str(info.get("mission", "")),
                     dict(info.get("randomization", {})), infra_error=info.get("infra_error"))
        if not info.get("legal_actions") and ep.infra_error:
            # The env could not even start (e.g. the browser would not relaunch): nothing to act on.
            ep.final_observation = obs["text"] if isinstance(obs, dict) else str(obs)
            results[k] = ep
            start(slot)
            return
        active[slot] = (k, ep, obs, info)

    for slot in range(len(envs)):
        start(slot)
    while active:
        slots = sorted(active)
        turns = []
        for slot in slots:
            _, ep, obs, info = active[slot]
            history = [(s.observation, s.action) for s in ep.steps]
            turns.append(Turn.from_env(obs, info, history))
        decisions = policy.act(turns, greedy=greedy, temperature=temperature, generator=generator)
        for slot, turn, d in zip(slots, turns, decisions):
            k, ep, obs, info = active[slot]
            obs2, reward, terminated, truncated, info2 = envs[slot].step(d.action)
            if max_steps is not None and len(ep.steps) + 1 >= max_steps and not terminated:
                truncated = True
            ep.steps.append(Step(turn.observation, list(turn.legal_actions), d.action, d.logp, d.probs, float(reward),
                                 bool(terminated), bool(truncated), info2.get("action_error"), d.value, d,
                                 action_descriptions=turn.action_descriptions))
            if info2.get("infra_error"):
                ep.infra_error = ep.steps[-1].infra_error = str(info2["infra_error"])
            if terminated or truncated:
                ep.success = bool(info2.get("success", False))
                ep.final_observation = obs2["text"] if isinstance(obs2, dict) else str(obs2)
                results[k] = ep
                del active[slot]
                start(slot)
            else:
                active[slot] = (k, ep, obs2, info2)
    return [ep for ep in results if ep is not None]


def compute_advantages(
    episodes: Sequence[Episode],
    *,
    mode: str = "group",
    gamma: float = 1.0,
    lam: float = 0.95,
    normalize: bool = True,
    scaler: EnvReturnScaler | None = None,
    timeout_reward: float = 0.0,
) -> tuple[list[torch.Tensor], list[torch.Tensor], dict[str, float]]:
    """Per-episode (advantages_T, value targets_T) and variance metrics.

    ``mode="group"`` (GRPO): every step of an episode gets its group-relative episode return
    (groups: same env, seed and parameters). ``mode="gae"``: GAE on the value head's estimates recorded
    at acting time. ``scaler`` (GAE): divide each env's rewards by its running return std first, so one
    value head serves envs with different reward scales (the scaler is updated with these episodes).
    ``normalize`` standardizes the advantages per env id, so that envs with large rewards do not dominate
    the joint batch. The metrics compare the variance of the plain returns-to-go with that of the
    advantages (``adv_var_ratio`` < 1: the baseline helps) and, whatever the mode, GRPO's advantages with the
    value head's on the same episodes (:func:`~multiverse.agents.losses.baseline_variances`; those need the
    recorded values). ``timeout_reward`` is added to the last reward of each episode that ran out of steps
    (truncated, not terminated, not a success) before anything else (``AlgorithmConfig.timeout_reward``)."""
    if mode not in ("group", "gae"):
        raise ValueError(f"advantage mode must be 'group' or 'gae', got {mode!r}")
    has_values = all(s.value is not None for ep in episodes for s in ep.steps)
    if mode == "gae" and not has_values:
        raise ValueError("mode='gae' needs value estimates: build the policy with a value head")
    raw = [[s.reward for s in ep.steps] for ep in episodes]
    if timeout_reward:
        for ep, r in zip(episodes, raw):
            if ep.cut and not ep.success:
                r[-1] += timeout_reward
    totals = [sum(r) for r in raw]
    if scaler is not None:
        for env_id in {ep.env_id for ep in episodes}:
            scaler.update(env_id, [t for ep, t in zip(episodes, totals) if ep.env_id == env_id])
    scale = {ep.env_id: (scaler.scale(ep.env_id) if scaler is not None else 1.0) for ep in episodes}
    rewards = [torch.tensor(r, dtype=torch.float32) / scale[ep.env_id] for ep, r in zip(episodes, raw)]
    returns_to_go = [discounted_returns(r_T, gamma) for r_T in rewards]
    # both estimators on the same (scaled) rewards: the one trained on, and the other for the variance metrics
    totals_E = torch.tensor([t / scale[ep.env_id] for ep, t in zip(episodes, totals)], dtype=torch.float32)
    adv_E = group_relative_advantages(totals_E, [ep.group for ep in episodes], scale=False)
    group_advs = [torch.full((ep.length,), float(a)) for ep, a in zip(episodes, adv_E)]
    gae_advs, gae_targets = [], []
    for ep, rewards_T in zip(episodes, rewards if has_values else []):
        values_T = torch.tensor([s.value for s in ep.steps], dtype=torch.float32)
        # Bootstrap only when the episode was truncated, not terminated. The policy never acts on the
        # state after the cut, so the value of the last state it acted in stands in for it.
        last = ep.steps[-1].value if ep.cut else 0.0
        a_T, ret_T = gae(rewards_T, values_T, gamma=gamma, lam=lam, last_value=float(last or 0.0))
        gae_advs.append(a_T)
        gae_targets.append(ret_T)
    advs, targets = (group_advs, returns_to_go) if mode == "group" else (gae_advs, gae_targets)
    flat_ret = torch.cat(returns_to_go) if returns_to_go else torch.zeros(0)
    flat_adv = torch.cat(advs) if advs else torch.zeros(0)
    env_ids = [ep.env_id for ep in episodes for _ in ep.steps]
    metrics = advantage_variance(flat_ret, flat_adv) | baseline_variances(
        torch.cat(group_advs) if group_advs else torch.zeros(0),
        torch.cat(gae_advs) if has_values and gae_advs else None, env_ids)
    if normalize and flat_adv.numel():
        norm = normalize_by_env(flat_adv, env_ids)
        advs = list(torch.split(norm, [ep.length for ep in episodes]))
    return advs, targets, metrics


def to_samples(episodes: Sequence[Episode], advantages: Sequence[torch.Tensor], targets: Sequence[torch.Tensor]) -> list[Sample]:
    """One training :class:`Sample` per step that has a recorded decision."""
    out = []
    for ep, adv_T, tgt_T in zip(episodes, advantages, targets):
        for t, step in enumerate(ep.steps):
            if step.decision is None:
                raise ValueError("an episode step has no policy decision (recorded without token ids?); cannot train on it")
            out.append(Sample.from_decision(step.decision, float(adv_T[t]), float(tgt_T[t]), ep.env_id))
    return out


# --------------------------------------------------------------------------- tasks: the loop's unit of rollout work


@dataclasses.dataclass
class Task:
    """Episodes for one worker call, in a fixed order, with the seed of the policy's sampling."""

    index: int
    specs: list[EpisodeSpec]
    seed: int
    greedy: bool = False
    max_steps: int | None = None
    keep_episodes: bool = True
    """Return the full episodes (training); False returns only summaries (evaluation)."""


@dataclasses.dataclass
class EpisodeSummary:
    env_id: str
    seed: int
    success: bool
    return_: float
    length: int
    infra_error: str | None
    split: str = "train"
    """The randomization split the episode was reset with."""

    @classmethod
    def of(cls, ep: Episode) -> EpisodeSummary:
        return cls(ep.env_id, ep.seed, bool(ep.success), ep.total_return, ep.length, ep.infra_error,
                   str(ep.options.get("split", "train")))


@dataclasses.dataclass
class TaskResult:
    index: int
    summaries: list[EpisodeSummary]
    episodes: list[Episode]
    """With their decisions, when the task keeps them."""
    seconds: float
    env_steps: int
    tokens: int
    worker: int


class EnvPool:
    """Env instances per id, made when first needed and reused by every later task (never pickled)."""

    def __init__(self, envs_per_id: int, make_env: Callable[[str], gym.Env] = menvs.make) -> None:
        self.envs_per_id, self.make_env = envs_per_id, make_env
        self.envs: dict[str, list[gym.Env]] = {}

    def for_specs(self, specs: Sequence[EpisodeSpec]) -> tuple[list[gym.Env], list[str]]:
        """(envs, their ids) for ``specs``: ``min(envs_per_id, episodes of the id)`` instances per id."""
        need: dict[str, int] = {}
        for s in specs:
            need[s.env_id] = need.get(s.env_id, 0) + 1
        envs, ids = [], []
        for env_id, n in need.items():
            pool = self.envs.setdefault(env_id, [])
            k = min(self.envs_per_id, n)
            while len(pool) < k:
                pool.append(self.make_env(env_id))
            envs += pool[:k]
            ids += [env_id] * k
        return envs, ids

    def close(self) -> None:
        for pool in self.envs.values():
            for env in pool:
                env.close()
        self.envs.clear()


def _tokens(episodes: Sequence[Episode]) -> int:
    """Tokens the policy scored or generated: prompts, candidate blocks, generated text."""
    return sum(len(d.prompt_ids) + sum(len(b) for b in d.candidates.blocks) + len(d.gen_ids)
               for ep in episodes for s in ep.steps if (d := s.decision) is not None)


def run_task(policy: Policy, pool: EnvPool, task: Task, worker: int = 0) -> TaskResult:
    """Run one task's episodes with ``policy`` over envs from ``pool``."""
    start = time.perf_counter()
    envs, ids = pool.for_specs(task.specs)
    episodes = run_episodes(policy, envs, task.specs, greedy=task.greedy, seed=task.seed, max_steps=task.max_steps,
                            env_ids=ids)
    return TaskResult(task.index, [EpisodeSummary.of(e) for e in episodes], episodes if task.keep_episodes else [],
                      time.perf_counter() - start, sum(e.length for e in episodes), _tokens(episodes), worker)


#: what a rollout reports besides its results: episodes and tasks lost with a worker, workers replaced
NO_FAULTS = {"episodes_lost": 0, "tasks_lost": 0, "workers_restarted": 0}


class Rollout(Protocol):
    """Runs the loop's tasks with the learner's latest weights (:class:`InProcessRollout`, or launch's pool)."""

    def run(self, tasks: Sequence[Task]) -> tuple[list[TaskResult | None], dict[str, int]]:
        """Results in task order (None: lost with its worker) and the fault counts of :data:`NO_FAULTS`."""
        ...

    def sync(self, learner: Any) -> None:
        """Act with ``learner``'s current weights (a :class:`~multiverse.agents.update.LearnerHandle`) from now on."""
        ...

    def close(self) -> None: ...


class InProcessRollout:
    """The tasks run here, one after the other, by the learner's own policy over one :class:`EnvPool`."""

    def __init__(self, policy: Policy, envs_per_id: int, make_env: Callable[[str], gym.Env] = menvs.make) -> None:
        self.policy, self.envs = policy, EnvPool(envs_per_id, make_env)

    def run(self, tasks: Sequence[Task]) -> tuple[list[TaskResult | None], dict[str, int]]:
        return [run_task(self.policy, self.envs, t) for t in tasks], dict(NO_FAULTS)

    def sync(self, learner: Any) -> None:
        """Nothing to send: the policy is the learner's, so it always has the latest weights."""

    def close(self) -> None:
        self.envs.close()
