"""MiniWoB++ on Playwright: the tasks of the ``miniwob`` wheel as ``miniwob/<task>-v1`` envs.

The wheel (``pip install --no-deps miniwob==1.1.0``) is read as data: its
``html/`` folder is found with :func:`importlib.util.find_spec` and its Python
(Selenium) code is never imported. Every page under ``html/miniwob/`` is one
env, run by the ordinary :class:`~multiverse.envs.web.env.WebEnv`:

* the page's local scripts and style sheets are inlined into one document (no
  extra requests per reset); images and other files it asks for are served
  from the wheel on the reserved origin (``/miniwob/``, ``/core/``, ``/common/``);
* an episode is started MiniWoB's way, ``Math.seedrandom(seed)`` then
  ``core.startEpisodeReal()`` (data mode ``train``, or ``test`` on the held-out
  split for the tasks that have one), and waits for ``WOB_TASK_READY``;
* MiniWoB's wall-clock episode timer is switched off (time in our pages is
  virtual and episodes are bounded by the step limit). Its time-scaled reward
  is kept: it runs on the virtual clock, ``step_ms`` = 100 ms per step, so a
  success on step ``n`` earns ``1 - (n - 1) * 0.1 s / EPISODE_MAX_TIME`` (10-30 s);
* reward = ``WOB_REWARD_GLOBAL``, done = ``WOB_DONE_GLOBAL``, success = the raw
  (unscaled) reward ``WOB_RAW_REWARD_GLOBAL`` > 0 when done; ``__mvState``
  carries ``{done, reward, raw_reward, reason}`` for :meth:`MiniWoBTask.validate`;
* the mission is MiniWoB's utterance (``core.getUtterance()``), read after
  the episode starts; the page's own query box stays on the page.

Making the pages readable as text (page behaviour unchanged): ``click_text`` is
on (MiniWoB hangs handlers on spans, divs and SVG shapes); icons and links that
MiniWoB draws without semantics get an ARIA role and label (:data:`ROLE_HINTS`:
inbox and feed icons, ``.alink`` links); images the page's CSS swaps in on hover
are preloaded (a half-loaded icon swallows the click); and the observer is
wrapped (``init_script``) so that elements scrolled out of their own scrolling
box or hidden behind another element are not listed, inner scrolling boxes offer
``scroll(up/down)``, disabled and read-only fields are not offered for typing,
and a field that blurs itself on focus (focus-text) still counts as focused.

Excluded: the captured airline sites (``html/flight/``) and the two colour-wheel
tasks (``use-colorwheel``, ``use-colorwheel-2``), which use the GPL jscolor picker.

Randomization: MiniWoB's own generator (seeded from the episode's seed), plus
page zoom (train 0.9-1.1, held-out 1.25-1.4; not for the six tasks that read raw
mouse coordinates, which would break under zoom) and the backdrop colour around
the 160x210 task area; the five transfer tasks switch MiniWoB's data mode to
``test`` on the held-out split. Oracles (step-by-step policies reading the
observation) are in :mod:`multiverse.envs.web.miniwob_oracles`; tasks without
one declare ``oracle_success_rate = 0`` and their oracle waits (``noop()``).

MiniWoB++ is distributed under the MIT License:

    The MIT License

    Copyright 2016 OpenAI (as part of https://github.com/openai/universe)
    Copyright 2018 The Board of Trustees of The Leland Stanford Junior University
    Copyright 2022 Farama Foundation

    Permission is hereby granted, free of charge, to any person obtaining a copy
    of this software and associated documentation files (the "Software"), to deal
    in the Software without restriction, including without limitation the rights
    to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
    copies of the Software, and to permit persons to whom the Software is
    furnished to do so, subject to the following conditions:

    The above copyright notice and this permission notice shall be included in
    all copies or substantial portions of the Software.

    THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
    IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
    FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
    AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
    LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
    OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN
    THE SOFTWARE.

(also in ``LICENSE-miniwob.txt`` next to this file).
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import mimetypes
import posixpath
import re
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from multiverse.envs.randomization import Choice, Param, ParamSpace, Uniform
from multiverse.envs.web.task import Observation, Outcome, TaskPage, WebTask

__all__ = ["EXCLUDED", "MiniWoBTask", "html_dir", "register_miniwob", "task_class", "task_names"]

#: pages under html/miniwob/ that are not registered, and why
EXCLUDED = {
    "use-colorwheel": "uses jscolor (GPL)",
    "use-colorwheel-2": "uses jscolor (GPL)",
}
#: tasks that read raw mouse coordinates (event.pageX / offsetX): page zoom would move their targets
POINTER_TASKS = frozenset({"bisect-angle", "circle-center", "find-midpoint", "hot-cold", "moving-items", "right-angle"})
#: tasks whose generator has a train/test split (WOB_DATA_MODE)
TRANSFER_TASKS = frozenset(
    {
        "click-test-transfer",
        "click-checkboxes-transfer",
        "email-inbox-nl-turk",
        "email-inbox-forward-nl",
        "email-inbox-forward-nl-turk",
    }
)
#: tasks with a step limit of LONG_STEPS (multi-step forms, inboxes, feeds, pickers); the others get DEFAULT_STEPS
LONG_TASKS = frozenset(
    """
    book-flight book-flight-nodelay buy-ticket choose-date choose-date-easy choose-date-medium
    choose-date-nodelay click-checkboxes-large click-checkboxes-soft click-collapsible-2
    click-collapsible-2-nodelay click-scroll-list daily-calendar drag-items-grid drag-sort-numbers email-inbox
    email-inbox-delete email-inbox-forward email-inbox-forward-nl email-inbox-forward-nl-turk
    email-inbox-important email-inbox-nl-turk email-inbox-noscroll email-inbox-reply email-inbox-star-reply
    form-sequence form-sequence-2 form-sequence-3 guess-number login-user-popup multi-layouts multi-orderings
    navigate-tree number-checkboxes order-food phone-book search-engine simon-says social-media-all
    social-media-some stock-market terminal text-editor tic-tac-toe use-slider-2 use-spinner
    """.split()
)
LONG_STEPS = 40
DEFAULT_STEPS = 20
#: ARIA roles (and labels) given to elements that MiniWoB makes clickable without semantics (CSS selector,
#: role, aria-label), so that they are listed and clickable in the observation; look and behaviour are unchanged
_LINKS = ((".alink", "link", ""),)
_INBOXES = """
    email-inbox email-inbox-delete email-inbox-forward email-inbox-forward-nl email-inbox-forward-nl-turk
    email-inbox-important email-inbox-nl-turk email-inbox-noscroll email-inbox-reply email-inbox-star-reply
