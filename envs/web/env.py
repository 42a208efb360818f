"""WebEnv: the one browser env that runs any :class:`~multiverse.envs.web.task.WebTask`.

Each episode: a fresh ``BrowserContext`` in the process's shared Chromium, the
page's clock installed at a fixed instant (``Date``, timers and animation frames
are virtual), the task's page loaded from the reserved origin. Each step: the
action is executed, the page is given time to settle (a navigation it started
is waited for; no fixed sleeps), the clock advances by the task's ``step_ms``,
and the page is observed once. The text observation is the mission, the page
title and one line per visible element (``[12] button "Submit"``); the image
(``pixels=True``) is a screenshot scaled to ``image_size``.

If Chromium crashes or hangs, the episode ends ``truncated=True`` with
``info["infra_error"]``; the next ``reset`` relaunches it. No browser error
escapes ``step`` or ``reset``.
"""

from __future__ import annotations

import asyncio
import datetime
import importlib
import inspect
import io
import time
import weakref
from typing import Any, ClassVar

import numpy as np

from multiverse.envs.core import MultiverseEnv, PrintableText, quote
from multiverse.envs.web.actions import TEXT_TEMPLATE, Action, format_action, parse
from multiverse.envs.web.browser import ORIGIN, BrowserCrashed, BrowserHost, timeout_scale
from multiverse.envs.web.task import Element, Observation, Outcome, TaskPage, WebTask

__all__ = ["WebEnv", "load_task"]

#: every page's clock starts here, so Date.now() is the same in every episode
EPOCH = datetime.datetime(2024, 1, 1, 9, 0, 0, tzinfo=datetime.timezone.utc)
MAX_OPTIONS_LISTED = 25
#: prepared pages whose renderer has died (Playwright keeps a crashed page open; a spare must not be used then)
_CRASHED: weakref.WeakSet[Any] = weakref.WeakSet()


def load_task(task: str | type[WebTask] | WebTask) -> WebTask:
    """A task instance from an instance, a class or ``"module:Class"``."""
    if isinstance(task, WebTask):
        return task
    if isinstance(task, type) and issubclass(task, WebTask):
        return task()
    if isinstance(task, str) and ":" in task:
        module, _, name = task.partition(":")
        obj = getattr(importlib.import_module(module), name)
        return obj() if isinstance(obj, type) else obj
    raise ValueError(f"task must be a WebTask, a WebTask class or 'module:Class', got {task!r}")


