"""Domain randomization as data.

Every environment declares its randomized parameters once, as data:

* a frozen ``Params`` dataclass whose defaults are the nominal game, and
* a :class:`ParamSpace` that gives each randomized field a TRAIN distribution
  and a disjoint HELD-OUT distribution (a range, a set, or a union of them).

``reset(seed, options)`` resolves the parameters for an episode through
:meth:`ParamSpace.resolve`:

* ``options={"split": "heldout"}`` samples the held-out side,
* ``options={"params": {"speed": 1.3}}`` pins values (each must lie inside the
  parameter's train or held-out support),
* ``options={"randomize": False}`` gives the nominal game.

The values an episode was sampled with come back in ``info["randomization"]``.
:class:`ADR` (automatic domain randomization) grows and shrinks the sampled
ranges inside the TRAIN support from how the agent does at their boundaries;
its state is plain JSON.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

__all__ = [
    "ADR",
    "SPLITS",
    "Choice",
    "Distribution",
    "IntRange",
    "LogUniform",
    "Param",
    "ParamSpace",
    "RandomizationError",
    "Uniform",
    "Union",
    "disjoint",
]

SPLITS = ("train", "heldout")


class RandomizationError(ValueError):
    """A randomization option, pinned value or declaration is invalid."""


def _plain(value: Any) -> Any:
    """NumPy scalars -> Python scalars, tuples -> lists: JSON-serializable values."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return value


# --------------------------------------------------------------------------- distributions


class Distribution:
    """A distribution over one parameter's values; immutable and JSON-describable."""

    kind: ClassVar[str]

    def sample(self, rng: np.random.Generator) -> Any:
        raise NotImplementedError

    def contains(self, value: Any) -> bool:
        raise NotImplementedError

    def intervals(self) -> list[tuple[float, float]]:
        """Numeric support as closed intervals (empty for categorical distributions)."""
        return []

    def values(self) -> list[Any]:
        """Categorical support (empty for numeric distributions)."""
        return []

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            v = getattr(self, f.name)
            out[f.name] = [d.to_json() for d in v] if f.name == "parts" else _plain(v)
        return out

    def describe(self) -> str:
        raise NotImplementedError


def _check_range(low: float, high: float, what: str) -> None:
    if not (math.isfinite(low) and math.isfinite(high)) or low > high:
        raise RandomizationError(f"{what}: need finite low <= high, got low={low!r}, high={high!r}")


@dataclasses.dataclass(frozen=True)
class Uniform(Distribution):
    """Uniform on the closed interval [low, high]."""

    low: float
    high: float
    kind: ClassVar[str] = "uniform"

    def __post_init__(self) -> None:
        _check_range(self.low, self.high, "Uniform")

    def sample(self, rng: np.random.Generator) -> float:
        return float(rng.uniform(self.low, self.high))

    def contains(self, value: Any) -> bool:
        return isinstance(value, (int, float, np.number)) and not isinstance(value, bool) and self.low <= value <= self.high

    def intervals(self) -> list[tuple[float, float]]:
        return [(float(self.low), float(self.high))]

    def describe(self) -> str:
        return f"uniform[{self.low:g}, {self.high:g}]"


@dataclasses.dataclass(frozen=True)
class LogUniform(Uniform):
    """Log-uniform on [low, high] (low > 0): scale factors, rates."""

    kind: ClassVar[str] = "log_uniform"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.low <= 0:
            raise RandomizationError(f"LogUniform needs low > 0, got {self.low!r}")

    def sample(self, rng: np.random.Generator) -> float:
        return float(math.exp(rng.uniform(math.log(self.low), math.log(self.high))))

    def describe(self) -> str:
        return f"log-uniform[{self.low:g}, {self.high:g}]"


@dataclasses.dataclass(frozen=True)
class IntRange(Distribution):
    """Integers low..high inclusive, uniformly."""

    low: int
    high: int
    kind: ClassVar[str] = "int_range"

    def __post_init__(self) -> None:
        _check_range(self.low, self.high, "IntRange")
        if int(self.low) != self.low or int(self.high) != self.high:
            raise RandomizationError(f"IntRange bounds must be integers, got {self.low!r}, {self.high!r}")

    def sample(self, rng: np.random.Generator) -> int:
        return int(rng.integers(self.low, self.high + 1))

    def contains(self, value: Any) -> bool:
        return (
            isinstance(value, (int, np.integer))
            and not isinstance(value, bool)
            and self.low <= value <= self.high
        )

    def intervals(self) -> list[tuple[float, float]]:
        return [(float(self.low), float(self.high))]

    def describe(self) -> str:
        return f"int[{self.low}..{self.high}]"


