"""The prompt: what it contains, the truncation rule, and its errors."""

from __future__ import annotations

import pytest

from multiverse.agents.models import tiny_test_tokenizer
from multiverse.agents.prompt import PromptConfig, PromptTooLongError, Turn, _apply, build_prompt

MISSION = "Reach the green square."


def turn(obs: str = "grid row 1\ngrid row 2", history: int = 0, actions: int = 4) -> Turn:
    hist = tuple((f"{MISSION}\nold observation {i}", f"move{i}") for i in range(history))
    return Turn(MISSION, f"{MISSION}\n{obs}", [f"action{i}" for i in range(actions)], hist)


def test_prompt_holds_mission_history_observation_and_actions_in_the_chat_template() -> None:
    tok = tiny_test_tokenizer()
    p = build_prompt(tok, turn(history=2), PromptConfig(history_steps=2, list_legal_actions=True))
    assert p.text.startswith("<|im_start|>system\n") and p.text.endswith("<|im_start|>assistant\n")
    assert p.text.count(MISSION) == 1  # the observation's own mission line is not repeated
    assert "old observation 0" in p.text and "Action: move1" in p.text
    assert p.text.index("old observation 0") < p.text.index("old observation 1") < p.text.index("grid row 1")
    assert "Legal actions: action0; action1; action2; action3" in p.text
    assert p.ids == tok.encode(p.text, add_special_tokens=False)
    assert (p.history_used, p.history_dropped, p.actions_listed) == (2, 0, True)


def test_the_fast_template_path_equals_apply_chat_template() -> None:
    tok = tiny_test_tokenizer()
    p = build_prompt(tok, turn(history=1), PromptConfig(system_prompt="Sys.\n  two lines "))
    assert p.text == _apply(tok, "Sys.\n  two lines ", p.text.split("<|im_start|>user\n")[1].split("<|im_end|>")[0])


def test_history_is_bounded_then_dropped_oldest_first_to_fit() -> None:
    tok = tiny_test_tokenizer()
    assert build_prompt(tok, turn(history=5), PromptConfig(history_steps=2)).history_used == 2
    full = build_prompt(tok, turn(history=3), PromptConfig(history_steps=3))
    budget = len(full.ids) - 10  # one history entry must go
    p = build_prompt(tok, turn(history=3), PromptConfig(history_steps=3, max_prompt_tokens=budget))
    assert len(p.ids) <= budget
    assert (p.history_used, p.history_dropped) == (2, 1)
    assert "old observation 0" not in p.text and "old observation 2" in p.text


def test_a_long_action_list_is_summarized_before_failing() -> None:
    tok = tiny_test_tokenizer()
    base = build_prompt(tok, turn(actions=1), PromptConfig(list_legal_actions=True))
    p = build_prompt(tok, turn(actions=200), PromptConfig(max_prompt_tokens=len(base.ids) + 50, list_legal_actions=True))
    assert not p.actions_listed and "There are 200 legal actions" in p.text
    unlisted = build_prompt(tok, turn(actions=200)).text  # the default lists none
    assert "Legal actions:" not in unlisted and "There are" not in unlisted and "action199" not in unlisted


def test_an_over_long_observation_is_a_clear_error() -> None:
    tok = tiny_test_tokenizer()
    with pytest.raises(PromptTooLongError, match=r"observation alone is \d+ tokens.*max_prompt_tokens is 256"):
        build_prompt(tok, turn(obs="x" * 2000, history=2), PromptConfig(max_prompt_tokens=256))


def test_an_empty_action_list_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="legal-action list is empty"):
        build_prompt(tiny_test_tokenizer(), Turn(MISSION, MISSION, []))


def test_bad_config_is_rejected() -> None:
    with pytest.raises(ValueError, match="max_prompt_tokens"):
        PromptConfig(max_prompt_tokens=0)
    with pytest.raises(ValueError, match="history_steps"):
        PromptConfig(history_steps=-1)


def test_turn_from_env_follows_the_env_contract() -> None:
    import multiverse.envs as menvs

    env = menvs.make("games/Catch-v0")
    obs, info = env.reset(seed=0)
    t = Turn.from_env(obs, info)
    assert t.observation == obs["text"] and t.mission == info["mission"] and list(t.legal_actions) == info["legal_actions"]
