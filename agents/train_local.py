"""Train the policy with RL in one process (no Ray): the loop that ``launch/`` distributes.

Each iteration: sample groups of episodes (a group shares env, seed and
parameters), play them with the current policy in lockstep, turn returns into
advantages (group-relative, or GAE with the value head), take PPO steps over
the samples, and every ``eval_every`` iterations measure held-out success with
the greedy policy.

    python -m multiverse.agents.train_local --env games/Catch-v0 --model tiny-test --iterations 3

The command prints one line per iteration and per evaluation; ``--out`` keeps
every metric (``metrics.jsonl``) and the final checkpoint.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import multiverse.envs as menvs
import numpy as np
from multiverse.agents.learner import Learner, LearnerConfig, Sample
from multiverse.agents.losses import EnvReturnScaler, PPOConfig, PPOLoss
from multiverse.agents.models import ModelConfig
from multiverse.agents.policy import Policy, PolicyConfig
from multiverse.agents.rollout import Episode, EpisodeSpec, compute_advantages, run_episodes, to_samples

__all__ = ["TrainConfig", "episode_metrics", "evaluate", "main", "ppo_update", "progress_line", "train"]


@dataclasses.dataclass
class TrainConfig:
    """One local training run."""

    env_ids: tuple[str, ...] = ("games/Catch-v0",)
    """Registered env ids to train on jointly (equal shares)."""
    env_params: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    """Pinned reset params per env id, for training and evaluation (e.g. a small Catch board)."""
    eval_params: dict[str, dict[str, Any]] | None = None
    """Pinned reset params for evaluation only (None: ``env_params``), e.g. pin a train-split text style for
    training while evaluation samples the held-out one."""
    learner: LearnerConfig = dataclasses.field(default_factory=LearnerConfig)
    """Model, LoRA, prompting and optimizer."""
    loss: PPOConfig = dataclasses.field(default_factory=PPOConfig)
    """PPO clip, entropy, KL and value coefficients."""
    iterations: int = 10
    """Training iterations (rollout + update)."""
    groups_per_env: int = 4
    """Groups per env id per iteration; a group is `group_size` episodes with the same seed and parameters."""
    group_size: int = 4
    """Episodes per group (GRPO compares returns within a group)."""
    envs_per_id: int = 8
    """Env instances per id stepped in lockstep (the policy's batch size is up to this times the ids)."""
    max_steps: int | None = None
    """Truncate episodes after this many steps (None: the env's own limit)."""
    advantage: str = "group"
    """'group' (GRPO: group-relative episode returns) or 'gae' (needs learner.model.value_head)."""
    gamma: float = 1.0
    """Discount for returns and GAE."""
    lam: float = 0.95
    """GAE lambda."""
    epochs: int = 1
    """Passes over each iteration's samples."""
    minibatch: int = 64
    """Samples per optimizer step."""
    eval_every: int = 0
    """Evaluate every N iterations, and before the first and after the last (0: only before and after)."""
    eval_episodes: int = 16
    """Greedy evaluation episodes per env id."""
    eval_split: str = "heldout"
    """Randomization split evaluated ('heldout' measures generalization)."""
    seed: int = 0
    """Seeds env seeds, minibatch order and the policy's sampling."""
    out_dir: str | None = None
    """If set: metrics.jsonl per iteration and a final learner checkpoint in out_dir/checkpoint."""


def _options(config: TrainConfig, env_id: str, split: str) -> dict[str, Any]:
    opts: dict[str, Any] = {"split": split}
    if config.env_params.get(env_id):
        opts["params"] = dict(config.env_params[env_id])
    return opts


def evaluate(
    policy: Policy,
    env_ids: Sequence[str],
    *,
    episodes: int = 16,
    split: str = "heldout",
    env_params: dict[str, dict[str, Any]] | None = None,
    envs_per_id: int = 8,
    max_steps: int | None = None,
    seed_base: int = 1_000_000,
    make_env: Callable[[str], Any] = menvs.make,
) -> dict[str, dict[str, float]]:
    """Greedy success rate and mean return per env id on fixed seeds (the same seeds every call)."""
    envs, ids = [], []
    for env_id in env_ids:
        for _ in range(min(envs_per_id, episodes)):
            envs.append(make_env(env_id))
            ids.append(env_id)
    specs = []
    for env_id in env_ids:
        opts: dict[str, Any] = {"split": split}
        if env_params and env_params.get(env_id):
            opts["params"] = dict(env_params[env_id])
        specs += [EpisodeSpec(env_id, seed_base + i, opts) for i in range(episodes)]
    try:
        eps = run_episodes(policy, envs, specs, greedy=True, max_steps=max_steps, env_ids=ids)
    finally:
        for e in envs:
            e.close()
    return {env_id: episode_metrics([e for e in eps if e.env_id == env_id]) for env_id in env_ids}


def episode_metrics(episodes: Sequence[Episode]) -> dict[str, float]:
    """Mean success, return and length of some episodes (NaN when there are none)."""
    if not episodes:
        return {"success": float("nan"), "return": float("nan"), "length": float("nan")}
    return {
        "success": float(np.mean([e.success for e in episodes])),
        "return": float(np.mean([e.total_return for e in episodes])),
        "length": float(np.mean([e.length for e in episodes])),
    }


def ppo_update(
    learner: Learner, samples: Sequence[Sample], loss_fn: PPOLoss, *, epochs: int, minibatch: int, rng: random.Random
) -> dict[str, float]:
    """``epochs`` passes over the samples in shuffled minibatches, one optimizer step each; mean metrics.

    With ``loss_fn.config.skip_zero_advantage`` (and no value head) samples whose advantage is exactly 0
    are left out first; ``samples_used`` reports how many were trained on."""
    used = len(samples)
    if loss_fn.config.skip_zero_advantage and learner.policy.value_head is None:
        samples = [s for s in samples if s.advantage != 0.0]
    update_metrics: list[dict[str, float]] = []
    for _ in range(epochs):
        order = list(range(len(samples)))
        rng.shuffle(order)
        for start in range(0, len(order), minibatch):
            batch = [samples[i] for i in order[start:start + minibatch]]
            m = learner.forward_backward(batch, loss_fn)
            m.update(learner.optim_step())
            update_metrics.append(m)
    if not update_metrics:
        return {"samples_used": 0.0, "samples_skipped": float(used)}
    means = {k: float(np.mean([m[k] for m in update_metrics])) for k in update_metrics[0] if k != "samples"}
    return means | {"samples_used": float(len(samples)), "samples_skipped": float(used - len(samples))}


def train(
    config: TrainConfig,
    *,
    learner: Learner | None = None,
    on_iteration: Callable[[dict[str, Any]], None] | None = None,
    make_env: Callable[[str], Any] = menvs.make,
) -> list[dict[str, Any]]:
    """Run the loop; returns one metrics dict per iteration (and evaluation rows with ``"eval"``).

    ``make_env(env_id)`` builds the envs (default: the Multiverse registry)."""
    if config.advantage == "gae" and not config.learner.model.value_head:
        raise ValueError("advantage='gae' needs a value head: set learner.model.value_head=True")
    rng = random.Random(config.seed)
    learner = learner or Learner(config.learner)
    loss_fn = PPOLoss(config.loss)
    scaler = EnvReturnScaler() if config.advantage == "gae" else None  # per-env reward scale for the value head
    out_dir = Path(config.out_dir) if config.out_dir else None
    if out_dir:
        out_dir.mkdir(parents=True, exist_ok=True)
    history: list[dict[str, Any]] = []

    def log(row: dict[str, Any]) -> None:
        history.append(row)
        if on_iteration:
            on_iteration(row)
        if out_dir:
            with open(out_dir / "metrics.jsonl", "a") as f:
                f.write(json.dumps(row) + "\n")

    def run_eval(iteration: int) -> None:
        pins = config.env_params if config.eval_params is None else config.eval_params
        res = evaluate(learner.policy, config.env_ids, episodes=config.eval_episodes, split=config.eval_split,
                       env_params=pins, envs_per_id=config.envs_per_id, max_steps=config.max_steps,
                       make_env=make_env)
        log({"iteration": iteration, "eval": res, "split": config.eval_split})

    # -- environments: a few instances per id, reused every iteration
    envs, ids = [], []
    for env_id in config.env_ids:
        for _ in range(config.envs_per_id):
            envs.append(make_env(env_id))
            ids.append(env_id)

    run_eval(0)
    for it in range(1, config.iterations + 1):
        t0 = time.perf_counter()
        # -- rollout: groups of episodes sharing seed and parameters
        specs = [
            EpisodeSpec(env_id, seed, _options(config, env_id, "train"))
            for env_id in config.env_ids
            for seed in [rng.randrange(2**31) for _ in range(config.groups_per_env)]
            for _ in range(config.group_size)
        ]
        episodes = run_episodes(learner.policy, envs, specs, seed=rng.randrange(2**31), max_steps=config.max_steps,
                                env_ids=ids)
        t_rollout = time.perf_counter() - t0
        # -- advantages
        advs, targets, adv_metrics = compute_advantages(episodes, mode=config.advantage, gamma=config.gamma,
                                                        lam=config.lam, scaler=scaler)
        samples = to_samples(episodes, advs, targets)
        # -- PPO updates
        update_metrics = ppo_update(learner, samples, loss_fn, epochs=config.epochs, minibatch=config.minibatch, rng=rng)
        row: dict[str, Any] = {
            "iteration": it,
            "episodes": len(episodes),
            "samples": len(samples),
            "env_steps": sum(e.length for e in episodes),
            "rollout_s": t_rollout,
            "update_s": time.perf_counter() - t0 - t_rollout,
            **adv_metrics,
            **update_metrics,
        }
        overall = episode_metrics(episodes)
        row["success"], row["return"] = overall["success"], overall["return"]
        for env_id in config.env_ids:
            m = episode_metrics([e for e in episodes if e.env_id == env_id])
            row[f"success/{env_id}"] = m["success"]
            row[f"return/{env_id}"] = m["return"]
        log(row)
        if config.eval_every and it % config.eval_every == 0 and it != config.iterations:
            run_eval(it)
    run_eval(config.iterations)
    for e in envs:
        e.close()
    if out_dir:
        learner.save(out_dir / "checkpoint")
    return history


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
    config = TrainConfig(
        env_ids=tuple(args.env or ["games/Catch-v0"]),
        learner=LearnerConfig(model=ModelConfig(name=args.model, lora=not args.full),
                              policy=PolicyConfig(num_threads=args.threads), lr=args.lr),
        iterations=args.iterations, groups_per_env=args.groups, group_size=args.group_size,
        eval_episodes=args.eval_episodes, max_steps=args.max_steps, seed=args.seed, out_dir=args.out,
    )
    train(config, on_iteration=lambda row: print(progress_line(row, config.iterations), flush=True))


def progress_line(row: dict[str, Any], iterations: int) -> str:
    """One line for a row of :func:`train`'s history: an iteration (like ``multiverse train``'s) or an evaluation."""
    def f(x: float) -> str:
        return "-" if x != x else f"{x:.2f}"  # NaN: no episode of that env

    if "eval" in row:
        per_env = "  ".join(f"{e} success {f(m['success'])} return {f(m['return'])} length {m['length']:.1f}"
                            for e, m in row["eval"].items())
        return f"eval {row['iteration']} ({row['split']}, greedy)  {per_env}"
    ids = [k.split("/", 1)[1] for k in row if k.startswith("success/")]
    per_env = " ".join(f"{e.split('/')[-1]}={f(row[f'success/{e}'])}" for e in ids)
    seconds = row["rollout_s"] + row["update_s"]
    return (f"iter {row['iteration']}/{iterations}  success {f(row['success'])} ({per_env})  "
            f"return {f(row['return'])}  loss {f(row.get('loss', float('nan')))}  {seconds:.1f}s  "
            f"{row['env_steps'] / row['rollout_s'] if row['rollout_s'] > 0 else 0:.0f} steps/s")


if __name__ == "__main__":
    main()
