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

from conftest import CHECKED_IDS, seeds_for


@pytest.mark.parametrize("check", list(CHECKS))
@pytest.mark.parametrize("env_id", CHECKED_IDS)
def test_author_check(env_id: str, check: str) -> None:
    (result,) = check_env_id(env_id, seeds=seeds_for(env_id), only=[check])
    assert result.ok, f"{env_id} {check}: {result.detail}"


@pytest.mark.parametrize("env_id", CHECKED_IDS)
def test_random_play_keeps_the_contract(env_id: str) -> None:
    """Random legal actions over a few episodes on both splits: every step keeps the contract."""
    env = menvs.make(env_id)
    space = menvs.randomization_space(env_id)
    for seed, split in ((0, "train"), (1, "heldout"), (2, "train")):
        infos = []
        stats = play_episode(env, random_agent(seed), seed=seed, options={"split": split}, on_step=lambda *a: infos.append(a[-1]))
        assert stats.action_errors == 0, "a legal action was refused"
        assert all(isinstance(i["legal_actions"], list) and i["mission"] for i in infos)
        assert isinstance(infos[-1]["success"], bool) and all("success" not in i for i in infos[:-1])
        for name, value in stats.randomization.items():
            assert space.params[name].dist(split).contains(value), (split, name, value)
        json.dumps(stats.randomization)
    env.close()


@pytest.mark.parametrize("env_id", CHECKED_IDS)
def test_seeds_differ_and_splits_differ(env_id: str) -> None:
    """Different seeds give different episodes; held-out resets give held-out values."""
    env = menvs.make(env_id)
    texts = {env.reset(seed=s)[0]["text"] for s in range(4)}
    assert len(texts) > 1, "four seeds gave one and the same first observation"
    _, tr = env.reset(seed=0)
    _, ho = env.reset(seed=0, options={"split": "heldout"})
    assert tr["randomization"] != ho["randomization"]
    env.close()


@pytest.mark.parametrize("env_id", CHECKED_IDS)
def test_pixels_and_close_twice(env_id: str) -> None:
    env = menvs.make(env_id, pixels=True, image_size=(64, 48))
    obs, info = env.reset(seed=0)
    assert obs["image"].shape == (64, 48, 3) and obs["image"].dtype == np.uint8
    env.step(info["legal_actions"][0])
    env.close()
    env.close()
