"""The experiment's report, computed from the recorded evaluation episodes under ``OUT/arms/`` (and, for the value
head's section, the LM runs' metrics.csv): ``report.json`` (:func:`compute`), ``report.md`` (:func:`markdown`) and ``plots/``. This module imports neither
Ray nor torch (the runner brings those):

    exp = load_recorded(out)
    result = compute(out, exp, collect(out, exp))  # what report(out, exp) writes to report.json
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from multiverse.agents.durable import fsync_dir, write_text_atomic
from multiverse.launch.experiment.stats import (
    BOOTSTRAP,
    CATEGORIES,
    Categories,
    Eval,
    arm_table,
    final_evals,
    goal_check,
    learning_curve,
    per_env_success,
    value_head_table,
)
from multiverse.launch.plot import read_csv

if TYPE_CHECKING:  # the config brings the training config's dependencies; the report only reads an Experiment
    from multiverse.launch.experiment.config import Experiment

__all__ = ["collect", "compute", "markdown", "report", "value_ratios", "write_json"]


def write_json(path: Path, obj: Any) -> None:
    """``obj`` as indented JSON, written atomically and durably."""
    write_text_atomic(path, json.dumps(obj, indent=2, default=str))
    fsync_dir(path.parent)


# --------------------------------------------------------------------------- the episodes


def _lm_episodes(run: Path, arm: str, seed: int, first_only: bool = False) -> list[Eval]:
    from multiverse.agents.episodes import read_episodes

    steps_at = {0: 0} | {int(r["iteration"]): int(float(r["perf/total_env_steps"])) for r in read_csv(run / "metrics.csv")}
    found: dict[tuple[int, str, str, int], Eval] = {}
    for rec in read_episodes(run / "episodes" / "eval", steps=False):
        it = int(rec.meta.policy["iteration"])
        if first_only and it != 0:
            continue
        split = rec.episode.options.get("split", "train")
        # an evaluation repeated after a resume (the run stopped between it and its checkpoint): the later one
        found[(it, rec.episode.env_id, split, rec.episode.seed)] = Eval(
            arm, seed, rec.episode.env_id, split, steps_at.get(it, -1), float(rec.episode.success), rec.total_return)
    return list(found.values())


def _ppo_episodes(where: Path, seed: int) -> list[Eval]:
    from multiverse.agents.episodes import read_episodes

    found = []
    for folder in sorted(p for p in where.iterdir() if (p / "episodes" / "eval").is_dir()):
        for rec in read_episodes(folder / "episodes" / "eval", steps=False):
            found.append(Eval("rllib_ppo", seed, rec.episode.env_id, rec.episode.options.get("split", "train"),
                              int(rec.meta.policy["env_steps"]), float(rec.episode.success), rec.total_return))
    return found


def collect(out: Path, exp: Experiment) -> list[Eval]:
    """Every finished (arm, seed)'s evaluation episodes, from the recorded datasets."""
    s = exp.settings
    found: list[Eval] = []
    for arm in s.arms:
        for seed in s.seeds:
            if arm == "zero_shot" and "multiverse" in s.arms:
                # the multiverse arm's iteration-0 evaluation, made by one seed (Experiment.zero_shot_seed); an
                # experiment recorded before that has one per seed: that seed's
                run = out / "arms" / "multiverse" / f"seed{seed}"
                if seed == exp.zero_shot_seed and (run / "result.json").exists():
                    found += [dataclasses.replace(e, arm="zero_shot") for e in _lm_episodes(run, arm, seed, True)]
                continue
            where = out / "arms" / arm / f"seed{seed}"
            if not (where / "result.json").exists():
                continue
            found += _ppo_episodes(where, seed) if arm == "rllib_ppo" else _lm_episodes(where, arm, seed)
    return found


RATIO = "adv/adv_var_value_ratio/"  # the metrics.csv columns of the value head's variance ratio, per env
NO_VALUE = "adv/adv_var_no_value/"  # and of the variance without it (set whenever the env had samples)


