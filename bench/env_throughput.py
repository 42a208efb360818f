"""Single-core environment throughput of the Multiverse games, with MiniGrid as the yardstick.

What it measures, for every game registered (``multiverse.envs.list_envs(kind="game")``)
whose module imports:

* steps/s without pixels (text observation only) and with 84x84 pixels;
* mean reset time (fresh seed each reset).

The process is pinned to one CPU (``os.sched_setaffinity``) with ``OMP_NUM_THREADS=1``.
Actions are drawn uniformly from ``info["legal_actions"]`` (mapped to indices through
``env.unwrapped.action_names``) with a numpy Generator separate from the env's; an
episode that ends is reset with a fresh seed, inside the timed window. Each figure is
the best of ``--repeats`` fixed wall-clock windows (``--seconds``) after a short warm-up
(the median is in the JSON too). The env is used as ``multiverse.envs.make`` returns it,
Gymnasium wrappers (TimeLimit, OrderEnforcing, PassiveEnvChecker) included: that is what
users get.

Why: the design's yardstick is MiniGrid. A game env step without pixels must be at
least as fast as MiniGrid's on the same machine. ``MiniGrid-Empty-8x8-v0`` is measured
in the same run, the same way (random actions, one core, its default symbolic
observation, and its RGB rendering through ``RGBImgObsWrapper``). MiniGrid needs
``pygame-ce``, which conflicts with the ``pygame`` in the project venv, so it runs in its
own venv (``bench/.venv-minigrid``, created on first use) as a subprocess that prints JSON;
it is measured before and after the games and the better run is kept, so that load from
other processes on a shared machine biases the ratio as little as possible.

    python bench/env_throughput.py [--seconds S] [--repeats N] [--out PATH]

Writes ``bench/results/env_throughput.json`` (``ratio_vs_minigrid`` is the median over
our games of no-pixel steps/s divided by MiniGrid's) and prints a table.
"""

from __future__ import annotations

import os

os.environ["OMP_NUM_THREADS"] = "1"  # before numpy (and anything else) is imported
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse
import importlib.metadata
import inspect
import json
import shlex
import statistics
import subprocess
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import _common
from _common import pin_to_one_cpu, venv_python

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_OUT = BENCH_DIR / "results" / "env_throughput.json"
MINIGRID_VENV = BENCH_DIR / ".venv-minigrid"
MINIGRID_ENV = "MiniGrid-Empty-8x8-v0"
MINIGRID_SPEC = "minigrid==3.2.0"
IMAGE_SIZE = (84, 84)


# --------------------------------------------------------------------------------------
# Measurement loops. Self-contained (time + numpy only): their source is also sent to the
# MiniGrid venv, so both sides are timed by exactly the same code.
# --------------------------------------------------------------------------------------


def measure_steps(env: Any, pick: Any, seconds: float, warmup: float, repeats: int, seed: int) -> dict:
    """Step ``env`` with ``pick(info, rng) -> action`` for ``repeats`` windows of ``seconds``.

    Resets (fresh seed) happen inside the window when an episode ends. Returns the best
    window's steps/s (other processes only ever slow a window down), the median, and details.
    """
    import statistics as _stats
    import time as _time

    import numpy as _np

    rng = _np.random.default_rng([seed, 0xAC7])  # the action stream, separate from the env's
    episode_seed = seed
    obs, info = env.reset(seed=episode_seed)

    def window(duration: float) -> dict:
        nonlocal obs, info, episode_seed
        steps = episodes = 0
        reset_s = 0.0
        clock = _time.perf_counter
        t0 = clock()
        deadline = t0 + duration
        while True:
            obs, _reward, terminated, truncated, info = env.step(pick(info, rng))
            steps += 1
            if terminated or truncated:
                episode_seed += 1
                t = clock()
                obs, info = env.reset(seed=episode_seed)
                reset_s += clock() - t
                episodes += 1
            if clock() >= deadline:
                break
        elapsed = clock() - t0
        return {
            "steps": steps,
            "episodes": episodes,
            "elapsed_s": elapsed,
            "steps_per_s": steps / elapsed,
            "steps_per_s_excl_resets": steps / max(elapsed - reset_s, 1e-12),
        }

    if warmup > 0:
        window(warmup)
    runs = [window(seconds) for _ in range(repeats)]
    rates = [r["steps_per_s"] for r in runs]
    return {
        "steps_per_s": max(rates),
        "steps_per_s_median": _stats.median(rates),
        "steps_per_s_windows": rates,
        "steps_per_s_excl_resets": max(r["steps_per_s_excl_resets"] for r in runs),
        "steps": sum(r["steps"] for r in runs),
        "episodes": sum(r["episodes"] for r in runs),
        "obs_keys": sorted(obs) if isinstance(obs, dict) else type(obs).__name__,
    }