""".split()
_EMAIL = (
    ("#open-search", "button", "Search"),
    ("#search-cancel", "button", "Back"),
    (".email-actions .trash", "button", "Delete"),
    (".email-actions .star", "button", "Star"),
    ("#close-email", "button", "Back to inbox"),
    (".email-reply", "button", "Reply"),
    (".email-forward", "button", "Forward"),
    ("#send-reply", "button", "Send"),
    ("#close-reply", "button", "Cancel"),
    ("#send-forward", "button", "Send"),
    ("#close-forward", "button", "Cancel"),
)
_SOCIAL = (
    (".controls span.reply", "button", "Reply"),
    (".controls span.retweet", "button", "Retweet"),
    (".controls span.like", "button", "Like"),
    (".controls span.share", "button", "Share"),
    (".controls span.more", "button", "More"),
)
ROLE_HINTS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "click-link": _LINKS,
    "click-tab-2": _LINKS,
    "click-tab-2-easy": _LINKS,
    "click-tab-2-medium": _LINKS,
    "click-tab-2-hard": _LINKS,
    "click-collapsible-2": _LINKS,
    "click-collapsible-2-nodelay": _LINKS,
    # jQuery UI takes the paragraph holding the Submit button for an accordion header (role=tab)
    "click-collapsible": (("#area > p.ui-accordion-header", "presentation", ""),),
    "click-collapsible-nodelay": (("#area > p.ui-accordion-header", "presentation", ""),),
    "social-media": _SOCIAL,
    "social-media-all": _SOCIAL,
    "social-media-some": _SOCIAL,
    **dict.fromkeys(_INBOXES, _EMAIL),
}
#: keys offered as press(...) actions on pages with text fields
TEXT_KEYS = ("Enter", "Tab", "Backspace")
BACKDROPS = {"train": ("#555555", "#4a4a4a", "#666666"), "heldout": ("#2f3b52", "#5a3d3d")}
VIEWPORT = (400, 400)
_MIME = {".js": "text/javascript", ".css": "text/css", ".html": "text/html; charset=utf-8", ".json": "application/json"}


# --------------------------------------------------------------------------- the wheel, as data


@functools.cache
def html_dir() -> Path | None:
    """The wheel's ``html/`` folder, found without importing the package (None when not installed)."""
    try:
        spec = importlib.util.find_spec("miniwob")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    root = Path(next(iter(spec.submodule_search_locations))) / "html"
    return root if (root / "miniwob").is_dir() and (root / "core" / "core.js").is_file() else None


