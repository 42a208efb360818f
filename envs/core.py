"""The environment contract every Multiverse env follows.

* Observation: ``Dict(text=Text, image=Box(H, W, 3, uint8))``; ``image`` only
  when the env is made with ``pixels=True``. The text starts with the mission
  and is complete on its own: a language model can play from it.
* ``info`` from ``reset`` and every ``step``: ``mission`` (str),
  ``legal_actions`` (list[str]), ``randomization`` (the JSON values this episode
  was sampled with) and, when the episode ends, ``success`` (bool).
* Optionally ``action_descriptions`` (list[str], one per legal action, in the
  same order): what each action does or acts on, for a policy to read beside
  the action string (a web task: the role and name of the element, ``button
  "Save"``; a game: what the move moves). Written in the episode's own words
  (the page's text, the episode's action words), so a description never undoes
  a held-out randomization. The action strings stay what they are.
* A malformed or illegal action never raises: it is a no-op and
  ``info["action_error"]`` says what was wrong.
* ``reset(seed, options)`` resolves the episode's parameters from the env's
  declared :class:`~multiverse.envs.randomization.ParamSpace` (see there for
  ``options``); all randomness comes from ``self.np_random``.

:class:`GameEnv` is the base of the games: ``Discrete(n)`` actions with
``action_names`` (the episode's words for them, which text randomization may
change) and pygame rendering (:mod:`multiverse.envs.render`). A game that also
offers a fixed-shape numeric observation (RLlib) inherits
:class:`~multiverse.envs.wrappers.NumericObservable` as well.
"""

from __future__ import annotations

import inspect
import reprlib
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from multiverse.envs.randomization import ParamSpace

__all__ = ["GameEnv", "MultiverseEnv", "PrintableText", "quote"]

#: how many characters of a bad value an error message quotes
QUOTE_CHARS = 60


def _type_name(value: Any) -> str:
    try:
        return str(type(value).__qualname__)[:QUOTE_CHARS]
    except Exception:  # a metaclass may make even that fail
        return "object"


class _ShortRepr(reprlib.Repr):
    """reprlib's cut repr, naming the type where ``repr`` raises (reprlib shows an address, different every run)."""

    def repr_instance(self, x: Any, level: int) -> str:
        try:
            text = repr(x)
        except Exception:
            return f"<{_type_name(x)} object>"
        return text if len(text) <= self.maxother else text[: self.maxother - 3] + "..."


_REPR = _ShortRepr()  # Python 3.11's takes no arguments
_REPR.maxlevel, _REPR.maxlist, _REPR.maxtuple, _REPR.maxdict, _REPR.maxset = 2, 4, 4, 4, 4
_REPR.maxstring = _REPR.maxother = QUOTE_CHARS


def quote(value: Any) -> str:
    """``value`` for an error message, at most about :data:`QUOTE_CHARS` characters, never raising.

    A long str or bytes is quoted by its first characters and its length; anything else by a cut ``repr``,
    or by its type's name where even ``repr`` fails. Errors quote bad input with this, never in full."""
    try:
        if isinstance(value, (str, bytes, bytearray)):  # as the built-in type: a subclass's methods may raise
            plain = str.__str__(value) if isinstance(value, str) else bytes(value)
            head = repr(plain[:QUOTE_CHARS])
            unit = "characters" if isinstance(value, str) else "bytes"
            return head if len(plain) <= QUOTE_CHARS else f"{head}... ({len(plain):,} {unit})"
        if isinstance(value, int) and not isinstance(value, bool) and int.bit_length(value) > 64:
            return f"<int of {int.bit_length(value)} bits>"
        return str.__str__(_REPR.repr(value))[: QUOTE_CHARS + 5]
    except Exception:
        return f"<{_type_name(value)} object>"


class PrintableText(spaces.Text):
    """A Text space that holds any printable text, newlines and tabs included
    (Gymnasium's default charset is alphanumeric only). ``sample()`` draws from
    printable ASCII."""

    SAMPLE_CHARSET = "".join(chr(c) for c in range(32, 127)) + "\n"

    def __init__(self, max_length: int, *, min_length: int = 0, seed: Any = None) -> None:
        super().__init__(max_length, min_length=min_length, charset=self.SAMPLE_CHARSET, seed=seed)

    def contains(self, x: Any) -> bool:
        return (
            isinstance(x, str)
            and self.min_length <= len(x) <= self.max_length
            and x.replace("\n", "").replace("\t", "").isprintable()
        )

    def __repr__(self) -> str:
        return f"PrintableText({self.min_length}, {self.max_length})"

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, PrintableText) and (other.min_length, other.max_length) == (
            self.min_length,
            self.max_length,
        )


