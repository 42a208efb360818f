"""What a browser task is: a seeded page, a success test and an oracle.

A task is a class, not an env; :class:`~multiverse.envs.web.env.WebEnv` runs any
task. Subclasses implement

* ``setup(rng, params) -> TaskPage``: the episode's page (HTML), mission and
  the hidden instance data (the answer),
* ``validate(instance, state) -> Outcome``: reward, success and whether the
  episode is over, from what the page reported (``window.__mvState``),
* ``oracle(instance, obs) -> str``: the expert's next action, read off the
  observation the agent sees (element ids come from there).

Task pages call ``mv.set(key, value)`` / ``mv.submit(value)`` from their own
script (see :func:`page`) to report what the user did; validation is pure Python.

Randomization shared by all own tasks (:class:`WebParams`): theme colours,
font family and size, viewport, plus each task's own fields (element order,
distractors, label wording, ...).
"""

from __future__ import annotations

import dataclasses
import html
import json
from typing import Any, ClassVar

import numpy as np

from multiverse.envs.randomization import Choice, IntRange, Param, ParamSpace

__all__ = [
    "Element",
    "Observation",
    "Outcome",
    "TaskPage",
    "WebParams",
    "WebTask",
    "common_params",
    "esc",
    "page",
]


@dataclasses.dataclass(frozen=True)
class Element:
    """One line of the page listing, as the agent sees it."""

    id: int
    role: str
    name: str
    value: str | None = None
    checked: bool | None = None
    options: tuple[str, ...] | None = None
    clickable: bool = False
    typeable: bool = False
    focused: bool = False
    tag: str = ""
    input_type: str | None = None

    #: longest name a description quotes (a long text block is cut, with "...")
    DESCRIBE_CHARS: ClassVar[int] = 80

    def describe(self) -> str:
        """Role, accessible name (cut short) and state, as the listing writes them, without the id and the
        focus: ``button "Save"``, ``radio "Blue" checked``, ``combobox "Colour" selected="Red"``. The state
        is what tells a click that checks an option from one that undoes it."""
        name = self.name if len(self.name) <= self.DESCRIBE_CHARS else self.name[: self.DESCRIBE_CHARS - 3] + "..."
        head = f"{self.role} {json.dumps(name, ensure_ascii=False)}" if self.name else self.role
        return head + self._state(options=False)

    def line(self) -> str:
        s = f"[{self.id}] {self.role} {json.dumps(self.name, ensure_ascii=False)}"
        if self.input_type:
            s += f" ({self.input_type})"
        s += self._state(options=True)
        if self.focused:
            s += " focused"
        return s

    def _state(self, options: bool) -> str:
        """The listing's value, selection and checked words (with ``options``: a combobox's option list)."""
        s = ""
        if self.value is not None and self.role != "combobox":
            shown = "•" * len(self.value) if self.input_type == "password" else self.value
            s += f" value={json.dumps(shown, ensure_ascii=False)}"
        if self.role == "combobox":
            s += f" selected={json.dumps(self.value, ensure_ascii=False)}"
            if options:
                s += f" options={json.dumps(list(self.options or ()), ensure_ascii=False)}"
        if self.checked is not None:
            if self.role in ("tab", "option", "menuitem", "treeitem", "gridcell"):
                s += " selected" if self.checked else ""
            else:
                s += " checked" if self.checked else " unchecked"
        return s


@dataclasses.dataclass
class Observation:
    """The parsed page: elements in document order, scroll room, and the page-reported state."""

    elements: list[Element]
    url: str
    title: str
    scroll_up: bool
    scroll_down: bool
    state: Any
    truncated: bool = False

    def find(self, role: str | None = None, name: str | None = None, **where: Any) -> Element | None:
        """The first element with this role and (exact) name and attributes, or None."""
        for e in self.elements:
            if role is not None and e.role != role:
                continue
            if name is not None and e.name != name:
                continue
            if all(getattr(e, k) == v for k, v in where.items()):
                return e
        return None

    def find_all(self, role: str | None = None) -> list[Element]:
        return [e for e in self.elements if role is None or e.role == role]

    def scroll_or_wait(self) -> str:
        """The action that brings more of the page into view: scroll down, else up, else ``noop()``."""
        return "scroll(down)" if self.scroll_down else "scroll(up)" if self.scroll_up else "noop()"


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What ``validate`` decides: reward (shaped as the task likes), success, and whether the episode is over."""

    reward: float = 0.0
    success: bool = False
    done: bool = False


@dataclasses.dataclass
class TaskPage:
    """One episode's page: the HTML document, the mission, and the hidden instance (JSON data)."""

    html: str
    mission: str
    instance: dict[str, Any]
    #: extra files served next to the page: path -> (content type, bytes)
    files: dict[str, tuple[str, bytes]] = dataclasses.field(default_factory=dict)


# --------------------------------------------------------------------------- shared randomization

THEMES = {
    # name: (background, text, accent, panel)
    "light": ("#ffffff", "#1d1d1f", "#0a66c2", "#f2f2f5"),
    "dark": ("#1e1f24", "#e8e8ea", "#6ab0ff", "#2a2c33"),
    "ocean": ("#eef6fb", "#12324a", "#0f7b8a", "#d9ecf5"),
    "sepia": ("#f4ecd8", "#4a3b28", "#9a5b13", "#e8dcc0"),
    "contrast": ("#000000", "#ffff00", "#00ffff", "#202020"),
}
FONTS = {
    "sans": "Helvetica, Arial, 'DejaVu Sans', sans-serif",
    "serif": "Georgia, 'Times New Roman', 'DejaVu Serif', serif",
    "mono": "'DejaVu Sans Mono', 'Courier New', monospace",
}


