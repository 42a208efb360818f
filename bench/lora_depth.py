"""Where LoRA sits: learning per update and per CPU-second with adapters on every layer or on the last N only.

The default model plays groups of the main job's envs (Catch in prose, ClickButton) once; the same samples then
train learners whose adapters sit on every decoder layer or on the last N (``model.lora_layers``), PPO steps of
the main job's settings, the depths taking turns step by step (so the host's speed swings fall on all of them).
After each step, on the trained samples and on samples of other seeds never trained on:

* the surrogate gain: mean over samples of advantage x (log pi_now - log pi_behaviour), what PPO increases;
* the seconds the step took (forward, backward, optimizer).

Output ``bench/results/lora_depth.json`` (or ``--out``): per depth the median step seconds, the gains after each
step and the held-out gain per CPU-second.

    .venv/bin/python bench/lora_depth.py                      # all layers vs the last 8 and 4, ~20 min
    .venv/bin/python bench/lora_depth.py --model tiny-test --groups 2 --steps 1 --out /tmp/ld.json
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import time
from pathlib import Path
from typing import Any

import torch

from multiverse.agents.learner import Learner, LearnerConfig, Sample
from multiverse.agents.losses import PPOConfig, PPOLoss
from multiverse.agents.models import ModelConfig
from multiverse.agents.policy import PolicyConfig
from multiverse.agents.prompt import PromptConfig
from multiverse.agents.rollout import EnvPool, EpisodeSpec, Task, compute_advantages, run_task, to_samples
from multiverse.agents.update import ppo_update

import _common

ROOT = Path(__file__).resolve().parents[1]
CATCH = {"width": 5, "height": 6, "balls": 1, "text_style": "prose", "action_words": "moves"}
ENVS = (("games/Catch-v0", {"split": "train", "params": CATCH}), ("web/ClickButton-v0", {"split": "train"}))


def config(model: str, layers: int | None) -> LearnerConfig:
    """The main job's learner (local.yaml) with adapters on the last ``layers`` layers (None: all)."""
    return LearnerConfig(model=ModelConfig(name=model, lora=True, lora_rank=16, lora_alpha=32, lora_layers=layers),
                         policy=PolicyConfig(prompt=PromptConfig(history_steps=0)), lr=2e-4)


def play(learner: Learner, groups: int, seed0: int) -> list[Sample]:
    """``groups`` groups of 4 per env, group-relative advantages, zero advantages left out (as the main job)."""
    pool = EnvPool(envs_per_id=4)
    episodes = []
    try:
        for g in range(groups):
            for env_id, opts in ENVS:
                specs = [EpisodeSpec(env_id, seed0 + g, opts)] * 4
                episodes += run_task(learner.policy, pool, Task(g, specs, seed=seed0 + g, max_steps=8)).episodes
    finally:
        pool.close()
    advs, targets, _ = compute_advantages(episodes, mode="group")
    return [s for s in to_samples(episodes, advs, targets) if s.advantage != 0.0]


def gain(learner: Learner, samples: list[Sample]) -> float:
    with torch.no_grad():
        logp = learner.policy.evaluate(samples).logp_N
    return float(sum(s.advantage * (float(lp) - s.behaviour_logp) for s, lp in zip(samples, logp)) / len(samples))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="default")
    p.add_argument("--depths", default="all,8,4", help="comma-separated: all, or a number of last layers")
    p.add_argument("--groups", type=int, default=4, help="groups of 4 per env to train on (and as many held out)")
    p.add_argument("--steps", type=int, default=3, help="PPO steps per depth")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "lora_depth.json"))
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    depths = [None if d == "all" else int(d) for d in a.depths.split(",")]
    result: dict[str, Any] = {"machine": _common.machine_info(-1, ("torch", "transformers", "peft")),
                              "model": a.model, "envs": [e for e, _ in ENVS], "threads": a.threads}
    learners = {d: Learner(config(a.model, d)) for d in depths}
    actor = learners[depths[0]]  # every depth starts as the base model (LoRA B = 0): the same behaviour
    train, held = play(actor, a.groups, 0), play(actor, a.groups, 10_000)
    result |= {"train_samples": len(train), "heldout_samples": len(held)}
    print(f"{len(train)} samples to train on, {len(held)} held out", flush=True)
    loss = PPOLoss(PPOConfig(entropy_coef=0.01))
    per: dict[str, dict[str, list[float]]] = {str(d or "all"): {"seconds": [], "train_gain": [], "heldout_gain": []}
                                              for d in depths}
    rng = random.Random(0)
    for step in range(a.steps):
        for d in (depths if step % 2 == 0 else depths[::-1]):
            name, lrn = str(d or "all"), learners[d]
            t = time.perf_counter()
            ppo_update(lrn, train, loss, epochs=1, minibatch=len(train), rng=rng)
            per[name]["seconds"].append(time.perf_counter() - t)
            per[name]["train_gain"].append(gain(lrn, train))
            per[name]["heldout_gain"].append(gain(lrn, held))
            print(f"step {step + 1} {name}: {per[name]['seconds'][-1]:.1f} s, gain train "
                  f"{per[name]['train_gain'][-1]:+.4f} held out {per[name]['heldout_gain'][-1]:+.4f}", flush=True)
    for r in per.values():
        r["median_step_s"] = statistics.median(r["seconds"])
        r["heldout_gain_per_cpu_s"] = r["heldout_gain"][-1] / sum(r["seconds"])
    result["depths"] = per
    result["machine"]["loadavg_at_end"] = list(os.getloadavg())
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: {"step_s": round(v["median_step_s"], 1), "heldout_gain": round(v["heldout_gain"][-1], 4)}
                      for k, v in per.items()}))


if __name__ == "__main__":
    main()