def value_ratios(out: Path, exp: Experiment) -> dict[str, dict[str, dict[int, list[float]]]]:
    """arm -> training env id -> seed -> each iteration's logged ``adv_var_value_ratio`` (NaN: every group's returns
    were equal; an iteration without samples of the env is left out), from the finished LM runs' metrics.csv; arms
    whose runs logged none (no value head) are left out."""
    found: dict[str, dict[str, dict[int, list[float]]]] = {}
    train_ids = set(exp.train.env_ids())
    for arm in exp.settings.arms:
        if arm in ("zero_shot", "rllib_ppo"):
            continue
        for seed in exp.settings.seeds:
            run = out / "arms" / arm / f"seed{seed}"
            if not (run / "result.json").exists():
                continue
            for row in read_csv(run / "metrics.csv"):
                for key, raw in row.items():
                    env_id = key[len(RATIO):]
                    # no samples of the env that iteration (the curriculum gave it no group): nothing measured
                    if key.startswith(RATIO) and env_id in train_ids and row.get(f"{NO_VALUE}{env_id}"):
                        found.setdefault(arm, {}).setdefault(env_id, {}).setdefault(seed, []).append(
                            float(raw) if raw else float("nan"))
    return found


# --------------------------------------------------------------------------- report.json


def compute(out: str | Path, exp: Experiment, evals: list[Eval]) -> dict[str, Any]:
    """report.json's dict: the table per arm and category, the goals, per-env numbers, the runs and the protocol,
    from ``evals`` (:func:`collect`) and the runs' ``result.json`` under ``out``; with the ``ppo_value`` arm, or
    runs that logged it, ``value_head``: per arm the variance ratio per env (:func:`value_ratios`,
    :func:`~multiverse.launch.experiment.stats.value_head_table`). Writes nothing."""
    out = Path(out)
    s, cfg = exp.settings, exp.train
    cats = exp.categories()
    final = final_evals(evals)
    table = arm_table(final, s.arms, cats, np.random.default_rng(0))
    runs: dict[str, list[dict[str, Any]]] = {}
    for arm in s.arms:
        runs[arm] = [json.loads((out / "arms" / arm / f"seed{k}" / "result.json").read_text())
                     for k in s.seeds if (out / "arms" / arm / f"seed{k}" / "result.json").exists()]
    if "zero_shot" in s.arms and "multiverse" in s.arms:
        runs["zero_shot"] = [{"arm": "zero_shot", "seed": r["seed"], "env_steps": 0, "wall_s": 0.0,
                              "note": "the multiverse arm's iteration-0 evaluation"}
                             for r in runs["multiverse"] if r["seed"] == exp.zero_shot_seed]
    for arm in s.arms:
        results = runs[arm]
        table[arm]["env_steps_mean"] = float(np.mean([r["env_steps"] for r in results])) if results else None
        table[arm]["wall_s_total"] = float(sum(r.get("wall_s", 0.0) for r in results)) if results else None
    gain, goals = goal_check(table)
    made = json.loads((out / "experiment.json").read_text()) if (out / "experiment.json").exists() else {}
    result = {
        "heldout_gain_vs_zero_shot_points": gain,
        "goals": goals,
        "goal_met": all(v is True for v in goals.values()),
        "arms": table,
        "per_env_final_success": per_env_success(final, s.arms),
        "runs": runs,
        "protocol": {
            "train_envs": sorted(cats.train_ids), "heldout_envs": sorted(cats.heldout_ids),
            "games": sorted(cats.games), "heldout_envs_split": s.heldout_envs_split, "seeds": s.seeds,
            "env_steps_budget": s.env_steps, "eval_episodes_per_env_and_split": s.eval_episodes,
            "budget": exp.budget, "model": cfg.model.name, "episodes_counted": len(final),
            "episodes_recorded": len(evals),
            "ci": f"95% two-level bootstrap over seeds and episodes ({BOOTSTRAP} resamples)",
            "command": made.get("command"), "machine": made.get("machine"),
        },
    }
    ratios = value_ratios(out, exp)
    if ratios or "ppo_value" in s.arms:  # a report of runs without a value head stays as it was
        rng = np.random.default_rng(1)
        result["value_head"] = {arm: value_head_table(by_env, rng) for arm, by_env in ratios.items()}
    return result


def report(out: str | Path, exp: Experiment) -> dict[str, Any]:
    """Compute report.json, report.md and plots/ from the recorded evaluation episodes under ``out``."""
    out = Path(out)
    evals = collect(out, exp)
    result = compute(out, exp, evals)
    write_json(out / "report.json", result)
    write_text_atomic(out / "report.md", markdown(result, exp.source))
    _plots(out, evals, result["arms"], exp.categories(), exp.settings.arms, exp.settings.seeds)
    return result