@functools.cache
def task_names() -> tuple[str, ...]:
    """Every registrable MiniWoB task (the pages of ``html/miniwob/`` minus :data:`EXCLUDED`)."""
    root = html_dir()
    if root is None:
        return ()
    return tuple(sorted(p.stem for p in (root / "miniwob").glob("*.html") if p.stem not in EXCLUDED))


@functools.cache
def _file(path: str) -> tuple[str, bytes] | None:
    """A wheel file by its URL path (``/core/core.js``): (content type, bytes), cached; None outside the wheel."""
    root = html_dir()
    clean = posixpath.normpath("/" + path.lstrip("/"))
    if root is None or not clean.startswith(("/miniwob/", "/core/", "/common/")):
        return None
    f = root / clean.lstrip("/")
    if not f.is_file():
        return None
    ext = f.suffix.lower()
    ctype = _MIME.get(ext) or mimetypes.guess_type(f.name)[0] or "application/octet-stream"
    return ctype, f.read_bytes()


_SCRIPT = re.compile(r"""<script\b[^>]*?\bsrc\s*=\s*["']([^"']+)["'][^>]*>\s*</script>""", re.IGNORECASE)
_LINK = re.compile(r"""<link\b[^>]*?\brel\s*=\s*["']?stylesheet["']?[^>]*>""", re.IGNORECASE)
_HREF = re.compile(r"""\bhref\s*=\s*["']([^"']+)["']""", re.IGNORECASE)
_CSS_URL = re.compile(r"""url\(\s*(["']?)([^"')]+)\1\s*\)""")


def _local(base: str, ref: str) -> str | None:
    """The absolute path of a relative reference from page ``base`` (None for other hosts, data:, ...)."""
    if re.match(r"^[a-z][a-z0-9+.-]*:|^//", ref, re.IGNORECASE):
        return None
    return posixpath.normpath(posixpath.join(posixpath.dirname(base), ref.split("?")[0].split("#")[0]))


def _absolute_css(css: str, css_path: str) -> str:
    def fix(m: re.Match[str]) -> str:
        where = _local(css_path, m.group(2))
        return f"url({m.group(1)}{where}{m.group(1)})" if where else m.group(0)

    return _CSS_URL.sub(fix, css)


@functools.cache
def page_html(name: str) -> str:
    """The task's page with its local scripts and style sheets inlined (cached per task)."""
    base = f"/miniwob/{name}.html"
    found = _file(base)
    if found is None:
        raise FileNotFoundError(f"MiniWoB task page {base} is not in the miniwob wheel")
    text = found[1].decode("utf-8")

    def script(m: re.Match[str]) -> str:
        where = _local(base, m.group(1))
        body = _file(where) if where else None
        if body is None:
            return m.group(0)
        js = body[1].decode("utf-8")
        if re.search(r"</script|<!--", js, re.IGNORECASE):
            return m.group(0)  # cannot sit inside a <script> element safely: leave it a request
        return f"<script>/* {where} */\n{js}\n</script>"

    def link(m: re.Match[str]) -> str:
        href = _HREF.search(m.group(0))
        where = _local(base, href.group(1)) if href else None
        body = _file(where) if where else None
        if body is None:
            return m.group(0)
        css = _absolute_css(body[1].decode("utf-8"), where)
        return f"<style>/* {where} */\n{css}\n</style>"

    # Images the page's own CSS swaps in (icons, :hover states) are loaded up front: an icon that
    # changes to a not-yet-loaded picture collapses under the pointer and swallows the click.
    images = sorted(
        {
            w
            for _, ref in _CSS_URL.findall(text)
            if (w := _local(base, ref)) and re.search(r"\.(png|gif|jpe?g|svg)$", w, re.IGNORECASE) and _file(w)
        }
    )
    preload = "".join(f'<img src="{w}" alt="">' for w in images)
    text = _LINK.sub(link, _SCRIPT.sub(script, text))
    if preload:
        end = text.lower().rfind("</body>")
        block = f'<div hidden id="mv-preload">{preload}</div>'
        text = text[:end] + block + text[end:] if end >= 0 else text + block
    return text


