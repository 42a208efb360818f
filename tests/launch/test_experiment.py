"""``multiverse experiment generalization`` end to end on the smoke budget: the tiny model, real embedded Ray,
RLlib PPO, real recorded episodes. The report must be computed from those episodes, resume must keep finished
runs, and bad input must fail before anything runs. The committed run's report is recomputed from its episodes."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from multiverse.agents.episodes import read_episodes
from multiverse.launch.config import ConfigError
from multiverse.launch.experiment import CATEGORIES, load_experiment, load_recorded, report
from multiverse.launch.plot import read_csv

ARMS = ["zero_shot", "multiverse", "no_randomization", "ppo_value", "rllib_ppo"]
#: the committed full CPU run (bench/README.md): its episodes, and the report made from them
COMMITTED = Path(__file__).resolve().parents[2] / "bench" / "results" / "generalization"


def run(cli: str, *args: str, timeout: int = 900, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([cli, "experiment", "generalization", *args], capture_output=True, text=True,
                          timeout=timeout, env=env, check=False)


def success_of(folder: Path, env_ids: set[str], split: str, iteration: int | None = None) -> list[float]:
    """Final-evaluation successes straight from a run's recorded episodes (independent of the report code)."""
    recs = [r for r in read_episodes(folder / "episodes" / "eval", steps=False)
            if r.episode.env_id in env_ids and r.episode.options["split"] == split]
    if iteration is None:
        iteration = max(r.meta.policy["iteration"] for r in recs)
    return [float(r.episode.success) for r in recs if r.meta.policy["iteration"] == iteration]


def test_smoke_experiment_reports_from_its_episodes_and_resumes(tmp_path: Path, multiverse_cli: str) -> None:
    out = tmp_path / "gen"
    first = run(multiverse_cli, "--config", "experiment_smoke", "--out", str(out))
    assert first.returncode == 0, (first.stdout + first.stderr)[-4000:]
    report = json.loads((out / "report.json").read_text())
    exp = load_experiment("experiment_smoke")
    seeds, n = exp.settings.seeds, exp.settings.eval_episodes

    # every arm, every category it can have, counted in episodes
    assert list(report["arms"]) == ARMS
    for arm in ARMS:
        row = report["arms"][arm]
        # zero-shot: the multiverse arm's first seed's evaluation before training (the others would repeat it)
        runs = seeds[:1] if arm == "zero_shot" else seeds
        assert row["seeds"] == runs, arm
        for cat in ("train", "heldout", "heldout_games"):
            assert row[cat]["episodes"] == len(runs) * n, (arm, cat)  # one training game, n episodes per seed
            lo, hi = row[cat]["success"]["ci95"]
            assert 0.0 <= lo <= row[cat]["success"]["mean"] <= hi <= 1.0
        if arm == "rllib_ppo":
            assert row["heldout_envs"] is None  # no RLlib policy for an env it never trained on
        else:
            assert row["heldout_envs"]["episodes"] == len(runs) * n
    for arm in ("multiverse", "no_randomization", "ppo_value", "rllib_ppo"):
        assert report["arms"][arm]["env_steps_mean"] >= exp.settings.env_steps, arm  # the budget was spent

    # the numbers are the recorded episodes' numbers
    train_ids = set(exp.train.env_ids())
    mv = [x for k in seeds for x in success_of(out / "arms" / "multiverse" / f"seed{k}", train_ids, "heldout")]
    zs = success_of(out / "arms" / "multiverse" / f"seed{seeds[0]}", train_ids, "heldout", 0)
    assert all(not success_of(out / "arms" / "multiverse" / f"seed{k}", train_ids, "heldout", 0) for k in seeds[1:])
    ppo = [x for k in seeds for x in success_of(out / "arms" / "rllib_ppo" / f"seed{k}" / "games_Catch-v0",
                                                 train_ids, "heldout")]
    assert len(mv) == len(ppo) == len(seeds) * n and len(zs) == n
    assert report["arms"]["multiverse"]["heldout"]["success"]["mean"] == pytest.approx(np.mean(mv))
    assert report["arms"]["zero_shot"]["heldout"]["success"]["mean"] == pytest.approx(np.mean(zs))
    assert report["arms"]["rllib_ppo"]["heldout"]["success"]["mean"] == pytest.approx(np.mean(ppo))
    assert report["heldout_gain_vs_zero_shot_points"] == pytest.approx(100 * (np.mean(mv) - np.mean(zs)))
    assert set(report["goals"]) == {"heldout_gain_vs_zero_shot_at_least_20_points",
                                    "at_least_10_points_above_no_randomization", "above_rllib_ppo_on_games",
                                    "heldout_envs_not_below_zero_shot"}
    assert report["goal_met"] == all(v is True for v in report["goals"].values())

    md = (out / "report.md").read_text()
    assert "| arm | " + " | ".join(CATEGORIES.values()) in md
    for arm in ARMS:
        assert f"\n| {arm} | " in md
    assert "The goal is " in md

    # the value head: the ppo_value runs' logged variance ratios, straight from their metrics.csv
    logged = [float(r["adv/adv_var_value_ratio/games/Catch-v0"]) for k in seeds
              for r in read_csv(out / "arms" / "ppo_value" / f"seed{k}" / "metrics.csv")
              if r["adv/adv_var_value_ratio/games/Catch-v0"]]
    assert logged and all(x >= 0 for x in logged)
    assert list(report["value_head"]) == ["ppo_value"]  # the GRPO arms have no value head: no ratio
    catch = report["value_head"]["ppo_value"]["envs"]["games/Catch-v0"]
    assert catch["mean"] == pytest.approx(np.mean(logged)) and catch["iterations"] == len(logged)
    assert catch["ci95"][0] <= catch["mean"] <= catch["ci95"][1]
    assert "\n## Value head\n" in md
    assert f"| ppo_value | games/Catch-v0 | {catch['mean']:.3f} [{catch['ci95'][0]:.3f}, " in md
    reduces = report["value_head"]["ppo_value"]["reduces_on"]
    assert f"- ppo_value: the value head reduces advantage variance on {reduces} of 1 envs" in md
    for name in ("learning_curves.png", "success_bars.png"):
        image = np.asarray(Image.open(out / "plots" / name).convert("RGB"))
        assert image.ndim == 3 and image.shape[0] > 200 and image.std() > 0

    # resume: finished runs are kept, the report is the same; other settings in the same folder are refused.
    # With nothing left to run it starts or joins no Ray: RAY_ADDRESS names no cluster (ray.init would fail on it)
    nowhere = dict(os.environ, RAY_ADDRESS="unix:///nonexistent/ray")
    again = run(multiverse_cli, "--config", "experiment_smoke", "--out", str(out), env=nowhere)
    assert again.returncode == 0, again.stderr[-2000:]
    assert again.stdout.count("done before, kept") == 4 * len(seeds)  # zero_shot comes from the multiverse runs
    assert json.loads((out / "report.json").read_text())["arms"] == report["arms"]
    other = run(multiverse_cli, "--config", "experiment_smoke", "--out", str(out), "experiment.env_steps=99")
    assert other.returncode == 2 and "other settings" in other.stderr


