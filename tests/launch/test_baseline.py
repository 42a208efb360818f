"""The RLlib PPO baseline trains a game, evaluates it on seed sets and records replayable episodes (real local Ray)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from multiverse.agents.episodes import read_episodes
from multiverse.agents.replay import verify_dataset


def test_ppo_baseline_curve_and_replayable_eval_episodes(tmp_path: Path) -> None:
    os.environ["OMP_NUM_THREADS"] = "1"
    import ray

    from multiverse.launch.baseline import train_and_evaluate_ppo

    seeds = range(1_000_000, 1_000_003)
    eval_sets = {"train": [(s, {"split": "train"}) for s in seeds],
                 "heldout": [(s, {"split": "heldout"}) for s in seeds]}
    kwargs = {"env_steps": 600, "seed": 0, "eval_every_steps": 300, "eval_sets": eval_sets, "max_steps": 12,
              "ppo": {"train_batch_size": 300, "minibatch_size": 100, "num_epochs": 2}}
    with pytest.raises(RuntimeError, match=r"ray\.init"):
        train_and_evaluate_ppo("games/Catch-v0", out=tmp_path, **kwargs)
    ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        with pytest.raises(ValueError, match="only covers games"):
            train_and_evaluate_ppo("web/ClickButton-v0", out=tmp_path / "web", **kwargs)
        result = train_and_evaluate_ppo("games/Catch-v0", out=tmp_path, **kwargs)
    finally:
        ray.shutdown()

    assert result["env_steps"] >= 600 and result["iterations"] == 2
    rounds = sorted({point["env_steps"] for point in result["curve"]})
    assert rounds[0] == 0 and rounds[-1] == result["env_steps"] and len(rounds) == 3  # 0, ~300, the end
    for n in (rounds[0], rounds[-1]):
        assert {p["eval_set"] for p in result["curve"] if p["env_steps"] == n} == {"train", "heldout"}
    assert all(p["episodes"] == 3 and 0.0 <= p["success"] <= 1.0 for p in result["curve"])

    recorded = list(read_episodes(tmp_path / "episodes" / "eval"))
    assert len(recorded) == 3 * 2 * len(rounds)
    assert {rec.meta.agent for rec in recorded} == {"rllib-ppo"}
    assert all(rec.meta.policy["eval_set"] == rec.episode.options["split"] for rec in recorded)
    assert all(rec.episode.length <= 12 for rec in recorded)
    assert any(rec.episode.steps[-1].truncated for rec in recorded)  # max_steps cut some episodes
    heldout = [rec for rec in recorded if rec.meta.policy["eval_set"] == "heldout"]
    assert len(heldout) == 3 * len(rounds) and all(rec.episode.options["split"] == "heldout" for rec in heldout)
    train = {rec.episode.seed: rec.episode.randomization for rec in recorded if rec.meta.policy["eval_set"] == "train"}
    assert all(rec.episode.randomization != train[rec.episode.seed] for rec in heldout)  # heldout variants, same seeds
    # max_steps truncation is replayed exactly: the replay env gets the same step limit
    report = verify_dataset(recorded, stop_at_first=False)
    assert report.ok and report.episodes == len(recorded), [d.describe() for d in report.divergences]
