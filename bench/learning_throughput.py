"""Learning throughput of the whole loop: env steps trained per second of wall time, older code against this tree.

Each side runs ``multiverse train`` (embedded Ray, the rollout workers, the learner) on the same config for
``--iterations`` iterations, evaluated before the first and after the last, and is timed from the line the run
prints when its loop starts to the line it prints when it is done: rollout, update, evaluation and checkpoints,
not the start-up. The sides alternate (``--rounds`` rounds, the order flipped every round), and the speed-up is
the median over rounds of the ratio within a round, so the host's swings fall on both sides.

* ``base``: the code at ``--base`` (a commit of this repository, unpacked with ``git archive``), imported instead
  of this tree through a ``sitecustomize`` on ``PYTHONPATH`` that the Ray workers inherit; every process that
  imported it leaves a marker, so the figure is known to come from that code.
* ``new``: the code at ``--new`` (default HEAD), unpacked and imported the same way, so that edits in the
  working tree while the benchmark runs change nothing.
* with ``--new-config``, also ``new+config``: the new code with its own ``--config`` file (e.g. the main job's
  re-shaped ``local.yaml``), against which the config's own levers are measured.

The config is the base commit's ``--config`` file (the same settings on both sides) plus ``--set`` overrides.
Output: ``bench/results/learning_throughput.json`` (or ``--out``): ``whole_loop_steps_per_s`` (new), and
``whole_loop_speedup`` (new / base, median over rounds), each run's shares of time in rollout, update and
evaluation, and the update's estimated FLOP/s against the CPU's bf16 matmul peak measured in the same run.

    .venv/bin/python bench/learning_throughput.py --base beb3916              # the main job, ~1 h on 2 cores
    .venv/bin/python bench/learning_throughput.py --quick --out /tmp/lt.json  # tiny model, smoke config
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

import _common

ROOT = Path(__file__).resolve().parents[1]
#: the commit where issue 18 (learning throughput) started: the code it is measured against
DEFAULT_BASE = "beb3916"
START_MARK = "rollout workers"  # the run's second line, printed when the loop is about to start
DONE_MARK = "done: "

SITECUSTOMIZE = '''
import importlib.abc, importlib.util, os, sys
_root = os.environ.get("MULTIVERSE_BENCH_TREE")
if _root:
    _dirs = {"multiverse": "launch/toplevel", "multiverse.envs": "envs", "multiverse.agents": "agents",
             "multiverse.launch": "launch"}

    class _TreeFinder(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name not in _dirs:
                return None
            if name == "multiverse":
                open(os.path.join(_root, f".imported-{os.getpid()}"), "w").close()
            d = os.path.join(_root, _dirs[name])
            return importlib.util.spec_from_file_location(name, os.path.join(d, "__init__.py"),
                                                          submodule_search_locations=[d])

    sys.meta_path.insert(0, _TreeFinder())
'''


def unpack(rev: str, into: Path) -> Path:
    """The tree of ``rev`` under ``into`` (``git archive``: no .git, nothing of this checkout's state)."""
    data = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", rev], check=True,
                          capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(into, filter="data")
    return into


def run_side(name: str, tree: Path, config: Path, sets: list[str], runs: Path) -> dict[str, Any]:
    """One ``multiverse train`` of one side, on the code in ``tree``; its timed window and what its metrics say."""
    env = dict(os.environ, SDL_VIDEODRIVER="dummy", SDL_AUDIODRIVER="dummy")
    shim = runs / "shim"
    shim.mkdir(exist_ok=True)
    (shim / "sitecustomize.py").write_text(SITECUSTOMIZE)
    env |= {"PYTHONPATH": str(shim), "MULTIVERSE_BENCH_TREE": str(tree)}
    for marker in tree.glob(".imported-*"):
        marker.unlink()
    root = Path(tempfile.mkdtemp(prefix=f"run-{name}-", dir=runs))
    cmd = [sys.executable, "-m", "multiverse", "train", "--config", str(config), f"run.root={root}", *sets]
    load_before = list(os.getloadavg())
    start = done = None
    lines: list[str] = []
    with subprocess.Popen(cmd, cwd=tree, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, bufsize=1) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            now = time.perf_counter()
            lines.append(line.rstrip())
            if start is None and START_MARK in line:
                start = now
            if DONE_MARK in line:
                done = now
    if proc.returncode != 0 or start is None or done is None:
        raise SystemExit(f"{name}: `{' '.join(cmd)}` failed (exit {proc.returncode}):\n" + "\n".join(lines[-30:]))
    run_dir = next(p for p in root.iterdir() if (p / "metrics.csv").exists())
    lora_layers = (yaml.safe_load((run_dir / "config.yaml").read_text()).get("model") or {}).get("lora_layers")
    rows = list(csv.DictReader((run_dir / "metrics.csv").open()))
    col = lambda key: [float(r[key]) for r in rows if r.get(key) not in (None, "")]
    window = done - start
    iteration_s, rollout_s, update_s = sum(col("perf/iteration_s")), sum(col("perf/rollout_s")), sum(col("perf/update_s"))
    steps = col("perf/total_env_steps")[-1]
    out = {"side": name, "window_s": window, "env_steps": steps, "steps_per_s": steps / window,
           "iterations": len(rows), "samples_used": sum(col("update/samples_used")),
           "share": {"rollout": rollout_s / window, "update": update_s / window,
                     "evaluation_and_checkpoints": (window - iteration_s) / window},
           "update_s": update_s, "lora_layers": lora_layers, "update_tokens": sum(col("update/tokens")) or None,
           "final_train_success": {k.split("/", 2)[2]: float(rows[-1][k]) for k in rows[-1]
                                   if k.startswith("train/success/") and rows[-1][k] != ""},
           "loadavg": [load_before, list(os.getloadavg())]}
    out["processes_on_its_code"] = len(list(tree.glob(".imported-*")))  # the driver and every Ray worker
    if out["processes_on_its_code"] < 2:
        raise SystemExit(f"{name}: only {out['processes_on_its_code']} process(es) imported its tree; the Ray "
                         f"workers ran other code")
    print(f"  {name}: {steps:.0f} env steps in {window:.0f} s = {out['steps_per_s']:.3f}/s  "
          f"(rollout {out['share']['rollout']:.0%}, update {out['share']['update']:.0%}, "
          f"eval+ckpt {out['share']['evaluation_and_checkpoints']:.0%})", flush=True)
    return out


def update_flops_per_token(model: str, lora_layers: int | None) -> tuple[float, float]:
    """(estimated FLOPs per update token, the model's linear parameters) at the model's shapes: the forward (2 per
    parameter) and the backward through the layers from the lowest adapter up (their input gradients: 2 per
    parameter again; the adapters' own gradients are small). Attention scores and the LM head are left out."""
    from policy_throughput import linear_params

    from multiverse.agents.models import load_model

    cfg = load_model(model).model.config
    layers = cfg.num_hidden_layers
    per_layer = linear_params(cfg) / layers
    backward_layers = layers if lora_layers is None else min(lora_layers, layers)
    return 2.0 * per_layer * (layers + backward_layers), float(per_layer * layers)


def matmul_peak_gflops(seconds: float = 3.0) -> float:
    import torch
    from policy_throughput import matmul_peak

    return matmul_peak(torch.bfloat16, seconds)[0] / 1e9


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--base", default=DEFAULT_BASE, help="the older code: a commit of this repository")
    p.add_argument("--new", default="HEAD", help="the newer code: a commit of this repository")
    p.add_argument("--config", default="launch/configs/local.yaml", help="the config, read from the base commit")
    p.add_argument("--iterations", type=int, default=2, help="iterations per run (evaluated before and after)")
    p.add_argument("--rounds", type=int, default=2, help="rounds of both sides, the order flipped every round")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="an override for every side")
    p.add_argument("--new-config", action="store_true", help="also run this tree with its own --config file")
    p.add_argument("--quick", action="store_true", help="tiny model, smoke config, 1 iteration, 1 round")
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "learning_throughput.json"))
    a = p.parse_args(argv)
    if a.quick:
        a.config, a.iterations, a.rounds = "launch/configs/smoke.yaml", 1, 1
    sets = [f"run.iterations={a.iterations}", f"run.eval_every={a.iterations}", f"run.checkpoint_every={a.iterations}",
            "run.eval_before=true", *a.set]
    result: dict[str, Any] = {"machine": _common.machine_info(-1, ("torch", "transformers", "peft", "ray")),
                              "base": subprocess.run(["git", "-C", str(ROOT), "rev-parse", a.base], check=True,
                                                     capture_output=True, text=True).stdout.strip(),
                              "new": subprocess.run(["git", "-C", str(ROOT), "rev-parse", a.new], check=True,
                                                    capture_output=True, text=True).stdout.strip(),
                              "config": a.config, "overrides": sets, "rounds": []}
    with tempfile.TemporaryDirectory(prefix="learning-throughput-") as tmp:
        runs = Path(tmp)
        base_tree, new_tree = unpack(a.base, runs / "base"), unpack(a.new, runs / "new")
        config = base_tree / a.config
        sides = [("base", base_tree, config), ("new", new_tree, config)]
        if a.new_config:
            sides.append(("new+config", new_tree, new_tree / a.config))
        for r in range(a.rounds):
            order = sides if r % 2 == 0 else sides[::-1]
            print(f"round {r + 1}/{a.rounds}: {', '.join(s[0] for s in order)}", flush=True)
            peak = matmul_peak_gflops()
            got = {name: run_side(name, tree, cfg, sets, runs) for name, tree, cfg in order}
            result["rounds"].append({"bf16_peak_gflops": peak, "runs": got,
                                     "speedup": got["new"]["steps_per_s"] / got["base"]["steps_per_s"]}
                                    | ({"speedup_with_new_config": got["new+config"]["steps_per_s"]
                                        / got["base"]["steps_per_s"]} if a.new_config else {}))
    model = "tiny-test" if a.quick else "default"
    for rnd in result["rounds"]:
        for run in rnd["runs"].values():
            if run["update_tokens"]:
                per_token, _ = update_flops_per_token(model, run["lora_layers"])
                run["update_gflops"] = per_token * run["update_tokens"] / run["update_s"] / 1e9
                run["update_fraction_of_bf16_peak"] = run["update_gflops"] / rnd["bf16_peak_gflops"]
    med = lambda xs: statistics.median(xs)
    result["whole_loop_steps_per_s"] = med([r["runs"]["new"]["steps_per_s"] for r in result["rounds"]])
    result["whole_loop_steps_per_s_base"] = med([r["runs"]["base"]["steps_per_s"] for r in result["rounds"]])
    result["whole_loop_speedup"] = med([r["speedup"] for r in result["rounds"]])
    if a.new_config:
        result["whole_loop_speedup_with_new_config"] = med([r["speedup_with_new_config"] for r in result["rounds"]])
    result["update_flops_model"] = {"model": model, "linear_params": update_flops_per_token(model, None)[1],
                                    "note": "update FLOPs estimated from the update's tokens (update/tokens): forward "
                                            "2/param/token, backward 2/param/token through the adapted layers"}
    result["goal"] = "whole_loop_speedup >= 3"
    result["machine"]["loadavg_at_end"] = list(os.getloadavg())
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"whole loop: {result['whole_loop_steps_per_s']:.3f} env steps/s (base "
          f"{result['whole_loop_steps_per_s_base']:.3f}), speed-up {result['whole_loop_speedup']:.2f}x -> {a.out}")


if __name__ == "__main__":
    main()
