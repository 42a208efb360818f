"""RLlib PPO trains a Multiverse game unchanged, through the numeric-observation wrapper (real local Ray)."""

from __future__ import annotations

import os

import numpy as np
import pytest

import multiverse.envs as menvs
from multiverse.envs.wrappers import NumericObservation

from conftest import GAME_IDS


@pytest.mark.parametrize("env_id", GAME_IDS)
def test_numeric_observation_has_a_fixed_shape_across_variants(env_id: str) -> None:
    env = NumericObservation(menvs.make(env_id))
    for seed, split in ((0, "train"), (1, "heldout"), (2, "train")):
        obs, info = env.reset(seed=seed, options={"split": split})
        assert env.observation_space.contains(obs), (split, obs.shape, obs.dtype)
        obs, *_ = env.step(env.unwrapped.oracle_action())
        assert env.observation_space.contains(obs)
    env.close()


def test_pixels_mode() -> None:
    env = NumericObservation(menvs.make("games/Snake-v0", pixels=True), mode="pixels")
    obs, _ = env.reset(seed=0)
    assert obs.shape == (84, 84, 3) and obs.dtype == np.uint8
    with pytest.raises(ValueError, match="pixels=True"):
        NumericObservation(menvs.make("games/Snake-v0"), mode="pixels")


def test_ppo_trains_one_iteration_on_a_game() -> None:
    os.environ["OMP_NUM_THREADS"] = "1"
    import ray
    from ray.rllib.algorithms.ppo import PPOConfig

    from multiverse.launch.rllib import register_rllib_env

    name = register_rllib_env("games/Catch-v0", env_options={"split": "train"})
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        algo = (
            PPOConfig()
            .environment(name)
            .framework("torch")
            .env_runners(num_env_runners=0, rollout_fragment_length=200)
            .training(train_batch_size_per_learner=400, minibatch_size=100, num_epochs=2)
            .debugging(seed=0)
            .build_algo()
        )
        result = algo.train()
        algo.stop()
    finally:
        ray.shutdown()
    assert result["training_iteration"] == 1
    assert result["num_env_steps_sampled_lifetime"] >= 400
    assert np.isfinite(result["env_runners"]["episode_return_mean"])
    learner = result["learners"]["default_policy"]
    assert np.isfinite(learner["total_loss"])