@pytest.mark.parametrize("overrides, needle", [
    (["experiment.sedes=[0]"], "did you mean 'experiment.seeds'"),
    (["train.envs.train={nope/X-v0: 1}"], "train.envs.train: unknown env 'nope/X-v0'"),
    (["train.rolout.workers=1"], "did you mean 'rollout'"),
    (["experiment.seeds=[]"], "experiment.seeds"),
    (["experiment.arms=[zero_shot, nope]"], "experiment.arms"),
    (["train.envs.train={web/ClickButton-v0: 1}", "train.envs.params={}"], "rllib_ppo"),
    (["seeds=[1]"], "experiment.KEY=VALUE or train.KEY=VALUE"),
])
def test_bad_experiment_config_names_the_problem(overrides: list[str], needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_experiment("experiment_smoke", overrides)
    assert needle in str(info.value)


def test_bad_input_on_the_command_line_runs_nothing(tmp_path: Path, multiverse_cli: str) -> None:
    out = tmp_path / "gen"
    for args, needle in ((["--budget", "0"], "--budget"), (["experiment.env_steps=-5"], "experiment.env_steps")):
        proc = run(multiverse_cli, "--config", "experiment_smoke", "--out", str(out), *args, timeout=120)
        assert proc.returncode == 2 and needle in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr and not out.exists()


def test_budget_scales_steps_and_episodes() -> None:
    full, tenth = load_experiment("experiment_cpu"), load_experiment("experiment_cpu", budget=0.1)
    assert tenth.settings.env_steps == round(full.settings.env_steps * 0.1)
    assert tenth.settings.eval_episodes == max(2, round(full.settings.eval_episodes * 0.1))
    with pytest.raises(ConfigError, match="budget"):
        load_experiment("experiment_cpu", budget=float("nan"))


def test_the_committed_report_is_recomputed_from_its_episodes(tmp_path: Path) -> None:
    """report.json and report.md of bench/results/generalization are what its recorded episodes give, byte for
    byte, with the settings its experiment.json recorded."""
    out = tmp_path / "gen"
    out.mkdir()
    shutil.copytree(COMMITTED / "arms", out / "arms")
    shutil.copy(COMMITTED / "experiment.json", out)
    result = report(out, load_recorded(out))
    assert (out / "report.json").read_bytes() == (COMMITTED / "report.json").read_bytes()
    assert (out / "report.md").read_bytes() == (COMMITTED / "report.md").read_bytes()
    assert result == json.loads((COMMITTED / "report.json").read_text())
    assert result["protocol"]["episodes_counted"] > 0
    for name in ("learning_curves.png", "success_bars.png"):
        assert Image.open(out / "plots" / name).size == Image.open(COMMITTED / "plots" / name).size


def test_value_ratios_tell_equal_returns_from_an_env_without_samples(tmp_path: Path) -> None:
    from multiverse.launch.experiment.report import value_ratios

    exp = load_experiment("experiment_smoke", ["experiment.seeds=[0]"])
    run = tmp_path / "arms" / "ppo_value" / "seed0"
    run.mkdir(parents=True)
    (run / "result.json").write_text("{}")
    ratio, no_value = "adv/adv_var_value_ratio/games/Catch-v0", "adv/adv_var_no_value/games/Catch-v0"
    # iteration 1 measured, 2: every group's returns equal (no ratio), 3: no Catch episode at all
    (run / "metrics.csv").write_text(f"iteration,{ratio},{no_value}\n1,0.5,0.25\n2,,0.0\n3,,\n")
    [(env, by_seed)] = value_ratios(tmp_path, exp)["ppo_value"].items()
    assert env == "games/Catch-v0" and by_seed[0][0] == 0.5 and math.isnan(by_seed[0][1]) and len(by_seed[0]) == 2


def test_the_report_modules_load_no_ray_and_no_model() -> None:
    """The statistics and the report are computed without Ray or torch (the runner brings those)."""
    code = ("import sys; import multiverse.launch.experiment.report, multiverse.launch.experiment.stats; "
            "print(sorted(m for m in ('ray', 'torch', 'transformers') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          check=False)
    assert proc.returncode == 0 and proc.stdout.strip() == "[]", proc.stdout + proc.stderr


def test_a_folder_without_an_experiment_is_refused_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"experiment\.json does not hold a recorded experiment"):
        load_recorded(tmp_path)
