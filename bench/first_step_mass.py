"""How much of the untrained policy's first-step probability lands on the right action, per scoring form.

RL can only reinforce what the policy samples. For each env, split and scoring (``PromptConfig.action_text``
x ``PolicyConfig.score_norm``), the default model scores the first turn of ``--seeds`` episodes (the
evaluation seeds, 1,000,000 + i) and the script records the mean probability of the env's oracle action
(at temperature 1, what a rollout samples from) and how often the greedy choice is the oracle's. One
forward per turn and scoring, no env steps after the reset: minutes, where a success measurement
(``zero_shot_descriptions.py``) takes hours. Pins as the main job's (``local.yaml``) where it has them.

    .venv/bin/python bench/first_step_mass.py                      # -> bench/results/first_step_mass.json
    .venv/bin/python bench/first_step_mass.py --envs web/RadioChoice-v0 --seeds 4 --out /tmp/m.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SCORINGS = (("action", "sum"), ("action_then_description", "sum"), ("action_then_description", "mean"),
            ("description_then_action", "sum"), ("description_then_action", "mean"))
ENVS = ("games/Catch-v0", "web/ClickButton-v0", "web/ClickLink-v0", "web/RadioChoice-v0", "web/Dropdown-v0",
        "web/Checkboxes-v0", "web/Tabs-v0")


def _oracle_index(env: Any, legal: list[str]) -> int | None:
    action = env.unwrapped.oracle_action()
    if isinstance(action, int):
        return action
    return legal.index(action) if action in legal else None


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--envs", default=",".join(ENVS), help="comma-separated env ids")
    p.add_argument("--seeds", type=int, default=16, help="first turns per env and split")
    p.add_argument("--threads", type=int, default=2, help="torch threads")
    p.add_argument("--out", default=str(ROOT / "bench/results/first_step_mass.json"))
    args = p.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import torch

    import multiverse.envs as menvs
    from multiverse.agents.loop import EVAL_SEED_BASE
    from multiverse.agents.models import ModelConfig, build_model
    from multiverse.agents.policy import Policy, PolicyConfig
    from multiverse.agents.prompt import PromptConfig, Turn
    from multiverse.launch.config import load_config

    import _common

    torch.set_num_threads(args.threads)
    machine = _common.machine_info(-1, ("torch", "transformers", "multiverse-rl"))
    loaded = build_model(ModelConfig(name="default", lora=False, device="cpu"))
    policies = {s: Policy(loaded.model, loaded.tokenizer,
                          PolicyConfig(score_norm=s[1], prompt=PromptConfig(history_steps=0, action_text=s[0])))
                for s in SCORINGS}
    local_pins = load_config("local").envs.params  # the main job's pins
    rows, start = [], time.perf_counter()
    for env_id in args.envs.split(","):
        env, pins = menvs.make(env_id), dict(local_pins.get(env_id, {}))
        try:
            for split in ("train", "heldout"):
                mass = {s: [] for s in SCORINGS}
                hits = {s: [] for s in SCORINGS}
                for i in range(args.seeds):
                    obs, info = env.reset(seed=EVAL_SEED_BASE + i, options={"split": split, **({"params": pins} if pins else {})})
                    k = _oracle_index(env, list(info["legal_actions"]))
                    if k is None:
                        continue
                    turn = Turn.from_env(obs, info)
                    for s, policy in policies.items():
                        d = policy.act([turn], greedy=True)[0]
                        mass[s].append(d.probs[k])
                        hits[s].append(float(d.index == k))
                for s in SCORINGS:
                    n = len(mass[s])
                    rows.append({"env": env_id, "split": split, "action_text": s[0], "score_norm": s[1], "turns": n,
                                 "oracle_mass": round(sum(mass[s]) / max(n, 1), 3),
                                 "greedy_is_oracle": round(sum(hits[s]) / max(n, 1), 3)})
                    print(f"{env_id:22s} {split:7s} {s[0]:24s} {s[1]:4s} mass {rows[-1]['oracle_mass']:.3f}  "
                          f"greedy {rows[-1]['greedy_is_oracle']:.3f}  ({n} turns)", flush=True)
        finally:
            env.close()
    mean = {f"{a} {n}": round(sum(r["oracle_mass"] for r in rows if (r["action_text"], r["score_norm"]) == (a, n))
                              / max(len(rows) // len(SCORINGS), 1), 3) for a, n in SCORINGS}
    out = {"setup": {"model": "default", "seeds": args.seeds, "threads": args.threads, "history_steps": 0,
                     "temperature": 1.0, "pins": "launch/configs/local.yaml"},
           "machine": machine, "loadavg_at_end": list(os.getloadavg()),
           "seconds": round(time.perf_counter() - start, 1), "mean_oracle_mass": mean, "rows": rows}
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(mean, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
