"""The experiment's statistics, as pure functions of the placed evaluation episodes (:class:`Eval`): which
report category an episode counts in, each run's final evaluation, the two-level bootstrap over seeds and
episodes, the per-arm table, the goal check, per-env success and the learning curves; and the value head's
advantage-variance ratio from the runs' metrics (:func:`value_head_table`). No files, no plots."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["BOOTSTRAP", "CATEGORIES", "VERDICT_MIN", "Categories", "Eval", "arm_table", "bootstrap_ci", "final_evals",
           "goal_check", "learning_curve", "per_env_success", "value_head_table"]

#: the report's categories, with their names in report.md and the plots
CATEGORIES = {
    "train": "train variants",
    "heldout": "held-out variants",
    "heldout_games": "held-out variants (games)",
    "heldout_envs": "held-out envs",
}
#: bootstrap resamples per interval
BOOTSTRAP = 2000
#: measured (seed, iteration)s an env needs for a value-head verdict: one gives an interval of no width
VERDICT_MIN = 3


@dataclasses.dataclass(frozen=True)
class Eval:
    """One recorded evaluation episode, placed: which arm and seed made it, after how many training env steps."""

    arm: str
    seed: int
    env_id: str
    split: str
    env_steps: int
    success: float
    ret: float


@dataclasses.dataclass(frozen=True)
class Categories:
    """Which of :data:`CATEGORIES` an episode counts in: a training env's train split is ``train``, its held-out
    split ``heldout`` (and ``heldout_games`` for a game), a held-out env's ``heldout_envs_split`` is
    ``heldout_envs``; anything else counts nowhere."""

    train_ids: frozenset[str]
    heldout_ids: frozenset[str]
    games: frozenset[str]
    heldout_envs_split: str

    def of(self, e: Eval) -> list[str]:
        if e.env_id in self.train_ids:
            if e.split == "train":
                return ["train"]
            return ["heldout", "heldout_games"] if e.env_id in self.games else ["heldout"]
        if e.env_id in self.heldout_ids and e.split == self.heldout_envs_split:
            return ["heldout_envs"]
        return []


def bootstrap_ci(by_seed: dict[int, np.ndarray], rng: np.random.Generator, n: int = BOOTSTRAP
                 ) -> tuple[float, float, float]:
    """Mean and 95% interval: resample seeds, then episodes within each resampled seed (two-level bootstrap)."""
    groups = [v for v in by_seed.values() if len(v)]
    if not groups:
        return float("nan"), float("nan"), float("nan")
    mean = float(np.mean(np.concatenate(groups)))
    stats = np.empty(n)
    for b in range(n):
        picks = rng.integers(len(groups), size=len(groups))
        stats[b] = np.mean(np.concatenate([rng.choice(groups[i], size=len(groups[i])) for i in picks]))
    lo, hi = np.percentile(stats, [2.5, 97.5])
    return mean, float(lo), float(hi)


def final_evals(evals: Sequence[Eval]) -> list[Eval]:
    """Each (arm, seed, env, split)'s last evaluation."""
    last: dict[tuple[str, int, str, str], int] = {}
    for e in evals:
        key = (e.arm, e.seed, e.env_id, e.split)
        last[key] = max(last.get(key, -1), e.env_steps)
    return [e for e in evals if e.env_steps == last[(e.arm, e.seed, e.env_id, e.split)]]


def arm_table(final: Sequence[Eval], arms: Sequence[str], cats: Categories, rng: np.random.Generator
              ) -> dict[str, dict[str, Any]]:
    """Per arm: its seeds, and per category the episode count and success and return with 95% intervals
    (``None`` where the arm has no episode in it). ``rng`` is drawn from in arm, category, metric order."""
    table: dict[str, dict[str, Any]] = {}
    for arm in arms:
        row: dict[str, Any] = {"seeds": sorted({e.seed for e in final if e.arm == arm})}
        for cat in CATEGORIES:
            mine = [e for e in final if e.arm == arm and cat in cats.of(e)]
            if not mine:
                row[cat] = None
                continue
            cell: dict[str, Any] = {"episodes": len(mine)}
            for metric, get in (("success", lambda e: e.success), ("return", lambda e: e.ret)):
                by_seed = {k: np.array([get(e) for e in mine if e.seed == k]) for k in row["seeds"]}
                mean, lo, hi = bootstrap_ci(by_seed, rng)
                cell[metric] = {"mean": mean, "ci95": [lo, hi]}
            row[cat] = cell
        table[arm] = row
    return table