# --------------------------------------------------------------------------- the task


@dataclasses.dataclass(frozen=True)
class Params:
    zoom: float = 1.0
    backdrop: str = "#555555"
    data_mode: str = "train"
    viewport_width: int = VIEWPORT[0]
    viewport_height: int = VIEWPORT[1]


def _space(name: str) -> ParamSpace:
    params: dict[str, Param] = {
        "backdrop": Param(Choice(BACKDROPS["train"]), Choice(BACKDROPS["heldout"]), "page colour around the task area"),
    }
    if name not in POINTER_TASKS:
        params["zoom"] = Param(Uniform(0.9, 1.1), Uniform(1.25, 1.4), "page zoom (CSS zoom of the whole page)")
    if name in TRANSFER_TASKS:
        params["data_mode"] = Param(Choice(("train",)), Choice(("test",)), "MiniWoB's own train/test instance split")
    return ParamSpace(Params, **params)


_STATE_JS = """
Object.defineProperty(window, '__mvState', {configurable: true, get() {
  if (typeof WOB_DONE_GLOBAL === 'undefined') return null;
  let reason = (typeof WOB_REWARD_REASON === 'undefined' || WOB_REWARD_REASON === null) ? null : WOB_REWARD_REASON;
  try { reason = JSON.parse(JSON.stringify(reason)); } catch (e) { reason = String(reason); }
  return {done: !!WOB_DONE_GLOBAL, reward: Number(WOB_REWARD_GLOBAL) || 0,
          raw_reward: Number(WOB_RAW_REWARD_GLOBAL) || 0, reason: reason === undefined ? null : reason};
}});
// A text field whose page blurs it from its own focus handler (focus-text) still took the focus:
// typing into it is not an error. (Wraps the runtime's observer; see the module docstring.)
if (window.__mv && !window.__mv.wobWrapped) {
  const focusForTyping = window.__mv.focusForTyping;
  window.__mv.focusForTyping = (id) => {
    const el = window.__mv.element(id);
    let got = false;
    const seen = () => { got = true; };
    if (el) el.addEventListener('focus', seen, true);
    const r = focusForTyping(id);
    if (el) el.removeEventListener('focus', seen, true);
    return r === 'unfocusable' && got ? 'ok' : r;
  };
  // MiniWoB keeps lists in small scrolling boxes (inbox, feeds, scroll lists): an element scrolled out of
  // its box is not on screen, so it is not listed; a box with more to show offers scroll(up/down).
  const observe = window.__mv.observe;
  const clipped = (el) => {
    const r = el.getBoundingClientRect();
    let l = r.left, t = r.top, rt = r.right, b = r.bottom;
    for (let a = el.parentElement; a && a !== document.body && a !== document.documentElement; a = a.parentElement) {
      const cs = getComputedStyle(a);
      if (cs.overflowX === 'visible' && cs.overflowY === 'visible') continue;
      const ar = a.getBoundingClientRect();
      if (cs.overflowX !== 'visible') { l = Math.max(l, ar.left); rt = Math.min(rt, ar.right); }
      if (cs.overflowY !== 'visible') { t = Math.max(t, ar.top); b = Math.min(b, ar.bottom); }
      if (rt - l < 1 || b - t < 1) return true;
    }
    return false;
  };
  // An element hidden behind another one (a date picker over the Submit button, a dialog's backdrop)
  // is not on screen either: listed only when some point of it (the points a click tries) shows it.
  // An element that only its own ancestors show through (pointer-events: none) is listed but not clickable.
  const hitTest = (el) => {
    const r = el.getBoundingClientRect();
    let through = false;
    const at = (x, y) => {
      const h = document.elementFromPoint(x, y);
      if (h && (h === el || el.contains(h) || (el.labels && [...el.labels].includes(h)))) return 'self';
      if (!h || h.contains(el)) through = true;
      return null;
    };
    if (at(r.left + r.width / 2, r.top + r.height / 2)) return 'self';
    for (let i = 1; i < 8; i++) for (let j = 1; j < 8; j++) {
      const x = r.left + (r.width * i) / 8, y = r.top + (r.height * j) / 8;
      if (x >= 0 && y >= 0 && x < innerWidth && y < innerHeight && at(x, y)) return 'self';
    }
    return through ? 'through' : 'covered';
  };
  window.__mv.observe = (opts) => {
    const out = observe(opts);
    out.elements = out.elements.filter((d) => {
      const el = window.__mv.element(d.id);
      if (!el) return true;
      if (clipped(el)) return false;
      const hit = hitTest(el);
      if (hit === 'through') d.clickable = false;
      return hit !== 'covered';
    });
    for (const d of out.elements) {  // a disabled or read-only field cannot be typed into (sign-agreement, choose-date)
      const el = window.__mv.element(d.id);
      if (el && (el.disabled || el.readOnly)) d.typeable = false;
    }
    for (const el of document.querySelectorAll('#wrap *')) {
      if (out.scrollUp && out.scrollDown) break;
      if (el.scrollHeight <= el.clientHeight + 1) continue;
      const oy = getComputedStyle(el).overflowY;
      if ((oy !== 'auto' && oy !== 'scroll') || el.getClientRects().length === 0) continue;
      if (el.scrollTop > 0) out.scrollUp = true;
      if (el.scrollTop + el.clientHeight < el.scrollHeight - 1) out.scrollDown = true;
    }
    return out;
  };
  window.__mv.wobWrapped = true;
}
"""