class WebEnv(MultiverseEnv):
    """A browser task as a Gymnasium env (see the module docstring).

    Arguments: ``task`` (``"module:Class"``, a class or an instance), ``pixels``,
    ``image_size`` (H, W), ``render_mode`` (``"rgb_array"``: a full-size
    screenshot), ``step_timeout``/``reset_timeout`` (seconds before the browser
    counts as hung; default :attr:`STEP_TIMEOUT` and :attr:`RESET_TIMEOUT` times
    ``MULTIVERSE_TIMEOUT_SCALE``, see :func:`~multiverse.envs.web.browser.timeout_scale`).
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 4}
    text_max_length = 12_000
    default_max_episode_steps = 30
    #: seconds a step / a reset may take before the browser counts as hung (times MULTIVERSE_TIMEOUT_SCALE)
    STEP_TIMEOUT = 20.0
    RESET_TIMEOUT = 60.0

    def __init__(
        self,
        task: str | type[WebTask] | WebTask,
        *,
        step_timeout: float | None = None,
        reset_timeout: float | None = None,
        **kwargs: Any,
    ) -> None:
        self.task = load_task(task)
        self.PARAM_SPACE = self.task.PARAM_SPACE  # the env's space is its task's
        self.oracle_success_rate = self.task.oracle_success_rate
        super().__init__(**kwargs)
        self.action_space = PrintableText(300)
        self._timeout_scale = timeout_scale()
        self.step_timeout = self.STEP_TIMEOUT * self._timeout_scale if step_timeout is None else float(step_timeout)
        self.reset_timeout = self.RESET_TIMEOUT * self._timeout_scale if reset_timeout is None else float(reset_timeout)
        self._host: BrowserHost | None = None
        self._ctx: Any = None
        self._page: Any = None
        self._spare: Any = None  # asyncio future of the next episode's (context, page)
        self._task_page: TaskPage | None = None
        self.observation: Observation | None = None
        self._legal: list[str] = []
        self._frame: np.ndarray | None = None
        self._over = False
        self._ended_with = (False, False)
        self._outcome = Outcome()
        self._infra_error: str | None = None

    @classmethod
    def randomization_space(cls, task: Any = None, **kwargs: Any):
        return load_task(task).PARAM_SPACE

    @classmethod
    def declared_oracle_success_rate(cls, task: Any = None, **kwargs: Any) -> float:
        return load_task(task).oracle_success_rate

    @classmethod
    def spec_doc(cls, task: Any = None, **kwargs: Any) -> str:
        """The task's own docstring: every browser task is this class, and its spec is the task's."""
        task_cls = type(load_task(task))
        return inspect.cleandoc(task_cls.__doc__ or f"({task_cls.__qualname__} has no docstring; a task's docstring is its spec)")

    # -- the contract's pieces

    @property
    def mission(self) -> str:
        return self._task_page.mission if self._task_page else ""

    def _success(self) -> bool:
        return bool(self._outcome.success)

    def legal_actions(self) -> list[str]:
        return list(self._legal)

    def oracle_action(self) -> str:
        if self._task_page is None or self.observation is None:
            return "noop()"
        return self.task.oracle(self._task_page.instance, self.observation)

    def _text(self) -> str:
        if self.observation is None:
            return f"[no page: {self._infra_error or 'not started'}]"
        obs = self.observation
        lines = [f"Page: {obs.title} ({obs.url})" if obs.title else f"Page: {obs.url}"]
        if obs.scroll_up:
            lines.append("(more above: scroll(up))")
        lines += [e.line() for e in obs.elements]
        if obs.truncated:
            lines.append("(the page has more elements than listed)")
        if obs.scroll_down:
            lines.append("(more below: scroll(down))")
        if self._infra_error:
            lines.append(f"[browser error: {self._infra_error}]")
        return "\n".join(lines)

    def _image(self) -> np.ndarray:
        if self._frame is None:
            return np.zeros((*self.image_size, 3), np.uint8)
        return self._frame

    # -- gymnasium API

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        self._resolve(seed, options)
        self._over, self._outcome, self._infra_error = False, Outcome(), None
        self._task_page = self.task.setup(self.np_random, self.params)
        page_seed = int(self.np_random.integers(2**31 - 1))
        self._host = self._host or BrowserHost.get()
        for attempt in (1, 2):  # a browser that died between episodes is relaunched once, quietly
            try:
                raw, shot = self._host.run(self._areset(page_seed), timeout=self.reset_timeout)
                self._set_observation(raw, shot)
                self._infra_error = None  # a failed first attempt that the relaunch fixed is no error
                break
            except BrowserCrashed as exc:
                self._drop_context()
                self._infra_error = str(exc)
                self.observation, self._legal = None, []
                if attempt == 2:
                    self._over = True  # the first step reports it and ends the episode
            except Exception as exc:  # a task page that fails to load is an infra error too
                self._drop_context()
                self._infra_error = f"the task page failed to load: {type(exc).__name__}: {str(exc).splitlines()[0]}"
                self.observation, self._legal = None, []
                self._over = True
                break
        info = self._info()
        if self._infra_error:
            info["infra_error"] = self._infra_error
        return self._observe(), info

    def step(self, action: Any):
        if self._over:
            if self._infra_error and self._ended_with == (False, False):
                self._ended_with = (False, True)
                info = self._info() | {"infra_error": self._infra_error, "success": False}
                return self._observe(), 0.0, False, True, info
            info = self._info() | {"action_error": "the episode is over; call reset() to start a new one"}
            info["success"] = self._success()
            return self._observe(), 0.0, *self._ended_with, info
        parsed = parse(action)
        error = parsed if isinstance(parsed, str) else self._check_target(parsed)
        infra = None
        try:
            raw, shot, exec_error = self._host.run(
                self._astep(None if error else parsed), timeout=self.step_timeout  # type: ignore[union-attr]
            )
            self._set_observation(raw, shot)
            error = error or exec_error
        except BrowserCrashed as exc:
            infra = str(exc)
        except Exception as exc:  # any other failure of the page machinery ends the episode, never raises
            infra = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            if "Target crashed" in infra:
                infra = f"the task page crashed ({infra}); the next reset opens a new one"
        self.t += 1
        if infra:
            self._drop_context()
            self._infra_error = infra
            self._outcome = Outcome(success=False)
            terminated, truncated, reward = False, True, 0.0
        else:
            self._outcome = self.task.validate(self._task_page.instance, self.observation.state)  # type: ignore[union-attr]
            reward, terminated = float(self._outcome.reward), bool(self._outcome.done)
            truncated = not terminated and self.t >= self.step_limit
        info = self._info()
        if error:
            info["action_error"] = error
        if infra:
            info["infra_error"] = infra
        if terminated or truncated:
            self._over = True
            self._ended_with = (terminated, truncated)
            info["success"] = self._success()
        return self._observe(), reward, terminated, truncated, info

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array" or self._page is None:
            return None
        try:
            png = self._host.run(self._page.screenshot(type="png"), timeout=self.step_timeout)  # type: ignore[union-attr]
        except Exception:
            return None
        return _decode_png(png, None)

    def close(self) -> None:
        if self._host is not None and (self._ctx is not None or self._spare is not None):
            try:
                self._host.run(self._aclose(), timeout=10 * self._timeout_scale)
            except Exception:
                pass
        self._drop_context(spare=True)

    async def _aclose(self) -> None:
        spare, self._spare = self._spare, None
        if spare is not None:  # never used: the next env of this kind in this process starts with it
            self._host.give_spare(self._spare_key(), spare)  # type: ignore[union-attr]
        ctx, self._ctx = self._ctx, None
        if ctx is not None:
            await _close_quietly(ctx)

    # -- internals

    def _check_target(self, action: Action) -> str | None:
        if action.target is None:  # press, scroll, noop: nothing on the page to find first
            return None
        el = next((e for e in self.observation.elements if e.id == action.target), None) if self.observation else None
        if el is None:
            ids = [e.id for e in self.observation.elements] if self.observation else []
            return f"no element [{action.target}] is visible now (visible ids: {ids[:40]}{' ...' if len(ids) > 40 else ''})"
        if action.kind == "type" and not el.typeable:
            return f"[{el.id}] is a {el.role}, not a text field; type() needs a textbox"
        if action.kind == "select" and el.role != "combobox":
            return f"[{el.id}] is a {el.role}, not a dropdown; select() needs a combobox"
        if action.kind == "select" and action.text not in (el.options or ()):
            low = {o.lower(): o for o in el.options or ()}
            if (action.text or "").strip().lower() not in low:
                return f"dropdown [{el.id}] has no option {quote(action.text)}; options: {list(el.options or ())}"
        return None

    def _drop_context(self, *, spare: bool = False) -> None:
        """Let go of the episode's context (a crashed page's, a hung browser's), and with ``spare`` of the prepared
        one, closing them in the background: dropped open, each kept a context, a page and processes in Chromium.
        A kept spare is checked when the next reset takes it (``_take_spare``)."""
        ctx, self._ctx, self._page = self._ctx, None, None
        left, self._spare = (self._spare, None) if spare else (None, self._spare)
        if self._host is not None:
            self._host.close_later(ctx, left)

    async def _serve(self, path: str) -> tuple[int, str, bytes] | None:
        tp = self._task_page
        clean = path.split("?", 1)[0].split("#", 1)[0]
        if clean == getattr(self.task, "blank_path", "/__blank__"):
            return 200, "text/html; charset=utf-8", b"<!doctype html><html><head><title></title></head><body></body></html>"
        if tp is not None:
            if clean in ("/", "/task"):
                return 200, "text/html; charset=utf-8", tp.html.encode()
            if clean in tp.files:
                ctype, body = tp.files[clean]
                return 200, ctype, body
        found = self.task.serve(clean)
        if found is not None:
            return 200, found[0], found[1]
        return None

    def _spare_key(self) -> tuple[str, str]:
        """What a prepared context depends on: envs whose tasks agree on it can use each other's spares."""
        return getattr(self.task, "init_script", ""), getattr(self.task, "blank_path", "/__blank__")

    async def _aprepare(self) -> tuple[Any, Any, _Server]:
        """A fresh context and page, clock paused, parked on a blank page of the task's origin.

        Made in the background while the previous episode runs: a new context needs a new
        renderer process, by far the slowest part of a reset. Nothing in it belongs to this env
        but the request handler's owner (``_Server``), so a spare this env leaves unused at
        ``close`` serves the next env of the same kind (same init script and blank page) instead.
        """
        server = _Server(self)
        ctx = await self._host.new_context(viewport=(1000, 700), serve=server)  # type: ignore[union-attr]
        try:
            await ctx.clock.install(time=EPOCH)
            init = getattr(self.task, "init_script", "")
            if init:
                await ctx.add_init_script(init)
            page = await ctx.new_page()
            page.once("crash", _CRASHED.add)
            await page.goto(ORIGIN + getattr(self.task, "blank_path", "/__blank__"), wait_until="load")
            # Pause the page clock at a fixed instant: from here on time moves only by run_for().
            await ctx.clock.pause_at(EPOCH + datetime.timedelta(minutes=1))
        except BaseException:  # a renderer killed while the spare is made: nobody else holds the context to close it
            self._host.close_later(ctx)  # type: ignore[union-attr]
            raise
        return ctx, page, server

    async def _take_spare(self) -> tuple[Any, Any]:
        """This env's spare, else one a closed env of the same kind left (``BrowserHost.take_spare``), else a new one."""
        own, self._spare = self._spare, None
        for whose in ("own", "left"):
            spare = own if whose == "own" else self._host.take_spare(self._spare_key())  # type: ignore[union-attr]
            if spare is None:
                continue
            try:
                ctx, page, server = await spare
                browser = self._host._browser  # type: ignore[union-attr]
                if not page.is_closed() and page not in _CRASHED and browser is not None and browser.is_connected():
                    server.env = self
                    return ctx, page
                await _close_quietly(ctx)
            except Exception:
                pass  # a spare made by a browser that has died since: make a new one
        ctx, page, _ = await self._aprepare()
        return ctx, page

    async def _areset(self, page_seed: int) -> tuple[dict[str, Any], bytes | None]:
        old, self._ctx = self._ctx, None
        if old is not None:
            asyncio.ensure_future(_close_quietly(old))
        self._ctx, self._page = await self._take_spare()
        p = self.params
        await self._page.set_viewport_size(
            {"width": getattr(p, "viewport_width", 1000), "height": getattr(p, "viewport_height", 700)}
        )
        await self._page.set_content(self._task_page.html, wait_until="load")  # type: ignore[union-attr]
        await self._page.evaluate(  # set_content erased observe.js's window listeners: add them again
            "p => { history.replaceState(null, '', p); window.__mv.listen(); }", getattr(self.task, "start_path", "/task")
        )
        start = getattr(self.task, "start", None)
        if start is not None:
            await start(self._page, page_seed, self._task_page)
        observed = await self._aobserve_all()
        # The next episode's context is made only now, while the agent thinks and steps: made during
        # this reset, its renderer start competed with this page for the CPU (measured: reset median
        # 499 -> 281 ms on one busy core with 0.3 s think time).
        self._start_spare()
        return observed

    def _start_spare(self) -> None:
        self._spare = asyncio.ensure_future(self._aprepare())
        self._spare.add_done_callback(_retrieve)  # a spare that fails is replaced at the next reset

    async def _astep(self, action: Action | None) -> tuple[dict[str, Any], bytes | None, str | None]:
        await self._asettle()  # a navigation the previous step started has finished by now
        error = None
        if action is not None:
            try:
                error = await self._aexecute(self._page, action)
            except Exception as exc:
                if not _navigating(exc):
                    raise
                error = "the page changed while acting (a navigation); look at the new page and act again"
        await self._asettle()
        await self._page.clock.run_for(self.task.step_ms)
        raw, shot = await self._aobserve_all()
        return raw, shot, error

    async def _aexecute(self, page: Any, a: Action) -> str | None:
        if a.kind == "click":
            pt = await page.evaluate("id => window.__mv.clickPoint(id)", a.target)
            if "error" in pt:
                return f"element [{a.target}] is {pt['error']} now"
            await page.mouse.click(pt["x"], pt["y"])
            if pt.get("covered"):
                return f"element [{a.target}] is covered by something on top of it; the click landed there instead"
            return None
        if a.kind == "type":
            r = await page.evaluate("id => window.__mv.focusForTyping(id)", a.target)
            if r != "ok":
                return f"cannot type into [{a.target}]: it is {r}"
            if a.text:
                await page.keyboard.type(a.text)
            else:
                await page.keyboard.press("Backspace")
            return None
        if a.kind == "select":
            r = await page.evaluate("([id, t]) => window.__mv.selectOption(id, t)", [a.target, a.text])
            return None if r == "ok" else f"cannot select {quote(a.text)} in [{a.target}]: {r}"
        if a.kind == "press":
            await page.keyboard.press(a.text)
            return None
        if a.kind == "scroll":
            r = await page.evaluate("d => window.__mv.scroll(d)", a.text)
            return None if r in ("ok", "nothing to scroll", "at the end") else r
        return None

    async def _asettle(self) -> None:
        """Wait until a navigation the page started has loaded its new document (bounded; no fixed sleep).

        A page marked as leaving whose navigation never comes (a 204 answer, a download, a
        navigation to a blocked address) counts as settled after 3 s (times ``MULTIVERSE_TIMEOUT_SCALE``).
        """
        page = self._page
        start = time.monotonic()
        while True:
            try:
                mv, ready, leaving = await page.evaluate(
                    "() => [!!window.__mv, document.readyState === 'complete', !!window.__mvLeaving]"
                )
            except Exception as exc:
                if not _navigating(exc):
                    raise
                mv = ready = leaving = False
            if mv and ready and not leaving:
                return
            waited = time.monotonic() - start
            if mv and ready and leaving and waited > 3 * self._timeout_scale:
                await page.evaluate("() => { window.__mvLeaving = false; }")
                return
            if waited > 15 * self._timeout_scale:
                raise BrowserCrashed(f"the page did not finish loading within {15 * self._timeout_scale:.0f} s")
            try:
                await page.wait_for_load_state("load", timeout=1_000)
            except Exception as exc:
                if not (_navigating(exc) or "Timeout" in type(exc).__name__):
                    raise
            await asyncio.sleep(0.005)  # only while a navigation is under way

    async def _aobserve_all(self) -> tuple[dict[str, Any], bytes | None]:
        for attempt in range(3):
            try:
                raw = await self._page.evaluate("o => window.__mv.observe(o)", {"clickText": self.task.click_text})
                break
            except Exception as exc:  # the page navigated as the clock ran: observe the new document
                if attempt == 2 or not _navigating(exc):
                    raise
                await self._asettle()
        shot = await self._page.screenshot(type="png") if self.pixels else None
        return raw, shot

    def _set_observation(self, raw: dict[str, Any], shot: bytes | None) -> None:
        elements = [
            Element(
                id=int(d["id"]),
                role=d["role"],
                name=d["name"],
                value=d.get("value"),
                checked=d.get("checked"),
                options=tuple(d["options"]) if d.get("options") is not None else None,
                clickable=bool(d.get("clickable")),
                typeable=bool(d.get("typeable")),
                focused=bool(d.get("focused")),
                tag=d.get("tag", ""),
                input_type=d.get("inputType"),
            )
            for d in raw["elements"]
        ]
        self.observation = Observation(
            elements=elements,
            url=raw["url"],
            title=raw["title"],
            scroll_up=bool(raw["scrollUp"]),
            scroll_down=bool(raw["scrollDown"]),
            state=raw.get("state"),
            truncated=bool(raw.get("truncated")),
        )
        self._legal = self._enumerate_actions(self.observation)
        self._frame = _decode_png(shot, self.image_size) if shot is not None else None

    def _enumerate_actions(self, obs: Observation) -> list[str]:
        out: list[str] = []
        for e in obs.elements:
            if e.typeable:
                out.append(f"type({e.id}, {TEXT_TEMPLATE})")
            if e.role == "combobox":
                out += [format_action(Action("select", e.id, o)) for o in (e.options or ())[:MAX_OPTIONS_LISTED]]
            elif e.clickable:
                out.append(f"click({e.id})")
        out += [format_action(Action("press", text=k)) for k in self.task.keys]
        if obs.scroll_up:
            out.append("scroll(up)")
        if obs.scroll_down:
            out.append("scroll(down)")
        return out


