"""MiniWoB++ on Playwright: every registered task loads and plays; the oracles solve theirs.

One reset and five random legal steps per task (all of them), two seeded
episodes per oracle task, one per split, and the wrapper's own promises:
registration and exclusions, the MIT notice, serving from the wheel, the
switched-off episode timer, rewards and MiniWoB's train/test data mode.
"""

from __future__ import annotations

import numpy as np
import pytest

import multiverse.envs as menvs
from multiverse.envs.play import oracle_agent, play_episode
from multiverse.envs.web import miniwob as mw
from multiverse.envs.web.env import WebEnv, load_task
from multiverse.envs.web.miniwob_oracles import ORACLES

NAMES = list(mw.task_names())


def test_every_page_is_registered_but_the_excluded_ones() -> None:
    ids = {s.id for s in menvs.list_envs(kind="web") if s.id.startswith("miniwob/")}
    pages = {p.stem for p in (mw.html_dir() / "miniwob").glob("*.html")}
    assert len(ids) >= 100
    assert ids == {f"miniwob/{n}-v1" for n in pages - set(mw.EXCLUDED)}
    assert not any(f"miniwob/{n}-v1" in ids for n in mw.EXCLUDED)
    assert not any("flight." in i for i in ids)  # the captured airline sites stay out
    assert set(ORACLES) <= set(NAMES) and len(ORACLES) >= 10


def test_mit_notice_is_kept() -> None:
    doc = mw.__doc__ or ""
    assert "Copyright 2016 OpenAI" in doc and "Copyright 2022 Farama Foundation" in doc
    assert "Permission is hereby granted, free of charge" in doc


def test_pages_are_inlined_and_files_served_from_the_wheel_only() -> None:
    html = mw.page_html("click-test")
    assert "../core/core.js" not in html and "core.startEpisodeReal" in html
    ctype, body = mw._file("/core/jquery-ui/jquery-ui.min.css")
    assert ctype == "text/css" and body
    assert mw._file("/common/special/email-inbox/star.png")[0] == "image/png"
    for bad in ("/core/../../__init__.py", "/../miniwob/__init__.py", "/etc/passwd", "/miniwob/nope.html"):
        assert mw._file(bad) is None


def test_classes_and_spaces() -> None:
    cls = mw.task_class("click-test-2")
    assert cls is mw.ClickTest2 and cls.task_name == "click-test-2" and cls.oracle_success_rate == 1.0
    assert "zoom" not in mw.task_class("bisect-angle").PARAM_SPACE.params  # reads raw mouse coordinates
    assert "data_mode" in mw.task_class("click-test-transfer").PARAM_SPACE.params
    no_oracle = mw.task_class("drag-box")
    assert no_oracle.oracle_success_rate == 0.0 and no_oracle().oracle({}, None) == "noop()"


@pytest.fixture(scope="module")
def runner():
    """One WebEnv whose task is switched per test: each reset then takes the context made in the
    background during the previous one (a new context is most of a reset's cost). ``make(id)`` is
    covered by test_every_id_makes_its_task."""
    env = WebEnv(task=mw.task_class(NAMES[0])())

    def switch(name: str) -> WebEnv:
        task = mw.task_class(name)()
        env.task, env.PARAM_SPACE, env.oracle_success_rate = task, task.PARAM_SPACE, task.oracle_success_rate
        env.driver.task = task  # the page driver runs the task's page hooks
        env.step_limit = task.max_steps
        return env

    yield switch
    env.close()


def test_every_id_makes_its_task() -> None:
    for name in NAMES:
        spec = menvs.spec(f"miniwob/{name}-v1")
        assert type(load_task(spec["kwargs"]["task"])) is mw.task_class(name)
        assert spec["max_episode_steps"] == mw.task_class(name).max_steps
    env = menvs.make("miniwob/click-option-v1")
    assert env.unwrapped.task.task_name == "click-option" and env.unwrapped.step_limit == 20
    env.close()