class MultiverseEnv(gym.Env):
    """Base class: observation space, parameter resolution, info and step limit.

    Subclasses set ``PARAM_SPACE`` and implement ``_new_episode``, ``mission``,
    ``_text`` and ``_success`` (and ``step``, or use :class:`GameEnv`).
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 10}
    PARAM_SPACE: ClassVar[ParamSpace]
    #: the scripted oracle must succeed at least this often (``multiverse envs check``)
    oracle_success_rate: ClassVar[float] = 1.0
    #: longest observation text; longer texts are cut with a marker
    text_max_length: ClassVar[int] = 8192
    #: the step limit when the env was not made through the registry
    default_max_episode_steps: ClassVar[int] = 200

    def __init__(
        self,
        *,
        pixels: bool = False,
        image_size: tuple[int, int] = (84, 84),
        render_mode: str | None = None,
        step_limit: int | None = None,
    ) -> None:
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise ValueError(
                f"render_mode={render_mode!r} is not supported; use one of {self.metadata['render_modes']} or None"
            )
        if len(image_size) != 2 or min(image_size) < 8:
            raise ValueError(f"image_size must be (height, width), each >= 8, got {image_size!r}")
        self.render_mode = render_mode
        # The registry passes its max_episode_steps here: the env truncates itself (Gymnasium's TimeLimit
        # agrees) so that the last step's info still carries `success`.
        self.step_limit = int(step_limit) if step_limit else self.default_max_episode_steps
        self.pixels = bool(pixels)
        self.image_size = (int(image_size[0]), int(image_size[1]))
        obs = {"text": PrintableText(self.text_max_length)}
        if self.pixels:
            obs["image"] = spaces.Box(0, 255, (*self.image_size, 3), np.uint8)
        self.observation_space = spaces.Dict(obs)
        self.params: Any = self.PARAM_SPACE.nominal
        self.randomization: dict[str, Any] = self.PARAM_SPACE.nominal_values()
        self.t = 0

    @classmethod
    def randomization_space(cls, **kwargs: Any) -> ParamSpace:
        """The parameter space an env made with these kwargs samples from."""
        return cls.PARAM_SPACE

    @classmethod
    def declared_oracle_success_rate(cls, **kwargs: Any) -> float:
        """The oracle success rate an env made with these kwargs declares."""
        return cls.oracle_success_rate

    @classmethod
    def spec_doc(cls, **kwargs: Any) -> str:
        """The spec of an env made with these kwargs, as ``multiverse envs show`` prints it: the class docstring."""
        return inspect.cleandoc(cls.__doc__ or f"({cls.__qualname__} has no docstring; an env's docstring is its spec)")

    # -- what subclasses provide

    @property
    def mission(self) -> str:
        raise NotImplementedError

    def _new_episode(self) -> None:
        """Build the episode's state from ``self.params`` and ``self.np_random``."""
        raise NotImplementedError

    def _text(self) -> str:
        """The observation text after the mission line."""
        raise NotImplementedError

    def _success(self) -> bool:
        raise NotImplementedError

    def legal_actions(self) -> list[str]:
        raise NotImplementedError

    def action_descriptions(self) -> list[str] | None:
        """One description per action of the last :meth:`legal_actions` call, in its order (None: none)."""
        return None

    def oracle_action(self) -> Any:
        """The scripted expert's action in the current state."""
        raise NotImplementedError

    def _image(self) -> np.ndarray:
        """The current frame at ``self.image_size`` (H, W, 3) uint8."""
        raise NotImplementedError

    # -- shared machinery

    def _resolve(self, seed: int | None, options: dict[str, Any] | None) -> None:
        gym.Env.reset(self, seed=seed)
        self.params, self.randomization = self.PARAM_SPACE.resolve(self.np_random, options)
        self.t = 0

    def _observe(self) -> dict[str, Any]:
        text = f"{self.mission}\n{self._text()}"
        if len(text) > self.text_max_length:
            marker = "\n[... cut to fit the observation limit]"
            text = text[: self.text_max_length - len(marker)] + marker
        obs: dict[str, Any] = {"text": text}
        if self.pixels:
            obs["image"] = self._image()
        return obs

    def _info(self) -> dict[str, Any]:
        info = {"mission": self.mission, "legal_actions": self.legal_actions(), "randomization": self.randomization}
        descriptions = self.action_descriptions()  # after legal_actions(): it describes that list
        if descriptions is not None:
            info["action_descriptions"] = descriptions
        return info


