"""info["action_descriptions"]: aligned with the legal actions, in the page's and the episode's own words."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import pytest

import multiverse.envs as menvs
from multiverse.envs.checks import check_env_id
from multiverse.envs.games.catch import CatchEnv
from multiverse.envs.randomization import Choice, Param, ParamSpace
from multiverse.envs.registry import entry_point_class
from multiverse.envs.web.env import WebEnv
from multiverse.envs.web.task import Outcome, TaskPage, WebParams, WebTask, page

from conftest import GAME_IDS


@dataclasses.dataclass(frozen=True)
class _Params(WebParams):
    probe: str = "a"


class Form(WebTask):
    """A page with a field, a dropdown, a checkbox, a button and a link below the fold."""

    PARAM_SPACE = ParamSpace(_Params, probe=Param(Choice(("a",)), Choice(("b",))))
    keys = ("Enter",)

    def setup(self, rng, params) -> TaskPage:
        body = ('<label for="n">Name</label><input id="n">'
                '<label for="c">Colour</label><select id="c"><option>Red</option><option>Blue</option></select>'
                '<label><input type="checkbox" id="k">Keep me posted</label><button>Save</button><div style="height: 3000px"></div><a href="#x">Far link</a>')
        return TaskPage(page(params, body), "Fill the form.", {})

    def validate(self, instance: dict[str, Any], state: Any) -> Outcome:
        return Outcome()

    def oracle(self, instance: dict[str, Any], obs: Any) -> str:
        return "noop()"


def test_web_descriptions_name_the_role_and_name_of_each_actions_element() -> None:
    env = WebEnv(Form)
    try:
        _, info = env.reset(seed=0)
        o = env.observation
        name, colour, save = o.find("textbox", "Name"), o.find("combobox", "Colour"), o.find("button", "Save")
        keep = o.find("checkbox", "Keep me posted")
        described = dict(zip(info["legal_actions"], info["action_descriptions"], strict=True))
        assert described[f"type({name.id}, <text>)"] == 'textbox "Name" value=""'
        assert described[f'select({colour.id}, "Blue")'] == described[f'select({colour.id}, "Red")'] \
            == 'combobox "Colour" selected="Red"'
        assert described[f"click({keep.id})"] == 'checkbox "Keep me posted" unchecked'
        assert described[f"click({save.id})"] == 'button "Save"'
        assert described['press("Enter")'] == "press the Enter key"
        assert described["scroll(down)"] == "scroll the page down"
        # the state is the page's: a click that checks the box and one that would uncheck it read apart
        for action, after in ((f"click({keep.id})", 'checkbox "Keep me posted" checked'),
                              (f'select({colour.id}, "Blue")', 'combobox "Colour" selected="Blue"'),
                              (f"type({name.id}, \"Ada\")", 'textbox "Name" value="Ada"')):
            _, _, _, _, info = env.step(action)
            element = action[action.index("(") + 1:action.index(")")].split(",")[0]
            now = [d for a, d in zip(info["legal_actions"], info["action_descriptions"]) if f"({element}" in a]
            assert now and set(now) == {after}, (action, now)
        # the descriptions follow the page: a step's info describes the actions legal after it
        for _ in range(10):
            _, _, _, _, info = env.step("scroll(down)")
            assert len(info["action_descriptions"]) == len(info["legal_actions"])
            link = env.observation.find("link", "Far link")
            if link is not None:
                break
        assert dict(zip(info["legal_actions"], info["action_descriptions"]))[f"click({link.id})"] == 'link "Far link"'
    finally:
        env.close()


def _words(texts: Any) -> set[str]:
    """Lower-case words with a plural/verb 's' taken off, so 'stays' counts as 'stay'."""
    return {w[:-1] if w.endswith("s") and len(w) > 3 else w for t in texts for w in re.findall(r"[a-z]+", t.lower())}


@pytest.mark.parametrize("env_id", GAME_IDS)
def test_game_descriptions_are_in_the_episodes_own_words(env_id: str) -> None:
    """Every game describes its moves; a held-out episode's descriptions use no train-split action word of any
    game (the held-out words stay unseen) unless the held-out words themselves hold it."""
    train_words = set()
    for game_id in GAME_IDS:
        cls = entry_point_class(menvs.lookup(game_id))
        space = cls.PARAM_SPACE.params.get("action_words")
        if space is not None:
            train_words |= _words(w for key in space.train.values() for w in cls.ACTION_WORDS[key])
    env = menvs.make(env_id)
    try:
        for split in ("train", "heldout"):
            for seed in range(3):
                _, info = env.reset(seed=seed, options={"split": split})
                descriptions = info["action_descriptions"]
                assert len(descriptions) == len(info["legal_actions"]) and all(isinstance(d, str) and d for d in descriptions)
                assert len(set(descriptions)) == len(descriptions)  # each says something of its own
                if split == "heldout":
                    leaked = (_words(descriptions) & train_words) - _words(info["legal_actions"])
                    assert not leaked, (env_id, descriptions, leaked)
    finally:
        env.close()


def test_catch_descriptions_follow_its_randomized_action_words() -> None:
    env = menvs.make("games/Catch-v0")
    try:
        _, info = env.reset(seed=0, options={"params": {"action_words": "compass"}})
        assert info["legal_actions"] == ["west", "hold", "east"]
        assert info["action_descriptions"] == ["the paddle goes one column west", "the paddle holds",
                                               "the paddle goes one column east"]
        _, info = env.reset(seed=0, options={"params": {"action_words": "moves"}})
        assert info["action_descriptions"] == ["the paddle goes one column left", "the paddle waits",
                                               "the paddle goes one column right"]
    finally:
        env.close()


class MisalignedDescriptions(CatchEnv):
    """Catch that describes one action too few."""

    def action_descriptions(self) -> list[str] | None:
        return super().action_descriptions()[:-1]


def test_checks_reject_descriptions_not_aligned_with_the_legal_actions() -> None:
    env_id = "testbroken/MisalignedDescriptions-v0"
    menvs.register(env_id, MisalignedDescriptions, kind="game", max_episode_steps=100, replace=True)
    (result,) = check_env_id(env_id, seeds=2, only=["info"])
    assert not result.ok
    assert env_id in result.detail and "info['action_descriptions'] has 2 entries for 3 legal actions" in result.detail
    assert "one per legal action" in result.detail  # says what to fix
    (good,) = check_env_id("games/Catch-v0", seeds=2, only=["info"])
    assert good.ok, good.detail
