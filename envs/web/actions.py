"""The web action language: parse text actions, never raise.

    click(12)                 click element 12
    type(7, "hello world")    replace the text of input 7 (double or single quotes; \\" \\\\ \\n escapes)
    press("Enter")            press a key (see KEYS)
    select(4, "Blue")         choose an option of dropdown 4 by its label
    scroll(up) / scroll(down) scroll the page (quotes optional)
    noop()                    do nothing this step

:func:`parse` returns an :class:`Action` or a string saying what is wrong. It is
fuzzed: no input makes it raise, and an error quotes at most a short prefix of it.
"""

from __future__ import annotations

import dataclasses
import re

from multiverse.envs.core import quote

__all__ = ["KEYS", "TEXT_TEMPLATE", "Action", "format_action", "parse"]

#: keys ``press`` accepts
KEYS = (
    "Enter", "Tab", "Escape", "Backspace", "Delete", "Space", "ArrowUp", "ArrowDown", "ArrowLeft", "ArrowRight",
    "Home", "End", "PageUp", "PageDown",
)
#: the placeholder a legal ``type`` action carries until a policy fills it
TEXT_TEMPLATE = "<text>"
MAX_TEXT = 200

_CALL = re.compile(r"^\s*([a-z_]+)\s*\((.*)\)\s*$", re.DOTALL)
_ARITY = {"click": 1, "type": 2, "press": 1, "select": 2, "scroll": 1, "noop": 0}
_USAGE = {
    "click": "click(ID)",
    "type": 'type(ID, "text")',
    "press": 'press("Key")',
    "select": 'select(ID, "option")',
    "scroll": "scroll(up) or scroll(down)",
    "noop": "noop()",
}


@dataclasses.dataclass(frozen=True)
class Action:
    kind: str
    target: int | None = None
    text: str | None = None


def _split_args(s: str) -> list[str | int] | str:
    """Arguments: integers, quoted strings or bare words; a string on error."""
    args: list[str | int] = []
    i, n = 0, len(s)
    while True:
        while i < n and s[i].isspace():
            i += 1
        if i >= n:
            return args if not args else "an argument is missing after ','"
        c = s[i]
        if c in "\"'":
            quote, i, buf = c, i + 1, []
            while i < n and s[i] != quote:
                if s[i] == "\\" and i + 1 < n:
                    i += 1
                    buf.append({"n": "\n", "t": "\t"}.get(s[i], s[i]))
                else:
                    buf.append(s[i])
                i += 1
            if i >= n:
                return f"unterminated string starting with {quote}"
            args.append("".join(buf))
            i += 1
        else:
            j = i
            while j < n and s[j] not in ",\"'":
                j += 1
            word = s[i:j].strip()
            if not word:
                return "an argument is empty"
            args.append(int(word) if re.fullmatch(r"[+-]?\d{1,9}", word) else word)
            i = j
        while i < n and s[i].isspace():
            i += 1
        if i >= n:
            return args
        if s[i] != ",":
            return f"expected ',' between arguments, found {s[i]!r}"
        i += 1


def parse(text: object) -> Action | str:
    """Parse one action; returns the :class:`Action` or an error message naming what was wrong (never raises)."""
    if not isinstance(text, str):
        return f"an action is a string such as click(3), got {quote(text)}"
    try:
        return _parse(str.__str__(text))  # the built-in str: a subclass's methods may do anything
    except Exception as exc:
        return f"cannot read the action {quote(text)} ({type(exc).__name__}); write name(args), e.g. click(3)"


def _parse(text: str) -> Action | str:
    m = _CALL.match(text)
    if not m:
        return f"cannot parse {quote(text)}: write name(args), e.g. click(3), type(5, \"hi\"), press(\"Enter\")"
    name, raw = m.group(1), m.group(2)
    if name not in _ARITY:
        return f"unknown action {quote(name)}; use one of: {', '.join(_USAGE.values())}"
    args = _split_args(raw)
    if isinstance(args, str):
        return f"{name}: {args}; usage {_USAGE[name]}"
    if len(args) != _ARITY[name]:
        return f"{name} takes {_ARITY[name]} argument(s), got {len(args)}; usage {_USAGE[name]}"
    if name in ("click", "type", "select"):
        if not isinstance(args[0], int) or isinstance(args[0], bool) or args[0] < 1:
            return f"{name}: the first argument must be an element id (a positive integer), got {quote(args[0])}; usage {_USAGE[name]}"
    if name == "click":
        return Action("click", target=int(args[0]))
    if name in ("type", "select"):
        value = args[1]
        if not isinstance(value, str):
            value = str(value)
        if name == "type" and value == TEXT_TEMPLATE:
            return f"type: replace {TEXT_TEMPLATE} with the text to type, e.g. type({args[0]}, \"hello\")"
        if len(value) > MAX_TEXT:
            return f"{name}: the text is {len(value)} characters; at most {MAX_TEXT}"
        if not value.replace("\n", "").replace("\t", "").isprintable():
            return f"{name}: the text has control characters"
        return Action(name, target=int(args[0]), text=value)
    if name == "press":
        key = str(args[0])
        canon = {k.lower(): k for k in KEYS}.get(key.lower())
        if canon is None:
            return f"press: unknown key {quote(key)}; keys: {', '.join(KEYS)}"
        return Action("press", text=canon)
    if name == "scroll":
        direction = str(args[0]).lower()
        if direction not in ("up", "down"):
            return f"scroll: direction must be up or down, got {quote(args[0])}"
        return Action("scroll", text=direction)
    return Action("noop")


def _quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def format_action(action: Action) -> str:
    """The canonical text of an action (``parse(format_action(a)) == a``)."""
    if action.kind == "click":
        return f"click({action.target})"
    if action.kind in ("type", "select"):
        return f"{action.kind}({action.target}, {_quote(action.text or '')})"
    if action.kind == "press":
        return f"press({_quote(action.text or '')})"
    if action.kind == "scroll":
        return f"scroll({action.text})"
    return "noop()"
