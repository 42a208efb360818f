"""Browser-task throughput on one core, with BrowserGym's MiniWoB click-test as the yardstick.

What it measures (one process pinned to one CPU with ``os.sched_setaffinity``; Chromium,
started by this process, inherits the pin, so "per core" means Python + Chromium together):

* steps/s of every own task (``web/*-v0``) and of ``miniwob/click-test-v1``: actions drawn
  uniformly from ``info["legal_actions"]`` with a numpy Generator separate from the env's
  (a ``type(ID, <text>)`` template gets a random quoted word); an episode that ends is reset
  with a fresh seed inside the timed window. Also steps/s without the resets and steps per
  CPU-second of the whole process tree (Python, Playwright's driver, Chromium), which a busy
  machine disturbs less than wall-clock rates;
* reset latency, median and p95, each reset in a fresh ``BrowserContext``: back to back
  (the env's background pre-creation of the next context cannot finish first) and with
  ~0.3 s think time before each reset, as a policy would spend, which lets it finish;
* memory per concurrent context: N = 1, 4, 8 envs open at once in one process (each holds its
  episode's context and the pre-created next one), RSS and PSS of this process's Chromium
  (browser process and all its descendants), slope per extra context and per extra env;
* BrowserGym's ``browsergym/miniwob.click-test`` with a random agent, in the same run, on the
  same machine and core: in its own venv (``bench/.venv-browsergym``, made on first use),
  pointed at the ``miniwob`` wheel's HTML (``MINIWOB_URL=file://...``) and at the same
  Chromium binary, run as a subprocess that prints JSON and timed by the same loop. Twice:
  as ``gym.make`` gives it (its defaults: 0.5 s ``pre_observation_delay`` per step and the
  task's 100 ms Playwright ``slow_mo``) and with both set to 0.

Top-level ``ratio_vs_browsergym`` = our ``miniwob/click-test-v1`` steps/s / BrowserGym's
click-test steps/s (defaults). Goal >= 10.

    python bench/web_throughput.py [--seconds S] [--tasks ID ...] [--no-browsergym] [--out PATH]

Writes ``bench/results/web_throughput.json`` and prints a table.
"""

from __future__ import annotations

import os

os.environ["OMP_NUM_THREADS"] = "1"  # before numpy (and anything else) is imported
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse
import fnmatch
import gc
import importlib.metadata
import importlib.util
import inspect
import json
import shlex
import statistics
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import _common
from _common import pin_to_one_cpu, venv_python

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_OUT = BENCH_DIR / "results" / "web_throughput.json"
BG_VENV = BENCH_DIR / ".venv-browsergym"
BG_SPEC = "browsergym-miniwob==0.14.3"  # pulls browsergym-core==0.14.3 and its playwright
BG_ENV = "browsergym/miniwob.click-test"
MINIWOB_ID = "miniwob/click-test-v1"
MEMORY_TASK = "web/ClickButton-v0"
#: the runtime flags the project's browser uses that matter for speed; also given to BrowserGym's
#: Chromium so both run the same binary the same way (our isolation flags are left out)
PARITY_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


# --------------------------------------------------------------------------------------
# Measurement loops. Self-contained (time, statistics, numpy, psutil): their source is also
# sent to the BrowserGym venv, so both sides are timed by exactly the same code.
# --------------------------------------------------------------------------------------

WORDS = [
    "hello",
    "alpha",
    "blue",
    "cat",
    "data",
    "easy",
    "form",
    "green",
    "house",
    "jazz",
    "kite",
    "lemon",
    "mail",
    "north",
    "ocean",
    "paper",
    "quiet",
    "river",
    "seven",
    "table",
]


def tree_cpu_seconds() -> float:
    """CPU seconds used so far by this process and all its descendants (dead ones reaped by their parents too)."""
    import psutil as _ps

    me = _ps.Process()
    total = 0.0
    for p in [me, *me.children(recursive=True)]:
        try:
            t = p.cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
        except (_ps.NoSuchProcess, _ps.AccessDenied):
            pass
    return total


def _pct(xs: list, q: float) -> Any:
    """Nearest-rank percentile (None for no data)."""
    if not xs:
        return None
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, int(round(q / 100.0 * len(s) + 0.5)) - 1))]


