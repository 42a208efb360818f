"""The page driver of one :class:`~multiverse.envs.web.env.WebEnv`: its contexts and pages in the process's Chromium.

The env holds the Gymnasium side (episodes, observations, legal actions); the driver does every
Playwright call, each on the browser thread through :meth:`BrowserHost.run` with the timeout the
env passes:

* :meth:`PageDriver.reset`: a fresh context (the prepared spare, see below) with the page's clock
  installed at :data:`EPOCH` and paused, the task's page loaded and the task's ``start`` hook run,
  then the page observed once;
* :meth:`PageDriver.step`: the action executed, the page given time to settle (a navigation it
  started is waited for; no fixed sleeps), the clock advanced by the task's ``step_ms``, the page
  observed once;
* the spare: the next episode's context is made in the background while an episode runs (a new
  context needs a new renderer process, by far the slowest part of a reset). A driver closed with
  its spare unused leaves it to the next env of the same kind in the process
  (:meth:`BrowserHost.give_spare`).

A page whose renderer died is marked (Playwright keeps a crashed page open) and never reused; a
context the driver lets go of is closed in the background (:meth:`PageDriver.drop`), so crashes
leak no context, page or process. Errors propagate to the env, which turns them into an
``infra_error``.
"""

from __future__ import annotations

import asyncio
import datetime
import time
import weakref
from typing import Any

from multiverse.envs.core import quote
from multiverse.envs.web.actions import Action
from multiverse.envs.web.browser import ORIGIN, BrowserCrashed, BrowserHost
from multiverse.envs.web.task import TaskPage, WebTask

__all__ = ["EPOCH", "PageDriver"]

#: every page's clock starts here, so Date.now() is the same in every episode
EPOCH = datetime.datetime(2024, 1, 1, 9, 0, 0, tzinfo=datetime.timezone.utc)
#: the size a context is made with; each reset sets the episode's viewport
CONTEXT_VIEWPORT = (1000, 700)
#: prepared pages whose renderer has died (Playwright keeps a crashed page open; a spare must not be used then)
_CRASHED: weakref.WeakSet[Any] = weakref.WeakSet()