@dataclasses.dataclass(frozen=True)
class Choice(Distribution):
    """One of a finite set of options (strings, numbers, tuples), uniformly."""

    options: tuple[Any, ...]
    kind: ClassVar[str] = "choice"

    def __post_init__(self) -> None:
        opts = tuple(tuple(o) if isinstance(o, list) else o for o in self.options)
        object.__setattr__(self, "options", opts)
        if not opts:
            raise RandomizationError("Choice needs at least one option")
        if len(set(opts)) != len(opts):
            raise RandomizationError(f"Choice options repeat: {opts!r}")

    def sample(self, rng: np.random.Generator) -> Any:
        return self.options[int(rng.integers(len(self.options)))]

    def contains(self, value: Any) -> bool:
        if isinstance(value, list):
            value = tuple(value)
        try:
            return value in self.options
        except TypeError:
            return False

    def values(self) -> list[Any]:
        return list(self.options)

    def describe(self) -> str:
        return "{" + ", ".join(repr(o) for o in self.options) + "}"


@dataclasses.dataclass(frozen=True)
class Union(Distribution):
    """A mixture of distributions, chosen with probability proportional to
    their width (categorical parts count one per option). Typical use: a
    held-out side on both ends of the train range."""

    parts: tuple[Distribution, ...]
    kind: ClassVar[str] = "union"

    def __post_init__(self) -> None:
        object.__setattr__(self, "parts", tuple(self.parts))
        if not self.parts:
            raise RandomizationError("Union needs at least one part")
        if any(isinstance(p, Choice) for p in self.parts) and any(not isinstance(p, Choice) for p in self.parts):
            raise RandomizationError("Union cannot mix categorical and numeric parts")

    def _weights(self) -> np.ndarray:
        w = []
        for p in self.parts:
            if isinstance(p, Choice):
                w.append(len(p.options))
            elif isinstance(p, IntRange):
                w.append(p.high - p.low + 1)
            else:
                lo, hi = p.intervals()[0]
                w.append(max(hi - lo, 1e-12))
        w_ = np.asarray(w, dtype=float)
        return w_ / w_.sum()

    def sample(self, rng: np.random.Generator) -> Any:
        i = int(rng.choice(len(self.parts), p=self._weights()))
        return self.parts[i].sample(rng)

    def contains(self, value: Any) -> bool:
        return any(p.contains(value) for p in self.parts)

    def intervals(self) -> list[tuple[float, float]]:
        return [iv for p in self.parts for iv in p.intervals()]

    def values(self) -> list[Any]:
        return [v for p in self.parts for v in p.values()]

    def describe(self) -> str:
        return " or ".join(p.describe() for p in self.parts)


def disjoint(a: Distribution, b: Distribution) -> bool:
    """No value lies in both: no shared choice, no overlapping interval (how held-out stays apart from train)."""
    if a.values() or b.values():
        return not (set(map(repr, a.values())) & set(map(repr, b.values())))
    return all(hi1 < lo2 or hi2 < lo1 for lo1, hi1 in a.intervals() for lo2, hi2 in b.intervals())


# --------------------------------------------------------------------------- parameters


@dataclasses.dataclass(frozen=True)
class Param:
    """One randomized field of an env's ``Params`` dataclass."""

    train: Distribution
    heldout: Distribution
    doc: str = ""

    def dist(self, split: str) -> Distribution:
        return self.train if split == "train" else self.heldout

    def contains(self, value: Any) -> bool:
        return self.train.contains(value) or self.heldout.contains(value)

    @property
    def numeric(self) -> bool:
        return not self.train.values()

    @property
    def integer(self) -> bool:
        parts = self.train.parts if isinstance(self.train, Union) else (self.train,)
        return all(isinstance(p, IntRange) for p in parts)