def measure_steps(
    env: Any, pick: Any, classify: Any, seconds: float, min_steps: int, warmup_steps: int, seed: int
) -> dict:
    """Step ``env`` with ``pick(obs, info, rng) -> action`` for ``seconds`` (and at least ``min_steps``).

    An episode that ends is reset with a fresh seed inside the window (each reset timed).
    ``classify(obs, info) -> (action_error, infra_error)`` (messages or falsy) counts errors. Returns rates and details.
    """
    import statistics as _stats
    import time as _time

    import numpy as _np

    rng = _np.random.default_rng([seed, 0xAC7])  # the action stream, separate from the env's
    episode_seed = seed
    clock = _time.perf_counter
    t = clock()
    obs, info = env.reset(seed=episode_seed)
    first_reset_s = clock() - t
    for _ in range(warmup_steps):
        obs, _r, term, trunc, info = env.step(pick(obs, info, rng))
        if term or trunc:
            episode_seed += 1
            obs, info = env.reset(seed=episode_seed)

    steps = episodes = action_errors = infra_errors = successes = 0
    reward_sum = 0.0
    first_errors: dict = {}
    reset_times: list = []
    step_times: list = []
    cpu0 = tree_cpu_seconds()
    t0 = clock()
    deadline = t0 + seconds
    while True:
        action = pick(obs, info, rng)
        ts = clock()
        obs, reward, terminated, truncated, info = env.step(action)
        step_times.append(clock() - ts)
        steps += 1
        reward_sum += float(reward)
        a_err, i_err = classify(obs, info)
        action_errors += bool(a_err)
        infra_errors += bool(i_err)
        if a_err:
            first_errors.setdefault("action", f"{action}: {str(a_err)[:300]}")
        if i_err:
            first_errors.setdefault("infra", str(i_err)[:300])
        if terminated or truncated:
            episodes += 1
            successes += bool(info.get("success", float(reward) > 0))
            episode_seed += 1
            ts = clock()
            obs, info = env.reset(seed=episode_seed)
            reset_times.append(clock() - ts)
            _a, i_err = classify(obs, info)
            infra_errors += bool(i_err)
            if i_err:
                first_errors.setdefault("infra", str(i_err)[:300])
        if clock() >= deadline and steps >= min_steps:
            break
    elapsed = clock() - t0
    cpu = tree_cpu_seconds() - cpu0
    in_steps = sum(step_times)
    return {
        "steps_per_s": steps / elapsed,
        "steps_per_s_excl_resets": steps / max(in_steps, 1e-12),
        "steps_per_cpu_s": steps / cpu if cpu > 0 else None,
        "cpu_utilisation": cpu / elapsed,
        "steps": steps,
        "episodes": episodes,
        "elapsed_s": elapsed,
        "cpu_s": cpu,
        "step_ms_median": 1000 * _stats.median(step_times),
        "step_ms_p95": 1000 * _pct(step_times, 95),
        "reset_ms_median_in_window": 1000 * _stats.median(reset_times) if reset_times else None,
        "reset_ms_p95_in_window": 1000 * _pct(reset_times, 95) if reset_times else None,
        "first_reset_s": first_reset_s,
        "success_rate": successes / episodes if episodes else None,
        "mean_reward_per_step": reward_sum / steps,
        "action_errors": action_errors,
        "infra_errors": infra_errors,
        "first_errors": first_errors,
    }


def measure_resets(env: Any, n: int, think_s: float, seed: int) -> dict:
    """``n`` timed ``reset(seed=fresh)`` calls, each after ``think_s`` seconds of sleep."""
    import statistics as _stats
    import time as _time

    clock = _time.perf_counter
    times = []
    infra_errors = 0
    for i in range(n):
        if think_s > 0:
            _time.sleep(think_s)
        t = clock()
        _obs, info = env.reset(seed=seed + i)
        times.append(clock() - t)
        infra_errors += isinstance(info, dict) and "infra_error" in info
    return {
        "think_s": think_s,
        "resets": n,
        "infra_errors": infra_errors,
        "reset_ms_median": 1000 * _stats.median(times),
        "reset_ms_p95": 1000 * _pct(times, 95),
        "reset_ms_mean": 1000 * _stats.fmean(times),
        "reset_ms_min": 1000 * min(times),
        "reset_ms_max": 1000 * max(times),
    }


# --------------------------------------------------------------------------------------
# Multiverse web tasks
# --------------------------------------------------------------------------------------


def our_pick(obs: Any, info: dict, rng: Any) -> str:
    """Uniform over ``info["legal_actions"]``; a ``<text>`` template gets a random quoted word."""
    legal = info.get("legal_actions") or ["noop()"]
    action = legal[int(rng.integers(len(legal)))]
    if "<text>" in action:
        action = action.replace("<text>", '"' + WORDS[int(rng.integers(len(WORDS)))] + '"')
    return action


def our_classify(obs: Any, info: dict) -> tuple[Any, Any]:
    return info.get("action_error"), info.get("infra_error")


def wait_for_spares(envs: list[Any], timeout: float = 120) -> int | None:
    """Wait until the envs' background next-episode contexts are made; return the browser's open contexts.

    The count is only steady once no spare is still being made, so the benchmark waits first.
    """
    import asyncio

    drivers = [e.unwrapped.driver for e in envs]
    host = next((d.host for d in drivers if d.host is not None), None)
    if host is None:
        return None

    async def settle() -> int:
        spares = [d.spare for d in drivers if d.spare is not None]
        if spares:
            await asyncio.wait(spares, timeout=timeout)
        browser = await host.browser()
        return len(browser.contexts)

    return host.run(settle(), timeout=timeout + 60)