class PageDriver:
    """One env's contexts and pages (see the module docstring).

    Read-only for others: ``host`` (the process's :class:`BrowserHost`, once a reset made it), ``context`` and
    ``page`` (the episode's, None between a dropped context and the next reset), ``spare`` (a future of the next
    episode's ``(context, page, server)``, or None) and ``task_page`` (the episode's page, which the context serves).
    """

    def __init__(self, task: WebTask, *, pixels: bool, timeout_scale: float) -> None:
        self.task = task
        self.pixels = pixels
        self.timeout_scale = timeout_scale
        self.host: BrowserHost | None = None
        self.context: Any = None
        self.page: Any = None
        self.spare: asyncio.Future[Any] | None = None
        self._spare_launch = 0  # the browser launch (BrowserHost.launches) the spare is made by
        self.task_page: TaskPage | None = None

    # -- what the env calls (any thread but the browser's)

    def reset(self, task_page: TaskPage, viewport: tuple[int, int], page_seed: int,
              timeout: float) -> tuple[dict[str, Any], bytes | None]:
        """Load ``task_page`` in a fresh context at ``viewport`` (width, height); the raw observation and a
        screenshot (PNG; None without pixels). Raises :class:`BrowserCrashed` for a dead or hung browser."""
        self.host = self.host or BrowserHost.get()
        self.task_page = task_page
        return self.host.run(self._areset(viewport, page_seed), timeout=timeout)

    def step(self, action: Action | None, timeout: float) -> tuple[dict[str, Any], bytes | None, str | None]:
        """Execute ``action`` (None: a no-op), let the page settle and its clock run one step; the raw observation,
        a screenshot and what went wrong executing the action (None: nothing)."""
        if self.host is None:
            raise BrowserCrashed("no page: the episode was not reset")
        return self.host.run(self._astep(action), timeout=timeout)

    def screenshot(self, timeout: float) -> bytes | None:
        """The episode's page as a full-size PNG, or None (no page now, or it failed)."""
        if self.host is None or self.page is None:
            return None
        try:
            return self.host.run(_steady_screenshot(self.page), timeout=timeout)
        except Exception:
            return None

    def drop(self, *, spare: bool = False) -> None:
        """Let go of the episode's context (a crashed page's, a hung browser's), and with ``spare`` of the prepared
        one, closing them in the background: dropped open, each kept a context, a page and processes in Chromium.
        A kept spare is checked when the next reset takes it (``_take_spare``)."""
        ctx, self.context, self.page = self.context, None, None
        left, self.spare = (self.spare, None) if spare else (None, self.spare)
        if self.host is not None:
            self.host.close_later(ctx, left)

    def close(self) -> None:
        """Close the episode's context and leave an unused spare to the next env of this kind; never raises."""
        if self.host is not None and (self.context is not None or self.spare is not None):
            try:
                self.host.run(self._aclose(), timeout=10 * self.timeout_scale)
            except Exception:
                pass
        self.drop(spare=True)

    async def serve(self, path: str) -> tuple[int, str, bytes] | None:
        """The answer to a request for ``path`` on the task origin: the blank page, the episode's page and files,
        the task's static files; None (a 404) for anything else."""
        tp = self.task_page
        clean = path.split("?", 1)[0].split("#", 1)[0]
        if clean == self.task.blank_path:
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

    # -- contexts and the spare (browser thread)

    async def _aclose(self) -> None:
        spare, self.spare = self.spare, None
        if spare is not None:  # never used: the next env of this kind in this process starts with it
            self.host.give_spare(self._spare_key(), spare, self._spare_launch)  # type: ignore[union-attr]
        ctx, self.context = self.context, None
        if ctx is not None:
            await _close_quietly(ctx)

    def _spare_key(self) -> tuple[str, str]:
        """What a prepared context depends on: drivers whose tasks agree on it can use each other's spares."""
        return self.task.init_script, self.task.blank_path

    async def _aprepare(self) -> tuple[Any, Any, _Server]:
        """A fresh context and page, clock paused, parked on a blank page of the task's origin.

        Nothing in it belongs to this driver but the request handler's owner (``_Server``), so a spare
        left unused at ``close`` serves the next env of the same kind (same init script and blank page).
        """
        server = _Server(self)
        ctx = await self.host.new_context(viewport=CONTEXT_VIEWPORT, serve=server)  # type: ignore[union-attr]
        try:
            await ctx.clock.install(time=EPOCH)
            if self.task.init_script:
                await ctx.add_init_script(self.task.init_script)
            page = await ctx.new_page()
            page.once("crash", _CRASHED.add)
            await page.goto(ORIGIN + self.task.blank_path, wait_until="load")
            # Pause the page clock at a fixed instant: from here on time moves only by run_for().
            await ctx.clock.pause_at(EPOCH + datetime.timedelta(minutes=1))
        except BaseException:  # a renderer killed while the spare is made: nobody else holds the context to close it
            self.host.close_later(ctx)  # type: ignore[union-attr]
            raise
        return ctx, page, server

    async def _take_spare(self) -> tuple[Any, Any]:
        """This driver's spare, else one a closed env of the same kind left (``BrowserHost.take_spare``), else a
        new one.

        A spare made by a browser that has died or been replaced since is never awaited, only closed in the
        background: a Playwright call (``new_page``) pending when its browser was killed may never return, and
        awaiting it held a reset for its whole timeout."""
        host = self.host
        own, self.spare = self.spare, None
        if own is not None and not host.made_by_current(self._spare_launch):  # type: ignore[union-attr]
            host.close_later(spare=own)  # type: ignore[union-attr]
            own = None
        for whose in ("own", "left"):
            spare = own if whose == "own" else host.take_spare(self._spare_key())  # type: ignore[union-attr]
            if spare is None:
                continue
            try:
                ctx, page, server = await spare
            except Exception:
                continue  # its set-up failed (a renderer killed meanwhile): make a new one
            if not page.is_closed() and page not in _CRASHED and host.is_connected():  # type: ignore[union-attr]
                server.driver = self
                return ctx, page
            host.close_later(ctx)  # type: ignore[union-attr]
        ctx, page, _ = await self._aprepare()
        return ctx, page

    def _start_spare(self) -> None:
        self._spare_launch = self.host.launches  # type: ignore[union-attr]
        self.spare = asyncio.ensure_future(self._aprepare())
        self.spare.add_done_callback(_retrieve)  # a spare that fails is replaced at the next reset

    # -- the episode's page (browser thread)

    async def _areset(self, viewport: tuple[int, int], page_seed: int) -> tuple[dict[str, Any], bytes | None]:
        old, self.context = self.context, None
        if old is not None:
            asyncio.ensure_future(_close_quietly(old))  # noqa: RUF006 (nothing awaits a close; Playwright holds it while pending)
        self.context, self.page = await self._take_spare()
        await self.page.set_viewport_size({"width": viewport[0], "height": viewport[1]})
        await self.page.set_content(self.task_page.html, wait_until="load")  # type: ignore[union-attr]
        await self.page.evaluate(  # set_content erased observe.js's window listeners: add them again
            "p => { history.replaceState(null, '', p); window.__mv.listen(); }", self.task.start_path
        )
        await self.task.start(self.page, page_seed, self.task_page)  # type: ignore[arg-type]
        observed = await self._aobserve_all()
        # The next episode's context is made only now, while the agent thinks and steps: made during
        # this reset, its renderer start would compete with this page for the CPU (bench/README.md).
        self._start_spare()
        return observed

    async def _astep(self, action: Action | None) -> tuple[dict[str, Any], bytes | None, str | None]:
        await self._asettle()  # a navigation the previous step started has finished by now
        error = None
        if action is not None:
            try:
                error = await self._aexecute(self.page, action)
            except Exception as exc:
                if not _navigating(exc):
                    raise
                error = "the page changed while acting (a navigation); look at the new page and act again"
        await self._asettle()
        await self.page.clock.run_for(self.task.step_ms)
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
        page = self.page
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
            if mv and ready and leaving and waited > 3 * self.timeout_scale:
                await page.evaluate("() => { window.__mvLeaving = false; }")
                return
            if waited > 15 * self.timeout_scale:
                raise BrowserCrashed(f"the page did not finish loading within {15 * self.timeout_scale:.0f} s")
            try:
                await page.wait_for_load_state("load", timeout=1_000)
            except Exception as exc:
                if not (_navigating(exc) or "Timeout" in type(exc).__name__):
                    raise
            await asyncio.sleep(0.005)  # only while a navigation is under way

    async def _aobserve_all(self) -> tuple[dict[str, Any], bytes | None]:
        for attempt in range(3):
            try:
                raw = await self.page.evaluate("o => window.__mv.observe(o)", {"clickText": self.task.click_text})
                break
            except Exception as exc:  # the page navigated as the clock ran: observe the new document
                if attempt == 2 or not _navigating(exc):
                    raise
                await self._asettle()
        shot = await _steady_screenshot(self.page) if self.pixels else None
        return raw, shot


async def _steady_screenshot(page: Any, tries: int = 4) -> bytes:
    """A PNG of the page once two screenshots in a row agree (at most ``tries``; then the last one).

    The page's clock is paused, but Chromium still finishes some drawing on its own time (an icon's
    decode, a tile's raster after a scroll): under load one screenshot in a great many caught a frame
    before that, and the same seed gave another image (CI, miniwob/email-inbox-v1 after a scroll).
    Comparing two is the check Playwright's own ``toHaveScreenshot`` uses.
    """
    shot = await page.screenshot(type="png")
    for _ in range(tries - 1):
        again = await page.screenshot(type="png")
        if again == shot:
            break
        shot = again
    return shot


class _Server:
    """A context's request handler: answers for the driver that uses the context now (a spare can change hands)."""

    def __init__(self, driver: PageDriver) -> None:
        self.driver: PageDriver | None = driver

    async def __call__(self, path: str) -> tuple[int, str, bytes] | None:
        return await self.driver.serve(path) if self.driver is not None else None


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
