"""Running the experiment's arms: every (arm, seed) not finished under ``OUT/arms/<arm>/seed<k>/`` (a training
run resumes from its last checkpoint), on embedded Ray or the configured cluster, then the report."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

from multiverse.launch.config import ConfigError, RunConfig, load_config
from multiverse.launch.experiment.config import Experiment, game_ids
from multiverse.launch.experiment.report import report, write_json
from multiverse.launch.plot import read_csv

__all__ = ["machine", "run_generalization"]


def _lm_config(exp: Experiment, arm: str, seed: int, root: Path) -> RunConfig:
    tree = exp.train.model_dump(mode="json")
    tree["model"]["seed"] = seed
    tree["envs"]["eval_split"] = "both"
    tree["envs"]["randomize"] = arm != "no_randomization"
    if arm == "ppo_value":  # GAE on a value head (null: on for ppo) in place of the group mean
        tree["algorithm"].update(name="ppo", value_head=None)
    # the untrained policy's evaluation: zero-shot's numbers come from the multiverse arm's first seed. The other
    # seeds', the ablation's and the value head's would repeat it episode for episode: greedy, on the same fixed
    # evaluation seeds, with LoRA's B matrices at zero (and a new value head leaves the scores as they were)
    tree["run"].update(seed=seed, root=str(root), name=f"seed{seed}", record_eval=True, progress=False,
                       eval_episodes=exp.settings.eval_episodes,
                       eval_before=arm == "zero_shot" or (arm == "multiverse" and seed == exp.zero_shot_seed),
                       max_env_steps=exp.settings.env_steps if arm != "zero_shot" else None)
    if arm == "zero_shot":
        tree["run"]["iterations"] = 0
    return load_config(None, base=tree, check_envs=False)


def _run_lm(exp: Experiment, arm: str, seed: int, where: Path) -> dict[str, Any]:
    from multiverse.launch.rundir import RunDir
    from multiverse.launch.train import train

    config = _lm_config(exp, arm, seed, where.parent)
    start = time.perf_counter()
    resume = None
    if where.exists():
        if RunDir(where).latest_checkpoint() is not None:
            resume = where
        else:  # started, stopped before its first checkpoint: nothing in it that a new start does not remake
            shutil.rmtree(where)
    train(config, resume=resume, config_name=f"{arm}-seed{seed}")
    rows = read_csv(where / "metrics.csv")
    steps = int(float(rows[-1]["perf/total_env_steps"])) if rows else 0
    seconds = sum(float(r["perf/iteration_s"]) for r in rows)
    return {"arm": arm, "seed": seed, "env_steps": steps, "iterations": len(rows), "train_wall_s": seconds,
            "wall_s": time.perf_counter() - start, "resumed": resume is not None}


def _run_ppo(exp: Experiment, seed: int, where: Path) -> dict[str, Any]:
    from multiverse.agents.loop import EVAL_SEED_BASE
    from multiverse.launch.baseline import train_and_evaluate_ppo

    s, cfg = exp.settings, exp.train
    games = game_ids(cfg.env_ids())
    start = time.perf_counter()
    parts = []
    for env_id in games:
        pins = cfg.envs.params.get(env_id)
        sets = {split: [(EVAL_SEED_BASE + i, {"split": split, **({"params": dict(pins)} if pins else {})})
                        for i in range(s.eval_episodes)] for split in ("train", "heldout")}
        out = where / env_id.replace("/", "_")
        if out.exists():
            shutil.rmtree(out)  # an unfinished game's run: RLlib keeps no checkpoint here, so it starts over
        parts.append(train_and_evaluate_ppo(
            env_id, env_steps=max(1, s.env_steps // len(games)), seed=seed, eval_every_steps=s.ppo.eval_every_steps,
            eval_sets=sets, out=out, max_steps=cfg.rollout.max_steps,
            ppo=s.ppo.model_dump(exclude={"eval_every_steps"}),
            train_options={"split": "train", **({"params": dict(pins)} if pins else {})}))
    return {"arm": "rllib_ppo", "seed": seed, "env_steps": sum(p["env_steps"] for p in parts),
            "iterations": sum(p["iterations"] for p in parts), "train_wall_s": sum(p["train_wall_s"] for p in parts),
            "wall_s": time.perf_counter() - start, "games": parts}


def run_generalization(exp: Experiment, out: str | Path, *, log: Any = print) -> dict[str, Any]:
    """Run every (arm, seed) not finished yet under ``out``, then write the report; returns report.json's dict."""
    import ray

    from multiverse.launch.cluster import init_ray

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    resolved = {"experiment": exp.settings.model_dump(mode="json"), "train": exp.train.model_dump(mode="json"),
                "budget": exp.budget, "config": exp.source, "command": _command(), "machine": machine()}
    previous = out / "experiment.json"
    if previous.exists():  # more arms or seeds may join; anything else must match what the runs there used
        before = json.loads(previous.read_text())

        def same(d: dict[str, Any]) -> Any:
            return {k: v for k, v in d.get("experiment", {}).items() if k not in ("arms", "seeds")}, d.get("train")

        if same(before) != same(resolved):
            raise ConfigError(f"{out} holds an experiment with other settings ({previous}); resume it with the same "
                              "config, overrides and --budget (more arms or seeds are fine), or pass a new --out")
    write_json(previous, resolved)
    s = exp.settings
    jobs = [(arm, seed) for arm in ("multiverse", "no_randomization", "ppo_value", "zero_shot", "rllib_ppo")
            if arm in s.arms
            for seed in s.seeds]
    todo = []
    for arm, seed in jobs:
        if (out / "arms" / arm / f"seed{seed}" / "result.json").exists():
            log(f"experiment: {arm} seed {seed}: done before, kept")
        elif not (arm == "zero_shot" and "multiverse" in s.arms):  # zero-shot's numbers: the multiverse arm's
            todo.append((arm, seed))                                 # evaluation at iteration 0
    ro = exp.train.rollout
    # Ray only when something is left to run: a finished experiment only writes its report again
    started, _ = init_ray(exp.train.ray.address, dashboard=False, num_cpus=exp.train.ray.num_cpus,
                          needed_cpus=ro.workers * ro.worker_cpus) if todo else (False, "")
    try:
        for arm, seed in todo:
            where = out / "arms" / arm / f"seed{seed}"
            log(f"experiment: {arm} seed {seed} ...")
            result = _run_ppo(exp, seed, where) if arm == "rllib_ppo" else _run_lm(exp, arm, seed, where)
            write_json(where / "result.json", result)
            log(f"experiment: {arm} seed {seed}: {result['env_steps']} env steps in {result['wall_s']:.0f} s")
    finally:
        if started:
            ray.shutdown()
    return report(out, exp)


def _command() -> str:
    import shlex
    import sys

    return " ".join(shlex.quote(a) for a in ["multiverse", *sys.argv[1:]]) if sys.argv else ""


def machine() -> dict[str, Any]:
    """What the figures were measured on: CPU model, usable cores, memory, GPU."""
    import platform

    import psutil
    import torch

    cpu = platform.processor() or "unknown"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"cpu": cpu, "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
            "memory_gib": round(psutil.virtual_memory().total / 2**30, 1), "gpu": gpu, "torch": torch.__version__,
            "python": platform.python_version()}
