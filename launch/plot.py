"""``multiverse plot RUN_DIR``: PNG learning curves from a run's metrics.csv and eval.csv.

Writes into RUN_DIR/plots/:

* ``success.png``: training success per env and overall (lines), greedy
  evaluation success per env (markers: training envs on the eval split, and the
  held-out env ids);
* ``return.png``: the same for returns;
* ``env_<id>.png``: one env's training success and return with its evaluations;
* ``training.png``: losses, KL, entropy, gradient norm, advantage variance;
* ``throughput.png``: env steps/s, tokens/s, iteration time; lost episodes.
"""

from __future__ import annotations

import csv
import math
import re
from pathlib import Path
from typing import Any

__all__ = ["plot_run", "read_csv"]


def read_csv(path: Path) -> list[dict[str, str]]:
    """A CSV's rows as dicts of strings; none when the file is not there (yet)."""
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _num(v: str | None) -> float:
    try:
        return float(v) if v not in (None, "") else math.nan
    except ValueError:
        return math.nan


def _series(rows: list[dict[str, str]], key: str) -> tuple[list[float], list[float]]:
    xs, ys = [], []
    for r in rows:
        y = _num(r.get(key))
        if not math.isnan(y):
            xs.append(_num(r["iteration"]))
            ys.append(y)
    return xs, ys


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def plot_run(run_dir: str | Path) -> list[Path]:
    """Write the PNGs; returns their paths. Raises FileNotFoundError when the run has no metrics yet."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run = Path(run_dir).expanduser()
    metrics = read_csv(run / "metrics.csv")
    evals = read_csv(run / "eval.csv")
    if not metrics and not evals:
        raise FileNotFoundError(f"{run} has no metrics.csv or eval.csv; is it a run dir of multiverse train?")
    cols = list(metrics[0]) if metrics else []
    envs = sorted({c.split("/", 2)[2] for c in cols if c.startswith("train/success/")})
    eval_envs = sorted({r["env"] for r in evals})
    out_dir = run / "plots"
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    colors = {e: f"C{i % 10}" for i, e in enumerate(sorted(set(envs) | set(eval_envs)))}

    def save(fig: Any, name: str) -> None:
        path = out_dir / name
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)

    def eval_points(env: str, key: str, split: str) -> tuple[list[float], list[float], str]:
        mine = [r for r in evals if r["env"] == env and r["split"] == split and not math.isnan(_num(r[key]))]
        role = mine[0]["role"] if mine else ""
        return [_num(r["iteration"]) for r in mine], [_num(r[key]) for r in mine], role

    def splits_of(env: str) -> list[str]:  # one split, or both (envs.eval_split=both)
        return sorted({r["split"] for r in evals if r["env"] == env}, key=lambda s: s != "train")

    for key, label in (("success", "success rate"), ("return", "mean return")):
        fig, ax = plt.subplots(figsize=(9, 5))
        xs, ys = _series(metrics, f"train/{key}")
        if xs:
            ax.plot(xs, ys, color="black", linewidth=2, label="train (all envs)")
        for env in envs:
            xs, ys = _series(metrics, f"train/{key}/{env}")
            ax.plot(xs, ys, color=colors[env], alpha=0.7, label=f"train {env}")
        for env in eval_envs:
            for split in splits_of(env):
                xs, ys, role = eval_points(env, key, split)
                marker = "o" if role == "train" else "s"
                ax.plot(xs, ys, marker=marker, linestyle="--" if split == "heldout" else ":", color=colors[env],
                        label=f"eval {env} ({'held-out env, ' if role != 'train' else ''}{split} split)")
        ax.set_xlabel("iteration")
        ax.set_ylabel(label)
        ax.set_title(f"{label}: training (lines) and greedy evaluation (markers)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
        save(fig, f"{key}.png")

    for env in sorted(set(envs) | set(eval_envs)):
        fig, axes = plt.subplots(1, 2, figsize=(11, 4))
        for ax, key in zip(axes, ("success", "return")):
            xs, ys = _series(metrics, f"train/{key}/{env}")
            if xs:
                ax.plot(xs, ys, color=colors[env], label="train")
            for split in splits_of(env):
                xs, ys, role = eval_points(env, key, split)
                if xs:
                    ax.plot(xs, ys, marker="o", linestyle="--" if split == "heldout" else ":", color="black",
                            label=f"eval ({role}, {split} split)")
            ax.set_title(f"{env}: {key}")
            ax.set_xlabel("iteration")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
        save(fig, f"env_{_safe(env)}.png")

    panels = [
        ("loss", ["update/loss", "update/policy_loss", "update/value_loss"]),
        ("KL and entropy", ["update/approx_kl", "update/kl", "update/entropy"]),
        ("gradient norm", ["update/grad_norm"]),
        ("advantage variance", ["adv/adv_var_no_baseline", "adv/adv_var_with_baseline"]),
    ]
    _panel_figure(plt, metrics, panels, save, "training.png")
    panels = [
        ("env steps/s", ["perf/env_steps_per_s"]),
        ("tokens/s", ["perf/tokens_per_s"]),
        ("seconds", ["perf/iteration_s", "perf/rollout_s", "perf/update_s"]),
        ("faults", ["faults/episodes_lost", "faults/infra_errors", "faults/workers_restarted"]),
    ]
    _panel_figure(plt, metrics, panels, save, "throughput.png")
    return written


def _panel_figure(plt: Any, metrics: list[dict[str, str]], panels: list[tuple[str, list[str]]], save: Any,
                  name: str) -> None:
    fig, axes = plt.subplots(2, 2, figsize=(11, 7))
    for ax, (title, keys) in zip(axes.flat, panels):
        for key in keys:
            xs, ys = _series(metrics, key)
            if xs:
                ax.plot(xs, ys, marker=".", label=key.split("/", 1)[1])
        ax.set_title(title)
        ax.set_xlabel("iteration")
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=8)
    save(fig, name)