# --------------------------------------------------------------------------- report.md


def _machine_text(m: dict[str, Any] | None) -> str:
    if not m:
        return "an unrecorded machine"
    return (f"{m['cores']} cores of {m['cpu']}, {m['memory_gib']} GiB, "
            + (f"GPU {m['gpu']}" if m.get("gpu") else "no GPU") + f", torch {m['torch']}")


def _fmt(cell: dict[str, Any] | None, metric: str = "success") -> str:
    if cell is None:
        return "n/a"
    m = cell[metric]
    if metric == "success":
        return f"{100 * m['mean']:.1f} [{100 * m['ci95'][0]:.1f}, {100 * m['ci95'][1]:.1f}]"
    return f"{m['mean']:+.2f} [{m['ci95'][0]:+.2f}, {m['ci95'][1]:+.2f}]"


def markdown(r: dict[str, Any], source: str) -> str:
    """report.md from report.json's dict; ``source`` names the config it was run with."""
    p = r["protocol"]
    lines = [
        "# Generalization experiment", "",
        (f"Model `{p['model']}`; training envs {', '.join(p['train_envs'])}; held-out envs "
         f"{', '.join(p['heldout_envs']) or 'none'} (on their {p['heldout_envs_split']} split). Seeds {p['seeds']}; "
         f"{p['env_steps_budget']} training env steps per arm and seed; {p['eval_episodes_per_env_and_split']} "
         f"greedy evaluation episodes per env and split (fixed seeds). Budget x{p['budget']:g} of `{source}`."), "",
        f"Made by `{p['command']}` on {_machine_text(p['machine'])}.", "",
        (f"Success rate in % (mean [{p['ci']}]), final evaluation of each run; computed from "
         f"{p['episodes_counted']} recorded evaluation episodes ({p['episodes_recorded']} with the learning curves)."),
        "", "| arm | " + " | ".join(CATEGORIES.values()) + " | env steps / run | wall time (all seeds) |",
        "|---|" + "---|" * (len(CATEGORIES) + 2),
    ]
    for arm, row in r["arms"].items():
        steps = "n/a" if row["env_steps_mean"] is None else f"{row['env_steps_mean']:.0f}"
        wall = "n/a" if row["wall_s_total"] is None else f"{row['wall_s_total'] / 60:.1f} min"
        if arm == "zero_shot" and "multiverse" in r["arms"]:
            wall = "in multiverse's"
        lines.append(f"| {arm} | " + " | ".join(_fmt(row[c]) for c in CATEGORIES) + f" | {steps} | {wall} |")
    lines += ["", "Return (mean [95% CI]):", "", "| arm | " + " | ".join(CATEGORIES.values()) + " |",
              "|---|" + "---|" * len(CATEGORIES)]
    for arm, row in r["arms"].items():
        lines.append(f"| {arm} | " + " | ".join(_fmt(row[c], "return") for c in CATEGORIES) + " |")
    gain = r["heldout_gain_vs_zero_shot_points"]
    g = r["goals"]

    def say(v: bool | None) -> str:
        return "not measured (arm missing)" if v is None else ("met" if v else "NOT met")

    lines += [
        "", "## Against the goal", "",
        (f"- Held-out-variant success, trained minus zero-shot: "
         f"{'n/a' if gain is None else f'{gain:+.1f} points'} (goal: at least +20): "
         f"{say(g['heldout_gain_vs_zero_shot_at_least_20_points'])}."),
        (f"- At least 10 points above the no-randomization ablation on held-out variants: "
         f"{say(g['at_least_10_points_above_no_randomization'])}."),
        (f"- Above RLlib PPO on the games' held-out variants at the same env-step budget: "
         f"{say(g['above_rllib_ppo_on_games'])}."),
        f"- Held-out envs (never trained on) not below zero-shot: {say(g['heldout_envs_not_below_zero_shot'])}.",
        "", "The goal is " + ("met." if r["goal_met"] else "not met."), "",
        "## Per env (final success, %)", "", "| arm | env | train split | held-out split |", "|---|---|---|---|",
    ]
    for arm, envs in r["per_env_final_success"].items():
        for env_id, splits in envs.items():
            cells = [f"{100 * splits[k]:.1f}" if k in splits else "n/a" for k in ("train", "heldout")]
            lines.append(f"| {arm} | {env_id} | {cells[0]} | {cells[1]} |")
    if "value_head" in r:
        lines += _value_head_lines(r["value_head"])
    lines += ["", ("Plots: `plots/learning_curves.png` (success against env steps, train vs held-out, per arm), "
                   "`plots/success_bars.png` (final success with 95% CIs)."), ""]
    return "\n".join(lines)


