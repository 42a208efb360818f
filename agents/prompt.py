"""The one adapter from an env's text to the policy's prompt.

A prompt is the model's chat template applied to two messages:

* system: what the agent is and how to answer (one legal action, verbatim);
* user: the mission, up to ``history_steps`` recent (observation, action)
  pairs oldest first, the current observation, and (optionally) the legal
  actions.

The assistant turn is left open (``add_generation_prompt``): the policy scores
each legal action as the assistant's reply, followed by the end-of-turn token.
The observation text of a Multiverse env starts with its mission line; that
line is not repeated.

Truncation rule, applied until the prompt fits ``max_prompt_tokens``:

1. keep at most ``history_steps`` most recent history entries;
2. drop history entries, oldest first;
3. if the legal actions are listed (``list_legal_actions``), replace the list
   with their count (the policy still scores every legal action, so acting
   stays exact; only the text hint is lost);
4. if the prompt still does not fit, raise :class:`PromptTooLongError` naming
   the token counts: the current observation is never cut silently, because a
   policy acting on half an observation fails in ways that are hard to debug.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from annotated_types import Ge

__all__ = ["ACTION_TEXTS", "DEFAULT_SYSTEM_PROMPT", "TEXT_SLOT", "Prompt", "PromptConfig", "PromptTooLongError", "Turn",
           "build_prompt", "candidate_text"]

TEXT_SLOT = "<text>"
#: how a candidate reply is written (PromptConfig.action_text)
ACTION_TEXTS = ("action", "action_then_description", "description_then_action")

DEFAULT_SYSTEM_PROMPT = (
    "You are an agent acting in an environment. Each turn you see your mission, recent steps, "
    "the current observation and the legal actions. Reply with exactly one legal action, written as listed."
)


class PromptTooLongError(ValueError):
    """The prompt does not fit the token budget even without history."""


@dataclasses.dataclass(frozen=True)
class PromptConfig:
    """How observations become prompts."""

    max_prompt_tokens: Annotated[int, Ge(16)] = 1024
    """Token budget of the prompt (the candidates' tokens come on top). See the truncation rule."""
    history_steps: Annotated[int, Ge(0)] = 2
    """How many recent (observation, action) pairs the prompt shows at most."""
    system_prompt: str | None = None
    """The system message (null or empty: the default one, DEFAULT_SYSTEM_PROMPT)."""
    list_legal_actions: bool = False
    """Write the legal actions into the prompt (they are scored either way). Off by default: measured with
    the 135M default model, a listed set makes it favour whichever action comes last, not the right one."""
    action_text: Literal["action", "action_then_description", "description_then_action"] = "action_then_description"
    """What each candidate reply is, where the env gives info['action_descriptions']: the bare action
    (``click(3)``), the action then its description (``click(3) button "Save"``) or the description then the
    action (``button "Save": click(3)``). The action taken is the bare one either way (see
    :func:`candidate_text`). The default won the zero-shot comparison with the default model (bench/README.md)."""

    def __post_init__(self) -> None:
        if self.max_prompt_tokens < 16:
            raise ValueError(f"max_prompt_tokens must be >= 16, got {self.max_prompt_tokens}")
        if self.history_steps < 0:
            raise ValueError(f"history_steps must be >= 0, got {self.history_steps}")
        if self.action_text not in ACTION_TEXTS:
            raise ValueError(f"action_text must be one of {list(ACTION_TEXTS)}, got {self.action_text!r}")


@dataclasses.dataclass(frozen=True)
class Turn:
    """What the policy sees in one env at one step."""

    mission: str
    observation: str
    legal_actions: Sequence[str]
    history: Sequence[tuple[str, str]] = ()
    """(observation, action) pairs of earlier steps of this episode, oldest first."""
    action_descriptions: Sequence[str] | None = None
    """What each legal action does or acts on, in the same order (the env's info['action_descriptions'])."""

    def __post_init__(self) -> None:
        if self.action_descriptions is not None and len(self.action_descriptions) != len(self.legal_actions):
            raise ValueError(
                f"{len(self.legal_actions)} legal actions but {len(self.action_descriptions)} action_descriptions: "
                f"an env gives one description per legal action, in the same order (or none)")

    @classmethod
    def from_env(cls, obs: Any, info: dict[str, Any], history: Sequence[tuple[str, str]] = ()) -> Turn:
        """A turn from an env's ``obs`` and ``info`` (the Multiverse env contract)."""
        text = obs["text"] if isinstance(obs, dict) else obs
        described = info.get("action_descriptions")
        return cls(mission=str(info.get("mission", "")), observation=str(text), legal_actions=list(info["legal_actions"]),
                   history=tuple(history), action_descriptions=tuple(described) if described is not None else None)

    def candidate_texts(self, form: str) -> list[str]:
        """Each legal action as the reply the policy scores under ``form`` (see :func:`candidate_text`)."""
        descriptions = self.action_descriptions or [None] * len(self.legal_actions)
        return [candidate_text(a, d, form) for a, d in zip(self.legal_actions, descriptions)]


def candidate_text(action: str, description: str | None, form: str) -> str:
    """The reply scored for ``action``: the action alone, or with its description after or before it.

    A template's text after its slot is generated, never scored, so its description always comes first
    (``textbox "Name": type(5, <text>)``) and the generated text stays the reply's end. An empty description,
    or one that only repeats the action, adds nothing: the action alone."""
    if form == "action" or not description or description == action:
        return action
    if form == "description_then_action" or TEXT_SLOT in action:
        return f"{description}: {action}"
    return f"{action} {description}"


@dataclasses.dataclass(frozen=True)
class Prompt:
    """A rendered prompt: its token ids and what truncation did."""

    ids: list[int]
    text: str
    history_used: int
    history_dropped: int
    actions_listed: bool


def _strip_mission(mission: str, text: str) -> str:
    return text[len(mission):].lstrip("\n") if mission and text.startswith(mission) else text


def _user_message(turn: Turn, history: Sequence[tuple[str, str]], list_actions: bool | None, form: str) -> str:
    parts = [f"Mission: {turn.mission}" if turn.mission else "Mission: (none given)"]
    if history:
        steps = [
            f"Observation:\n{_strip_mission(turn.mission, obs)}\nAction: {action}" for obs, action in history
        ]
        parts.append("Previous steps, oldest first:\n" + "\n\n".join(steps))
    parts.append("Current observation:\n" + _strip_mission(turn.mission, turn.observation))
    if list_actions is True:
        parts.append("Legal actions: " + "; ".join(turn.candidate_texts(form)))  # as scored: "written as listed"
    elif list_actions is None:  # asked for, but dropped to fit the budget
        parts.append(f"There are {len(turn.legal_actions)} legal actions (too many to list).")
    parts.append("Reply with one legal action.")
    return "\n\n".join(parts)


_CHAT_FORMATS: dict[int, tuple[Any, tuple[str, str, str] | None]] = {}


def _chat_format(tokenizer: Any) -> tuple[str, str, str] | None:
    """The chat template rendered once around placeholders, as (before system, between, after user).

    Rendering a jinja template costs milliseconds per call in transformers 5; a prompt per env step
    makes that add up, so when the template inserts the contents verbatim (checked on a sample) a prompt
    is three string joins. Otherwise None, and every prompt goes through ``apply_chat_template``."""
    cached = _CHAT_FORMATS.get(id(tokenizer))
    if cached is not None and cached[0] is tokenizer:
        return cached[1]
    S, U = "\x01SYSTEM\x01", "\x01USER\x01"
    parts = None
    text = _apply(tokenizer, S, U)
    if text.count(S) == 1 and text.count(U) == 1 and text.index(S) < text.index(U):
        head, rest = text.split(S)
        mid, tail = rest.split(U)
        sample_s, sample_u = " A system\nmessage. ", "Mission: x\n\nobs  {x}\n"
        if head + sample_s + mid + sample_u + tail == _apply(tokenizer, sample_s, sample_u):
            parts = (head, mid, tail)
    _CHAT_FORMATS[id(tokenizer)] = (tokenizer, parts)
    return parts


def _apply(tokenizer: Any, system: str, user: str) -> str:
    messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def _render(tokenizer: Any, system: str, user: str) -> tuple[str, list[int]]:
    parts = _chat_format(tokenizer)
    text = parts[0] + system + parts[1] + user + parts[2] if parts is not None else _apply(tokenizer, system, user)
    return text, tokenizer.encode(text, add_special_tokens=False)


def build_prompt(tokenizer: Any, turn: Turn, config: PromptConfig = PromptConfig()) -> Prompt:
    """Render ``turn`` with the tokenizer's chat template under the truncation rule (module docstring)."""
    if not turn.legal_actions:
        raise ValueError(
            "the legal-action list is empty: the policy needs at least one action to choose from "
            "(an env must list its legal actions in info['legal_actions'])"
        )
    history = list(turn.history)[-config.history_steps:] if config.history_steps else []
    kept_from = 0
    list_actions: bool | None = config.list_legal_actions  # None: the list was dropped to fit
    system = config.system_prompt or DEFAULT_SYSTEM_PROMPT
    while True:
        text, ids = _render(tokenizer, system, _user_message(turn, history[kept_from:], list_actions, config.action_text))
        if len(ids) <= config.max_prompt_tokens:
            used = len(history) - kept_from
            return Prompt(ids, text, used, len(turn.history) - used, bool(list_actions))
        if kept_from < len(history):
            kept_from += 1
        elif list_actions:
            list_actions = None
        else:
            obs_tokens = len(tokenizer.encode(turn.observation, add_special_tokens=False))
            raise PromptTooLongError(
                f"the prompt needs {len(ids)} tokens without any history (the observation alone is {obs_tokens} "
                f"tokens, {len(turn.observation)} characters) but max_prompt_tokens is {config.max_prompt_tokens}. "
                f"Raise max_prompt_tokens (the model's context allows more), or make the env's observation text "
                f"shorter; the policy does not cut observations."
            )
