"""One Chromium per process, isolated from the network, driven from any thread.

Playwright's async API runs on a private thread with its own event loop;
:meth:`BrowserHost.run` submits a coroutine there and waits with a timeout. So
the browser works the same from plain scripts, from inside another asyncio loop
(Ray async actors, notebooks) and from several envs in one process, and a hung
browser is noticed: the call times out, Chromium is killed and relaunched on
the next episode.

Isolation: each episode gets a fresh ``BrowserContext``. Requests to
:data:`ORIGIN` are answered from packaged files (``route.fulfill``); every other
request — other hosts, other localhost ports, websockets — is aborted, service
workers are blocked, and Chromium itself is pointed at a dead proxy with no
loopback bypass, so even a request that escaped routing goes nowhere. Chromium
refuses ``file://`` from an http page by itself. What does not go through the
network stack is closed too: WebRTC may only use proxied connections (no UDP,
so no STUN, TURN or ICE packets), no host name is resolved (``.local`` names
included, which would otherwise go out as multicast DNS), and WebTransport
needs a secure context, which task pages are not (QUIC is off as well).
``tests/envs/test_sandbox.py`` checks every route with real listeners.

Timeouts: every wait here, in :class:`~multiverse.envs.web.env.WebEnv` and in its
page driver (a step, a reset, a page operation, a launch) is multiplied by
``MULTIVERSE_TIMEOUT_SCALE`` (default 1), for machines so loaded that a healthy
browser takes longer than the defaults allow (see :func:`timeout_scale`).
"""

from __future__ import annotations

import asyncio
import atexit
import math
import os
import shutil
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

__all__ = ["ORIGIN", "BrowserCrashed", "BrowserHost", "chromium_path", "timeout_scale"]

T = TypeVar("T")

#: the reserved origin task pages are served from; it never reaches a network
ORIGIN = "http://multiverse.test"
STATIC = Path(__file__).parent / "static"
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-dev-shm-usage",
    "--mute-audio",
    "--disable-breakpad",  # no crashpad handler processes left behind after a kill
    # Defence in depth behind request routing: anything not fulfilled by us goes to a dead proxy,
    # loopback included (Chromium bypasses proxies for loopback unless told otherwise).
    "--proxy-server=http://127.0.0.1:9",
    "--proxy-bypass-list=<-loopback>",
    # WebRTC opens its own sockets, outside routing and the proxy: without this a page's STUN server or ICE
    # candidate got UDP packets with page-chosen text to any address. Only proxied (TCP) connections are left,
    # and the proxy is dead. (Chromium 156's switch; the older --force-webrtc-ip-handling-policy is ignored.)
    "--webrtc-ip-handling-policy=disable_non_proxied_udp",
    # No name is looked up. A .local name (a page's ICE candidate) is resolved by multicast DNS, which would
    # send even a ~NOTFOUND-mapped name as a query; an IP literal needs no lookup (and gets no UDP, see above).
    "--host-resolver-rules=MAP *.local 0.0.0.0, MAP * ~NOTFOUND",
]


def timeout_scale() -> float:
    """``MULTIVERSE_TIMEOUT_SCALE``: the factor on every browser timeout (default 1).

    Raise it where a healthy browser is slow (many workers on few cores, a shared CI
    host): a step that outlasts its timeout kills Chromium and costs the episode.
    """
    raw = os.environ.get("MULTIVERSE_TIMEOUT_SCALE", "").strip()
    if not raw:
        return 1.0
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise ValueError(
            f"MULTIVERSE_TIMEOUT_SCALE={raw!r} is not a positive number; unset it (1) or set e.g. 4 on a loaded machine"
        )
    return value


async def _close_spare(spare: asyncio.Future[Any]) -> None:
    """Close the context of a spare (``(context, page, ...)``) once it is made; never raises."""
    try:
        ctx = (await asyncio.wait_for(spare, 8 * timeout_scale()))[0]
        await ctx.close()
    except BaseException:
        pass


class BrowserCrashed(RuntimeError):
    """Chromium died, hung or could not be started; the message says which."""


def chromium_path() -> str | None:
    """Debian's chromium when present (or ``MULTIVERSE_CHROMIUM``); None means Playwright's own browser."""
    explicit = os.environ.get("MULTIVERSE_CHROMIUM")
    if explicit:
        if not Path(explicit).exists():
            raise BrowserCrashed(f"MULTIVERSE_CHROMIUM={explicit!r} does not exist; unset it or point it at a chromium binary")
        return explicit
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


def _alive(proc: Any) -> bool:
    import psutil

    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


