"""The env contract on a concrete game: actions by index or name, no-ops, text, synonyms."""

from __future__ import annotations

import numpy as np
import pytest

import multiverse.envs as menvs
from multiverse.envs.core import PrintableText


@pytest.fixture
def env():
    e = menvs.make("games/Catch-v0")
    yield e
    e.close()


def test_text_space_holds_any_printable_text() -> None:
    space = PrintableText(100)
    assert space.contains("Click [12] button \"Submit\" — café ×3\n\tok")
    assert not space.contains("bell\x07") and not space.contains("x" * 101) and not space.contains(3)
    assert space.contains(space.sample())


def test_actions_by_index_or_name_agree(env) -> None:
    obs_a = [env.reset(seed=4, options={"randomize": False})[0]["text"]]
    obs_a += [env.step(a)[0]["text"] for a in (0, 0, 2, 1)]
    obs_b = [env.reset(seed=4, options={"randomize": False})[0]["text"]]
    obs_b += [env.step(a)[0]["text"] for a in ("left", "left", "right", np.int64(1))]
    assert obs_a == obs_b


def test_malformed_actions_are_noops_with_an_error(env) -> None:
    _, info = env.reset(seed=1, options={"randomize": False})
    env_u = env.unwrapped
    paddle = env_u.paddle
    for bad, expect in ((7, "out of range"), (-1, "out of range"), ("jump", "unknown action 'jump'"),
                        (1.0, "an action is an index"), (True, "an action is an index"), (None, "an action is an index")):
        obs, reward, term, trunc, info = env.step(bad)
        assert expect in info["action_error"], info["action_error"]
        assert env_u.paddle == paddle  # the paddle did not move; the ball fell as time went on
        if term:
            break


def test_action_words_follow_the_episode(env) -> None:
    _, info = env.reset(seed=0, options={"params": {"action_words": "compass"}})
    assert info["legal_actions"] == ["west", "hold", "east"] == env.unwrapped.action_names
    _, _, _, _, info = env.step("east")
    assert "action_error" not in info
    _, _, _, _, info = env.step("right")  # the nominal word is not this episode's word
    assert "unknown action 'right'" in info["action_error"]


def test_text_styles_describe_the_same_state(env) -> None:
    texts = {}
    for style in ("grid", "coords", "prose"):
        obs, info = env.reset(seed=3, options={"params": {"text_style": style}})
        assert obs["text"].startswith(info["mission"] + "\n")
        texts[style] = obs["text"]
    assert len(set(texts.values())) == 3
    assert "=" in texts["grid"] and "Ball at x=" in texts["coords"] and "The ball is" in texts["prose"]


def test_nominal_game_is_the_params_defaults(env) -> None:
    _, info = env.reset(seed=11, options={"randomize": False})
    assert info["randomization"] == menvs.randomization_space("games/Catch-v0").nominal_values()
    assert env.unwrapped.params == env.unwrapped.PARAM_SPACE.nominal


def test_step_after_the_end_is_reported_not_raised(env) -> None:
    env.reset(seed=0, options={"params": {"balls": 1}})
    term = False
    while not term:
        _, _, term, trunc, info = env.step(env.unwrapped.oracle_action())
    _, reward, term, trunc, info = env.step(1)
    assert term and reward == 0.0 and "episode is over" in info["action_error"]


def test_truncation_at_the_step_limit_reports_success() -> None:
    menvs.register("testonly/ShortCatch-v0", "multiverse.envs.games.catch:CatchEnv", kind="game", max_episode_steps=3, replace=True)
    env = menvs.make("testonly/ShortCatch-v0")
    env.reset(seed=0, options={"params": {"height": 10}})
    results = [env.step(1) for _ in range(3)]
    assert [r[3] for r in results] == [False, False, True]
    assert results[-1][4]["success"] is False and "success" not in results[0][4]


def test_make_can_override_the_step_limit() -> None:
    env = menvs.make("games/Catch-v0", max_episode_steps=2)
    env.reset(seed=0, options={"params": {"height": 10}})
    env.step(1)
    _, _, term, trunc, info = env.step(1)
    assert trunc and not term and info["success"] is False
