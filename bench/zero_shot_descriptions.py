"""Zero-shot greedy success of the packaged default model with and without action descriptions.

For each env (every game and every own web task unless ``--envs`` says otherwise), each split (the
train and the held-out randomization, as the main job's evaluation samples them: ``{"split": ...}``,
no pins) and each scoring form (``PromptConfig.action_text``: ``action``, the bare action string;
``action_then_description``, ``click(3) button "Save"``; ``description_then_action``; each optionally
``/mean``, ``PolicyConfig.score_norm``: the candidate's mean token log-prob instead of the sum), ``--episodes``
greedy episodes on the evaluation seeds (1,000,000 + i, as ``multiverse train`` evaluates) of the
untrained SmolLM2-135M-Instruct, capped at ``--max-steps`` steps (the main job's ``rollout.max_steps``:
its evaluation counts success within that many steps). The same seeds for every form, so the forms are
compared on the same episodes.

Results go to the JSON cell by cell (``--resume`` skips the cells already there, so a long
measurement runs in pieces); ``--minutes`` stops starting new envs after that long, and the JSON says
which envs were measured and which were not. The load average is recorded at the start and the end.

    .venv/bin/python bench/zero_shot_descriptions.py                  # all envs, 32 episodes: hours here
    .venv/bin/python bench/zero_shot_descriptions.py --quick --out /tmp/zs.json
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
TEXTS = ("action", "action_then_description", "description_then_action")
FORMS = tuple(f"{t}{norm}" for t in TEXTS for norm in ("", "/mean"))  # "" is score_norm sum
DEFAULT_FORMS = ("action", "action_then_description", "description_then_action/mean")  # bare, library, main job


def _env_ids(kinds: str) -> list[str]:
    import multiverse.envs as menvs

    games = [s.id for s in menvs.list_envs(kind="game")]
    web = [s.id for s in menvs.list_envs(kind="web") if s.id.startswith("web/")]
    return {"games": games, "web": web, "all": games + web}[kinds]


def _measure(policy: Any, env_id: str, split: str, episodes: int, max_steps: int, batch: int) -> dict[str, Any]:
    import multiverse.envs as menvs
    from multiverse.agents.loop import EVAL_SEED_BASE
    from multiverse.agents.rollout import EpisodeSpec, run_episodes

    envs = [menvs.make(env_id) for _ in range(min(batch, episodes))]
    specs = [EpisodeSpec(env_id, EVAL_SEED_BASE + i, {"split": split}) for i in range(episodes)]
    start = time.perf_counter()
    try:
        eps = run_episodes(policy, envs, specs, greedy=True, max_steps=max_steps)
    finally:
        for env in envs:
            env.close()
    usable = [e for e in eps if not e.infra_error]
    return {"env": env_id, "split": split, "episodes": len(usable), "infra_errors": len(eps) - len(usable),
            "success": sum(e.success for e in usable) / max(len(usable), 1),
            "mean_length": sum(e.length for e in usable) / max(len(usable), 1),
            "steps": sum(e.length for e in eps), "seconds": round(time.perf_counter() - start, 1)}


def _summary(cells: list[dict[str, Any]], forms: list[str]) -> dict[str, Any]:
    """Mean success per form over the (env, split) pairs measured with every form, and the winner."""
    keys = {(c["env"], c["split"]) for c in cells}
    complete = sorted(k for k in keys if all(any((c["env"], c["split"], c["form"]) == (*k, f) for c in cells)
                                             for f in forms))
    table = {f"{env} {split}": {c["form"]: round(c["success"], 3) for c in cells if (c["env"], c["split"]) == (env, split)}
             for env, split in complete}
    mean = {f: round(sum(row[f] for row in table.values()) / max(len(table), 1), 4) for f in forms}
    by_split = {split: {f: round(sum(row[f] for k, row in table.items() if k.endswith(split)) /
                             max(sum(k.endswith(split) for k in table), 1), 4) for f in forms}
                for split in ("train", "heldout")}
    return {"table": table, "mean_success": mean, "mean_success_by_split": by_split,
            "winner": max(forms, key=lambda f: mean[f]) if table else None}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="default", help="model name (agents/models.py); tiny-test for a smoke run")
    p.add_argument("--envs", default="all", help="'all', 'games', 'web' or a comma-separated list of env ids")
    p.add_argument("--forms", default=",".join(DEFAULT_FORMS), help=f"comma-separated scoring forms of {FORMS}")
    p.add_argument("--episodes", type=int, default=32, help="greedy episodes per env, split and form")
    p.add_argument("--max-steps", type=int, default=8, help="steps per episode at most (the main job's rollout.max_steps)")
    p.add_argument("--batch", type=int, default=8, help="env instances stepped together (one policy call per step)")
    p.add_argument("--threads", type=int, default=2, help="torch threads")
    p.add_argument("--minutes", type=float, default=None, help="start no new env after this many minutes")
    p.add_argument("--resume", action="store_true", help="keep the cells already in --out and measure the rest")
    p.add_argument("--quick", action="store_true", help="a smoke run: tiny-test model, 2 envs, 2 episodes, 2 steps")
    p.add_argument("--out", default=str(ROOT / "bench/results/zero_shot_descriptions.json"))
    args = p.parse_args(argv)
    if args.quick:
        args.model, args.episodes, args.max_steps = "tiny-test", 2, 2
        args.envs = args.envs if args.envs != "all" else "games/Catch-v0,web/ClickButton-v0"
    forms = args.forms.split(",")
    unknown = [f for f in forms if f not in FORMS]
    if unknown:
        sys.exit(f"unknown --forms {unknown}; use some of {list(FORMS)}")
    env_ids = args.envs.split(",") if "/" in args.envs else _env_ids(args.envs)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import torch

    from multiverse.agents.loop import EVAL_SEED_BASE
    from multiverse.agents.models import ModelConfig, build_model
    from multiverse.agents.policy import Policy, PolicyConfig
    from multiverse.agents.prompt import PromptConfig

    import _common

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    # descriptions v2: a web element's description carries its state (radio "Blue" checked)
    setup = {"model": args.model, "episodes": args.episodes, "max_steps": args.max_steps, "history_steps": 0,
             "greedy": True, "seeds": f"{EVAL_SEED_BASE}..{EVAL_SEED_BASE + args.episodes - 1}", "threads": args.threads,
             "descriptions": 2}
    old = json.loads(out.read_text()) if args.resume and out.exists() else {}
    if old and old.get("setup") != setup:
        sys.exit(f"{out} was measured with {old.get('setup')}, not {setup}: drop --resume or pick another --out")
    cells: list[dict[str, Any]] = list(old.get("cells", []))
    machine = old.get("machine") or _common.machine_info(-1, ("torch", "transformers", "multiverse-rl"))
    loaded = build_model(ModelConfig(name=args.model, lora=False, device="cpu"))
    # history_steps 0 as the main job (local.yaml): these envs show their whole state
    policies = {f: Policy(loaded.model, loaded.tokenizer,
                          PolicyConfig(score_norm="mean" if f.endswith("/mean") else "sum",
                                       prompt=PromptConfig(history_steps=0, action_text=f.split("/")[0])))
                for f in forms}
    start = time.perf_counter()
    for env_id in env_ids:
        if args.minutes is not None and time.perf_counter() - start > 60 * args.minutes:
            break
        for split in ("train", "heldout"):
            for form in forms:
                if any((c["env"], c["split"], c["form"]) == (env_id, split, form) for c in cells):
                    continue
                cell = {**_measure(policies[form], env_id, split, args.episodes, args.max_steps, args.batch), "form": form}
                cells.append(cell)
                print(f"{env_id:28s} {split:8s} {form:30s} success {cell['success']:.3f} over {cell['episodes']} "
                      f"episodes ({cell['steps']} steps, {cell['seconds']:.0f} s)", flush=True)
                summary = _summary(cells, forms)
                measured = sorted({key.split()[0] for key in summary["table"]})
                result = {"setup": setup, "machine": machine, "loadavg_at_end": list(os.getloadavg()),
                          "envs_measured": measured, "envs_not_measured": [e for e in env_ids if e not in measured],
                          **summary, "cells": cells}
                out.parent.mkdir(parents=True, exist_ok=True)
                tmp = out.with_name(f".{out.name}.tmp")
                tmp.write_text(json.dumps(result, indent=1) + "\n")
                os.replace(tmp, out)
    final = json.loads(out.read_text()) if out.exists() else {}
    print(json.dumps({k: final.get(k) for k in ("mean_success", "mean_success_by_split", "winner", "envs_not_measured")}))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