class BrowserHost:
    """The process's browser. Use :meth:`get`; envs share it and own their contexts."""

    _instance: BrowserHost | None = None
    _lock = threading.Lock()
    #: False shows Chromium's windows (a person playing, multiverse.envs.human); read at each launch
    headless: bool = True

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="multiverse-browser", daemon=True)
        self.thread.start()
        self._pid = os.getpid()  # a forked child makes its own host
        self.marker = f"--multiverse-browser={uuid.uuid4().hex}"  # finds our Chromium processes
        self._pw: Any = None
        self._browser: Any = None
        self.launches = 0
        self._observe_js = (STATIC / "observe.js").read_text()
        #: prepared contexts that a closed env did not use, by kind (see :meth:`give_spare`); browser thread only
        self._spares: dict[Any, list[tuple[int, asyncio.Future[Any]]]] = {}

    @classmethod
    def get(cls) -> BrowserHost:
        with cls._lock:
            if cls._instance is None or os.getpid() != cls._instance._pid:
                cls._instance = cls()
                atexit.register(cls._instance.shutdown)
            return cls._instance

    @classmethod
    def current(cls) -> BrowserHost | None:
        """This process's host if one was made, else None: lets a caller shut a browser down without starting one."""
        with cls._lock:
            host = cls._instance
            return host if host is not None and host._pid == os.getpid() else None

    # -- running coroutines on the browser thread

    def run(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        """Run ``coro`` on the browser thread; raise :class:`BrowserCrashed` on a timeout or a dead browser."""
        if threading.current_thread() is self.thread:
            raise RuntimeError("BrowserHost.run called from the browser thread itself")
        fut = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return fut.result(timeout)
        except TimeoutError as exc:
            fut.cancel()
            self.kill()
            raise BrowserCrashed(f"the browser did not answer within {timeout:.0f} s; it was killed and will be relaunched") from exc
        except BrowserCrashed:
            raise
        except Exception as exc:
            if self._is_crash(exc):
                self._browser = None
                raise BrowserCrashed(f"the browser crashed ({type(exc).__name__}: {str(exc).splitlines()[0]}); it will be relaunched") from exc
            raise

    def _is_crash(self, exc: BaseException) -> bool:
        text = f"{type(exc).__name__} {exc}".lower()
        dead = self._browser is None or not self._browser.is_connected()
        return dead or any(s in text for s in ("target closed", "browser has been closed", "targetclosederror", "connection closed"))

    # -- the browser

    def is_connected(self) -> bool:
        """Chromium is launched and answering now (nothing is launched to find out)."""
        return self._browser is not None and self._browser.is_connected()

    def made_by_current(self, launch: int) -> bool:
        """Is the browser of launch number ``launch`` (:attr:`launches` when something was made) the one running now?"""
        return launch == self.launches and self.is_connected()

    async def browser(self) -> Any:
        """The connected browser, launching (or relaunching) it when needed."""
        if self._browser is not None and self._browser.is_connected():
            return self._browser
        if self._pw is None:
            from playwright.async_api import async_playwright

            self._pw = await async_playwright().start()
        path = chromium_path()
        try:
            self._browser = await self._pw.chromium.launch(
                executable_path=path, headless=self.headless, args=[*LAUNCH_ARGS, self.marker], timeout=60_000 * timeout_scale()
            )
        except Exception as exc:
            where = path or "Playwright's bundled chromium"
            hint = "install Debian's chromium (apt-get install chromium)" if path is None else "check that it starts"
            raise BrowserCrashed(f"could not launch {where}: {str(exc).splitlines()[0]}; {hint}") from exc
        self.launches += 1
        return self._browser

    async def new_context(self, *, viewport: tuple[int, int], serve: Callable[[str], Awaitable[tuple[int, str, bytes] | None]]) -> Any:
        """A fresh isolated context: ``serve(path)`` answers requests to ORIGIN (None -> 404)."""
        browser = await self.browser()
        ctx = await browser.new_context(
            viewport={"width": viewport[0], "height": viewport[1]},
            service_workers="block",
            accept_downloads=False,
            java_script_enabled=True,
            bypass_csp=False,
        )
        try:
            await self._set_up_context(ctx, serve)
        except BaseException:  # not handed out: closed here, or it stays open in Chromium with its renderer
            self.close_later(ctx)
            raise
        return ctx

    async def _set_up_context(self, ctx: Any, serve: Callable[[str], Awaitable[tuple[int, str, bytes] | None]]) -> None:
        """Routing (only ORIGIN is answered, by ``serve``), blocked websockets and observe.js on a new context."""
        ctx.set_default_timeout(10_000 * timeout_scale())

        async def handle(route: Any) -> None:
            url = route.request.url
            if url.startswith(ORIGIN + "/"):
                answer = await serve(url[len(ORIGIN):])
                if answer is not None:
                    status, ctype, body = answer
                    await route.fulfill(status=status, content_type=ctype, body=body)
                    return
                await route.fulfill(status=404, content_type="text/plain", body=b"not found")
                return
            await route.abort("blockedbyclient")

        async def block_socket(ws: Any) -> None:
            await ws.close(code=1008, reason="network access is blocked in Multiverse tasks")

        await ctx.route("**/*", handle)
        await ctx.route_web_socket(lambda url: True, block_socket)
        await ctx.add_init_script(self._observe_js)

    # -- spare contexts shared between the envs of this process

    def give_spare(self, key: Any, spare: asyncio.Future[Any], launch: int, keep: int = 1) -> None:
        """Keep ``spare`` (a future of a prepared, never used context) for the next env of the same kind.

        An env prepares its next episode's context while the current one runs; an env that is closed
        leaves it unused. The next env made in this process takes it instead of starting a renderer of
        its own (short-lived envs: checks, evaluations, tests). At most ``keep`` are kept per kind; the
        rest are closed. ``launch``: the browser launch (:attr:`launches`) that made it. Browser thread only."""
        kept = self._spares.setdefault(key, [])
        kept.append((launch, spare))
        while len(kept) > keep:
            _, extra = kept.pop(0)
            asyncio.ensure_future(_close_spare(extra))  # noqa: RUF006 (nothing awaits a close; Playwright holds it while pending)

    def take_spare(self, key: Any) -> asyncio.Future[Any] | None:
        """A spare given for ``key`` by this browser (None: none, or only ones from a browser since died)."""
        kept = self._spares.get(key, [])
        while kept:
            launch, spare = kept.pop()
            if self.made_by_current(launch):
                return spare
            asyncio.ensure_future(_close_spare(spare))  # noqa: RUF006 (as above)
        return None

    def close_later(self, ctx: Any = None, spare: asyncio.Future[Any] | None = None) -> None:
        """Close ``ctx`` and the context of ``spare`` on the browser thread, not waiting for it (any thread; never
        raises). A context whose page crashed keeps its place in Chromium, and its processes, until it is closed."""

        async def close() -> None:
            if ctx is not None:
                try:
                    await asyncio.wait_for(ctx.close(), 8 * timeout_scale())
                except BaseException:
                    pass
            if spare is not None:
                await _close_spare(spare)

        if (ctx is not None or spare is not None) and self.loop.is_running():
            asyncio.run_coroutine_threadsafe(close(), self.loop)

    def pids(self) -> list[int]:
        """Chromium processes of this host (browser and children)."""
        import psutil

        out: list[int] = []
        for p in psutil.process_iter(["cmdline"]):
            try:
                if self.marker in (p.info["cmdline"] or []):
                    out += [p.pid, *(c.pid for c in p.children(recursive=True))]
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        return out

    def kill(self, wait: float | None = None) -> None:
        """SIGKILL our Chromium (used for hangs) and wait up to ``wait`` s (default 5, scaled) until it is dead; the next episode
        relaunches it.

        The process tree is frozen first (SIGSTOP, again until no new process shows up), so that a renderer
        forked while we look is not missed and left running, orphaned."""
        import psutil

        procs: dict[int, Any] = {}
        for _ in range(5):
            new = [pid for pid in self.pids() if pid not in procs]
            if not new:
                break
            for pid in new:
                try:
                    procs[pid] = psutil.Process(pid)
                    procs[pid].suspend()
                except psutil.NoSuchProcess:
                    pass
        for proc in procs.values():
            try:
                proc.kill()
            except psutil.NoSuchProcess:
                pass
        # Dying takes a while on a busy machine (tearing down Chromium's memory); an orphan whose new parent
        # does not reap it stays a zombie, which is dead enough.
        deadline = time.monotonic() + (5.0 * timeout_scale() if wait is None else wait)
        while any(_alive(p) for p in procs.values()) and time.monotonic() < deadline:
            time.sleep(0.02)
        self._browser = None  # spares kept from it are dropped when next asked for (take_spare)

    def shutdown(self) -> None:
        async def stop() -> None:
            if self._browser is not None:
                try:
                    await self._browser.close()
                except Exception:
                    pass
            if self._pw is not None:
                await self._pw.stop()

        if self.loop.is_running():
            try:
                asyncio.run_coroutine_threadsafe(stop(), self.loop).result(10 * timeout_scale())
            except Exception:
                self.kill()
            self.loop.call_soon_threadsafe(self.loop.stop)