class GameEnv(MultiverseEnv):
    """A game: ``Discrete(len(ACTIONS))`` actions, simulation in Python/NumPy,
    pygame drawing only when pixels are asked for.

    A game implements ``_new_episode``, ``_advance(action) -> (reward,
    terminated)`` (``action`` is None for a no-op), ``_text``, ``mission``,
    ``_success``, ``oracle_action`` and, to make frames, ``_frame_size``/``_draw``
    (pygame). Optionally ``_legal`` (indices legal now; default all), an
    ``action_words`` field in ``Params`` selecting a tuple from
    ``ACTION_WORDS`` (synonyms for the action names) and its descriptions from
    ``ACTION_DESCRIPTIONS`` (see :func:`~multiverse.envs.games.common.describe_moves`), and the
    :class:`~multiverse.envs.wrappers.NumericObservable` mixin (a fixed-shape
    array for RLlib).
    """

    #: nominal action names; index i is action i
    ACTIONS: ClassVar[tuple[str, ...]]
    #: synonym sets for the action names, chosen by ``Params.action_words``
    ACTION_WORDS: ClassVar[dict[str, tuple[str, ...]]] = {}
    #: per ``ACTION_WORDS`` key, a description of each action in those words (a key left out: none)
    ACTION_DESCRIPTIONS: ClassVar[dict[str, tuple[str, ...]]] = {}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if self.pixels or self.render_mode == "rgb_array":
            self._check_drawing()
        self.action_space = spaces.Discrete(len(self.ACTIONS))
        self.action_names: list[str] = list(self.ACTIONS)
        self._legal_idx: list[int] = list(range(len(self.ACTIONS)))
        self._descriptions: tuple[str, ...] | None = None
        self._over = False
        self._ended_with = (False, False)
        self._surface: Any = None

    # -- gymnasium API

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        self._resolve(seed, options)
        words = getattr(self.params, "action_words", None)
        self.action_names = list(self.ACTION_WORDS[words]) if words is not None else list(self.ACTIONS)
        self._descriptions = self.ACTION_DESCRIPTIONS.get(words) if words is not None else None
        self._over = False
        self._new_episode()
        return self._observe(), self._info()

    def step(self, action: Any):
        index, error = self._parse(action)
        if self._over:
            reward, (terminated, truncated) = 0.0, self._ended_with
            error = "the episode is over; call reset() to start a new one"
        else:
            reward, terminated = self._advance(index)
            self.t += 1
            truncated = not terminated and self.t >= self.step_limit
        info = self._info()
        if error:
            info["action_error"] = error
        if terminated or truncated:
            self._over = True
            self._ended_with = (bool(terminated), bool(truncated))
            info["success"] = bool(self._success())
        return self._observe(), float(reward), bool(terminated), bool(truncated), info

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array":
            return None
        from multiverse.envs import render

        return render.to_array(self._draw_surface())

    def close(self) -> None:
        self._surface = None

    # -- actions

    def legal_actions(self) -> list[str]:
        self._legal_idx = self._legal()
        return [self.action_names[i] for i in self._legal_idx]

    def action_descriptions(self) -> list[str] | None:
        descriptions = self._descriptions
        return [descriptions[i] for i in self._legal_idx] if descriptions else None

    def _legal(self) -> list[int]:
        return list(range(len(self.ACTIONS)))

    def _parse(self, action: Any) -> tuple[int | None, str | None]:
        """(index, None) for a legal action, (None, why) for anything else; never raises, whatever ``action`` is."""
        n = len(self.ACTIONS)
        usage = f"an action is an index 0..{n - 1} or one of {self.action_names}"
        try:
            if isinstance(action, np.ndarray) and action.shape == ():
                action = action.item()
            if isinstance(action, str):
                name = str.strip(action)
                if name not in self.action_names:
                    return None, f"unknown action {quote(action)}; this episode's actions are {self.action_names}"
                index = self.action_names.index(name)
            elif isinstance(action, (int, np.integer)) and not isinstance(action, bool):
                index = int.__index__(action) if isinstance(action, int) else int(action)
                if not 0 <= index < n:
                    return None, f"action {quote(index)} is out of range: use 0..{n - 1} ({', '.join(self.action_names)})"
            else:
                return None, f"{usage}, got {quote(action)}"
        except Exception as exc:  # a value whose own methods raise (a hostile __index__, a broken numpy object)
            return None, f"{usage}, got {quote(action)}, which could not be read ({_type_name(exc)})"
        if index not in self._legal_idx:
            return None, (
                f"action {self.action_names[index]!r} is not legal now; legal: {[self.action_names[i] for i in self._legal_idx]}"
            )
        return index, None

    def _advance(self, action: int | None) -> tuple[float, bool]:
        raise NotImplementedError

    # -- pixels

    def _frame_size(self) -> tuple[int, int]:
        """Native frame (width, height) in pixels."""
        raise NotImplementedError

    def _draw(self, surface: Any) -> None:
        """Draw the current state on a pygame Surface of ``_frame_size()``."""
        raise NotImplementedError

    def _check_drawing(self) -> None:
        """A game made to draw says at make() which drawing methods it lacks (not a bare error at its first frame)."""
        missing = [sig for name, sig in (("_frame_size", "_frame_size()"), ("_draw", "_draw(surface)"))
                   if getattr(type(self), name) is getattr(GameEnv, name)]
        if missing:
            how = "pixels=True" if self.pixels else f"render_mode={self.render_mode!r}"
            raise NotImplementedError(
                f"{type(self).__qualname__} was made with {how} but does not define {' and '.join(missing)}: a game "
                "that draws implements _frame_size() -> (width, height) and _draw(surface) (pygame); or make it "
                "without pixels"
            )

    def _draw_surface(self) -> Any:
        from multiverse.envs import render

        size = self._frame_size()
        if self._surface is None or self._surface.get_size() != size:
            self._surface = render.surface(size)
        self._draw(self._surface)
        return self._surface

    def _image(self) -> np.ndarray:
        from multiverse.envs import render

        return render.to_array(self._draw_surface(), self.image_size)
