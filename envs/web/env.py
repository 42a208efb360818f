"""WebEnv: the one browser env that runs any :class:`~multiverse.envs.web.task.WebTask`.

Each episode: a fresh ``BrowserContext`` in the process's shared Chromium, the
page's clock installed at a fixed instant (``Date``, timers and animation frames
are virtual), the task's page loaded from the reserved origin. Each step: the
action is checked against the page, executed, the page is given time to settle
(a navigation it started is waited for; no fixed sleeps), the clock advances by
the task's ``step_ms``, and the page is observed once. The page side (contexts,
the prepared next context, every Playwright call) is the env's
:class:`~multiverse.envs.web.driver.PageDriver`; this module is the Gymnasium
side. The text observation is the mission, the page title and one line per
visible element (``[12] button "Submit"``); the image (``pixels=True``) is a
screenshot scaled to ``image_size``.

If Chromium crashes or hangs, the episode ends ``truncated=True`` with
``info["infra_error"]``; the next ``reset`` relaunches it. No browser error
escapes ``step`` or ``reset``.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any, ClassVar

import numpy as np

from multiverse.envs.core import MultiverseEnv, PrintableText, quote
from multiverse.envs.web.actions import TEXT_TEMPLATE, Action, format_action, parse
from multiverse.envs.web.browser import BrowserCrashed, timeout_scale
from multiverse.envs.web.driver import PageDriver
from multiverse.envs.web.task import Element, Observation, Outcome, TaskPage, WebTask

__all__ = ["WebEnv", "load_task"]

MAX_OPTIONS_LISTED = 25


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

    ``driver`` is the env's :class:`~multiverse.envs.web.driver.PageDriver` (its browser host, context, page
    and prepared spare, for tests and benchmarks that look at the browser).
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
        scale = timeout_scale()
        self.step_timeout = self.STEP_TIMEOUT * scale if step_timeout is None else float(step_timeout)
        self.reset_timeout = self.RESET_TIMEOUT * scale if reset_timeout is None else float(reset_timeout)
        self.driver = PageDriver(self.task, pixels=self.pixels, timeout_scale=scale)
        self._task_page: TaskPage | None = None
        self.observation: Observation | None = None
        self._legal: list[str] = []
        self._descriptions: list[str] = []
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

    def action_descriptions(self) -> list[str]:
        return list(self._descriptions)

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
        p = self.params
        viewport = (getattr(p, "viewport_width", 1000), getattr(p, "viewport_height", 700))  # WebParams' fields
        for attempt in (1, 2):  # a browser that died between episodes is relaunched once, quietly
            try:
                raw, shot = self.driver.reset(self._task_page, viewport, page_seed, timeout=self.reset_timeout)
                self._set_observation(raw, shot)
                self._infra_error = None  # a failed first attempt that the relaunch fixed is no error
                break
            except BrowserCrashed as exc:
                self.driver.drop()
                self._infra_error = str(exc)
                self.observation, self._legal, self._descriptions = None, [], []
                if attempt == 2:
                    self._over = True  # the first step reports it and ends the episode
            except Exception as exc:  # a task page that fails to load is an infra error too
                self.driver.drop()
                self._infra_error = f"the task page failed to load: {type(exc).__name__}: {str(exc).splitlines()[0]}"
                self.observation, self._legal, self._descriptions = None, [], []
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
            raw, shot, exec_error = self.driver.step(None if error else parsed, timeout=self.step_timeout)
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
            self.driver.drop()
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
        if self.render_mode != "rgb_array":
            return None
        png = self.driver.screenshot(timeout=self.step_timeout)
        return None if png is None else _to_frame(png, None)

    def close(self) -> None:
        self.driver.close()

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
        self._legal, self._descriptions = self._enumerate_actions(self.observation)
        self._frame = _to_frame(shot, self.image_size) if shot is not None else None

    def _enumerate_actions(self, obs: Observation) -> tuple[list[str], list[str]]:
        """The legal actions and, aligned with them, what each acts on: the element's role, accessible name
        and state as the listing shows them (``button "Save"``, ``radio "Blue" checked``), the page's own
        words, so held-out wordings stay unseen; fixed plain text for keys and scrolling."""
        out: list[tuple[str, str]] = []
        for e in obs.elements:
            what = e.describe()
            if e.typeable:
                out.append((f"type({e.id}, {TEXT_TEMPLATE})", what))
            if e.role == "combobox":
                out += [(format_action(Action("select", e.id, o)), what) for o in (e.options or ())[:MAX_OPTIONS_LISTED]]
            elif e.clickable:
                out.append((f"click({e.id})", what))
        out += [(format_action(Action("press", text=k)), f"press the {k} key") for k in self.task.keys]
        if obs.scroll_up:
            out.append(("scroll(up)", "scroll the page up"))
        if obs.scroll_down:
            out.append(("scroll(down)", "scroll the page down"))
        return [a for a, _ in out], [d for _, d in out]


def _to_frame(png: bytes, size: tuple[int, int] | None) -> np.ndarray:
    """A screenshot as an (H, W, 3) uint8 frame (pygame is imported only when a frame is asked for)."""
    from multiverse.envs import render

    return render.decode_png(png, size)