def _value_head_lines(by_arm: dict[str, Any]) -> list[str]:
    """The "Value head" section: per arm and training env the mean variance ratio, and the verdict line."""
    lines = ["", "## Value head", "",
             ("Advantage-variance ratio on the training samples of each iteration: GAE on the value head over "
              "GRPO's return minus the group mean, the same samples, both raw, each a variance within the env "
              "(`adv/adv_var_value_ratio/<env>`, launch/README.md). Mean [95% two-level bootstrap over seeds and "
              "iterations]; below 1: the value head reduces the variance."), ""]
    if not any(t["envs"] for t in by_arm.values()):
        return lines + ["No finished run logged the ratio yet (arm ppo_value)."]
    lines += ["| arm | env | ratio | iterations | without a ratio (equal returns) | verdict |",
              "|---|---|---|---|---|---|"]
    for arm, t in by_arm.items():
        for env_id, c in t["envs"].items():
            ratio = "n/a" if c["mean"] is None else f"{c['mean']:.3f} [{c['ci95'][0]:.3f}, {c['ci95'][1]:.3f}]"
            lines.append(f"| {arm} | {env_id} | {ratio} | {c['iterations']} | {c['no_ratio']} | {c['verdict']} |")
    lines.append("")
    for arm, t in by_arm.items():
        if t["envs"]:
            few = f"; {t['too_few']} had too few iterations to say" if t["too_few"] else ""
            lines.append(f"- {arm}: the value head reduces advantage variance on {t['reduces_on']} of "
                         f"{len(t['envs'])} envs (interval below 1); it raises it on {t['raises_on']}{few}.")
    return lines


# --------------------------------------------------------------------------- plots/


def _plots(out: Path, evals: list[Eval], table: dict[str, Any], cats: Categories, arm_order: list[str],
           seeds: list[int]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder = out / "plots"
    folder.mkdir(exist_ok=True)
    arms = [a for a in arm_order if table.get(a, {}).get("seeds")]
    curves = [a for a in arms if a != "zero_shot"] or arms
    fig, axes = plt.subplots(1, max(1, len(curves)), figsize=(4.5 * max(1, len(curves)), 3.6), squeeze=False,
                             sharey=True)
    zero = table.get("zero_shot", {}).get("heldout") if "zero_shot" in arms else None
    for ax, arm in zip(axes[0], curves):
        for cat, color in (("train", "C0"), ("heldout", "C1"), ("heldout_envs", "C2")):
            curve = learning_curve([e for e in evals if e.arm == arm and cat in cats.of(e)], seeds)
            if curve is None:
                continue
            xs, mean, sd = curve
            ax.plot(xs, 100 * mean, marker="o", color=color, label=CATEGORIES[cat])
            ax.fill_between(xs, 100 * (mean - sd), 100 * (mean + sd), color=color, alpha=0.15)
        if zero is not None:
            ax.axhline(100 * zero["success"]["mean"], color="C1", linestyle=":", label="zero-shot, held-out variants")
        ax.set_title(arm)
        ax.set_xlabel("training env steps")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("greedy success (%), mean ± sd over seeds")
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(folder / "learning_curves.png", dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(8, 3.8))
    width = 0.8 / max(1, len(arms))
    for i, arm in enumerate(arms):
        for j, cat in enumerate(CATEGORIES):
            cell = table[arm][cat]
            if cell is None:
                continue
            m, (lo, hi) = cell["success"]["mean"], cell["success"]["ci95"]
            ax.bar(j + i * width, 100 * m, width, color=f"C{i}", label=arm,
                   yerr=[[100 * (m - lo)], [100 * (hi - m)]], capsize=3)
    ax.set_xticks([j + width * (len(arms) - 1) / 2 for j in range(len(CATEGORIES))], list(CATEGORIES.values()))
    ax.set_ylabel("final greedy success (%), 95% CI")
    handles, labels = ax.get_legend_handles_labels()
    uniq = dict(zip(labels, handles))
    ax.legend(uniq.values(), uniq.keys(), fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(folder / "success_bars.png", dpi=110)
    plt.close(fig)
