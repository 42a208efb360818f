"""Train the policy with RL in one process (no Ray): :mod:`multiverse.agents.loop` over an in-process env pool.

``multiverse train`` runs the same loop with Ray workers and a run dir around it; here the learner's own policy
plays every task, task after task, in this process.

    python -m multiverse.agents.train_local --env games/Catch-v0 --model tiny-test --iterations 3

The command prints one line per iteration and per evaluation; ``--out`` keeps every metric (``metrics.jsonl``,
one JSON object per iteration or evaluation) and the final checkpoint (``checkpoint/``).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import multiverse.envs as menvs
from multiverse.agents.config import AlgorithmConfig, EnvsConfig, RolloutConfig, ScheduleConfig, TrainerConfig
from multiverse.agents.learner import LearnerConfig
from multiverse.agents.loop import TrainerState, eval_tasks, train_loop
from multiverse.agents.models import ModelConfig
from multiverse.agents.policy import Policy, PolicyConfig
from multiverse.agents.rollout import Episode, InProcessRollout
from multiverse.agents.runlog import EpisodeRecorder, eval_line, progress_line
from multiverse.agents.update import LocalLearner, ppo_update

__all__ = ["LocalLog", "evaluate", "main", "ppo_update", "train"]


class LocalLog:
    """The loop's :class:`~multiverse.agents.runlog.RunLog` here: a history in memory, a line per iteration and
    evaluation, and with ``out_dir`` metrics.jsonl, the final checkpoint and any recorded episodes."""

    def __init__(self, config: TrainerConfig, out_dir: str | Path | None = None,
                 on_row: Callable[[dict[str, Any]], None] | None = None, echo: bool = False) -> None:
        self.total, self.ids = config.schedule.iterations, config.envs.train_ids()
        self.out = Path(out_dir) if out_dir is not None else None
        self.on_row, self.echo = on_row, echo
        self.history: list[dict[str, Any]] = []
        self.recorder = None
        if self.out is not None:
            self.out.mkdir(parents=True, exist_ok=True)
            self.recorder = EpisodeRecorder(self.out / "episodes", model=config.learner.model.name,
                                            run=str(self.out), max_steps=config.rollout.max_steps)

    def _add(self, entry: dict[str, Any], line: str) -> None:
        self.history.append(entry)
        if self.echo:
            print(line, flush=True)
        if self.on_row is not None:
            self.on_row(entry)
        if self.out is not None:
            with open(self.out / "metrics.jsonl", "a") as f:
                f.write(json.dumps(entry) + "\n")

    def iteration(self, iteration: int, row: Mapping[str, Any]) -> None:
        self._add({"iteration": iteration, **row}, progress_line(iteration, self.total, row, self.ids))

    def evaluation(self, iteration: int, rows: Sequence[Mapping[str, Any]]) -> None:
        self._add({"iteration": iteration, "eval": [dict(r) for r in rows]}, eval_line(iteration, rows))

    def record(self, kind: str, episodes: Sequence[Episode], iteration: int, learner_step: int,
               adr: Any = None) -> None:
        if self.recorder is not None:
            self.recorder.write(kind, episodes, iteration, learner_step, adr)

    def checkpoint(self, iteration: int, learner: Any, state: Mapping[str, Any]) -> None:
        if self.out is not None:  # one folder, replaced whole: the newest checkpoint
            learner.save(self.out / "checkpoint")

    def close(self) -> None:
        if self.recorder is not None:
            self.recorder.close()


def train(
    config: TrainerConfig,
    *,
    out_dir: str | Path | None = None,
    make_env: Callable[[str], Any] = menvs.make,
    learner: LocalLearner | None = None,
    on_row: Callable[[dict[str, Any]], None] | None = None,
    echo: bool = False,
) -> list[dict[str, Any]]:
    """Run the loop here; returns the history: one entry per iteration (its metrics row and ``iteration``) and per
    evaluation (``iteration`` and ``eval``, its rows). ``make_env(env_id)`` builds the envs (default: the
    registry); ``on_row`` sees each entry as it comes, ``echo`` prints its line."""
    learner = learner or LocalLearner(config.learner, config.loss)
    rollout = InProcessRollout(learner.policy, config.rollout.envs_per_worker, make_env)
    log = LocalLog(config, out_dir, on_row, echo)
    try:
        train_loop(config, learner, rollout, log, TrainerState.new(config))
    finally:
        rollout.close()
        log.close()
    return log.history


def evaluate(
    policy: Policy,
    env_ids: Sequence[str],
    *,
    episodes: int = 16,
    split: Literal["train", "heldout", "both"] = "heldout",
    env_params: dict[str, dict[str, Any]] | None = None,
    envs_per_id: int = 8,
    max_steps: int | None = None,
    make_env: Callable[[str], Any] = menvs.make,
) -> dict[str, dict[str, float]]:
    """Greedy success, mean return and length per env id on the loop's evaluation seeds (the same every call)."""
    import numpy as np

    config = TrainerConfig(
        envs=EnvsConfig(train=dict.fromkeys(env_ids, 1.0), params=dict(env_params or {}), eval_split=split),
        rollout=RolloutConfig(envs_per_worker=envs_per_id, max_steps=max_steps),
        schedule=ScheduleConfig(eval_episodes=episodes))
    rollout = InProcessRollout(policy, envs_per_id, make_env)
    try:
        results, _ = rollout.run(eval_tasks(config))
    finally:
        rollout.close()
    summaries = [s for r in results if r is not None for s in r.summaries if not s.infra_error]

    def means(mine: list[Any]) -> dict[str, float]:
        nan = float("nan")
        return {"success": float(np.mean([s.success for s in mine])) if mine else nan,
                "return": float(np.mean([s.return_ for s in mine])) if mine else nan,
                "length": float(np.mean([s.length for s in mine])) if mine else nan}

    return {env_id: means([s for s in summaries if s.env_id == env_id]) for env_id in env_ids}


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--env", action="append", help="env id (repeat for several; default games/Catch-v0)")
    p.add_argument("--model", default="default", help="'default', 'tiny-test', an HF id or a folder")
    p.add_argument("--full", action="store_true", help="full fine-tuning instead of LoRA")
    p.add_argument("--iterations", type=int, default=10)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    p.add_argument("--groups", type=int, default=4, help="groups per env per iteration")
    p.add_argument("--group-size", type=int, default=4, help="episodes per group")
    p.add_argument("--eval-episodes", type=int, default=16, help="greedy held-out episodes per env")
    p.add_argument("--max-steps", type=int, default=None, help="truncate episodes after this many steps")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="folder for metrics.jsonl and the final checkpoint")
    args = p.parse_args(argv)
    ids = args.env or ["games/Catch-v0"]
    groups = args.groups * len(ids)  # equal shares, all in one task: one lockstep batch over every env
    config = TrainerConfig(
        learner=LearnerConfig(model=ModelConfig(name=args.model, lora=not args.full),
                              policy=PolicyConfig(num_threads=args.threads), lr=args.lr),
        envs=EnvsConfig(train=dict.fromkeys(ids, 1.0), curriculum="none"),
        algorithm=AlgorithmConfig(),
        rollout=RolloutConfig(groups_per_iteration=groups, group_size=args.group_size, groups_per_task=groups,
                              max_steps=args.max_steps),
        schedule=ScheduleConfig(iterations=args.iterations, eval_every=0, checkpoint_every=0,
                                eval_episodes=args.eval_episodes, seed=args.seed),
    )
    train(config, out_dir=args.out, echo=True)


if __name__ == "__main__":
    main()