_START_JS = """
({seed, mode}) => {
  if (typeof core === 'undefined' || typeof genProblem === 'undefined') return {error: 'the MiniWoB page did not load'};
  if (core.cover_div == null) core.startEpisode();
  Math.seedrandom(seed);
  core.setDataMode(mode);
  core.startEpisodeReal();
  // no wall-clock timeout: endEpisode still needs a non-null timer id, so leave a dead one
  if (core.EP_TIMER !== null) clearTimeout(core.EP_TIMER);
  core.EP_TIMER = -1;
  core.clearTimer();
  return {ok: true};
}
"""

_ROLES_JS = """
(hints) => {
  const apply = () => {
    for (const [selector, role, label] of hints)
      for (const el of document.querySelectorAll(selector)) {
        if (el.getAttribute('role') !== role) el.setAttribute('role', role);
        if (label && el.getAttribute('aria-label') !== label) el.setAttribute('aria-label', label);
      }
  };
  apply();
  if (!window.__wobRoles) {
    window.__wobRoles = new MutationObserver(apply);
    window.__wobRoles.observe(document.body, {childList: true, subtree: true});
  }
}
"""

_READ_JS = """
() => {
  if (!WOB_TASK_READY) return null;
  const u = core.getUtterance();
  return (u && typeof u === 'object') ? {utterance: String(u.utterance || ''), fields: u.fields || {}} : {utterance: String(u || ''), fields: {}};
}
"""