@pytest.mark.parametrize("name", NAMES)
def test_task_loads_and_takes_random_legal_actions(name: str, runner) -> None:
    """Reset, mission, legal actions, five random legal steps: no exception, no infra or action error."""
    env = runner(name)
    rng = np.random.default_rng(len(name))
    split = "heldout" if NAMES.index(name) % 2 else "train"
    obs, info = env.reset(seed=NAMES.index(name), options={"split": split})
    assert "infra_error" not in info, info.get("infra_error")
    assert info["mission"].strip() and not info["mission"].startswith("(MiniWoB")
    assert obs["text"].startswith(info["mission"])
    assert info["legal_actions"], obs["text"]
    for _ in range(5):
        action = info["legal_actions"][int(rng.integers(len(info["legal_actions"])))].replace("<text>", '"abc"')
        obs, reward, term, trunc, info = env.step(action)
        assert "infra_error" not in info, (action, info["infra_error"])
        assert "action_error" not in info, (action, info["action_error"])
        assert -1.0 <= reward <= 1.0
        if term or trunc:
            assert isinstance(info["success"], bool)
            break
        assert info["legal_actions"], obs["text"]


@pytest.mark.parametrize("name", sorted(ORACLES))
def test_oracle(name: str, runner) -> None:
    env = runner(name)
    episodes = ((0, "train"), (2, "heldout"))  # every oracle here must solve every episode (rate 1.0)
    errors: list[str] = []

    def keep(obs, reward, term, trunc, info) -> None:
        errors.extend(info[k] for k in ("action_error", "infra_error") if k in info)

    runs = [play_episode(env, oracle_agent(), seed=s, options={"split": split}, on_step=keep) for s, split in episodes]
    assert not errors and sum(r.action_errors for r in runs) == 0, errors
    assert np.mean([r.success for r in runs]) >= ORACLES[name][1], [(r.seed, r.success, r.steps) for r in runs]
    assert all(r.total_return > 0 for r in runs if r.success)


def test_same_seed_same_episode() -> None:
    def trace() -> list[str]:
        env = menvs.make("miniwob/click-checkboxes-v1")
        texts: list[str] = []
        play_episode(env, oracle_agent(), seed=7, on_step=lambda obs, *rest: texts.append(obs["text"]))
        env.close()
        return texts

    a = trace()
    assert a == trace() and len(a) >= 2


def test_wrong_answer_and_reward_scale() -> None:
    env = menvs.make("miniwob/click-test-2-v1")
    try:
        env.reset(seed=0)
        wrong = env.unwrapped.observation.find("button", "TWO")
        _, reward, term, _, info = env.step(f"click({wrong.id})")
        assert term and reward == -1.0 and info["success"] is False
        env.reset(seed=0)
        env.step("noop()")  # 100 virtual ms pass
        right = env.unwrapped.observation.find("button", "ONE")
        _, reward, term, _, info = env.step(f"click({right.id})")
        # MiniWoB's time-scaled reward, on the virtual clock: 1 - 0.1 s / 10 s
        assert term and info["success"] is True and reward == pytest.approx(0.99, abs=1e-6)
    finally:
        env.close()


def test_episode_timer_is_off() -> None:
    """MiniWoB's 10 s timeout never fires: a minute of page time later the episode is still on."""
    env = menvs.make("miniwob/click-test-v1")
    try:
        env.reset(seed=0)
        u = env.unwrapped
        u.driver.host.run(u.driver.page.clock.run_for(60_000), timeout=30)
        _, reward, term, _, _ = env.step("noop()")
        assert not term and reward == 0.0
        state = u.observation.state
        assert state["done"] is False
        button = u.observation.find("button", "Click Me!")
        _, reward, term, _, info = env.step(f"click({button.id})")
        assert term and info["success"] is True and reward == 0.0  # raw reward 1; the time-scaled one has run out
    finally:
        env.close()


def test_heldout_uses_miniwobs_test_mode() -> None:
    env = menvs.make("miniwob/click-test-transfer-v1")
    try:
        _, info = env.reset(seed=0)
        assert info["mission"] == "Click button ONE." and info["randomization"]["data_mode"] == "train"
        _, info = env.reset(seed=0, options={"split": "heldout"})
        assert info["mission"] == "Click button TWO." and info["randomization"]["data_mode"] == "test"
        assert 1.25 <= info["randomization"]["zoom"] <= 1.4
    finally:
        env.close()