def goal_check(table: dict[str, dict[str, Any]]) -> tuple[float | None, dict[str, bool | None]]:
    """The held-out-variant gain of ``multiverse`` over ``zero_shot`` in points, and each goal: met, not met,
    or ``None`` where an arm it compares is missing. The goals: held-out variants at least 20 points above
    zero-shot and at least 10 above the no-randomization arm, the games' held-out variants above RLlib PPO, and
    the held-out envs (never trained on) not below zero-shot."""

    def success(arm: str, cat: str) -> float | None:
        cell = table.get(arm, {}).get(cat)
        return None if cell is None else cell["success"]["mean"]

    def points_above(a: float | None, b: float | None, points: float) -> bool | None:
        return None if a is None or b is None else 100.0 * (a - b) >= points

    def above(a: float | None, b: float | None) -> bool | None:
        return None if a is None or b is None else a > b

    mv, zero = success("multiverse", "heldout"), success("zero_shot", "heldout")
    gain = None if mv is None or zero is None else 100.0 * (mv - zero)
    return gain, {
        "heldout_gain_vs_zero_shot_at_least_20_points": points_above(mv, zero, 20.0),
        "at_least_10_points_above_no_randomization": points_above(mv, success("no_randomization", "heldout"), 10.0),
        "above_rllib_ppo_on_games": above(success("multiverse", "heldout_games"),
                                          success("rllib_ppo", "heldout_games")),
        "heldout_envs_not_below_zero_shot": points_above(success("multiverse", "heldout_envs"),
                                                         success("zero_shot", "heldout_envs"), 0.0),
    }


def per_env_success(final: Sequence[Eval], arms: Sequence[str]) -> dict[str, dict[str, dict[str, float]]]:
    """arm -> env id -> split -> mean final success."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for arm in arms:
        for env_id, split in sorted({(e.env_id, e.split) for e in final if e.arm == arm}):
            xs = [e.success for e in final if e.arm == arm and e.env_id == env_id and e.split == split]
            out.setdefault(arm, {}).setdefault(env_id, {})[split] = float(np.mean(xs))
    return out


def learning_curve(evals: Sequence[Eval], seeds: Sequence[int]
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Success against training env steps: per evaluation round, the seeds' mean env steps and the mean and sd
    over seeds of each seed's success; ``None`` without episodes. Round 0 is the evaluation before training,
    from the seeds that made one."""
    # seeds reach slightly different env-step counts: align them by evaluation round
    rounds: dict[int, list[tuple[int, float]]] = {}
    for k in seeds:
        at = sorted({e.env_steps for e in evals if e.seed == k})
        for r, x in enumerate(at, start=0 if at and at[0] == 0 else 1):
            rounds.setdefault(r, []).append((x, float(np.mean([e.success for e in evals
                                                               if e.seed == k and e.env_steps == x]))))
    if not rounds:
        return None
    xs = np.array([np.mean([x for x, _ in rounds[r]]) for r in sorted(rounds)])
    ys = [np.array([y for _, y in rounds[r]]) for r in sorted(rounds)]
    return xs, np.array([y.mean() for y in ys]), np.array([y.std() for y in ys])


def value_head_table(ratios: dict[str, dict[int, list[float]]], rng: np.random.Generator) -> dict[str, Any]:
    """The value head's advantage-variance ratio (``adv/adv_var_value_ratio/<env>``, one per training iteration)
    per env: ``ratios`` env id -> seed -> the iterations' ratios, NaN where every group's returns were equal.

    Per env: the mean ratio over the (seed, iteration)s that have one (``None`` without any), its 95% interval
    (two-level bootstrap:
    seeds, then iterations within a seed), ``iterations`` counted and ``no_ratio`` left out; ``verdict``: ``reduces``
    (the interval below 1), ``raises`` (above 1), ``unclear``, or ``too few`` (under :data:`VERDICT_MIN`
    iterations counted). Top level: ``envs`` and the ``reduces_on`` / ``raises_on`` / ``too_few`` counts over the
    envs measured. ``rng`` is drawn from in sorted env order."""
    per_env: dict[str, dict[str, Any]] = {}
    for env_id in sorted(ratios):
        by_seed = {k: np.array([x for x in xs if np.isfinite(x)]) for k, xs in sorted(ratios[env_id].items())}
        counted = sum(len(v) for v in by_seed.values())
        mean, lo, hi = bootstrap_ci(by_seed, rng) if counted else (None, None, None)
        per_env[env_id] = {"mean": mean, "ci95": [lo, hi], "seeds": sorted(k for k, v in by_seed.items() if len(v)),
                           "iterations": counted, "no_ratio": sum(len(xs) for xs in ratios[env_id].values()) - counted,
                           "verdict": "too few" if counted < VERDICT_MIN else "reduces" if hi < 1 else "raises"
                           if lo > 1 else "unclear"}
    return {"envs": per_env, "reduces_on": sum(c["verdict"] == "reduces" for c in per_env.values()),
            "raises_on": sum(c["verdict"] == "raises" for c in per_env.values()),
            "too_few": sum(c["verdict"] == "too few" for c in per_env.values())}