def measure_resets(env: Any, seconds: float, seed: int) -> dict:
    """Back-to-back ``reset(seed=fresh)`` for ``seconds`` (at least 20 resets)."""
    import time as _time

    clock = _time.perf_counter
    env.reset(seed=seed)  # warm
    n = 0
    t0 = clock()
    while n < 20 or clock() - t0 < seconds:
        n += 1
        env.reset(seed=seed + n)
    elapsed = clock() - t0
    return {"reset_ms": 1000.0 * elapsed / n, "resets_per_s": n / elapsed, "resets": n}


# --------------------------------------------------------------------------------------
# Multiverse games
# --------------------------------------------------------------------------------------


def legal_action_picker(env: Any) -> Callable[[dict, np.random.Generator], int]:
    """Uniform over the currently legal actions, as an index into ``action_names``."""
    unwrapped = env.unwrapped

    def pick(info: dict, rng: np.random.Generator) -> int:
        legal = info["legal_actions"]
        return unwrapped.action_names.index(legal[int(rng.integers(len(legal)))])

    return pick


def bench_game(spec: Any, seconds: float, warmup: float, repeats: int, seed: int) -> dict[str, Any]:
    """One game: text-only and 84x84-pixel steps/s, and reset time. Never raises."""
    import multiverse.envs as m

    out: dict[str, Any] = {"tags": list(spec.tags)}
    try:
        env = m.make(spec.id, pixels=False)
    except ImportError as exc:  # the game's module is not written yet (or does not import)
        return {**out, "status": "skipped", "error": f"{type(exc).__name__}: {exc}"}
    except Exception as exc:
        return {**out, "status": "error", "stage": "make", "error": f"{type(exc).__name__}: {exc}"}
    stage = "text"
    try:
        text = measure_steps(env, legal_action_picker(env), seconds, warmup, repeats, seed)
        stage = "reset"
        resets = measure_resets(env, max(0.25, seconds / 4), seed + 10_000)
        env.close()
        stage = "pixels"
        env = m.make(spec.id, pixels=True, image_size=IMAGE_SIZE)
        pix = measure_steps(env, legal_action_picker(env), seconds, warmup, repeats, seed)
        env.close()
    except Exception as exc:
        return {
            **out,
            "status": "error",
            "stage": stage,
            "error": f"{type(exc).__name__}: {exc}",
            "traceback": traceback.format_exc(limit=-3),
        }
    return {
        **out,
        "status": "ok",
        "steps_per_s_text": text["steps_per_s"],
        "steps_per_s_pixels_84": pix["steps_per_s"],
        "reset_ms": resets["reset_ms"],
        "resets_per_s": resets["resets_per_s"],
        "detail": {"text": text, "pixels_84": pix, "reset": resets},
    }


# --------------------------------------------------------------------------------------
# MiniGrid, in its own venv
# --------------------------------------------------------------------------------------