class _Server:
    """A context's request handler: answers for the env that uses the context now (a spare can change hands)."""

    def __init__(self, env: WebEnv) -> None:
        self.env: WebEnv | None = env

    async def __call__(self, path: str) -> tuple[int, str, bytes] | None:
        return await self.env._serve(path) if self.env is not None else None


def _navigating(exc: BaseException) -> bool:
    """Is this Playwright error the page moving to a new document under our feet?"""
    if "Timeout" in type(exc).__name__:  # a timed-out call is the browser being slow or hung, never a navigation
        return False
    text = str(exc)
    return any(s in text for s in ("Execution context was destroyed", "Cannot find context", "navigat", "frame was detached"))


def _retrieve(fut: Any) -> None:
    if not fut.cancelled():
        fut.exception()


async def _close_quietly(ctx: Any) -> None:
    try:
        await ctx.close()
    except Exception:
        pass


def _decode_png(png: bytes, size: tuple[int, int] | None) -> np.ndarray:
    """PNG bytes -> (H, W, 3) uint8, scaled (smoothly) to (height, width) when given."""
    from multiverse.envs.games import _render

    pygame = _render.pygame
    surf = pygame.image.load(io.BytesIO(png), "shot.png")
    if size is not None:
        surf = pygame.transform.smoothscale(surf, (size[1], size[0]))
    return _render.to_array(surf)
