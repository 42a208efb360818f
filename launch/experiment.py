"""``multiverse experiment generalization``: does a pretrained LM policy, trained jointly on randomized envs,
transfer to variants and envs it never saw? One command runs every arm and writes a report computed from the
recorded evaluation episodes.

Protocol (Procgen-style): training uses each env's TRAIN randomization range; the test is each training env's
HELD-OUT range, plus whole envs held out of training. Arms, each with the same env-step budget and seeds:

* ``zero_shot``: the model before any update. Its numbers are the evaluation at iteration 0 of the
  ``multiverse`` arm (the same model, seeds and episodes); without that arm it is a 0-iteration run.
* ``multiverse``: ``multiverse train`` with randomization on.
* ``no_randomization``: the same, training on each env's nominal parameters only.
* ``rllib_ppo``: RLlib PPO from scratch, one policy per training game, on the game's numeric observation
  (the Universe-2016 baseline; it has no policy for web tasks or held-out envs).

Every arm's evaluation episodes are greedy, on fixed seeds, and recorded in Multiverse's episode schema under
``OUT/arms/<arm>/seed<k>/`` (``multiverse replay --verify`` re-checks them). An (arm, seed) that finished has a
``result.json``; a rerun skips it and resumes a training run from its last checkpoint. ``report.md``,
``report.json`` and ``plots/`` are computed from the episodes at the end of every run.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from multiverse.agents.durable import fsync_dir, write_text_atomic
from multiverse.launch.config import (
    ConfigError,
    RunConfig,
    _format_error,
    _parse_value,
    _Section,
    _set_dotted,
    load_config,
    read_tree,
)
from pydantic import Field, ValidationError, model_validator

__all__ = ["ARMS", "ExperimentConfig", "load_experiment", "report", "run_generalization"]

ARMS = ("zero_shot", "multiverse", "no_randomization", "rllib_ppo")
CATEGORIES = {
    "train": "train variants",
    "heldout": "held-out variants",
    "heldout_games": "held-out variants (games)",
    "heldout_envs": "held-out envs",
}
BOOTSTRAP = 2000


class PPOSection(_Section):
    """RLlib PPO's hyper-parameters (the from-scratch baseline)."""

    train_batch_size: int = Field(1000, ge=1)
    """Env steps per PPO iteration."""
    minibatch_size: int = Field(250, ge=1)
    """SGD minibatch size."""
    num_epochs: int = Field(4, ge=1)
    """SGD passes over each batch."""
    lr: float = Field(3e-4, gt=0)
    """Adam learning rate."""
    entropy_coeff: float = Field(0.0, ge=0)
    """Entropy bonus."""
    eval_every_steps: int = Field(2000, ge=1)
    """Evaluate after every this many env steps of a game's training (and at 0 and at the end)."""


class ExperimentSection(_Section):
    """The experiment's arms, seeds and budget."""

    arms: list[Literal["zero_shot", "multiverse", "no_randomization", "rllib_ppo"]] = Field(
        default_factory=lambda: list(ARMS))
    """Arms to run (zero_shot, multiverse, no_randomization, rllib_ppo)."""
    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2])
    """Seeds: each arm runs once per seed (run.seed and model.seed of the training arms, RLlib's seed)."""
    env_steps: int = Field(4000, ge=1)
    """Training env-step budget of every (arm, seed), scaled by --budget. The LM arms stop after the iteration
    that reaches it; RLlib splits it evenly over the training games."""
    eval_episodes: int = Field(16, ge=1)
    """Greedy evaluation episodes per env id and split, scaled by --budget (at least 2)."""
    heldout_envs_split: Literal["train", "heldout"] = "train"
    """Split of the held-out envs' episodes in the report (train: the env itself is what is new)."""
    ppo: PPOSection = Field(default_factory=PPOSection)
    """RLlib PPO (arm rllib_ppo)."""

    @model_validator(mode="after")
    def _check(self) -> ExperimentSection:
        if not self.arms:
            raise ValueError("experiment.arms is empty; name at least one of " + ", ".join(ARMS))
        if len(set(self.seeds)) != len(self.seeds) or not self.seeds:
            raise ValueError(f"experiment.seeds must be distinct and not empty, got {self.seeds}")
        return self