_MINIGRID_MAIN = r'''
def _main():
    import importlib.metadata, json, sys
    import gymnasium as gym
    import minigrid  # noqa: F401  (registers the MiniGrid-* envs)
    from minigrid.wrappers import RGBImgObsWrapper

    a = json.loads(sys.argv[1])

    env = gym.make(a["env"])
    n_actions = int(env.action_space.n)

    def pick(info, rng):
        return int(rng.integers(n_actions))

    text = measure_steps(env, pick, a["seconds"], a["warmup"], a["repeats"], a["seed"])
    resets = measure_resets(env, max(0.25, a["seconds"] / 4), a["seed"] + 10_000)
    env.close()
    tile = max(1, round(a["image_px"] / env.unwrapped.width))
    env = RGBImgObsWrapper(gym.make(a["env"]), tile_size=tile)
    pix = measure_steps(env, pick, a["seconds"], a["warmup"], a["repeats"], a["seed"])
    shape = list(env.observation_space["image"].shape)
    env.close()
    versions = {d: importlib.metadata.version(d) for d in ("minigrid", "gymnasium", "numpy", "pygame-ce")}
    versions["python"] = sys.version.split()[0]
    print(json.dumps({
        "env": a["env"],
        "steps_per_s": text["steps_per_s"],
        "steps_per_s_rgb": pix["steps_per_s"],
        "rgb_shape": shape,
        "reset_ms": resets["reset_ms"],
        "resets_per_s": resets["resets_per_s"],
        "versions": versions,
        "detail": {"text": text, "rgb": pix, "reset": resets},
    }))

_main()
'''


