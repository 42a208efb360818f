"""Ray overhead: env steps/s of the same rollout work in plain processes vs. 1 and 2 Ray rollout workers.

The work is a fixed list of episodes (groups of the same env, seed and
parameters, as in training), packed into tasks as ``multiverse train`` packs
them and played by a :class:`~multiverse.launch.workers.RolloutWorker`
(``run_episodes`` over its own envs, policy ``.for_rollout()``, one torch
thread), in four modes per env kind, N = 1 and 2:

* ``inprocess_N``: N plain processes (no Ray), the i-th pinned to CPU i, each
  running every N-th task; a window's time is the slower one's;
* ``ray_N``: N Ray worker actors (``WorkerPool``, embedded Ray), worker i pinned
  to CPU i before it makes envs or launches Chromium, the tasks handed out by
  ``WorkerPool.run``, weights broadcast once through the object store.

So ``ray_N`` against ``inprocess_N`` is Ray's own cost at equal cores, without
how well the CPUs scale (this sandbox's two vCPUs are hyperthreads of one core).

This host's speed swings ~2x within minutes, so the modes are not timed one
after another: every mode is set up once and kept alive, and the rounds
interleave them (each pair ``inprocess_N``/``ray_N`` back to back, the pairs'
order rotated and the order within a pair flipped from round to round, so that
after 4 rounds every mode has been in every position). Each round plays new
episodes (its own seeds), the same ones in every mode. The ratio is taken per
round (``ray_N`` steps/s / ``inprocess_N`` steps/s of the same round) and the
median over rounds reported. One untimed warm-up round first (model built,
weights loaded, Chromium launched, envs made). Design goal:
``ray_vs_inprocess_per_core >= 0.9`` (the lowest median ratio over kinds and N).

Runtime with the default model: about 20-25 min on this host (2 kinds x (1 warm-up
+ 4 timed rounds) x 4 windows of 15-60 s with ``--groups 8``, and a minute of setup).

    .venv/bin/python bench/ray_overhead.py                          # default model, games and web
    .venv/bin/python bench/ray_overhead.py --model tiny-test --groups 4 --rounds 2 --out /tmp/r.json
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import platform
import signal
import statistics
import sys
import time
import traceback
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
WORK = {
    "games": {"games/Catch-v0": {"width": 5, "height": 6, "balls": 1}, "games/Maze-v0": None},
    "web": {"web/ClickButton-v0": None, "web/RadioChoice-v0": None},
}
WARMUP_SEED = 1_000_000  # the warm-up round's episodes are none of the timed rounds'
DEFINITION = ("ratio = (N Ray workers' steps/s) / (N plain processes' steps/s) on the same N CPUs, one worker or "
              "process pinned per CPU, taken per round and the median over rounds; equal cores, so per core. "
              "N=1: one Ray worker vs one plain process on one CPU. ray_vs_inprocess_per_core = the lowest "
              "over kinds and N.")
SCALING_DEFINITION = ("scaling_ratios = (ray_N median steps/s / N) / (inprocess_1 median steps/s): per core against "
                      "one plain process on one CPU. For N > 1 it includes how N hyperthreads of one core scale, "
                      "which is not Ray's cost (that is `ratios`).")


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
    from multiverse.agents.rollout import Task

    per = group_size * groups_per_task
    return [Task(i, specs[k:k + per], seed=i, max_steps=max_steps) for i, k in enumerate(range(0, len(specs), per))]


# --------------------------------------------------------------------------- pinning and process hygiene


def _threads(pid: int) -> list[int]:
    """The thread ids of process ``pid`` (none once it has ended)."""
    try:
        return [int(tid) for tid in os.listdir(f"/proc/{pid}/task")]
    except OSError:
        return []


def _pin_threads(pid: int, cpus: set[int]) -> int:
    """Pin every thread of process ``pid`` to ``cpus``; returns how many were not pinned so."""
    moved = 0
    for tid in _threads(pid):
        with contextlib.suppress(OSError):  # a thread that ended meanwhile
            if os.sched_getaffinity(tid) != cpus:
                os.sched_setaffinity(tid, cpus)
                moved += 1
    return moved


def _threads_cpus(pid: int) -> set[int]:
    """The CPUs any thread of process ``pid`` may run on."""
    out: set[int] = set()
    for tid in _threads(pid):
        with contextlib.suppress(OSError):
            out |= os.sched_getaffinity(tid)
    return out


def pin_process(cpus: set[int]) -> list[int]:
    """Pin every thread of this process to ``cpus``; returns the CPUs its threads may now use.

    ``sched_setaffinity(0)`` moves only the calling thread, and a Ray worker already has gRPC and
    io threads when we get to it; threads and processes started later (Chromium) inherit the pin.
    """
    _pin_threads(os.getpid(), cpus)
    return sorted(_threads_cpus(os.getpid()))


def pin_tree(pid: int, cpu: int) -> int:
    """Pin every thread of process ``pid`` and of its descendants to ``cpu``; returns how many were not.

    Children inherit a pin, but Chromium's GPU process (software rendering, this Chromium 156) pins two
    worker threads ("Thread<00>", "Thread<01>") to CPU 0 whatever its own affinity, so a process held to
    CPU 1 would have part of its browser on CPU 0. The driver puts them back between windows.
    """
    import psutil

    try:
        procs = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    except psutil.Error:
        return 0
    return sum(_pin_threads(proc.pid, {cpu}) for proc in procs)


def affinity_of(pid: int) -> dict[str, Any]:
    """Where process ``pid`` and its descendants (a web env's Chromium) may run: the check that pinning held."""
    import psutil

    kids = psutil.Process(pid).children(recursive=True)
    kid_cpus: set[int] = set()
    for k in kids:
        kid_cpus |= _threads_cpus(k.pid)
    return {"pid": pid, "cpus": sorted(_threads_cpus(pid)), "descendants": len(kids),
            "descendant_cpus": sorted(kid_cpus)}


def descendants(pids: list[int]) -> list[Any]:
    """psutil handles of ``pids`` and all their descendants, taken while they are alive (see :func:`reap`)."""
    import psutil

    out = []
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            proc = psutil.Process(pid)
            out += [proc, *proc.children(recursive=True)]
    return out


def exit_on_sigterm() -> None:
    """SIGTERM (a timeout, a job runner) unwinds like Ctrl-C, through the cleanup in :func:`main`.

    Called again once Ray is up: its core worker installs a handler that ends the process on the spot."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


def started_here() -> list[Any]:
    """Every process this one started, directly or not (plain processes, Ray's, Chromium), except
    multiprocessing's resource tracker, which exits with us."""
    import psutil

    out = []
    for proc in descendants([os.getpid()])[1:]:
        with contextlib.suppress(psutil.Error):
            if not any("resource_tracker" in a for a in proc.cmdline()):
                out.append(proc)
    return out


def reap(procs: list[Any], grace: float = 10.0) -> None:
    """Kill what is left of our servers, Ray workers and their Chromium after shutdown (by handle, so a pid
    reused meanwhile is not touched): an interrupted run must not leave browsers behind."""
    import psutil

    _, alive = psutil.wait_procs(list({p.pid: p for p in procs}.values()), timeout=grace)
    if not alive:
        return
    # with their children started since the list was made (Ray's agents, when ray.init itself was interrupted)
    alive = list({p.pid: p for p in alive + descendants([p.pid for p in alive])}.values())
    for p in alive:
        with contextlib.suppress(psutil.Error):
            p.terminate()
    _, still = psutil.wait_procs(alive, timeout=5)
    for p in still:
        with contextlib.suppress(psutil.Error):
            p.kill()
    psutil.wait_procs(still, timeout=5)
    print(f"stopped {len(alive)} leftover processes: {sorted(p.pid for p in alive)}", file=sys.stderr, flush=True)


def _close_browser() -> None:
    """Shut this process's Chromium down, if it launched one (without launching one to find out)."""
    mod = sys.modules.get("multiverse.envs.web.browser")
    host = mod.BrowserHost.current() if mod is not None else None
    if host is not None:
        host.shutdown()
        host.thread.join(timeout=10)  # the loop stopped: the atexit shutdown has nothing left to do


# --------------------------------------------------------------------------- plain processes


def _server_main(cpu: int, worker_kwargs: dict[str, Any], conn: Any) -> None:
    """A plain process: one RolloutWorker object (no Ray) pinned to ``cpu``, serving commands from the driver.

    ``("weights", w)`` loads weights; ``("run", tasks)`` answers ``("done", steps, seconds)`` timed here, around
    the tasks only; ``("stop",)`` closes envs and Chromium and exits. SIGTERM exits through the same cleanup.
    """
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    pin_process({cpu})
    from multiverse.launch.workers import THREAD_VARS

    for var in THREAD_VARS:
        os.environ[var] = "1"
    os.environ.update({"SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy", "TOKENIZERS_PARALLELISM": "false"})
    worker = None
    try:
        from multiverse.launch.workers import RolloutWorker

        worker = RolloutWorker(cpu, **worker_kwargs)
        conn.send(("ready", os.getpid()))
        while True:
            msg = conn.recv()
            if msg[0] == "stop":
                break
            try:
                if msg[0] == "weights":
                    worker.policy.set_weights(msg[1])
                    worker.version = 0
                    conn.send(("ok",))
                elif msg[0] == "run":
                    start = time.perf_counter()
                    steps = sum(worker.run(t, worker.version, []).env_steps for t in msg[1])
                    conn.send(("done", steps, time.perf_counter() - start))
            except Exception:  # the driver raises it, with this traceback
                conn.send(("error", traceback.format_exc()))
    except (EOFError, KeyboardInterrupt):
        pass  # the driver went away or Ctrl-C: clean up below
    except Exception:  # as above (the model could not be built, say)
        with contextlib.suppress(Exception):
            conn.send(("error", traceback.format_exc()))
    finally:
        if worker is not None:
            with contextlib.suppress(Exception):
                worker.close()
        _close_browser()


class PlainProcesses:
    """One plain rollout process per CPU, started once and kept for every window (spawn context)."""

    def __init__(self, cpus: list[int], worker_kwargs: dict[str, Any]) -> None:
        self.cpus, self.worker_kwargs = cpus, worker_kwargs
        self.procs: list[Any] = []
        self.conns: list[Any] = []
        self.pids: list[int] = []

    def start(self) -> None:
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        for cpu in self.cpus:
            here, there = ctx.Pipe()
            proc = ctx.Process(target=_server_main, args=(cpu, self.worker_kwargs, there), daemon=True,
                               name=f"ray_overhead-plain-cpu{cpu}")
            proc.start()
            there.close()  # so that recv() sees EOF if the process dies
            self.procs.append(proc)
            self.conns.append(here)
        self.pids = [self._recv(i, "ready")[1] for i in range(len(self.cpus))]

    def _recv(self, i: int, want: str) -> tuple[Any, ...]:
        try:
            msg = self.conns[i].recv()
        except EOFError:
            raise RuntimeError(f"the plain process on CPU {self.cpus[i]} died "
                               f"(exit code {self.procs[i].exitcode})") from None
        if msg[0] == "error":
            raise RuntimeError(f"the plain process on CPU {self.cpus[i]} failed:\n{msg[1]}")
        assert msg[0] == want, msg
        return msg

    def load_weights(self, weights: dict[str, Any]) -> None:
        for conn in self.conns:
            conn.send(("weights", weights))
        for i in range(len(self.conns)):
            self._recv(i, "ok")

    def run(self, n: int, tasks: list[Any]) -> dict[str, Any]:
        """The first ``n`` processes, process i with tasks[i::n], started together: all steps / the slower's time."""
        start = time.perf_counter()
        for i in range(n):
            self.conns[i].send(("run", tasks[i::n]))
        parts = [self._recv(i, "done") for i in range(n)]
        wall = time.perf_counter() - start
        return {"steps": sum(p[1] for p in parts), "seconds": max(p[2] for p in parts),
                "part_steps": [p[1] for p in parts], "part_seconds": [p[2] for p in parts], "wall_seconds": wall}

    def close(self) -> None:
        for conn in self.conns:
            with contextlib.suppress(OSError):
                conn.send(("stop",))
        for proc in self.procs:
            proc.join(timeout=30)  # a process in the middle of a window (Ctrl-C) finishes it or is terminated
            if proc.is_alive():
                proc.terminate()  # SIGTERM: exits through its cleanup
                proc.join(timeout=15)
            if proc.is_alive():
                proc.kill()
                proc.join()
        for conn in self.conns:
            conn.close()


# --------------------------------------------------------------------------- Ray workers


def _pin_actor(worker: Any, cpus: set[int]) -> list[int]:
    """Run inside a Ray worker (``__ray_call__``): pin it before it makes envs or launches Chromium."""
    return pin_process(cpus)


def _close_actor(worker: Any) -> None:
    """Run inside a Ray worker: close its envs and Chromium before Ray kills the process (no atexit then)."""
    worker.close()
    _close_browser()


class RayWorkers:
    """Embedded Ray (its system processes on all the CPUs) and a pool of one worker per CPU, worker i on CPU i.

    ``ray_N`` uses the first N workers of the same pool, so that ``ray_1`` runs in worker 0 on CPU 0 like
    ``inprocess_1`` in plain process 0, and no mode has more warm processes than another.
    """

    def __init__(self, cpus: list[int], worker_kwargs: dict[str, Any]) -> None:
        self.cpus, self.worker_kwargs = cpus, worker_kwargs
        self.pool: Any = None
        self.views: dict[int, Any] = {}
        self.pids: list[int] = []

    def start(self, weights: dict[str, Any]) -> None:
        import ray

        from multiverse.launch.cluster import init_ray
        from multiverse.launch.workers import WorkerPool

        init_ray(None, dashboard=False, num_cpus=len(self.cpus), needed_cpus=len(self.cpus))
        exit_on_sigterm()
        self.pool = WorkerPool(len(self.cpus), self.worker_kwargs["config"], envs_per_id=self.worker_kwargs["envs_per_id"],
                               num_cpus=1, torch_threads=1, max_restarts=0)
        self.pids = self.pool.pids
        pinned = ray.get([h.__ray_call__.remote(_pin_actor, {cpu}) for h, cpu in zip(self.pool.handles, self.cpus)])
        for cpu, got in zip(self.cpus, pinned):
            if got != [cpu]:
                raise RuntimeError(f"Ray worker for CPU {cpu} could not be pinned: its threads may run on {got}")
        self.pool.broadcast(weights)
        for n in range(1, len(self.cpus) + 1):
            self.views[n] = self._first(n)

    def _first(self, n: int) -> Any:
        """The pool restricted to its first ``n`` workers (``WorkerPool.run`` hands tasks to ``handles``)."""
        if n == len(self.pool.handles):
            return self.pool
        view = copy.copy(self.pool)  # shares the broadcast weights' reference and version
        view.handles, view._ready = self.pool.handles[:n], self.pool._ready[:n]
        return view

    def run(self, n: int, tasks: list[Any]) -> dict[str, Any]:
        start = time.perf_counter()
        results, stats = self.views[n].run(tasks)
        seconds = time.perf_counter() - start
        return {"steps": sum(x.env_steps for x in results if x), "seconds": seconds, **stats}

    def close(self) -> None:
        import ray

        if self.pool is not None:
            with contextlib.suppress(Exception):
                ray.get([h.__ray_call__.remote(_close_actor) for h in self.pool.handles], timeout=30)
            self.pool.close()
        ray.shutdown()  # also when ray.init itself was interrupted: it stops what it had started


def shut_down(plain: PlainProcesses, ray_side: RayWorkers, leftovers: list[Any]) -> None:
    """Stop Ray and the plain processes, then kill whatever of ours is still running (an interrupted run)."""
    leftovers += started_here()  # while they are all up: Ray's processes, the workers' Chromium
    try:
        ray_side.close()
    finally:
        try:
            plain.close()
        finally:
            reap(leftovers)


# --------------------------------------------------------------------------- rounds


def round_order(workers: list[int], r: int) -> list[str]:
    """Round ``r``'s order of the modes: pairs (inprocess_N, ray_N) back to back, their order rotated every
    two rounds and flipped within the pair every other round, so a mode's position, and which of a pair goes
    first, do not bias the ratios. With N = 1, 2 and A B C D = inprocess_1 ray_1 inprocess_2 ray_2, rounds
    0-3 are A B C D, B A D C, C D A B, D C B A (then again)."""
    pairs = [[f"inprocess_{n}", f"ray_{n}"] for n in workers]
    k = (max(r, 0) // 2) % len(pairs)
    pairs = pairs[k:] + pairs[:k]
    return [m for p in pairs for m in (p[::-1] if r > 0 and r % 2 else p)]


def _spread(values: list[float]) -> dict[str, Any]:
    return {"rounds": values, "median": statistics.median(values), "min": min(values), "max": max(values)}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="default", help="'default' (the packaged model) or 'tiny-test'")
    p.add_argument("--kinds", nargs="+", default=["games", "web"], choices=list(WORK))
    p.add_argument("--workers", nargs="+", type=int, default=[1, 2])
    p.add_argument("--groups", type=int, default=8, help="groups of episodes per window (same in every mode)")
    p.add_argument("--group-size", type=int, default=4)
    p.add_argument("--groups-per-task", type=int, default=2)
    p.add_argument("--envs-per-worker", type=int, default=8)
    p.add_argument("--max-steps", type=int, default=8)
    p.add_argument("--rounds", type=int, default=4, help="timed rounds, each with one window of every mode")
    p.add_argument("--cpus", default=None,
                   help="CPUs, e.g. '0,1': worker/process i on the i-th (default: the first max(workers) CPUs)")
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "ray_overhead.json"))
    args = p.parse_args(argv)
    exit_on_sigterm()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    need = max(args.workers)
    cpus = [int(c) for c in args.cpus.split(",")] if args.cpus else sorted(os.sched_getaffinity(0))[:need]
    if len(cpus) < need:
        sys.exit(f"need {need} CPUs for {need} workers, have {cpus} (--cpus 1,1 runs them on one CPU, as a test)")
    cpus = cpus[:need]
    pin_process(set(cpus))  # the driver; Ray's raylet and GCS inherit this, and may use any of these CPUs

    from multiverse.agents.learner import Learner, LearnerConfig
    from multiverse.agents.models import ModelConfig
    from multiverse.agents.policy import PolicyConfig
    from multiverse.agents.prompt import PromptConfig

    learner_cfg = LearnerConfig(model=ModelConfig(name=args.model, lora=True),
                                policy=PolicyConfig(prompt=PromptConfig(history_steps=0)))
    worker_kwargs = {"config": learner_cfg, "envs_per_id": args.envs_per_worker, "torch_threads": 1}
    load_start = os.getloadavg()
    t0 = time.perf_counter()
    results: dict[str, Any] = {kind: {} for kind in args.kinds}
    orders: dict[str, list[list[str]]] = {kind: [] for kind in args.kinds}
    affinity: dict[str, Any] = {}
    leftovers: list[Any] = []
    plain, ray_side = PlainProcesses(cpus, worker_kwargs), RayWorkers(cpus, worker_kwargs)
    try:
        plain.start()
        weights = Learner(learner_cfg).get_weights()  # the same weights everywhere, sent once, not timed
        plain.load_weights(weights)
        ray_side.start(weights)
        del weights
        print(f"set up in {time.perf_counter() - t0:.0f} s: plain processes {plain.pids}, Ray workers "
              f"{ray_side.pids} on CPUs {cpus}", flush=True)

        def window(kind: str, mode: str, r: int, position: int, tasks: list[Any]) -> dict[str, Any]:
            n = int(mode.rsplit("_", 1)[1])
            load = os.getloadavg()[0]
            start = time.perf_counter() - t0
            w = (plain if mode.startswith("inprocess") else ray_side).run(n, tasks)
            w = {"round": r, "position": position, "steps_per_s": w["steps"] / w["seconds"], **w,
                 "started_s": round(start, 1), "loadavg_1min": load}
            label = "warm-up" if r < 0 else f"round {r}"
            print(f"{kind} {label}: {mode:<12} {w['steps']:4d} steps in {w['seconds']:6.1f} s = "
                  f"{w['steps_per_s']:6.2f} steps/s", flush=True)
            return w

        for kind in args.kinds:
            modes = round_order(args.workers, 0)
            res = results[kind] = {m: {"cores": int(m.rsplit("_", 1)[1]), "windows": []} for m in modes}
            warm = tasks_for(specs_for(kind, args.groups, args.group_size, WARMUP_SEED), args.group_size,
                             args.groups_per_task, args.max_steps)
            for i, mode in enumerate(modes):  # model built and weights loaded already; Chromium, envs here
                res[mode]["warmup"] = window(kind, mode, -1, i, warm)
            leftovers += descendants(plain.pids + ray_side.pids)  # Chromium, in case a close below misses it
            trees = {f"{who}_{i}": (cpu, pid)
                     for who, pids in (("plain_process", plain.pids), ("ray_worker", ray_side.pids))
                     for i, (cpu, pid) in enumerate(zip(cpus, pids))}
            repinned = dict.fromkeys(trees, 0)
            for r in range(args.rounds):
                for name, (cpu, pid) in trees.items():
                    repinned[name] += pin_tree(pid, cpu)
                if r == 0:  # after the warm-up round: every process and its Chromium, now that they exist
                    affinity[kind] = {name: {"cpu": cpu, **affinity_of(pid)} for name, (cpu, pid) in trees.items()}
                    for name, a in affinity[kind].items():
                        if a["cpus"] != [a["cpu"]] or set(a["descendant_cpus"]) - {a["cpu"]}:
                            print(f"WARNING: {name} is not held to CPU {a['cpu']}: {a}", file=sys.stderr, flush=True)
                order = round_order(args.workers, r)
                orders[kind].append(order)
                tasks = tasks_for(specs_for(kind, args.groups, args.group_size, r * 1000), args.group_size,
                                  args.groups_per_task, args.max_steps)
                got = {mode: window(kind, mode, r, i, tasks) for i, mode in enumerate(order)}
                for mode, w in got.items():
                    res[mode]["windows"].append(w)
                steps = {m: w["steps"] for m, w in got.items()}
                if len(set(steps.values())) > 1:
                    print(f"note: {kind} round {r}: the modes played different numbers of steps: {steps}", flush=True)
                pairs = [f"ray_{n}/inprocess_{n} = {got[f'ray_{n}']['steps_per_s'] / got[f'inprocess_{n}']['steps_per_s']:.2f}"
                         for n in args.workers]
                print(f"{kind} round {r}: {', '.join(pairs)}", flush=True)
            for name, n in repinned.items():  # threads found off their CPU before a round (see pin_tree)
                affinity.setdefault(kind, {}).setdefault(name, {})["threads_repinned"] = n
    finally:  # also on an exception, Ctrl-C or SIGTERM
        shut_down(plain, ray_side, leftovers)

    paired: dict[str, dict[str, Any]] = {}
    scaling: dict[str, float] = {}
    for kind, res in results.items():
        for m in res.values():
            m["median_steps_per_s"] = statistics.median(w["steps_per_s"] for w in m["windows"])
            m["median_steps_per_s_per_core"] = m["median_steps_per_s"] / m["cores"]
        for n in args.workers:
            ray_w, base_w = res[f"ray_{n}"]["windows"], res[f"inprocess_{n}"]["windows"]
            paired[f"{kind}/{n}"] = _spread([a["steps_per_s"] / b["steps_per_s"] for a, b in zip(ray_w, base_w)])
            if "inprocess_1" in res:
                scaling[f"{kind}/{n}"] = (res[f"ray_{n}"]["median_steps_per_s_per_core"]
                                          / res["inprocess_1"]["median_steps_per_s_per_core"])
            pr = paired[f"{kind}/{n}"]
            rounds = " ".join(f"{x:.2f}" for x in pr["rounds"])
            line = (f"{kind}/{n}: {n} Ray workers / {n} plain processes, same CPUs: median {pr['median']:.2f} "
                    f"(rounds {rounds}; min {pr['min']:.2f}, max {pr['max']:.2f})")
            if f"{kind}/{n}" in scaling:
                line += f"; scaling (per core vs inprocess_1) {scaling[f'{kind}/{n}']:.2f}"
            print(line, flush=True)
    ratios = {k: v["median"] for k, v in paired.items()}
    out = {
        "ray_vs_inprocess_per_core": min(ratios.values()) if ratios else None,
        "definition": DEFINITION,
        "ratios": ratios,
        "paired_ratios": paired,
        # Not Ray's cost: N Ray workers per core against ONE plain process on one CPU, so for N > 1 it also
        # measures how two hyperthreads of one core scale (the figure this benchmark reported before).
        "scaling_ratios": scaling,
        "scaling_definition": SCALING_DEFINITION,
        "goal": 0.9,
        "results": results,
        "round_orders": orders,
        "affinity": affinity,
        "notes": [
            ("Each plain process and each Ray worker (all its threads, and its Chromium) is pinned to its CPU. "
             "Ray's system processes (raylet, GCS, other idle workers) and the driver are not: they may run on "
             "any of the CPUs used, so they compete with the Ray workers (that is part of Ray's cost) and, "
             "idle, with the plain processes."),
            ("Chromium's GPU process pins two threads to CPU 0 whatever its own affinity; the driver puts them "
             "back on their process's CPU before every timed round (affinity[kind][...].threads_repinned)."),
            ("A window's seconds: for Ray, the driver's time around WorkerPool.run (dispatch and results "
             "included); for plain processes, the slowest process's time around its tasks."),
        ],
        "config": vars(args) | {"cpus": cpus},
        "machine": {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count(),
                    "loadavg_start": load_start, "loadavg_end": os.getloadavg()},
        "seconds": round(time.perf_counter() - t0, 1),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(f"ray_vs_inprocess_per_core = {out['ray_vs_inprocess_per_core']:.2f} (goal >= 0.9; median over "
          f"{args.rounds} paired rounds, lowest over {', '.join(ratios)}); wrote {args.out}", flush=True)


if __name__ == "__main__":
    main()