class ExperimentConfig(_Section):
    """``multiverse experiment generalization``'s config: the experiment, and the training config of the LM arms."""

    experiment: ExperimentSection = Field(default_factory=ExperimentSection)
    train: dict[str, Any] = Field(default_factory=dict)
    """A ``multiverse train`` config tree (model, envs, algorithm, rollout, run, ray) for the LM arms."""


@dataclasses.dataclass
class Experiment:
    """A loaded experiment: its settings (budget applied) and the LM arms' validated training config."""

    settings: ExperimentSection
    train: RunConfig
    budget: float
    source: str


def load_experiment(path: str | Path, overrides: Sequence[str] = (), *, budget: float = 1.0) -> Experiment:
    """Read an experiment YAML, apply ``experiment.X=...`` / ``train.X=...`` overrides and ``--budget``.

    Errors name the field (``ConfigError``); nothing runs."""
    if not budget > 0 or not math.isfinite(budget):
        raise ConfigError(f"--budget must be a positive number (1 = the config as written), got {budget}")
    file, tree = read_tree(path, "experiment, train")
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or key.split(".")[0] not in ("experiment", "train"):
            raise ConfigError(f"an override must be experiment.KEY=VALUE or train.KEY=VALUE, got {item!r}")
        section, _, rest = key.strip().partition(".")
        if section == "train":  # a multiverse train field, walked as that config's tree
            try:
                _set_dotted(tree.setdefault("train", {}), rest, _parse_value(raw))
            except ConfigError as error:
                raise ConfigError(f"{item}: {error}") from None
        else:
            _set_dotted(tree, key.strip(), _parse_value(raw), root=ExperimentConfig)
    try:
        cfg = ExperimentConfig.model_validate(tree)
    except ValidationError as error:
        raise ConfigError(_format_error(error)) from None
    try:
        train = load_config(None, base=cfg.train)
    except ConfigError as error:
        raise ConfigError(f"train.{error}") from None
    s = cfg.experiment
    s.env_steps = max(1, round(s.env_steps * budget))
    s.eval_episodes = max(2, round(s.eval_episodes * budget))
    s.ppo.eval_every_steps = max(1, round(s.ppo.eval_every_steps * budget))
    if "rllib_ppo" in s.arms and not _games(train.env_ids()):
        raise ConfigError("experiment.arms has rllib_ppo, but train.envs.train has no game for it (RLlib's "
                          "baseline plays games only); add a games/... id or drop the arm")
    try:
        source = str(file.relative_to(Path.cwd()))
    except ValueError:
        source = str(file)
    return Experiment(s, train, budget, source)


def _games(ids: Sequence[str]) -> list[str]:
    from multiverse import envs

    return [i for i in ids if envs.lookup(i).kind == "game"]


# --------------------------------------------------------------------------- running


def _write_json(path: Path, obj: Any) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2, default=str))
    fsync_dir(path.parent)