def close_envs(envs: list[Any]) -> None:
    try:
        wait_for_spares(envs)
    except Exception:
        pass
    for e in envs:
        try:
            e.close()
        except Exception:
            pass


def bench_task(env_id: str, args: argparse.Namespace) -> dict[str, Any]:
    """One task: steps/s and reset latency (with and without think time). Never raises."""
    import multiverse.envs as m

    try:
        m.lookup(env_id)
    except Exception as exc:  # not registered (yet)
        return {"status": "skipped", "error": f"{type(exc).__name__}: {exc}"}
    try:
        env = m.make(env_id)
    except ImportError as exc:  # its module is not written yet (or does not import)
        return {"status": "skipped", "error": f"{type(exc).__name__}: {exc}"}
    except Exception as exc:
        return {"status": "error", "stage": "make", "error": f"{type(exc).__name__}: {exc}"}
    stage = "steps"
    out: dict[str, Any] = {"tags": list(m.lookup(env_id).tags)}
    try:
        host_launches0 = None
        steps = measure_steps(env, our_pick, our_classify, args.seconds, args.min_steps, args.warmup_steps, args.seed)
        host = env.unwrapped.driver.host
        host_launches0 = getattr(host, "launches", None)
        stage = "resets"
        no_think = measure_resets(env, args.resets, 0.0, args.seed + 10_000)
        think = measure_resets(env, args.resets, args.think, args.seed + 20_000)
        launches = getattr(host, "launches", None)
        close_envs([env])
    except Exception as exc:
        close_envs([env])
        return {
            **out,
            "status": "error",
            "stage": stage,
            "error": f"{type(exc).__name__}: {exc}",
            "traceback": traceback.format_exc(limit=-4),
        }
    return {
        **out,
        "status": "ok",
        "steps_per_s": steps["steps_per_s"],
        "steps_per_s_excl_resets": steps["steps_per_s_excl_resets"],
        "steps_per_cpu_s": steps["steps_per_cpu_s"],
        "reset_ms_median": no_think["reset_ms_median"],
        "reset_ms_p95": no_think["reset_ms_p95"],
        "reset_ms_median_think": think["reset_ms_median"],
        "reset_ms_p95_think": think["reset_ms_p95"],
        "chromium_launches_so_far": launches,
        "chromium_relaunched_during_resets": (launches - host_launches0)
        if None not in (launches, host_launches0)
        else None,
        "detail": {"steps": steps, "resets_back_to_back": no_think, "resets_with_think_time": think},
    }


# --------------------------------------------------------------------------------------
# Memory per concurrent context
# --------------------------------------------------------------------------------------


def chromium_tree(host: Any) -> list[Any]:
    """psutil Processes of the host's Chromium: the processes ``host.pids()`` finds and all their descendants.

    (``pids()`` matches a marker flag that only the browser process carries on its command line;
    renderers, zygotes and utility processes are its descendants.)
    """
    import psutil

    seen: dict[int, Any] = {}
    for pid in host.pids():
        try:
            p = psutil.Process(pid)
            seen[p.pid] = p
            for c in p.children(recursive=True):
                seen[c.pid] = c
        except psutil.NoSuchProcess:
            continue
    return list(seen.values())


def chromium_memory(host: Any) -> dict[str, Any]:
    import psutil

    rss = pss = 0
    renderers = 0
    procs = chromium_tree(host)
    for p in procs:
        try:
            mi = p.memory_full_info()
            rss += mi.rss
            pss += getattr(mi, "pss", 0)
            if any(a == "--type=renderer" for a in p.cmdline()):
                renderers += 1
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return {"processes": len(procs), "renderers": renderers, "rss_mb": rss / 2**20, "pss_mb": pss / 2**20}


def _slope(xs: list[float], ys: list[float]) -> float | None:
    if len(set(xs)) < 2:
        return None
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum((x - mx) ** 2 for x in xs)


