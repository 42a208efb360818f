"""Where the loop's outputs go: the :class:`RunLog` it calls, the episode recorder, and the console lines.

``multiverse train`` passes a run dir (``multiverse.launch.rundir.RunDirLog``: CSVs, TensorBoard, evaluation
tables, checkpoints); ``python -m multiverse.agents.train_local`` a JSONL file and a final checkpoint. Both print
:func:`progress_line` once per iteration.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from multiverse.agents.rollout import Episode

__all__ = ["EpisodeRecorder", "RunLog", "eval_line", "progress_line"]


class RunLog(Protocol):
    """The loop's outputs (see the module docstring)."""

    def iteration(self, iteration: int, row: Mapping[str, Any]) -> None:
        """One metrics row per iteration (names as in launch/README.md, the run dir)."""
        ...

    def evaluation(self, iteration: int, rows: Sequence[Mapping[str, Any]]) -> None:
        """One row per evaluated (env, split): env, split, role, success, return, length, episodes."""
        ...

    def record(self, kind: str, episodes: Sequence[Episode], iteration: int, learner_step: int,
               adr: Any = None) -> None:
        """Keep these ``'train'`` or ``'eval'`` episodes (``adr``: the ADR bank they were sampled from)."""
        ...

    def checkpoint(self, iteration: int, learner: Any, state: Mapping[str, Any]) -> None:
        """Save ``learner`` (a :class:`~multiverse.agents.update.LearnerHandle`) and the trainer state."""
        ...


class EpisodeRecorder:
    """Episodes written under ``root/<kind>/`` in the episode schema (Parquet), one file per call: what a crash
    can lose is the iteration in flight."""

    def __init__(self, root: Path, *, model: str, run: str, max_steps: int | None) -> None:
        self.root, self.model, self.run, self.max_steps = root, model, run, max_steps
        self.writers: dict[str, Any] = {}

    def write(self, kind: str, episodes: Sequence[Episode], iteration: int, learner_step: int, adr: Any = None
              ) -> None:
        from multiverse.agents.episodes import EpisodeMeta, EpisodeWriter

        writer = self.writers.get(kind) or self.writers.setdefault(kind, EpisodeWriter(self.root / kind))
        for ep in episodes:
            bank = adr.adrs.get(ep.env_id) if adr is not None else None
            writer.write(ep, EpisodeMeta(
                agent="policy", max_steps=self.max_steps, adr_state=bank.state_dict() if bank is not None else None,
                policy={"model": self.model, "run": self.run, "iteration": iteration, "learner_step": learner_step,
                        "greedy": kind == "eval"}))
        writer.flush()

    def close(self) -> None:
        for writer in self.writers.values():
            writer.close()


def _f(x: Any) -> str:
    return "-" if isinstance(x, float) and math.isnan(x) else f"{x:.2f}"  # NaN: no episode of that env


def progress_line(iteration: int, total: int, row: Mapping[str, Any], env_ids: Sequence[str]) -> str:
    """One line for an iteration's metrics row."""
    per_env = " ".join(f"{e.split('/')[-1]}={_f(row[f'train/success/{e}'])}" for e in env_ids)
    faults = "" if not (row["faults/episodes_lost"] or row["faults/infra_errors"]) else (
        f"  lost {row['faults/episodes_lost']} infra {row['faults/infra_errors']}")
    return (f"iter {iteration}/{total}  success {_f(row['train/success'])} ({per_env})  return "
            f"{_f(row['train/return'])}  loss {_f(row.get('update/loss', float('nan')))}  {row['perf/iteration_s']:.1f}s  "
            f"{row['perf/env_steps_per_s']:.0f} steps/s{faults}")


def eval_line(iteration: int, rows: Sequence[Mapping[str, Any]]) -> str:
    """One line for an evaluation's rows."""
    splits = list(dict.fromkeys(r["split"] for r in rows))

    def name(r: Mapping[str, Any]) -> str:
        return f"{r['env']} [{r['split']}]" if len(splits) > 1 else r["env"]

    per_env = "  ".join(f"{name(r)} success {_f(r['success'])} return {_f(r['return'])} length {_f(r['length'])}"
                        for r in rows)
    return f"eval {iteration} ({', '.join(splits)}, greedy)  {per_env}"
