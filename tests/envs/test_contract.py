"""The env contract on a concrete game: actions by index or name, no-ops, text, synonyms; no action value makes a
game's or a browser task's step raise, and errors quote only a short prefix of bad input."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import multiverse.envs as menvs
from multiverse.envs.core import GameEnv, PrintableText
from multiverse.envs.randomization import IntRange, Param, ParamSpace

from conftest import GAME_IDS


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
        _, _, term, _, info = env.step(bad)
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
        _, _, term, _, info = env.step(env.unwrapped.oracle_action())
    _, reward, term, _, info = env.step(1)
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


# --------------------------------------------------------------------------- any action value


class Hostile:
    """Every dunder a step might touch raises."""

    def _boom(self, *args, **kwargs):
        raise RuntimeError("hostile dunder")

    __repr__ = __str__ = __format__ = __eq__ = __ne__ = __hash__ = __index__ = __int__ = __float__ = __bool__ = _boom
    __len__ = __iter__ = __getitem__ = __lt__ = _boom


class HostileStr(str):
    def _boom(self, *args, **kwargs):
        raise RuntimeError("hostile str")

    __repr__ = __str__ = __format__ = __eq__ = __hash__ = strip = lower = __getitem__ = __len__ = _boom


class HostileInt(int):
    def _boom(self, *args, **kwargs):
        raise RuntimeError("hostile int")

    __repr__ = __str__ = __format__ = __eq__ = __hash__ = __index__ = __int__ = __lt__ = __le__ = _boom
    __ge__ = __gt__ = bit_length = _boom


def _nested(depth: int) -> list:
    out: list = []
    for _ in range(depth):
        out = [out, "x" * 100]
    return out


def _recursive() -> list:
    loop: list = []
    loop.append(loop)
    return loop


BIG = "x" * 1_000_000
#: values no action should be, and which no step may raise on
HOSTILE = [
    Hostile(), HostileStr("left"), HostileInt(1), BIG, "click(" + BIG + ")", BIG + "(1)", 'press("' + BIG + '")',
    'scroll(' + BIG + ')', "click(" + "9" * 5000 + ")", b"x" * 1_000_000, bytearray(b"left"), None, ..., [], [[[1]]],
    _nested(2000), _recursive(), {"action": 1}, {1, 2}, (0,), object(), object, len, RuntimeError("x"), 1.0,
    float("nan"), float("inf"), -float("inf"), 1j, -1, -(10**100), 10**100, 10**5000, 2**63, True, False,
    np.zeros((), "M8[s]")[()], np.zeros(3), np.array([[1]]), np.array(Hostile(), dtype=object),
    *(np.zeros((), code)[()] for code in np.typecodes["All"] if code != "M"),
    *(np.zeros((), code) for code in np.typecodes["All"] if code not in "MO"),
]
#: the longest action_error allowed: a short quote of the bad value plus what to do
ERROR_LIMIT = 400


def _check_error(info: dict, required: bool = True) -> None:
    """A bad action is reported in a short action_error (some values are fine game actions: 0, np.int8(0) ...)."""
    error = info.get("action_error")
    assert isinstance(error, str) and error if required else error is None or isinstance(error, str)
    assert len(error or "") <= ERROR_LIMIT, f"action_error is {len(error)} characters: {error[:200]}..."


@pytest.mark.parametrize("env_id", GAME_IDS)
def test_no_action_value_makes_a_game_step_raise(env_id: str) -> None:
    env = menvs.make(env_id)
    try:
        env.reset(seed=0)
        for value in HOSTILE:
            _, _, term, trunc, info = env.step(value)  # must not raise
            _check_error(info, required=False)
            if term or trunc:
                env.reset(seed=1)
        env.reset(seed=2)
        assert "1,000,000 characters" in env.step(BIG)[4]["action_error"]  # says how long, quotes a prefix
        assert "Hostile" in env.step(Hostile())[4]["action_error"]  # named by its type when even its repr fails
    finally:
        env.close()


@pytest.fixture(scope="module")
def snake():
    env = menvs.make("games/Snake-v0")
    env.reset(seed=0)
    yield env
    env.close()


@settings(max_examples=300, deadline=None)
@given(value=st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text() | st.binary(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=20,
))
def test_no_generated_value_makes_a_game_step_raise(snake, value: object) -> None:
    _, _, term, trunc, info = snake.step(value)
    _check_error(info, required=False)
    if term or trunc:
        snake.reset()


def test_no_action_value_makes_a_web_step_raise() -> None:
    env = menvs.make("web/ClickButton-v0", max_episode_steps=1000)
    try:
        obs, _ = env.reset(seed=0)
        values = [v for v in HOSTILE if not isinstance(v, np.ndarray | np.generic)] + [np.str_("noop("), np.int64(1)]
        for value in values:
            obs2, reward, term, trunc, info = env.step(value)  # must not raise
            _check_error(info)
            assert not (term or trunc) and reward == 0.0 and obs2["text"] == obs["text"], info
        for long_part in (BIG, "click(" + BIG + ")", BIG + "(1)", 'press("' + BIG + '")', "scroll(" + BIG + ")"):
            assert "1,000,000 characters" in env.step(long_part)[4]["action_error"]
        assert "Hostile" in env.step(Hostile())[4]["action_error"]
    finally:
        env.close()


# --------------------------------------------------------------------------- what an author sees


@dataclasses.dataclass(frozen=True)
class _BlankParams:
    size: int = 3


class Blank(GameEnv):
    """A game where nothing happens.

    ## Description
    One action, no pixels.
    """

    ACTIONS = ("wait",)
    PARAM_SPACE = ParamSpace(_BlankParams, size=Param(IntRange(3, 4), IntRange(5, 6), "size"))
    mission = "Wait."

    def _new_episode(self) -> None:
        pass

    def _advance(self, action):
        return 0.0, False

    def _text(self) -> str:
        return "nothing"

    def _success(self) -> bool:
        return False


class HalfDrawn(Blank):
    def _frame_size(self) -> tuple[int, int]:
        return (8, 8)


def test_a_game_without_its_pixel_methods_names_the_missing_ones() -> None:
    Blank().reset(seed=0)  # without pixels a game needs neither
    with pytest.raises(NotImplementedError, match=r"Blank was made with pixels=True but does not define _frame_size\(\) "
                                                  r"and _draw\(surface\)"):
        Blank(pixels=True)
    with pytest.raises(NotImplementedError, match=r"HalfDrawn was made with render_mode='rgb_array' but does not "
                                                  r"define _draw\(surface\)") as raised:
        HalfDrawn(render_mode="rgb_array")
    assert "_frame_size" not in str(raised.value).split("define")[1].split(":")[0]


def test_envs_show_prints_the_envs_own_spec(capsys: pytest.CaptureFixture[str]) -> None:
    """A game's docstring sections; a browser task's own docstring (not WebEnv's); a MiniWoB page's name."""
    from multiverse.launch.cli import main

    def show(env_id: str) -> str:
        assert main(["envs", "show", env_id]) == 0
        return capsys.readouterr().out

    out = show("games/Catch-v0")
    assert all(f"## {s}" in out for s in ("Description", "Action Space", "Rewards", "Randomization", "Version History"))
    for env_id, own in (("web/ClickButton-v0", "Click the button with the named label."),
                        ("miniwob/click-test-v1", "MiniWoB++ task click-test")):
        out = show(env_id)
        assert own in out and "A browser task as a Gymnasium env" not in out, out[:500]
    assert main(["envs", "show", "web/ClickButton-v0", "--json"]) == 0
    assert "Click the button with the named label." in json.loads(capsys.readouterr().out)["doc"]