@dataclasses.dataclass(frozen=True)
class WebParams:
    """Fields every own task randomizes; a task's ``Params`` subclasses this."""

    theme: str = "light"
    font: str = "sans"
    font_size: int = 15
    viewport_width: int = 900
    viewport_height: int = 700


def common_params() -> dict[str, Param]:
    """The :class:`WebParams` fields as randomized parameters (train / held-out)."""
    return {
        "theme": Param(Choice(("light", "dark", "ocean")), Choice(("sepia", "contrast")), "page colours"),
        "font": Param(Choice(("sans", "serif")), Choice(("mono",)), "font family"),
        "font_size": Param(IntRange(13, 17), IntRange(19, 21), "base font size in px"),
        "viewport_width": Param(IntRange(800, 1000), IntRange(1100, 1200), "browser viewport width"),
        "viewport_height": Param(IntRange(640, 760), IntRange(560, 600), "browser viewport height"),
    }


def esc(s: Any) -> str:
    """HTML-escape a value for text or attribute use."""
    return html.escape(str(s), quote=True)


_MV_JS = """
window.__mvState = {};
window.mv = {
  set(k, v) { window.__mvState[k] = v; },
  push(k, v) { (window.__mvState[k] = window.__mvState[k] || []).push(v); },
  submit(v) { window.__mvState.submitted = v; window.__mvState.submits = (window.__mvState.submits || 0) + 1; },
};
"""


def page(params: WebParams, body: str, *, script: str = "", title: str = "Task", css: str = "") -> str:
    """A whole task document: theme CSS from ``params``, the ``mv`` reporting helper, ``body`` and ``script``."""
    bg, fg, accent, panel = THEMES[params.theme]
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>
<style>
body {{ background: {bg}; color: {fg}; font-family: {FONTS[params.font]}; font-size: {params.font_size}px; margin: 16px; }}
button, input, select, textarea {{ font: inherit; color: {fg}; background: {panel}; border: 1px solid {accent}; border-radius: 4px; padding: 4px 8px; margin: 2px; }}
button {{ cursor: pointer; }}
a {{ color: {accent}; }}
.panel {{ background: {panel}; padding: 8px; margin: 6px 0; border-radius: 6px; }}
.row {{ margin: 4px 0; }}
.hidden {{ display: none; }}
{css}
</style>
<script>{_MV_JS}</script>
</head><body>
{body}
<script>{script}</script>
</body></html>"""


# --------------------------------------------------------------------------- the task base class


class WebTask:
    """Base class of browser tasks; see the module docstring for the three methods.

    Everything else :class:`~multiverse.envs.web.env.WebEnv` reads on a task is declared here with its
    default; a task overrides what it needs (the MiniWoB tasks set the page hooks).
    """

    #: the task's randomized parameters (a params dataclass subclassing :class:`WebParams`, or its own)
    PARAM_SPACE: ClassVar[ParamSpace]
    #: the oracle must succeed at least this often
    oracle_success_rate: ClassVar[float] = 1.0
    #: virtual milliseconds the page's clock advances per step
    step_ms: ClassVar[int] = 100
    #: keys listed as press(...) actions (others are still accepted)
    keys: ClassVar[tuple[str, ...]] = ()
    #: list a click for every visible text element (pages whose clickable things carry no semantics)
    click_text: ClassVar[bool] = False
    #: JavaScript run in every document of the task's contexts before the page's own scripts ("" for none)
    init_script: ClassVar[str] = ""
    #: the empty page (on the task origin) a context waits on between being made and its episode
    blank_path: ClassVar[str] = "/__blank__"
    #: the address the episode's page shows once loaded: relative links and ``location`` resolve against it
    start_path: ClassVar[str] = "/task"

    def setup(self, rng: np.random.Generator, params: Any) -> TaskPage:
        """The episode's page, mission and hidden instance, drawn from ``rng`` for ``params``."""
        raise NotImplementedError

    def validate(self, instance: dict[str, Any], state: Any) -> Outcome:
        """Reward, success and done from what the page reported (``window.__mvState``)."""
        raise NotImplementedError

    def oracle(self, instance: dict[str, Any], obs: Observation) -> str:
        """The expert's next action, read off the observation the agent sees."""
        raise NotImplementedError

    def serve(self, path: str) -> tuple[str, bytes] | None:
        """Static files the task's pages need besides the episode's own (path -> (type, body))."""
        return None

    async def start(self, page: Any, seed: int, task_page: TaskPage) -> None:
        """Run once the episode's page is loaded, before its first observation (default: nothing).

        ``page`` is the Playwright page, ``seed`` a per-episode seed for the page's own generator; a task whose
        page draws its episode itself (MiniWoB) starts it here and may set ``task_page.mission`` from it."""

    @classmethod
    def summary(cls) -> str:
        return (cls.__doc__ or cls.__name__).strip().split("\n\n")[0].replace("\n", " ")