class ParamSpace:
    """The randomized parameters of one env: a frozen ``Params`` dataclass (the
    nominal game) plus a :class:`Param` (train and held-out distributions) for
    each randomized field. Validated when declared: every name is a field, the
    nominal value lies in the train support, and train and held-out are disjoint.
    """

    def __init__(self, params_cls: type, **params: Param) -> None:
        if not (dataclasses.is_dataclass(params_cls) and params_cls.__dataclass_params__.frozen):  # type: ignore[attr-defined]
            raise RandomizationError(f"{params_cls!r} must be a frozen dataclass")
        self.params_cls = params_cls
        self.params: dict[str, Param] = dict(params)
        self.nominal = params_cls()
        fields = {f.name for f in dataclasses.fields(params_cls)}
        for name, p in self.params.items():
            if name not in fields:
                raise RandomizationError(f"{params_cls.__name__} has no field {name!r} to randomize")
            nominal = getattr(self.nominal, name)
            if not p.train.contains(nominal):
                raise RandomizationError(
                    f"parameter {name!r}: nominal value {nominal!r} is outside its train range {p.train.describe()}"
                )
            if not disjoint(p.train, p.heldout):
                raise RandomizationError(
                    f"parameter {name!r}: held-out {p.heldout.describe()} overlaps train {p.train.describe()}"
                )

    def __repr__(self) -> str:
        return f"ParamSpace({self.params_cls.__name__}, {list(self.params)})"

    # -- resolving an episode's parameters

    def sample(self, rng: np.random.Generator, split: str = "train") -> dict[str, Any]:
        if split not in SPLITS:
            raise RandomizationError(f"unknown split {split!r}; use one of {list(SPLITS)}")
        return {name: _plain(p.dist(split).sample(rng)) for name, p in self.params.items()}

    def nominal_values(self) -> dict[str, Any]:
        return {name: _plain(getattr(self.nominal, name)) for name in self.params}

    def check_pins(self, pins: Mapping[str, Any]) -> dict[str, Any]:
        """Validate pinned values; returns them as plain JSON values."""
        if not isinstance(pins, Mapping):
            raise RandomizationError(f"options['params'] must be a dict of name -> value, got {type(pins).__name__}")
        out = {}
        for name, value in pins.items():
            if name not in self.params:
                close = difflib.get_close_matches(str(name), list(self.params), n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise RandomizationError(
                    f"unknown parameter {name!r}{hint} (randomized parameters: {', '.join(self.params) or 'none'})"
                )
            p = self.params[name]
            if p.integer and isinstance(value, float) and value.is_integer():
                value = int(value)
            if not p.contains(value):
                raise RandomizationError(
                    f"parameter {name!r}={value!r} is outside its space: "
                    f"train {p.train.describe()}, held-out {p.heldout.describe()}"
                )
            out[name] = _plain(value)
        return out

    def resolve(self, rng: np.random.Generator, options: Mapping[str, Any] | None) -> tuple[Any, dict[str, Any]]:
        """Turn ``reset`` options into (Params instance, JSON dict of the values)."""
        options = dict(options or {})
        unknown = set(options) - {"params", "split", "randomize"}
        if unknown:
            raise RandomizationError(
                f"unknown reset option(s) {sorted(unknown)}; known: 'params', 'split', 'randomize'"
            )
        split = options.get("split", "train")
        if split not in SPLITS:
            raise RandomizationError(f"unknown split {split!r}; use 'train' or 'heldout'")
        randomize = options.get("randomize", True)
        if not isinstance(randomize, bool):
            raise RandomizationError(f"options['randomize'] must be True or False, got {randomize!r}")
        # Sample first, even when pinning: every episode consumes the rng the same way.
        values = self.sample(rng, split) if randomize else self.nominal_values()
        values.update(self.check_pins(options.get("params") or {}))
        return self.make(values), values

    def make(self, values: Mapping[str, Any]) -> Any:
        kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
        return dataclasses.replace(self.nominal, **kwargs)

    # -- description

    def to_json(self) -> dict[str, Any]:
        return {
            name: {
                "nominal": _plain(getattr(self.nominal, name)),
                "train": p.train.to_json(),
                "heldout": p.heldout.to_json(),
                "doc": p.doc,
            }
            for name, p in self.params.items()
        }


# --------------------------------------------------------------------------- ADR


class ADR:
    """Automatic domain randomization (OpenAI, "Solving Rubik's Cube", 2019)
    over any :class:`ParamSpace`.

    Each numeric parameter has a current range [lo, hi], starting at its nominal
    value and confined to its TRAIN support (ADR never reaches into held-out
    values, so the held-out test stays clean). With probability
    ``boundary_prob`` an episode pins one parameter at one end of its range;
    its success goes into that boundary's buffer. When a buffer holds
    ``buffer_size`` results, the mean decides: >= ``widen_at`` moves that end
    outward by ``step`` (a fraction of the train width, at least 1 for
    integers), <= ``narrow_at`` moves it inward (never past nominal); the
    buffer is then cleared. Categorical parameters are sampled from their train
    set. The whole state is JSON (:meth:`state_dict` / :meth:`from_state`).
    """

    def __init__(
        self,
        space: ParamSpace,
        *,
        boundary_prob: float = 0.5,
        buffer_size: int = 16,
        widen_at: float = 0.8,
        narrow_at: float = 0.4,
        step: float = 0.1,
    ) -> None:
        if not 0 <= boundary_prob <= 1:
            raise RandomizationError(f"boundary_prob must be in [0, 1], got {boundary_prob}")
        if not 0 <= narrow_at < widen_at <= 1:
            raise RandomizationError(f"need 0 <= narrow_at < widen_at <= 1, got {narrow_at}, {widen_at}")
        if buffer_size < 1 or step <= 0:
            raise RandomizationError("buffer_size must be >= 1 and step > 0")
        self.space = space
        self.boundary_prob = boundary_prob
        self.buffer_size = buffer_size
        self.widen_at = widen_at
        self.narrow_at = narrow_at
        self.step = step
        self.ranges: dict[str, list[float]] = {}
        self.buffers: dict[str, list[float]] = {}
        for name, p in space.params.items():
            if p.numeric:
                v = float(getattr(space.nominal, name))
                self.ranges[name] = [v, v]
                self.buffers[f"{name}:lo"] = []
                self.buffers[f"{name}:hi"] = []

    def _limits(self, name: str) -> tuple[float, float]:
        ivs = self.space.params[name].train.intervals()
        return min(lo for lo, _ in ivs), max(hi for _, hi in ivs)

    def _delta(self, name: str) -> float:
        lo, hi = self._limits(name)
        d = self.step * (hi - lo)
        return max(1.0, round(d)) if self.space.params[name].integer else d

    def _value(self, name: str, x: float) -> Any:
        return int(round(x)) if self.space.params[name].integer else float(x)

    def sample(self, rng: np.random.Generator) -> tuple[dict[str, Any], str | None]:
        """Values for one episode, and the boundary it tests (``"name:lo"``/``"name:hi"``) or None."""
        values: dict[str, Any] = {}
        for name, p in self.space.params.items():
            if name in self.ranges:
                lo, hi = self.ranges[name]
                x = rng.uniform(lo, hi) if hi > lo else lo
                values[name] = self._value(name, x)
            else:
                values[name] = _plain(p.train.sample(rng))
        boundary = None
        if self.ranges and rng.random() < self.boundary_prob:
            keys = sorted(self.buffers)
            boundary = keys[int(rng.integers(len(keys)))]
            name, side = boundary.split(":")
            values[name] = self._value(name, self.ranges[name][0 if side == "lo" else 1])
        # Every value is inside the train support (ranges never leave it), so pins always validate.
        return values, boundary

    def update(self, boundary: str | None, success: float) -> None:
        """Record how an episode sampled by :meth:`sample` went (success in [0, 1])."""
        if boundary is None:
            return
        if boundary not in self.buffers:
            raise RandomizationError(f"unknown ADR boundary {boundary!r}; known: {sorted(self.buffers)}")
        buf = self.buffers[boundary]
        buf.append(float(success))
        if len(buf) < self.buffer_size:
            return
        mean = sum(buf) / len(buf)
        buf.clear()
        name, side = boundary.split(":")
        lo_lim, hi_lim = self._limits(name)
        nominal = float(getattr(self.space.nominal, name))
        d = self._delta(name)
        lo, hi = self.ranges[name]
        if mean >= self.widen_at:
            lo, hi = (max(lo_lim, lo - d), hi) if side == "lo" else (lo, min(hi_lim, hi + d))
        elif mean <= self.narrow_at:
            lo, hi = (min(nominal, lo + d), hi) if side == "lo" else (lo, max(nominal, hi - d))
        self.ranges[name] = [lo, hi]

    def state_dict(self) -> dict[str, Any]:
        return {
            "config": {
                "boundary_prob": self.boundary_prob,
                "buffer_size": self.buffer_size,
                "widen_at": self.widen_at,
                "narrow_at": self.narrow_at,
                "step": self.step,
            },
            "ranges": {k: list(v) for k, v in self.ranges.items()},
            "buffers": {k: list(v) for k, v in self.buffers.items()},
        }

    @classmethod
    def from_state(cls, space: ParamSpace, state: Mapping[str, Any]) -> ADR:
        adr = cls(space, **state["config"])
        if set(state["ranges"]) != set(adr.ranges):
            raise RandomizationError(
                f"ADR state names parameters {sorted(state['ranges'])}, the space has {sorted(adr.ranges)}"
            )
        adr.ranges = {k: [float(a), float(b)] for k, (a, b) in state["ranges"].items()}
        adr.buffers = {k: [float(x) for x in v] for k, v in state["buffers"].items()}
        return adr

    def entropy(self) -> float:
        """Mean log-width of the current numeric ranges (OpenAI's ADR progress measure)."""
        if not self.ranges:
            return 0.0
        return float(np.mean([math.log(max(hi - lo, 1e-6)) for lo, hi in self.ranges.values()]))