def _lm_config(exp: Experiment, arm: str, seed: int, root: Path) -> RunConfig:
    tree = exp.train.model_dump(mode="json")
    tree["model"]["seed"] = seed
    tree["envs"]["eval_split"] = "both"
    tree["envs"]["randomize"] = arm != "no_randomization"
    # the untrained policy's evaluation: zero-shot's numbers come from the multiverse arm's; the ablation's would
    # repeat it
    tree["run"].update(seed=seed, root=str(root), name=f"seed{seed}", record_eval=True, progress=False,
                       eval_episodes=exp.settings.eval_episodes, eval_before=arm != "no_randomization",
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
    rows = _read_csv(where / "metrics.csv")
    steps = int(float(rows[-1]["perf/total_env_steps"])) if rows else 0
    seconds = sum(float(r["perf/iteration_s"]) for r in rows)
    return {"arm": arm, "seed": seed, "env_steps": steps, "iterations": len(rows), "train_wall_s": seconds,
            "wall_s": time.perf_counter() - start, "resumed": resume is not None}


def _run_ppo(exp: Experiment, seed: int, where: Path) -> dict[str, Any]:
    from multiverse.launch.baseline import train_and_evaluate_ppo
    from multiverse.launch.train import EVAL_SEED_BASE

    s, cfg = exp.settings, exp.train
    games = _games(cfg.env_ids())
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
    _write_json(previous, resolved)
    s = exp.settings
    jobs = [(arm, seed) for arm in ("multiverse", "no_randomization", "zero_shot", "rllib_ppo") if arm in s.arms
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
            _write_json(where / "result.json", result)
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


# --------------------------------------------------------------------------- the report


def _read_csv(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@dataclasses.dataclass
class _Eval:
    """One recorded evaluation episode, placed."""

    arm: str
    seed: int
    env_id: str
    split: str
    env_steps: int
    success: float
    ret: float


def _lm_episodes(run: Path, arm: str, seed: int, first_only: bool = False) -> list[_Eval]:
    from multiverse.agents.episodes import read_episodes

    steps_at = {0: 0} | {int(r["iteration"]): int(float(r["perf/total_env_steps"])) for r in _read_csv(run / "metrics.csv")}
    found: dict[tuple[int, str, str, int], _Eval] = {}
    for rec in read_episodes(run / "episodes" / "eval", steps=False):
        it = int(rec.meta.policy["iteration"])
        if first_only and it != 0:
            continue
        split = rec.episode.options.get("split", "train")
        # an evaluation repeated after a resume (the run stopped between it and its checkpoint): the later one
        found[(it, rec.episode.env_id, split, rec.episode.seed)] = _Eval(
            arm, seed, rec.episode.env_id, split, steps_at.get(it, -1), float(rec.episode.success), rec.total_return)
    return list(found.values())


def _ppo_episodes(where: Path, seed: int) -> list[_Eval]:
    from multiverse.agents.episodes import read_episodes

    found = []
    for folder in sorted(p for p in where.iterdir() if (p / "episodes" / "eval").is_dir()):
        for rec in read_episodes(folder / "episodes" / "eval", steps=False):
            found.append(_Eval("rllib_ppo", seed, rec.episode.env_id, rec.episode.options.get("split", "train"),
                               int(rec.meta.policy["env_steps"]), float(rec.episode.success), rec.total_return))
    return found


def collect(out: Path, exp: Experiment) -> list[_Eval]:
    """Every finished (arm, seed)'s evaluation episodes, from the recorded datasets."""
    s = exp.settings
    found: list[_Eval] = []
    for arm in s.arms:
        for seed in s.seeds:
            if arm == "zero_shot" and "multiverse" in s.arms:
                run = out / "arms" / "multiverse" / f"seed{seed}"
                if (run / "result.json").exists():
                    found += [dataclasses.replace(e, arm="zero_shot") for e in _lm_episodes(run, arm, seed, True)]
                continue
            where = out / "arms" / arm / f"seed{seed}"
            if not (where / "result.json").exists():
                continue
            found += _ppo_episodes(where, seed) if arm == "rllib_ppo" else _lm_episodes(where, arm, seed)
    return found


def _category(e: _Eval, train_ids: set[str], heldout_ids: set[str], games: set[str], heldout_envs_split: str
              ) -> list[str]:
    if e.env_id in train_ids:
        if e.split == "train":
            return ["train"]
        return ["heldout", "heldout_games"] if e.env_id in games else ["heldout"]
    if e.env_id in heldout_ids and e.split == heldout_envs_split:
        return ["heldout_envs"]
    return []


def bootstrap_ci(by_seed: dict[int, np.ndarray], rng: np.random.Generator, n: int = BOOTSTRAP
                 ) -> tuple[float, float, float]:
    """Mean and 95% interval: resample seeds, then episodes within each resampled seed (two-level bootstrap)."""
    groups = [v for v in by_seed.values() if len(v)]
    if not groups:
        return float("nan"), float("nan"), float("nan")
    mean = float(np.mean(np.concatenate(groups)))
    stats = np.empty(n)
    for b in range(n):
        picks = rng.integers(len(groups), size=len(groups))
        stats[b] = np.mean(np.concatenate([rng.choice(groups[i], size=len(groups[i])) for i in picks]))
    lo, hi = np.percentile(stats, [2.5, 97.5])
    return mean, float(lo), float(hi)


def _final(evals: list[_Eval]) -> list[_Eval]:
    """Each (arm, seed, env, split)'s last evaluation."""
    last: dict[tuple[str, int, str, str], int] = {}
    for e in evals:
        key = (e.arm, e.seed, e.env_id, e.split)
        last[key] = max(last.get(key, -1), e.env_steps)
    return [e for e in evals if e.env_steps == last[(e.arm, e.seed, e.env_id, e.split)]]


def report(out: str | Path, exp: Experiment) -> dict[str, Any]:
    """Compute report.json, report.md and plots/ from the recorded evaluation episodes under ``out``."""
    out = Path(out)
    s, cfg = exp.settings, exp.train
    train_ids, heldout_ids = set(cfg.env_ids()), set(cfg.envs.heldout_ids) - set(cfg.env_ids())
    games = set(_games(sorted(train_ids)))
    evals = collect(out, exp)
    final = _final(evals)
    rng = np.random.default_rng(0)
    table: dict[str, dict[str, Any]] = {}
    runs: dict[str, list[dict[str, Any]]] = {}
    for arm in s.arms:
        runs[arm] = [json.loads((out / "arms" / arm / f"seed{k}" / "result.json").read_text())
                     for k in s.seeds if (out / "arms" / arm / f"seed{k}" / "result.json").exists()]
    if "zero_shot" in s.arms and "multiverse" in s.arms:
        runs["zero_shot"] = [{"arm": "zero_shot", "seed": r["seed"], "env_steps": 0, "wall_s": 0.0,
                              "note": "the multiverse arm's iteration-0 evaluation"} for r in runs["multiverse"]]
    for arm in s.arms:
        results = runs[arm]
        row: dict[str, Any] = {"seeds": sorted({e.seed for e in final if e.arm == arm})}
        for cat in CATEGORIES:
            mine = [e for e in final if e.arm == arm
                    and cat in _category(e, train_ids, heldout_ids, games, s.heldout_envs_split)]
            if not mine:
                row[cat] = None
                continue
            cell: dict[str, Any] = {"episodes": len(mine)}
            for metric, get in (("success", lambda e: e.success), ("return", lambda e: e.ret)):
                by_seed = {k: np.array([get(e) for e in mine if e.seed == k]) for k in row["seeds"]}
                mean, lo, hi = bootstrap_ci(by_seed, rng)
                cell[metric] = {"mean": mean, "ci95": [lo, hi]}
            row[cat] = cell
        row["env_steps_mean"] = float(np.mean([r["env_steps"] for r in results])) if results else None
        row["wall_s_total"] = float(sum(r.get("wall_s", 0.0) for r in results)) if results else None
        table[arm] = row

    def success(arm: str, cat: str) -> float | None:
        cell = table.get(arm, {}).get(cat)
        return None if cell is None else cell["success"]["mean"]

    def points(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None else 100.0 * (a - b)

    gain = points(success("multiverse", "heldout"), success("zero_shot", "heldout"))
    goals = {
        "heldout_gain_vs_zero_shot_at_least_20_points": None if gain is None else gain >= 20.0,
        "above_no_randomization": _above(success("multiverse", "heldout"), success("no_randomization", "heldout")),
        "above_rllib_ppo_on_games": _above(success("multiverse", "heldout_games"),
                                           success("rllib_ppo", "heldout_games")),
    }
    per_env = _per_env(final, s.arms)
    made = json.loads((out / "experiment.json").read_text()) if (out / "experiment.json").exists() else {}
    result = {
        "heldout_gain_vs_zero_shot_points": gain,
        "goals": goals,
        "goal_met": all(v is True for v in goals.values()),
        "arms": table,
        "per_env_final_success": per_env,
        "runs": runs,
        "protocol": {
            "train_envs": sorted(train_ids), "heldout_envs": sorted(heldout_ids), "games": sorted(games),
            "heldout_envs_split": s.heldout_envs_split, "seeds": s.seeds, "env_steps_budget": s.env_steps,
            "eval_episodes_per_env_and_split": s.eval_episodes, "budget": exp.budget, "model": cfg.model.name,
            "episodes_counted": len(final), "episodes_recorded": len(evals),
            "ci": f"95% two-level bootstrap over seeds and episodes ({BOOTSTRAP} resamples)",
            "command": made.get("command"), "machine": made.get("machine"),
        },
    }
    _write_json(out / "report.json", result)
    write_text_atomic(out / "report.md", _markdown(result, exp))
    _plots(out, evals, final, table, train_ids, heldout_ids, games, s)
    return result


def _above(a: float | None, b: float | None) -> bool | None:
    return None if a is None or b is None else a > b


def _per_env(final: list[_Eval], arms: Sequence[str]) -> dict[str, dict[str, dict[str, float]]]:
    out: dict[str, dict[str, dict[str, float]]] = {}
    for arm in arms:
        for env_id, split in sorted({(e.env_id, e.split) for e in final if e.arm == arm}):
            xs = [e.success for e in final if e.arm == arm and e.env_id == env_id and e.split == split]
            out.setdefault(arm, {}).setdefault(env_id, {})[split] = float(np.mean(xs))
    return out


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


def _markdown(r: dict[str, Any], exp: Experiment) -> str:
    p = r["protocol"]
    lines = [
        "# Generalization experiment", "",
        f"Model `{p['model']}`; training envs {', '.join(p['train_envs'])}; held-out envs "
        f"{', '.join(p['heldout_envs']) or 'none'} (on their {p['heldout_envs_split']} split). Seeds {p['seeds']}; "
        f"{p['env_steps_budget']} training env steps per arm and seed; {p['eval_episodes_per_env_and_split']} greedy "
        f"evaluation episodes per env and split (fixed seeds). Budget x{p['budget']:g} of `{exp.source}`.", "",
        f"Made by `{p['command']}` on {_machine_text(p['machine'])}.", "",
        f"Success rate in % (mean [{p['ci']}]), final evaluation of each run; computed from "
        f"{p['episodes_counted']} recorded evaluation episodes ({p['episodes_recorded']} with the learning curves).",
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
        f"- Held-out-variant success, trained minus zero-shot: "
        f"{'n/a' if gain is None else f'{gain:+.1f} points'} (goal: at least +20): "
        f"{say(g['heldout_gain_vs_zero_shot_at_least_20_points'])}.",
        f"- Above the no-randomization ablation on held-out variants: {say(g['above_no_randomization'])}.",
        f"- Above RLlib PPO on the games' held-out variants at the same env-step budget: "
        f"{say(g['above_rllib_ppo_on_games'])}.",
        "", "The goal is " + ("met." if r["goal_met"] else "not met."), "",
        "## Per env (final success, %)", "", "| arm | env | train split | held-out split |", "|---|---|---|---|",
    ]
    for arm, envs in r["per_env_final_success"].items():
        for env_id, splits in envs.items():
            cells = [f"{100 * splits[k]:.1f}" if k in splits else "n/a" for k in ("train", "heldout")]
            lines.append(f"| {arm} | {env_id} | {cells[0]} | {cells[1]} |")
    lines += ["", "Plots: `plots/learning_curves.png` (success against env steps, train vs held-out, per arm), "
              "`plots/success_bars.png` (final success with 95% CIs).", ""]
    return "\n".join(lines)


def _plots(out: Path, evals: list[_Eval], final: list[_Eval], table: dict[str, Any], train_ids: set[str],
           heldout_ids: set[str], games: set[str], s: ExperimentSection) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder = out / "plots"
    folder.mkdir(exist_ok=True)
    arms = [a for a in s.arms if table.get(a, {}).get("seeds")]
    curves = [a for a in arms if a != "zero_shot"] or arms
    fig, axes = plt.subplots(1, max(1, len(curves)), figsize=(4.5 * max(1, len(curves)), 3.6), squeeze=False,
                             sharey=True)
    zero = table.get("zero_shot", {}).get("heldout") if "zero_shot" in arms else None
    for ax, arm in zip(axes[0], curves):
        for cat, color in (("train", "C0"), ("heldout", "C1"), ("heldout_envs", "C2")):
            mine = [e for e in evals if e.arm == arm
                    and cat in _category(e, train_ids, heldout_ids, games, s.heldout_envs_split)]
            # seeds reach slightly different env-step counts: align them by evaluation round
            rounds: dict[int, list[tuple[int, float]]] = {}
            for k in s.seeds:
                at = sorted({e.env_steps for e in mine if e.seed == k})
                for r, x in enumerate(at):
                    rounds.setdefault(r, []).append((x, float(np.mean([e.success for e in mine
                                                                       if e.seed == k and e.env_steps == x]))))
            if not rounds:
                continue
            xs = np.array([np.mean([x for x, _ in rounds[r]]) for r in sorted(rounds)])
            ys = [np.array([y for _, y in rounds[r]]) for r in sorted(rounds)]
            mean, sd = np.array([y.mean() for y in ys]), np.array([y.std() for y in ys])
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
