"""Recording and replay end to end: the training loop's recordings, every env's oracle episodes replayed and
verified (parametrized over the registry), tampered datasets, refusals and bad input through the CLI."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from multiverse.agents.episodes import read_episodes
from multiverse.agents.replay import verify_dataset
from multiverse.launch.config import load_config


def run(cli: str, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([cli, *args], capture_output=True, text=True, timeout=timeout)


# --------------------------------------------------------------------------- the training loop records


def test_training_run_records_eval_and_every_nth_training_episode(tmp_path: Path) -> None:
    import ray

    from multiverse.launch.cluster import init_ray
    from multiverse.launch.train import train

    config = load_config("smoke", [f"run.root={tmp_path}", "run.name=rec", "run.iterations=2", "run.eval_every=0",
                                   "run.record_eval=true", "run.record_every=3", "envs.train={games/Catch-v0: 1}",
                                   "rollout.workers=1", "run.checkpoint_every=0"])
    init_ray(None, dashboard=False, num_cpus=2, needed_cpus=1)
    try:
        run_dir = train(config, config_name="smoke")
    finally:
        ray.shutdown()
    evals = list(read_episodes(run_dir / "episodes" / "eval"))
    # evaluated before the first and after the last iteration: 2 evaluations x 2 episodes x 2 env ids
    assert len(evals) == 8
    assert {r.episode.env_id for r in evals} == {"games/Catch-v0", "games/Maze-v0"}
    assert {r.meta.policy["iteration"] for r in evals} == {0, 2} and all(r.meta.policy["greedy"] for r in evals)
    trained = list(read_episodes(run_dir / "episodes" / "train"))
    per_iteration = config.rollout.groups_per_iteration * config.rollout.group_size  # 8
    assert len(trained) == len(range(0, 2 * per_iteration, 3))
    assert all(r.meta.agent == "policy" and r.meta.max_steps == 4 for r in trained)
    assert all(s.logp is not None and s.logp <= 0 for r in trained for s in r.episode.steps)
    assert all(r.meta.adr_state is not None for r in trained)  # the smoke config runs ADR
    report = verify_dataset(list(read_episodes(run_dir / "episodes" / "train")) + evals)
    assert report.ok and report.episodes == len(trained) + 8, [d.describe() for d in report.divergences]


def test_recording_is_off_by_default_and_documented_in_train_help(multiverse_cli: str) -> None:
    config = load_config("smoke")
    assert config.run.record_eval is False and config.run.record_every == 0
    out = run(multiverse_cli, "train", "--help")
    assert "run.record_eval" in out.stdout and "run.record_every" in out.stdout
