"""Ray overhead: env steps/s of the same rollout work in-process vs. 1 and 2 Ray rollout workers, per core.

The work is a fixed list of episodes (groups of the same env, seed and
parameters, as in training) played by the policy with ``run_episodes``:

* in-process: one process, one torch thread, envs and policy side by side;
* Ray: embedded Ray with N ``RolloutWorker`` actors (``multiverse.launch.workers``),
  the episodes packed into tasks as ``multiverse train`` does, weights sent once
  through the object store.

Both are timed after a warm-up round (model loaded, Chromium launched, envs
made), best of ``--repeats``. Per core = steps/s / cores used (1 in-process, N
with N workers). Design goal: ``ray_vs_inprocess_per_core >= 0.9`` (the lowest
ratio over the env kinds and worker counts measured).

    .venv/bin/python bench/ray_overhead.py                          # default model, games and web, ~10 min
    .venv/bin/python bench/ray_overhead.py --model tiny-test --groups 4 --repeats 1 --out /tmp/r.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
WORK = {
    "games": {"games/Catch-v0": {"width": 5, "height": 6, "balls": 1}, "games/Maze-v0": None},
    "web": {"web/ClickButton-v0": None, "web/RadioChoice-v0": None},
}


def specs_for(kind: str, groups: int, group_size: int, seed: int) -> list[Any]:
    from multiverse.agents.rollout import EpisodeSpec

    out = []
    ids = list(WORK[kind])
    for g in range(groups):
        env_id = ids[g % len(ids)]
        params = WORK[kind][env_id]
        opts: dict[str, Any] = {"split": "train", **({"params": params} if params else {})}
        out += [EpisodeSpec(env_id, seed + g, opts)] * group_size
    return out


def tasks_for(specs: list[Any], group_size: int, groups_per_task: int, max_steps: int) -> list[Any]:
    from multiverse.launch.workers import Task

    per = group_size * groups_per_task
    return [Task(i, specs[k:k + per], seed=i, max_steps=max_steps) for i, k in enumerate(range(0, len(specs), per))]


def _best(windows: list[dict[str, Any]], cores: int) -> dict[str, Any]:
    """A mode's result: its best window's steps/s, also per core, and every window."""
    best = max(w["steps"] / w["seconds"] for w in windows)
    return {"cores": cores, "steps_per_s": best, "steps_per_s_per_core": best / cores, "windows": windows}


def in_process(args: argparse.Namespace, learner_cfg: Any, kind: str, part: tuple[int, int] = (0, 1),
               barrier: Any = None) -> dict[str, Any]:
    """Steps/s of the work in this process, with the same task packing as the workers.

    ``part=(i, n)``: only every n-th task from the i-th, for n copies side by side (see
    :func:`in_process_copies`); ``barrier`` lines their timed rounds up.
    """
    import torch

    import multiverse.envs as menvs
    from multiverse.agents.models import build_model
    from multiverse.agents.policy import Policy
    from multiverse.agents.rollout import run_episodes

    torch.set_num_threads(1)
    loaded = build_model(learner_cfg.model)
    policy = Policy(loaded.model, loaded.tokenizer, learner_cfg.policy).for_rollout()  # as a rollout worker's
    pools: dict[str, list[Any]] = {}

    def run_all(tasks: list[Any]) -> int:
        steps = 0
        for t in tasks:
            need: dict[str, int] = {}
            for s in t.specs:
                need[s.env_id] = need.get(s.env_id, 0) + 1
            envs, ids = [], []
            for env_id, n in need.items():
                pool = pools.setdefault(env_id, [])
                while len(pool) < min(args.envs_per_worker, n):
                    pool.append(menvs.make(env_id))
                envs += pool[:min(args.envs_per_worker, n)]
                ids += [env_id] * min(args.envs_per_worker, n)
            eps = run_episodes(policy, envs, t.specs, seed=t.seed, max_steps=t.max_steps, env_ids=ids)
            steps += sum(e.length for e in eps)
        return steps

    run_all(tasks_for(specs_for(kind, len(WORK[kind]), args.group_size, 10_000), args.group_size, 1, args.max_steps))
    windows = []
    for r in range(args.repeats):
        tasks = tasks_for(specs_for(kind, args.groups, args.group_size, r * 1000), args.group_size,
                          args.groups_per_task, args.max_steps)[part[0]::part[1]]
        if barrier is not None:
            barrier.wait()
        start = time.perf_counter()
        steps = run_all(tasks)
        windows.append({"steps": steps, "seconds": time.perf_counter() - start})
    for pool in pools.values():
        for e in pool:
            e.close()
    return _best(windows, cores=1)


def _copy_main(cpu: int, args: argparse.Namespace, learner_cfg: Any, kind: str, part: tuple[int, int],
               barrier: Any, out: Any) -> None:
    os.sched_setaffinity(0, {cpu})
    out.put((part[0], in_process(args, learner_cfg, kind, part, barrier)))


def in_process_copies(args: argparse.Namespace, learner_cfg: Any, kind: str, cpus: list[int]) -> dict[str, Any]:
    """The same work split over one plain process per CPU (no Ray), rounds started together.

    The fair baseline for N workers on N CPUs that are not N independent cores (this sandbox's two
    vCPUs are hyperthreads of one core): steps/s of a round = all copies' steps / the slowest copy's time.
    """
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    n, barrier, out = len(cpus), ctx.Barrier(len(cpus)), ctx.Queue()
    procs = [ctx.Process(target=_copy_main, args=(cpu, args, learner_cfg, kind, (i, n), barrier, out))
             for i, cpu in enumerate(cpus)]
    for proc in procs:
        proc.start()
    parts = dict(out.get() for _ in procs)
    for proc in procs:
        proc.join()
    windows = [{"steps": sum(parts[i]["windows"][r]["steps"] for i in parts),
                "seconds": max(parts[i]["windows"][r]["seconds"] for i in parts)} for r in range(args.repeats)]
    return _best(windows, cores=n)


def with_ray(args: argparse.Namespace, learner_cfg: Any, kind: str, workers: int) -> dict[str, Any]:
    import ray

    from multiverse.launch.cluster import init_ray
    from multiverse.launch.workers import WorkerPool

    init_ray(None, dashboard=False, num_cpus=workers, needed_cpus=workers)
    try:
        kwargs = {"model": dataclasses.asdict(learner_cfg.model), "policy": dataclasses.asdict(learner_cfg.policy),
                  "value_head": False, "envs_per_id": args.envs_per_worker, "torch_threads": 1}
        pool = WorkerPool(workers, kwargs, num_cpus=1, torch_threads=1, max_restarts=0)
        from multiverse.agents.learner import Learner

        pool.broadcast(Learner(learner_cfg).get_weights())
        warm = tasks_for(specs_for(kind, len(WORK[kind]) * workers, args.group_size, 10_000), args.group_size, 1,
                         args.max_steps)
        pool.run(warm)  # every worker: model built, weights loaded, Chromium up, envs made
        windows = []
        for r in range(args.repeats):
            tasks = tasks_for(specs_for(kind, args.groups, args.group_size, r * 1000), args.group_size,
                              args.groups_per_task, args.max_steps)
            start = time.perf_counter()
            results, stats = pool.run(tasks)
            seconds = time.perf_counter() - start
            windows.append({"steps": sum(x.env_steps for x in results if x), "seconds": seconds, **stats})
        pool.close()
    finally:
        ray.shutdown()
    return _best(windows, cores=workers)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="default", help="'default' (the packaged model) or 'tiny-test'")
    p.add_argument("--kinds", nargs="+", default=["games", "web"], choices=list(WORK))
    p.add_argument("--workers", nargs="+", type=int, default=[1, 2])
    p.add_argument("--groups", type=int, default=16, help="groups per timed round")
    p.add_argument("--group-size", type=int, default=4)
    p.add_argument("--groups-per-task", type=int, default=2)
    p.add_argument("--envs-per-worker", type=int, default=8)
    p.add_argument("--max-steps", type=int, default=8)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--cpus", default=None, help="CPUs to pin to, e.g. '0,1' (default: the first max(workers) CPUs)")
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "ray_overhead.json"))
    args = p.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    cpus = [int(c) for c in args.cpus.split(",")] if args.cpus else sorted(os.sched_getaffinity(0))[:max(args.workers)]
    if len(cpus) < max(args.workers):
        sys.exit(f"need {max(args.workers)} CPUs for {max(args.workers)} workers, have {cpus}")

    from multiverse.agents.learner import LearnerConfig
    from multiverse.agents.models import ModelConfig
    from multiverse.agents.policy import PolicyConfig
    from multiverse.agents.prompt import PromptConfig

    learner_cfg = LearnerConfig(model=ModelConfig(name=args.model, lora=True),
                                policy=PolicyConfig(prompt=PromptConfig(history_steps=0)))
    load_start = os.getloadavg()
    results: dict[str, Any] = {}
    ratios: dict[str, float] = {}
    same_cpu_ratios: dict[str, float] = {}
    for kind in args.kinds:
        os.sched_setaffinity(0, {cpus[0]})  # in-process: one core (Chromium inherits it)
        base = in_process(args, learner_cfg, kind)
        results[kind] = {"inprocess": base}
        for n in args.workers:
            os.sched_setaffinity(0, set(cpus[:n]))  # Ray and its workers inherit the affinity
            r = with_ray(args, learner_cfg, kind, n)
            r["ratio_vs_inprocess_per_core"] = r["steps_per_s_per_core"] / base["steps_per_s_per_core"]
            results[kind][f"ray_{n}_workers"] = r
            ratios[f"{kind}/{n}"] = r["ratio_vs_inprocess_per_core"]
            print(f"{kind}: in-process {base['steps_per_s']:.2f} steps/s; {n} Ray workers {r['steps_per_s']:.2f} "
                  f"steps/s = {r['steps_per_s_per_core']:.2f} per core, ratio {r['ratio_vs_inprocess_per_core']:.2f}",
                  flush=True)
            if n > 1:
                same = in_process_copies(args, learner_cfg, kind, cpus[:n])
                results[kind][f"inprocess_{n}_copies"] = same
                r["ratio_vs_inprocess_same_cpus"] = r["steps_per_s"] / same["steps_per_s"]
                same_cpu_ratios[f"{kind}/{n}"] = r["ratio_vs_inprocess_same_cpus"]
                print(f"{kind}: {n} plain processes {same['steps_per_s']:.2f} steps/s on the same CPUs; "
                      f"{n} Ray workers / them = {r['ratio_vs_inprocess_same_cpus']:.2f}", flush=True)
    out = {
        "ray_vs_inprocess_per_core": min(ratios.values()) if ratios else None,
        "ratios": ratios,
        # N workers against N plain processes on the same N CPUs: Ray's own cost, without the CPUs' scaling.
        "ray_vs_inprocess_same_cpus": min(same_cpu_ratios.values()) if same_cpu_ratios else None,
        "same_cpu_ratios": same_cpu_ratios,
        "goal": 0.9,
        "results": results,
        "config": vars(args) | {"cpus": cpus},
        "machine": {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count(),
                    "loadavg_start": load_start, "loadavg_end": os.getloadavg()},
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(f"ray_vs_inprocess_per_core = {out['ray_vs_inprocess_per_core']:.2f} (goal >= 0.9); wrote {args.out}")


if __name__ == "__main__":
    main()