def bench_memory(env_id: str, counts: list[int], seed: int) -> dict[str, Any]:
    """N envs open at once (each reset once, its next context pre-created): Chromium RSS/PSS. Never raises."""
    import multiverse.envs as m

    try:
        m.lookup(env_id)
    except Exception as exc:
        return {"task": env_id, "status": "skipped", "error": f"{type(exc).__name__}: {exc}"}
    points: list[dict[str, Any]] = []
    envs: list[Any] = []
    try:
        probe = m.make(env_id)
        probe.reset(seed=seed)
        host = probe.unwrapped.driver.host
        close_envs([probe])

        def snapshot(n_envs: int, probe_env: Any) -> dict[str, Any]:
            contexts = wait_for_spares(envs or [probe_env])
            time.sleep(1.0)  # let closed contexts' renderers exit and new pages finish loading
            return {"envs": n_envs, "contexts": contexts, **chromium_memory(host)}

        points.append(snapshot(0, probe))
        for n in counts:
            envs = [m.make(env_id) for _ in range(n)]
            for i, e in enumerate(envs):
                e.reset(seed=seed + i)
            points.append(snapshot(n, probe))
            close_envs(envs)
            envs = []
            gc.collect()
    except Exception as exc:
        close_envs(envs)
        return {
            "task": env_id,
            "status": "error",
            "error": f"{type(exc).__name__}: {exc}",
            "traceback": traceback.format_exc(limit=-4),
            "points": points,
        }
    loaded = [p for p in points if p["envs"] > 0]
    first, last = loaded[0], loaded[-1]
    dctx = last["contexts"] - first["contexts"]
    denv = last["envs"] - first["envs"]
    return {
        "task": env_id,
        "status": "ok",
        "pss_mb_per_context": (last["pss_mb"] - first["pss_mb"]) / dctx if dctx else None,
        "rss_mb_per_context": (last["rss_mb"] - first["rss_mb"]) / dctx if dctx else None,
        "pss_mb_per_env": (last["pss_mb"] - first["pss_mb"]) / denv if denv else None,
        "rss_mb_per_env": (last["rss_mb"] - first["rss_mb"]) / denv if denv else None,
        "pss_mb_per_context_fit": _slope([p["contexts"] for p in loaded], [p["pss_mb"] for p in loaded]),
        "rss_mb_per_context_fit": _slope([p["contexts"] for p in loaded], [p["rss_mb"] for p in loaded]),
        "points": points,
    }


# --------------------------------------------------------------------------------------
# BrowserGym, in its own venv
# --------------------------------------------------------------------------------------

_BG_MAIN = r'''
def _main():
    import importlib.metadata, json, os, sys, time
    a = json.loads(sys.argv[1])

    # BrowserGym launches Playwright's bundled Chromium twice per reset (the task's browser and
    # its chat window's, browsergym/core/env.py and chat.py), which `playwright install` cannot
    # download here. Point every launch at the same Chromium binary as ours, with the same
    # runtime flags; everything else as BrowserGym sets it.
    import playwright.sync_api as _ps
    _launch = _ps.BrowserType.launch
    launched = []
    def launch(self, *args, **kw):
        kw["executable_path"] = a["chromium"]
        kw["args"] = [*(kw.get("args") or []), *a["flags"]]
        b = _launch(self, *args, **kw)
        launched.append(b.version)
        return b
    _ps.BrowserType.launch = launch

    import gymnasium as gym
    import browsergym.miniwob  # noqa: F401  (registers browsergym/miniwob.*)

    def pick(obs, info, rng):
        """Uniform over what a random agent can do on the page: click each visible clickable element,
        fill each text box with a random word (noop(0) if the page has neither)."""
        acts = [f'click("{bid}")' for bid, p in sorted(obs["extra_element_properties"].items())
                if p.get("clickable") and (p.get("visibility") or 0) > 0.5]
        for node in obs["axtree_object"].get("nodes", []):
            role = (node.get("role") or {}).get("value")
            bid = node.get("browsergym_id")
            if bid and role in ("textbox", "searchbox"):
                acts.append(f'fill("{bid}", "{WORDS[int(rng.integers(len(WORDS)))]}")')
        if not acts:
            acts = ["noop(0)"]
        return acts[int(rng.integers(len(acts)))]

    def classify(obs, info):
        return obs.get("last_action_error"), None

    kwargs = {}
    if a["no_delays"]:
        kwargs = {"pre_observation_delay": 0.0, "slow_mo": 0}
    env = gym.make(a["env"], **kwargs)
    res = measure_steps(env, pick, classify, a["seconds"], a["min_steps"], a["warmup_steps"], a["seed"])
    env.close()
    versions = {}
    for d in ("browsergym-core", "browsergym-miniwob", "playwright", "gymnasium"):
        try:
            versions[d] = importlib.metadata.version(d)
        except importlib.metadata.PackageNotFoundError:
            versions[d] = None
    versions["python"] = sys.version.split()[0]
    versions["chromium_launched"] = sorted(set(launched))
    print(json.dumps({
        "env": a["env"],
        "make_kwargs": kwargs,
        "chromium_launches": len(launched),
        "versions": versions,
        **res,
    }))

_main()
'''