def ensure_minigrid_venv(venv: Path = MINIGRID_VENV) -> Path:
    """Create ``venv`` with MiniGrid (and our Gymnasium version) unless it already works."""
    py = venv_python(venv)
    if py.exists() and subprocess.run([str(py), "-c", "import minigrid"], capture_output=True).returncode == 0:
        return py
    if not py.exists():
        print(f"creating {venv} ...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    # Same Gymnasium as the project (minigrid 3.2 asks for >=0.28.1): same wrapper stack on both sides.
    gym_pin = f"gymnasium=={importlib.metadata.version('gymnasium')}"
    print(f"installing {MINIGRID_SPEC} {gym_pin} into {venv} ...", file=sys.stderr)
    pip = [str(py), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    if subprocess.run([*pip, MINIGRID_SPEC, gym_pin]).returncode != 0:
        print("pinning our gymnasium failed; letting minigrid choose", file=sys.stderr)
        subprocess.run([*pip, MINIGRID_SPEC], check=True)
    return py


def bench_minigrid(seconds: float, warmup: float, repeats: int, seed: int) -> dict[str, Any]:
    """MiniGrid measured by the same loops, in a subprocess in its own venv. Never raises."""
    try:
        py = ensure_minigrid_venv()
        code = "\n".join(
            ["from __future__ import annotations", "from typing import Any"]
            + [inspect.getsource(f) for f in (measure_steps, measure_resets)]
            + [_MINIGRID_MAIN]
        )
        args = {"env": MINIGRID_ENV, "seconds": seconds, "warmup": warmup, "repeats": repeats, "seed": seed,
                "image_px": IMAGE_SIZE[0]}
        env = {**os.environ, "OMP_NUM_THREADS": "1", "SDL_VIDEODRIVER": "dummy", "PYGAME_HIDE_SUPPORT_PROMPT": "1"}
        # The child inherits this process's CPU affinity (one core).
        proc = subprocess.run([str(py), "-c", code, json.dumps(args)], capture_output=True, text=True, env=env,
                              timeout=120 + 10 * (warmup + seconds) * (2 * repeats + 2))
        if proc.returncode != 0:
            return {"env": MINIGRID_ENV, "status": "error", "error": proc.stderr.strip()[-2000:]}
        return {"status": "ok", **json.loads(proc.stdout.strip().splitlines()[-1])}
    except Exception as exc:
        return {"env": MINIGRID_ENV, "status": "error", "error": f"{type(exc).__name__}: {exc}"}


def merge_minigrid_runs(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The best of several MiniGrid runs (highest steps/s, lowest reset time); all runs kept."""
    ok = [r for r in runs if r.get("status") == "ok"]
    if not ok:
        return runs[-1]
    best = max(ok, key=lambda r: r["steps_per_s"])
    return {
        **{k: v for k, v in best.items() if k != "detail"},
        "steps_per_s": max(r["steps_per_s"] for r in ok),
        "steps_per_s_rgb": max(r["steps_per_s_rgb"] for r in ok),
        "reset_ms": min(r["reset_ms"] for r in ok),
        "resets_per_s": max(r["resets_per_s"] for r in ok),
        "runs": [{k: v for k, v in r.items() if k != "versions"} for r in runs],
    }


# --------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------


def machine_info(cpu: int) -> dict[str, Any]:
    return _common.machine_info(cpu, ("multiverse-rl", "gymnasium", "numpy", "pygame"))


def _median_ratio(games: dict[str, dict], base: float | None, tag: str | None = None) -> float | None:
    if not base:
        return None
    ratios = [
        g["steps_per_s_text"] / base
        for g in games.values()
        if g.get("status") == "ok" and (tag is None or tag in g["tags"])
    ]
    return statistics.median(ratios) if ratios else None


def print_table(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    mg = result["minigrid"]
    base = mg.get("steps_per_s")
    table = Table(title=f"Env throughput, one core ({result['machine']['cpu_model']})")
    for col, just in [("env", "left"), ("tags", "left"), ("steps/s text", "right"), ("steps/s 84px", "right"),
                      ("reset ms", "right"), ("× MiniGrid", "right"), ("status", "left")]:
        table.add_column(col, justify=just)  # type: ignore[arg-type]
    for gid, g in result["games"].items():
        if g["status"] == "ok":
            table.add_row(gid, ",".join(g["tags"]), f"{g['steps_per_s_text']:,.0f}", f"{g['steps_per_s_pixels_84']:,.0f}",
                          f"{g['reset_ms']:.3f}", f"{g['steps_per_s_text'] / base:.2f}" if base else "-", "ok")
        else:
            table.add_row(gid, ",".join(g["tags"]), "-", "-", "-", "-", f"[yellow]{g['status']}[/]: {g['error'].splitlines()[0][:70]}")
    if mg.get("status") == "ok":
        table.add_row(f"[bold]{mg['env']}[/]", "minigrid", f"{base:,.0f}",
                      f"{mg['steps_per_s_rgb']:,.0f} ({mg['rgb_shape'][0]}px)", f"{mg['reset_ms']:.3f}", "1.00", "ok")
    else:
        table.add_row(MINIGRID_ENV, "minigrid", "-", "-", "-", "-", f"[red]error[/]: {mg['error'][-60:]}")
    console = Console() if sys.stdout.isatty() else Console(width=150)  # rich defaults to 80 columns in a pipe
    console.print(table)

    def fmt(x: float | None) -> str:
        return "n/a" if x is None else f"{x:.2f}"

    console.print(f"ratio_vs_minigrid (median, all games): {fmt(result['ratio_vs_minigrid'])}   "
                  f"grid games: {fmt(result['ratio_vs_minigrid_grid_games'])}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=2.0, help="timed window per measurement (default 2)")
    ap.add_argument("--warmup", type=float, default=0.3, help="untimed warm-up before each measurement (default 0.3)")
    ap.add_argument("--repeats", type=int, default=3, help="windows per measurement; the best is reported (default 3)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"JSON output (default {DEFAULT_OUT.relative_to(BENCH_DIR.parent)})")
    ap.add_argument("--cpu", type=int, default=None, help="CPU to pin to (default: the least busy one)")
    ap.add_argument("--games", nargs="*", default=None, help="only these game ids (default: every registered game)")
    ap.add_argument("--no-minigrid", action="store_true", help="skip the MiniGrid yardstick")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    # Create the MiniGrid venv before pinning, so pip is not confined to one core.
    if not args.no_minigrid:
        try:
            ensure_minigrid_venv()
        except Exception as exc:  # reported by bench_minigrid below
            print(f"MiniGrid venv setup failed: {exc}", file=sys.stderr)
    cpu = pin_to_one_cpu(args.cpu)
    machine = machine_info(cpu)

    import multiverse.envs as m

    if not args.no_minigrid:
        print(f"{MINIGRID_ENV} (before the games) ...", file=sys.stderr, flush=True)
        minigrid_before = bench_minigrid(args.seconds, args.warmup, args.repeats, args.seed)
    specs = m.list_envs(kind="game")
    if args.games:
        specs = [s for s in specs if s.id in args.games]
    games: dict[str, dict[str, Any]] = {}
    for spec in specs:
        print(f"{spec.id} ...", file=sys.stderr, flush=True)
        games[spec.id] = bench_game(spec, args.seconds, args.warmup, args.repeats, args.seed)
    if args.no_minigrid:
        minigrid: dict[str, Any] = {"env": MINIGRID_ENV, "status": "not run", "error": "--no-minigrid"}
    else:
        print(f"{MINIGRID_ENV} (after the games) ...", file=sys.stderr, flush=True)
        minigrid = merge_minigrid_runs([minigrid_before, bench_minigrid(args.seconds, args.warmup, args.repeats, args.seed)])
    base = minigrid.get("steps_per_s")
    machine["loadavg_at_end"] = list(os.getloadavg())

    result = {
        "ratio_vs_minigrid": _median_ratio(games, base),
        "ratio_vs_minigrid_grid_games": _median_ratio(games, base, "grid"),
        "minigrid": minigrid,
        "games": games,
        "skipped": {gid: g["error"] for gid, g in games.items() if g["status"] != "ok"},
        "machine": machine,
        "command": shlex.join(getattr(sys, "orig_argv", [sys.executable, *sys.argv])),
        "settings": {"seconds": args.seconds, "warmup_s": args.warmup, "repeats": args.repeats, "seed": args.seed,
                     "image_size": list(IMAGE_SIZE)},
        "notes": [
            "One process pinned to one CPU (sched_setaffinity), OMP_NUM_THREADS=1; the MiniGrid subprocess inherits the pin.",
            ("steps/s: best of `repeats` windows of `seconds` wall-clock each, after a warm-up (interference from other "
             "processes only slows a window; detail.*.steps_per_s_median has the median); resets (fresh seed) when an "
             "episode ends are inside the window (detail.*.steps_per_s_excl_resets leaves them out)."),
            ("MiniGrid is measured twice, before and after the games; its figures are the better of the two runs "
             "(minigrid.runs has both)."),
            ("Actions uniform over info['legal_actions'] (our games) or over all of Discrete(n) (MiniGrid, which has no "
             "legality), from a numpy Generator separate from the env's."),
            ("Envs used as made (multiverse.envs.make / gymnasium.make): TimeLimit, OrderEnforcing and PassiveEnvChecker "
             "wrappers included. Our games reset with default options (training split randomization)."),
            ("Our 'text' obs is {'text'} only; MiniGrid's no-pixel obs is its default symbolic 7x7x3 partial view + "
             "direction + mission. MiniGrid 'rgb' is RGBImgObsWrapper (full grid) with tile size chosen to be "
             "near 84 px (see minigrid.rgb_shape); ours is pixels=True at 84x84."),
            "reset_ms: mean of back-to-back reset(seed=fresh) calls over max(0.25, seconds/4) s.",
            ("ratio_vs_minigrid: median over games measured OK of text steps/s / MiniGrid no-pixel steps/s; "
             "*_grid_games: only games tagged 'grid'. Design target: >= 1."),
            "Games whose module does not exist yet are listed with status 'skipped' and the import error.",
        ],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print_table(result)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
