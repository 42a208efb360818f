"""A short RL run of the packaged default model on a grid game: held-out-variant success before and after.

Trains SmolLM2-135M-Instruct (LoRA) with GRPO/PPO (multiverse.agents.train_local)
on the TRAIN randomization split of a small Catch board, and evaluates the
greedy policy on the HELD-OUT split before and after. With the board size and
ball count pinned (a 5x6 board, one ball), "held-out" means what Catch holds
out: prose board descriptions instead of grid/coordinates, compass action
words (west/hold/east) instead of arrows/moves, and more drift. The train-split
success before/after is reported too.

    .venv/bin/python bench/policy_learning.py                       # ~20-40 minutes on 2 cores
    .venv/bin/python bench/policy_learning.py --model tiny-test --iterations 1 --eval-episodes 4 --out /tmp/l.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="default")
    p.add_argument("--env", default="games/Catch-v0")
    p.add_argument("--params", default='{"balls": 1, "width": 5, "height": 6}', help="pinned reset params (JSON)")
    p.add_argument("--eval-params", default=None,
                   help="pinned params for evaluation only (JSON; default: --params), e.g. when --params pins a "
                        "train-split text style that the held-out evaluation must not get")
    p.add_argument("--kl", type=float, default=0.0, help="KL-to-initial-policy coefficient")
    p.add_argument("--iterations", type=int, default=10)
    p.add_argument("--groups", type=int, default=8, help="groups per iteration (same seed and params)")
    p.add_argument("--group-size", type=int, default=4)
    p.add_argument("--eval-episodes", type=int, default=32)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--temperature", type=float, default=2.0,
                   help="sampling temperature of rollouts (greedy evaluation ignores it); at 1.0 the default model "
                        "is almost deterministic on Catch, every episode of a group is the same and GRPO gets no signal")
    p.add_argument("--score-norm", choices=("sum", "mean"), default="mean",
                   help="candidate score: summed or mean token log-likelihood (mean removes the bias to short actions)")
    p.add_argument("--entropy", type=float, default=0.03, help="entropy bonus coefficient")
    p.add_argument("--keep-zero-advantage", action="store_true",
                   help="train on every sample (default: leave out those with advantage 0, see PPOConfig.skip_zero_advantage)")
    p.add_argument("--lora-rank", type=int, default=16)
    p.add_argument("--threads", type=int, default=1, help="torch threads (1 is faster on a busy machine)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "policy_learning.json"))
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    from multiverse.agents.learner import Learner, LearnerConfig
    from multiverse.agents.losses import PPOConfig
    from multiverse.agents.models import ModelConfig
    from multiverse.agents.policy import PolicyConfig
    from multiverse.agents.prompt import PromptConfig
    from multiverse.agents.train_local import TrainConfig, evaluate, train

    params = json.loads(args.params)
    eval_params = json.loads(args.eval_params) if args.eval_params is not None else params
    config = TrainConfig(
        env_ids=(args.env,),
        env_params={args.env: params} if params else {},
        eval_params={args.env: eval_params} if eval_params else {},
        learner=LearnerConfig(
            model=ModelConfig(name=args.model, lora=True, lora_rank=args.lora_rank, lora_alpha=2.0 * args.lora_rank),
            # Catch shows the whole state, so no history: half the prompt, half the compute.
            policy=PolicyConfig(prompt=PromptConfig(history_steps=0), num_threads=args.threads,
                                temperature=args.temperature, score_norm=args.score_norm),
            lr=args.lr,
        ),
        loss=PPOConfig(clip_eps=0.2, entropy_coef=args.entropy, kl_coef=args.kl,
                       skip_zero_advantage=not args.keep_zero_advantage),
        iterations=args.iterations,
        groups_per_env=args.groups,
        group_size=args.group_size,
        envs_per_id=8,
        minibatch=32,
        epochs=1,
        eval_episodes=args.eval_episodes,
        eval_split="heldout",
        seed=args.seed,
    )
    start_load, start = [round(x, 2) for x in os.getloadavg()], time.perf_counter()
    learner = Learner(config.learner)
    eval_kw: dict[str, Any] = {"episodes": args.eval_episodes, "env_params": config.env_params, "envs_per_id": 8}
    train_before = evaluate(learner.policy, config.env_ids, split="train", **eval_kw)[args.env]  # as trained
    print(f"train-split success before: {train_before['success']:.3f}", flush=True)

    def show(row: dict[str, Any]) -> None:
        if "eval" in row:
            print(f"iteration {row['iteration']:3d}  held-out success {row['eval'][args.env]['success']:.3f}", flush=True)
        else:
            print(f"iteration {row['iteration']:3d}  train success {row[f'success/{args.env}']:.3f}  "
                  f"entropy {row['entropy']:.3f}  kl {row['approx_kl']:.4f}  rollout {row['rollout_s']:.0f}s  "
                  f"update {row['update_s']:.0f}s", flush=True)

    history = train(config, learner=learner, on_iteration=show)
    train_after = evaluate(learner.policy, config.env_ids, split="train", **eval_kw)[args.env]
    evals = [row for row in history if "eval" in row]
    result = {
        "model": args.model,
        "env": args.env,
        "pinned_params": params,
        "eval_pinned_params": eval_params,
        "heldout_success_before": evals[0]["eval"][args.env]["success"],
        "heldout_success_after": evals[-1]["eval"][args.env]["success"],
        "heldout_return_before": evals[0]["eval"][args.env]["return"],
        "heldout_return_after": evals[-1]["eval"][args.env]["return"],
        "train_success_before": train_before["success"],
        "train_success_after": train_after["success"],
        "eval_episodes": args.eval_episodes,
        "iterations": args.iterations,
        "episodes_per_iteration": args.groups * args.group_size,
        "wall_s": time.perf_counter() - start,
        "threads": args.threads,
        "load_avg_start": start_load,
        "load_avg_end": [round(x, 2) for x in os.getloadavg()],
        "config": json.loads(json.dumps(dataclasses.asdict(config), default=str)),
        "history": history,
    }
    print(f"held-out success {result['heldout_success_before']:.3f} -> {result['heldout_success_after']:.3f}; "
          f"train split {train_before['success']:.3f} -> {train_after['success']:.3f}; "
          f"{result['wall_s'] / 60:.1f} min, load average {start_load} -> {result['load_avg_end']}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