class MiniWoBTask(WebTask):
    """Base of the MiniWoB++ tasks; :func:`task_class` makes one subclass per page."""

    task_name: ClassVar[str] = ""
    PARAM_SPACE: ClassVar[ParamSpace] = _space("")
    oracle_success_rate: ClassVar[float] = 0.0
    step_ms: ClassVar[int] = 100
    click_text: ClassVar[bool] = True
    keys: ClassVar[tuple[str, ...]] = ()
    max_steps: ClassVar[int] = DEFAULT_STEPS
    init_script: ClassVar[str] = _STATE_JS
    blank_path: ClassVar[str] = "/miniwob/__blank__"
    start_path: ClassVar[str] = "/miniwob/.html"  # the page of task_name: task_class sets it per task

    def setup(self, rng: np.random.Generator, params: Params) -> TaskPage:
        zoom, backdrop = round(float(params.zoom), 4), params.backdrop
        style = (
            f"<style>/* multiverse */ html {{ zoom: {zoom}; background: {backdrop}; }} body {{ background: {backdrop}; }}"
            " #reward-display, #click-canvas, #attention-canvas { display: none !important; }</style>"
        )
        html = page_html(self.task_name)
        head = re.search(r"</head\s*>", html, re.IGNORECASE)
        html = html[: head.start()] + style + html[head.start() :] if head else style + html
        instance = {"task": self.task_name, "data_mode": params.data_mode, "utterance": "", "fields": {}}
        return TaskPage(html, f"(MiniWoB {self.task_name}: starting)", instance)

    async def start(self, page: Any, seed: int, task_page: TaskPage) -> None:
        """Seed MiniWoB's generator, start the episode with its timer off, read the utterance."""
        started = await page.evaluate(_START_JS, {"seed": int(seed), "mode": task_page.instance["data_mode"]})
        if "error" in started:
            raise RuntimeError(f"miniwob/{self.task_name}: {started['error']}")
        hints = ROLE_HINTS.get(self.task_name)
        if hints:
            await page.evaluate(_ROLES_JS, [list(h) for h in hints])
        for _ in range(50):  # WOB_TASK_READY is set synchronously by every page here; bounded anyway
            read = await page.evaluate(_READ_JS)
            if read is not None:
                break
        else:
            raise RuntimeError(f"miniwob/{self.task_name}: WOB_TASK_READY never became true")
        task_page.instance["utterance"] = read["utterance"]
        task_page.instance["fields"] = {str(k): str(v) for k, v in dict(read["fields"]).items()}
        task_page.mission = read["utterance"] or f"Complete the MiniWoB task {self.task_name}."

    def serve(self, path: str) -> tuple[str, bytes] | None:
        return _file(path)

    def validate(self, instance: dict[str, Any], state: Any) -> Outcome:
        if not isinstance(state, dict) or not state.get("done"):
            return Outcome()
        raw = float(state.get("raw_reward") or 0.0)
        return Outcome(reward=float(state.get("reward") or 0.0), success=raw > 0, done=True)

    def oracle(self, instance: dict[str, Any], obs: Observation) -> str:
        return "noop()"


def _camel(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[^A-Za-z0-9]+", name) if part)


@functools.cache
def task_class(name: str) -> type[MiniWoBTask]:
    """The task class of one MiniWoB page (made once; also reachable as a module attribute)."""
    from multiverse.envs.web import miniwob_oracles

    if name not in task_names():
        raise KeyError(f"no MiniWoB task {name!r} in the miniwob wheel (or it is excluded)")
    raw = (_file(f"/miniwob/{name}.html") or ("", b""))[1].decode("utf-8", "replace")
    typing_page = bool(re.search(r"<input|<textarea|contenteditable|['\"]input['\"]", raw, re.IGNORECASE))
    found = miniwob_oracles.ORACLES.get(name)
    attrs: dict[str, Any] = {
        "__doc__": f"MiniWoB++ task {name} (from the miniwob wheel, MIT; see :mod:`multiverse.envs.web.miniwob`).",
        "__module__": __name__,
        "task_name": name,
        "start_path": f"/miniwob/{name}.html",
        "PARAM_SPACE": _space(name),
        "keys": TEXT_KEYS if typing_page else (),
        "max_steps": LONG_STEPS if name in LONG_TASKS else DEFAULT_STEPS,
        "oracle_success_rate": found[1] if found else 0.0,
    }
    if found:
        attrs["oracle"] = staticmethod(lambda instance, obs, _fn=found[0]: _fn(instance, obs))
    cls = type(_camel(name), (MiniWoBTask,), attrs)
    cls.__qualname__ = cls.__name__
    return cls


def __getattr__(attr: str) -> Any:
    """``multiverse.envs.web.miniwob:ClickTest2`` -> the task class of ``click-test-2`` (for the registry and pickling)."""
    for name in task_names():
        if _camel(name) == attr:
            return task_class(name)
    raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")


def register_miniwob() -> int:
    """Register ``miniwob/<task>-v1`` for every task; returns how many (0 when the wheel is not installed)."""
    from multiverse.envs.registry import register

    names = task_names()
    for name in names:
        register(
            f"miniwob/{name}-v1",
            "multiverse.envs.web.env:WebEnv",
            kind="web",
            max_episode_steps=LONG_STEPS if name in LONG_TASKS else DEFAULT_STEPS,
            tags=["web", "miniwob"],
            kwargs={"task": f"{__name__}:{_camel(name)}"},
        )
    return len(names)