def ensure_browsergym_venv(venv: Path = BG_VENV) -> tuple[Path | None, str | None]:
    """(python, None) once ``venv`` has BrowserGym's MiniWoB tasks, or (None, the exact failure)."""
    py = venv_python(venv)
    check = [str(py), "-c", "import browsergym.miniwob, psutil"]
    if py.exists() and subprocess.run(check, capture_output=True).returncode == 0:
        return py, None
    cmds = []
    if not py.exists():
        cmds.append(["python3", "-m", "venv", str(venv)])
    cmds.append([str(py), "-m", "pip", "install", "--disable-pip-version-check", BG_SPEC, "psutil"])
    for cmd in cmds:
        print(f"$ {shlex.join(cmd)}", file=sys.stderr, flush=True)
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1200)
        except Exception as exc:
            return None, f"$ {shlex.join(cmd)}\n{type(exc).__name__}: {exc}"
        if proc.returncode != 0:
            return None, f"$ {shlex.join(cmd)}\nexit {proc.returncode}\n{(proc.stdout + proc.stderr).strip()[-3000:]}"
    return py, None


def miniwob_html_dir() -> Path | None:
    """The ``miniwob`` wheel's ``html/`` folder, found without importing its (Selenium) code."""
    spec = importlib.util.find_spec("miniwob")
    if spec is None or not spec.submodule_search_locations:
        return None
    html = Path(next(iter(spec.submodule_search_locations))) / "html"
    return html if (html / "miniwob" / "click-test.html").exists() else None


def bench_browsergym(
    py: Path | None, setup_error: str | None, chromium: str | None, no_delays: bool, args: argparse.Namespace
) -> dict[str, Any]:
    """BrowserGym's click-test with a random agent, same loop, in a subprocess. Never raises."""
    base = {"env": BG_ENV, "variant": "no_delays" if no_delays else "defaults"}
    if py is None:
        return {**base, "status": "error", "error": setup_error}
    html = miniwob_html_dir()
    if html is None:
        return {
            **base,
            "status": "error",
            "error": "the miniwob wheel's html/miniwob/ was not found "
            "(importlib.util.find_spec('miniwob')); install it with pip install --no-deps miniwob==1.1.0",
        }
    if chromium is None:
        return {
            **base,
            "status": "error",
            "error": "no chromium binary found (Debian's /usr/bin/chromium or MULTIVERSE_CHROMIUM)",
        }
    code = "\n".join(
        ["from __future__ import annotations", "from typing import Any", f"WORDS = {WORDS!r}"]
        + [inspect.getsource(f) for f in (tree_cpu_seconds, _pct, measure_steps)]
        + [_BG_MAIN]
    )
    params = {
        "env": BG_ENV,
        "seconds": args.seconds,
        "min_steps": args.bg_min_steps,
        "warmup_steps": 1,
        "seed": args.seed,
        "chromium": chromium,
        "flags": PARITY_FLAGS,
        "no_delays": no_delays,
    }
    env = {**os.environ, "MINIWOB_URL": f"file://{html}/miniwob/", "OMP_NUM_THREADS": "1"}
    cmd = [str(py), "-c", "<measurement code>", json.dumps(params)]
    base["command"] = f"MINIWOB_URL={env['MINIWOB_URL']} {shlex.join(cmd)}"
    try:
        # The child inherits this process's CPU affinity (one core), and so do its Chromiums.
        proc = subprocess.run(
            [str(py), "-c", code, json.dumps(params)], capture_output=True, text=True, env=env, timeout=args.bg_timeout
        )
    except subprocess.TimeoutExpired as exc:
        return {**base, "status": "error", "error": f"timed out after {exc.timeout} s"}
    except Exception as exc:
        return {**base, "status": "error", "error": f"{type(exc).__name__}: {exc}"}
    if proc.returncode != 0:
        return {**base, "status": "error", "error": f"exit {proc.returncode}\n{proc.stderr.strip()[-3000:]}"}
    try:
        return {**base, "status": "ok", **json.loads(proc.stdout.strip().splitlines()[-1])}
    except Exception as exc:
        return {
            **base,
            "status": "error",
            "error": f"unreadable output ({exc}): {proc.stdout[-1000:]} {proc.stderr[-1000:]}",
        }


# --------------------------------------------------------------------------------------
# Machine, report
# --------------------------------------------------------------------------------------


def chromium_version(path: str | None) -> str | None:
    if not path:
        return None
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=60).stdout.strip()
        return out.splitlines()[-1] if out else None
    except Exception as exc:
        return f"unknown ({type(exc).__name__})"


def machine_info(cpu: int, chromium: str | None) -> dict[str, Any]:
    info = _common.machine_info(cpu, ("multiverse-rl", "playwright", "gymnasium", "numpy", "miniwob"))
    info["versions"]["chromium"] = chromium_version(chromium)
    try:
        import psutil

        info["memory_gb"] = psutil.virtual_memory().total / 2**30
    except Exception:
        info["memory_gb"] = None
    info["chromium_path"] = chromium
    return info


