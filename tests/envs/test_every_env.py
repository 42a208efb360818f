"""Registry-wide: every registered env, now and later, passes every author check.

Each (env, check) pair is its own test so a failure names both. The checks
themselves are tested on deliberately broken envs in test_checks.py.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import multiverse.envs as menvs
from multiverse.envs.checks import CHECKS, check_env_id
from multiverse.envs.play import play_episode, random_agent

from conftest import CHECKED_IDS, GAME_IDS, MACHINERY_CHECKS, MACHINERY_IDS, seeds_for

PAIRS = [(env_id, check) for env_id in CHECKED_IDS for check in CHECKS
         if check not in MACHINERY_CHECKS or env_id in MACHINERY_IDS]


@pytest.mark.parametrize("env_id, check", PAIRS)
def test_author_check(env_id: str, check: str) -> None:
    (result,) = check_env_id(env_id, seeds=seeds_for(env_id), only=[check])
    assert result.ok, f"{env_id} {check}: {result.detail}"


def test_every_checked_env_gets_its_own_checks_and_the_machinery_is_sampled() -> None:
    """Task-specific checks (info, determinism, randomization, oracle) on every checked id; the shared
    machinery's checks on every game and the browser sample."""
    own = set(CHECKS) - set(MACHINERY_CHECKS)
    assert all((i, c) in PAIRS for i in CHECKED_IDS for c in own)
    assert set(GAME_IDS) <= set(MACHINERY_IDS) and any(i.startswith("miniwob/") for i in MACHINERY_IDS)
    assert all((i, c) in PAIRS for i in MACHINERY_IDS for c in MACHINERY_CHECKS if i in CHECKED_IDS)


@pytest.mark.parametrize("env_id", MACHINERY_IDS)
def test_random_play_keeps_the_contract(env_id: str) -> None:
    """Random legal actions over a few episodes on both splits: every step keeps the contract."""
    env = menvs.make(env_id)
    space = menvs.randomization_space(env_id)
    for seed, split in ((0, "train"), (1, "heldout"), (2, "train")):
        infos = []
        stats = play_episode(env, random_agent(seed), seed=seed, options={"split": split}, on_step=lambda *a: infos.append(a[-1]))  # noqa: B023 (called in this iteration)
        assert stats.action_errors == 0, "a legal action was refused"
        assert all(isinstance(i["legal_actions"], list) and i["mission"] for i in infos)
        assert isinstance(infos[-1]["success"], bool) and all("success" not in i for i in infos[:-1])
        for name, value in stats.randomization.items():
            assert space.params[name].dist(split).contains(value), (split, name, value)
        json.dumps(stats.randomization)
    env.close()


@pytest.mark.parametrize("env_id", MACHINERY_IDS)
def test_pixels_and_close_twice(env_id: str) -> None:
    env = menvs.make(env_id, pixels=True, image_size=(64, 48))
    obs, info = env.reset(seed=0)
    assert obs["image"].shape == (64, 48, 3) and obs["image"].dtype == np.uint8
    env.step(info["legal_actions"][0])
    env.close()
    env.close()
