"""RLlib PPO trains a Multiverse game unchanged, through the numeric-observation wrapper (real local Ray)."""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import pytest

import multiverse.envs as menvs
from multiverse.envs.checks import check_env_id
from multiverse.envs.core import GameEnv
from multiverse.envs.randomization import IntRange, Param, ParamSpace
from multiverse.envs.wrappers import NumericObservable, NumericObservation

from conftest import GAME_IDS


@pytest.mark.parametrize("env_id", GAME_IDS)
def test_numeric_observation_has_a_fixed_shape_across_variants(env_id: str) -> None:
    env = NumericObservation(menvs.make(env_id))
    for seed, split in ((0, "train"), (1, "heldout"), (2, "train")):
        obs, _ = env.reset(seed=seed, options={"split": split})
        assert env.observation_space.contains(obs), (split, obs.shape, obs.dtype)
        obs, *_ = env.step(env.unwrapped.oracle_action())
        assert env.observation_space.contains(obs)
    env.close()


@dataclasses.dataclass(frozen=True)
class CountParams:
    target: int = 3


class CountTo(GameEnv):
    """Count up to a target: the least a game defines (no drawing, no numeric observation)."""

    PARAM_SPACE = ParamSpace(CountParams, target=Param(IntRange(2, 4), IntRange(6, 7), "how far to count"))
    ACTIONS = ("up", "stay")

    def _new_episode(self) -> None:
        self.n = 0

    def _advance(self, action: int | None) -> tuple[float, bool]:
        self.n += action == 0
        return float(self.n >= self.params.target), self.n >= self.params.target

    @property
    def mission(self) -> str:
        return f"Count to {self.params.target}."

    def _text(self) -> str:
        return f"count: {self.n}"

    def _success(self) -> bool:
        return self.n >= self.params.target

    def oracle_action(self) -> int:
        return 0


def test_a_game_without_the_numeric_mixin_plays_and_the_numeric_view_refuses_it_in_one_line() -> None:
    """The numeric observation is an optional mixin, not part of the GameEnv contract: every built-in game offers
    it, a game without it passes the author's checks, and NumericObservation and RLlib's registration say why not."""
    assert not hasattr(GameEnv, "numeric_observation") and not hasattr(GameEnv, "numeric_space")
    assert all(isinstance(menvs.make(i).unwrapped, NumericObservable) for i in GAME_IDS)
    menvs.register("testonly/CountTo-v0", CountTo, kind="game", max_episode_steps=10, replace=True)
    results = check_env_id("testonly/CountTo-v0", seeds=3, only=["info", "illegal-actions", "determinism",
                                                                   "randomization", "oracle"])
    assert [r.check for r in results if not r.ok] == [], [r.detail for r in results if not r.ok]
    with pytest.raises(TypeError) as refused:
        NumericObservation(menvs.make("testonly/CountTo-v0"))
    assert str(refused.value).count("\n") == 0
    assert "CountTo offers no numeric observation" in str(refused.value) and "NumericObservable" in str(refused.value)
    from multiverse.launch.rllib import register_rllib_env

    with pytest.raises(ValueError, match="CountTo offers no numeric observation"):
        register_rllib_env("testonly/CountTo-v0")  # here, not later inside a Ray worker
    with pytest.raises(ValueError, match="offers no numeric observation"):
        register_rllib_env("web/ClickButton-v0")


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