def select_tasks(patterns: list[str] | None) -> list[str]:
    """Own tasks (``web/*-v0``) and the MiniWoB click-test by default; ``patterns`` are ids or globs."""
    import multiverse.envs as m

    registered = [s.id for s in m.list_envs(kind="web")]
    if not patterns:
        own = sorted(i for i in registered if i.startswith("web/") and i.endswith("-v0"))
        return [*own, MINIWOB_ID]
    out: list[str] = []
    for pat in patterns:
        hits = [i for i in registered if fnmatch.fnmatchcase(i, pat)] if any(c in pat for c in "*?[") else [pat]
        out += [h for h in hits if h not in out]
    return out


def _ok(r: dict | None) -> bool:
    return bool(r) and r.get("status") == "ok"


def print_table(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console() if sys.stdout.isatty() else Console(width=170)  # rich defaults to 80 columns in a pipe

    def f(x: Any, fmt: str = "{:,.1f}") -> str:
        return "-" if x is None else fmt.format(x)

    mach = result["machine"]
    table = Table(
        title=f"Web throughput, one core ({mach['cpu_model']}; load {mach['loadavg_at_start'][0]:.1f} -> "
        f"{mach['loadavg_at_end'][0]:.1f})"
    )
    for col, just in [
        ("env", "left"),
        ("steps/s", "right"),
        ("excl. resets", "right"),
        ("steps/CPU-s", "right"),
        ("reset ms p50/p95", "right"),
        ("+think p50/p95", "right"),
        ("episodes", "right"),
        ("errors act/infra", "right"),
        ("status", "left"),
    ]:
        table.add_column(col, justify=just)  # type: ignore[arg-type]
    for tid, r in result["tasks"].items():
        if _ok(r):
            d = r["detail"]["steps"]
            table.add_row(
                tid,
                f(r["steps_per_s"]),
                f(r["steps_per_s_excl_resets"]),
                f(r["steps_per_cpu_s"]),
                f"{f(r['reset_ms_median'], '{:.0f}')}/{f(r['reset_ms_p95'], '{:.0f}')}",
                f"{f(r['reset_ms_median_think'], '{:.0f}')}/{f(r['reset_ms_p95_think'], '{:.0f}')}",
                str(d["episodes"]),
                f"{d['action_errors']}/{d['infra_errors']}",
                "ok",
            )
        else:
            table.add_row(
                tid,
                "-",
                "-",
                "-",
                "-",
                "-",
                "-",
                "-",
                f"[yellow]{r['status']}[/]: {str(r.get('error', '')).splitlines()[0][:60]}",
            )
    for key in ("defaults", "no_delays"):
        bg = result["browsergym"].get(key)
        if bg is None:
            continue
        name = f"[bold]{BG_ENV}[/] ({key})"
        if _ok(bg):
            table.add_row(
                name,
                f(bg["steps_per_s"], "{:,.2f}"),
                f(bg["steps_per_s_excl_resets"], "{:,.2f}"),
                f(bg["steps_per_cpu_s"], "{:,.2f}"),
                f"{f(bg['reset_ms_median_in_window'], '{:.0f}')}/{f(bg['reset_ms_p95_in_window'], '{:.0f}')}",
                "-",
                str(bg["episodes"]),
                f"{bg['action_errors']}/-",
                "ok",
            )
        else:
            table.add_row(
                name,
                "-",
                "-",
                "-",
                "-",
                "-",
                "-",
                "-",
                f"[red]{bg['status']}[/]: {str(bg.get('error', '')).splitlines()[-1][:60]}",
            )
    console.print(table)

    mem = result["memory"]
    if _ok(mem):
        mt = Table(title=f"Chromium memory, {mem['task']} envs open at once (one browser)")
        for col in ("envs", "contexts", "processes", "renderers", "RSS MB", "PSS MB"):
            mt.add_column(col, justify="right")
        for p in mem["points"]:
            mt.add_row(
                str(p["envs"]),
                str(p["contexts"]),
                str(p["processes"]),
                str(p["renderers"]),
                f"{p['rss_mb']:.0f}",
                f"{p['pss_mb']:.0f}",
            )
        console.print(mt)
        console.print(
            f"per extra context: PSS {f(mem['pss_mb_per_context'])} MB, RSS {f(mem['rss_mb_per_context'])} MB; "
            f"per extra env: PSS {f(mem['pss_mb_per_env'])} MB, RSS {f(mem['rss_mb_per_env'])} MB"
        )
    else:
        console.print(f"memory: {mem.get('status')}: {mem.get('error')}")
    console.print(
        f"ratio_vs_browsergym ({MINIWOB_ID} / {BG_ENV}): {f(result['ratio_vs_browsergym'], '{:.2f}')}   "
        f"own-task median: {f(result['ratio_vs_browsergym_own_median'], '{:.2f}')}   "
        f"vs BrowserGym without its delays: {f(result['ratio_vs_browsergym_no_delays'], '{:.2f}')}   (goal >= 10)"
    )


#: what the figures mean, copied into the JSON
NOTES = [
    (
        "One process pinned to one CPU (sched_setaffinity), OMP_NUM_THREADS=1. Chromium and Playwright's driver "
        "are started by it and inherit the pin, as do the BrowserGym subprocess and its Chromiums: every figure "
        "is Python + driver + browser sharing one core."
    ),
    (
        "steps/s: one window of `seconds` wall-clock (and at least min_steps steps) after the first reset and a "
        "few untimed steps; an episode that ends is reset with a fresh seed inside the window, so reset cost is "
        "included (steps_per_s_excl_resets leaves it out). steps_per_cpu_s divides by the CPU time of the whole "
        "process tree (psutil), which other load on the machine disturbs less than wall-clock rates."
    ),
    (
        "Random agent, same protocol on both sides: uniform over the actions legal now, from a numpy Generator "
        "separate from the env's. Ours: info['legal_actions'], a type(ID, <text>) template filled with a random "
        "quoted word. BrowserGym has no legal-action list: click(bid) for each visible clickable element "
        "(extra_element_properties) and fill(bid, word) for each text box in its AXTree, noop(0) if none."
    ),
    (
        "Reset latency: `resets` timed reset(seed=fresh) calls, each in a fresh BrowserContext. Back to back, the "
        "env's background pre-creation of the next context has not finished and the reset waits for it; with "
        "think time, `think_s` of sleep precedes each reset (as a policy's forward pass would) and the spare is "
        "ready. BrowserGym's reset latency is from the resets inside its stepping window (it relaunches two "
        "Chromiums per reset, so think time changes nothing)."
    ),
    (
        "Memory: N envs of memory_task open at once in this process, each reset once; after their pre-created "
        "next contexts are done, RSS and PSS summed over our Chromium's browser process and all its descendants "
        "(env.driver.host.pids() finds the browser process; its children are added with psutil). Each open env holds "
        "two contexts (the episode's and the next one). *_per_context: (last - first) / extra contexts; *_fit: "
        "least-squares slope over the points with N >= 1. RSS double-counts shared pages; PSS does not."
    ),
    (
        "Before closing an env the benchmark waits for its background next-episode context: WebEnv.close() while "
        "that context is still being made cancels the half-made spare and leaks its BrowserContext (seen here: "
        "reset then close leaves one context open), which would pile up across tasks and skew the memory figures."
    ),
    (
        f"BrowserGym: {BG_SPEC} in bench/.venv-browsergym (own venv; its gymnasium and playwright differ from "
        "ours), MINIWOB_URL=file://<miniwob wheel>/html/miniwob/ (the same MiniWoB HTML our miniwob/* tasks use). "
        "playwright.sync_api.BrowserType.launch is wrapped in the subprocess so that both of BrowserGym's "
        "launches per reset (task browser, chat browser) use our Chromium binary (executable_path) with the same "
        "runtime flags (settings.browsergym_chromium_flags); everything else is BrowserGym's. 'defaults' is "
        "gym.make as is: pre_observation_delay=0.5 s per step and the MiniWoB task's slow_mo=100 ms per "
        "Playwright call. 'no_delays' sets both to 0 (not BrowserGym's defaults; for reference only)."
    ),
    (
        "ratio_vs_browsergym = miniwob/click-test-v1 steps/s / BrowserGym click-test steps/s (defaults); "
        "ratio_vs_browsergym_own_median uses the median over own tasks instead; *_no_delays divides by the "
        "no-delay BrowserGym run; *_per_cpu_s compares steps per CPU-second of each side's process tree "
        "(BrowserGym's sleeps cost no CPU, so this ratio is lower than the wall-clock one on a quiet machine, "
        "but a loaded machine distorts it less). null when either side is missing (see "
        "ratio_vs_browsergym_note). Goal >= 10."
    ),
    (
        "Tasks not registered yet (or whose module does not import) have status 'skipped' with the error; a task "
        "that fails while it runs has status 'error'. Neither counts in the ratios or medians."
    ),
    "Figures from a busy machine are noisy and low: compare machine.loadavg_at_start / loadavg_at_end.",
]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=10.0, help="timed stepping window per env (default 10)")
    ap.add_argument(
        "--tasks",
        nargs="*",
        default=None,
        help=f"env ids or globs (default: every registered web/*-v0 and {MINIWOB_ID})",
    )
    ap.add_argument("--resets", type=int, default=20, help="timed resets per mode (default 20)")
    ap.add_argument(
        "--think", type=float, default=0.3, help="think time before each reset in the second mode (default 0.3 s)"
    )
    ap.add_argument(
        "--contexts", type=int, nargs="*", default=[1, 4, 8], help="envs open at once for memory (default 1 4 8)"
    )
    ap.add_argument(
        "--memory-task", default=MEMORY_TASK, help=f"env for the memory measurement (default {MEMORY_TASK})"
    )
    ap.add_argument("--min-steps", type=int, default=20, help="at least this many steps per window (default 20)")
    ap.add_argument("--warmup-steps", type=int, default=5, help="untimed steps after the first reset (default 5)")
    ap.add_argument("--bg-min-steps", type=int, default=5, help="at least this many BrowserGym steps (default 5)")
    ap.add_argument("--bg-timeout", type=float, default=900, help="BrowserGym subprocess time limit (default 900 s)")
    ap.add_argument("--no-browsergym", action="store_true", help="skip the BrowserGym yardstick")
    ap.add_argument("--cpu", type=int, default=None, help="CPU to pin to (default: the least busy one)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="JSON output (default bench/results/web_throughput.json)"
    )
    args = ap.parse_args(argv)

    # Create the BrowserGym venv before pinning, so pip is not confined to one core.
    bg_py: Path | None = None
    bg_setup_error: str | None = "--no-browsergym"
    if not args.no_browsergym:
        bg_py, bg_setup_error = ensure_browsergym_venv()
        if bg_setup_error:
            print(f"BrowserGym venv setup failed:\n{bg_setup_error}", file=sys.stderr)
    from multiverse.envs.web.browser import chromium_path

    chromium = chromium_path()
    cpu = pin_to_one_cpu(args.cpu)
    machine = machine_info(cpu, chromium)

    import multiverse.envs  # noqa: F401  (registers the envs)

    tasks: dict[str, dict[str, Any]] = {}
    for tid in select_tasks(args.tasks):
        print(f"{tid} ...", file=sys.stderr, flush=True)
        tasks[tid] = bench_task(tid, args)
    print(f"memory ({args.memory_task}, {args.contexts} envs) ...", file=sys.stderr, flush=True)
    memory = bench_memory(args.memory_task, args.contexts, args.seed)
    # Our browser is idle from here on (contexts closed); it stays up until exit, as in training.

    browsergym: dict[str, Any] = {}
    if args.no_browsergym:
        browsergym["defaults"] = {"env": BG_ENV, "status": "not run", "error": "--no-browsergym"}
    else:
        for key, no_delays in (("defaults", False), ("no_delays", True)):
            print(f"{BG_ENV} ({key}) ...", file=sys.stderr, flush=True)
            browsergym[key] = bench_browsergym(bg_py, bg_setup_error, chromium, no_delays, args)
    machine["loadavg_at_end"] = list(os.getloadavg())

    own = [r["steps_per_s"] for tid, r in tasks.items() if tid.startswith("web/") and _ok(r)]
    ours = tasks.get(MINIWOB_ID)
    bg, bg0 = browsergym.get("defaults"), browsergym.get("no_delays")
    bg_rate = bg["steps_per_s"] if _ok(bg) else None
    bg0_rate = bg0["steps_per_s"] if _ok(bg0) else None
    own_median = statistics.median(own) if own else None

    def ratio(a: float | None, b: float | None) -> float | None:
        return a / b if a is not None and b else None

    ours_rate = ours["steps_per_s"] if _ok(ours) else None
    result = {
        "ratio_vs_browsergym": ratio(ours_rate, bg_rate),
        "ratio_vs_browsergym_own_median": ratio(own_median, bg_rate),
        "ratio_vs_browsergym_no_delays": ratio(ours_rate, bg0_rate),
        "ratio_vs_browsergym_per_cpu_s": ratio(
            ours["steps_per_cpu_s"] if _ok(ours) else None, bg["steps_per_cpu_s"] if _ok(bg) else None
        ),
        "ratio_vs_browsergym_note": (
            None
            if ours_rate is not None and bg_rate
            else "; ".join(
                x
                for x in [
                    None
                    if ours_rate is not None
                    else f"{MINIWOB_ID}: {(ours or {}).get('status', 'not selected')}: "
                    f"{(ours or {}).get('error', '')}".strip(),
                    None if bg_rate else f"browsergym: {(bg or {}).get('error')}",
                ]
                if x
            )
        ),
        "goal": ">= 10",
        "own_tasks_steps_per_s_median": own_median,
        "miniwob_click_test_steps_per_s": ours_rate,
        "browsergym_click_test_steps_per_s": bg_rate,
        "tasks": tasks,
        "memory": memory,
        "browsergym": browsergym,
        "skipped": {tid: r.get("error") for tid, r in tasks.items() if not _ok(r)},
        "machine": machine,
        "command": shlex.join(getattr(sys, "orig_argv", [sys.executable, *sys.argv])),
        "settings": {
            "seconds": args.seconds,
            "resets": args.resets,
            "think_s": args.think,
            "contexts": args.contexts,
            "memory_task": args.memory_task,
            "min_steps": args.min_steps,
            "warmup_steps": args.warmup_steps,
            "bg_min_steps": args.bg_min_steps,
            "seed": args.seed,
            "browsergym_spec": BG_SPEC,
            "browsergym_chromium_flags": PARITY_FLAGS,
        },
        "notes": NOTES,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print_table(result)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
