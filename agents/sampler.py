"""Which envs and variants each iteration trains on: mixture weights, a learning-progress curriculum, ADR.

:class:`EnvSampler` splits an iteration's groups over the env ids. With
``curriculum="learning_progress"`` a share of the distribution goes to envs
whose success rate is changing: each env keeps a fast and a slow moving average
of its training success, and its learning progress is their absolute
difference (rising or falling: either way there is something to learn or to
relearn). Envs not seen yet keep their mixture weight. Counts are allocated by
largest remainder, so an env with weight w gets about w of the groups every
iteration rather than only on average.

:class:`ADRBank` holds one :class:`~multiverse.envs.randomization.ADR` per env
id (from the env's declared space): each group's parameters come from it, and
every finished episode that tested a boundary moves it.

All state is plain JSON (``state_dict`` / ``load_state_dict``), so resuming a
run continues the same sampling.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["ADRBank", "EnvSampler"]


class EnvSampler:
    """Mixture weights plus learning progress (see the module docstring)."""

    def __init__(
        self, weights: Mapping[str, float], *, curriculum: str = "learning_progress", mix: float = 0.5,
        fast: float = 0.5, slow: float = 0.1,
    ) -> None:
        if curriculum not in ("none", "learning_progress"):
            raise ValueError(f"curriculum must be 'none' or 'learning_progress', got {curriculum!r}")
        total = float(sum(weights.values()))
        if not total > 0:
            raise ValueError("the mixture weights must sum to more than 0")
        self.weights = {k: float(v) / total for k, v in weights.items()}
        self.curriculum, self.mix, self.fast_rate, self.slow_rate = curriculum, mix, fast, slow
        self.fast: dict[str, float] = {}
        self.slow: dict[str, float] = {}

    def progress(self, env_id: str) -> float | None:
        """|fast - slow| moving averages of success, None before the env's first results."""
        if env_id not in self.fast:
            return None
        return abs(self.fast[env_id] - self.slow[env_id])

    def probabilities(self) -> dict[str, float]:
        """The share of groups each env id gets next."""
        if self.curriculum == "none" or self.mix == 0:
            return dict(self.weights)
        lp = {k: self.progress(k) for k in self.weights}
        seen = [v for v in lp.values() if v is not None]
        if not seen or not sum(seen) > 0:
            return dict(self.weights)
        # Unseen envs count as making the most progress seen, so the curriculum does not starve them.
        score = {k: self.weights[k] * (v if v is not None else max(seen)) for k, v in lp.items()}
        total = sum(score.values())
        return {k: (1 - self.mix) * self.weights[k] + self.mix * score[k] / total for k in self.weights}

    def allocate(self, n_groups: int, rng: random.Random) -> list[str]:
        """Env id of each of ``n_groups`` groups: largest-remainder counts, remainders drawn at random, shuffled."""
        probs = self.probabilities()
        ids = list(probs)
        exact = [n_groups * probs[k] for k in ids]
        counts = [math.floor(x) for x in exact]
        left = n_groups - sum(counts)
        rest = [x - c for x, c in zip(exact, counts)]
        while left > 0:
            i = rng.choices(range(len(ids)), weights=[r if r > 0 else 0.0 for r in rest])[0] if sum(rest) > 0 else rng.randrange(len(ids))
            counts[i] += 1
            rest[i] = 0.0
            left -= 1
        out = [k for k, c in zip(ids, counts) for _ in range(c)]
        rng.shuffle(out)
        return out

    def update(self, env_id: str, success_rate: float) -> None:
        """Record an iteration's training success rate of one env."""
        if env_id not in self.weights or math.isnan(success_rate):
            return
        if env_id not in self.fast:
            self.fast[env_id] = self.slow[env_id] = float(success_rate)
            return
        self.fast[env_id] += self.fast_rate * (success_rate - self.fast[env_id])
        self.slow[env_id] += self.slow_rate * (success_rate - self.slow[env_id])

    def state_dict(self) -> dict[str, Any]:
        return {"fast": dict(self.fast), "slow": dict(self.slow)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.fast = {k: float(v) for k, v in state["fast"].items() if k in self.weights}
        self.slow = {k: float(v) for k, v in state["slow"].items() if k in self.weights}


class ADRBank:
    """One ADR per env id whose space has numeric parameters (see the module docstring)."""

    def __init__(self, env_ids: Sequence[str], pins: Mapping[str, Mapping[str, Any]], *, step: float, buffer: int) -> None:
        from multiverse import envs
        from multiverse.envs.randomization import ADR

        self.pins = {k: dict(v) for k, v in pins.items()}
        self.adrs: dict[str, Any] = {}
        self.spaces: dict[str, Any] = {}
        for env_id in env_ids:
            space = envs.randomization_space(env_id)
            adr = ADR(space, step=step, buffer_size=buffer)
            if adr.ranges:
                self.adrs[env_id], self.spaces[env_id] = adr, space

    def sample(self, env_id: str, rng: np.random.Generator) -> tuple[dict[str, Any] | None, str | None]:
        """(parameter values, boundary tested) for one group; (None, None) for an env without ADR."""
        adr = self.adrs.get(env_id)
        if adr is None:
            return None, None
        values, boundary = adr.sample(rng)
        pins = self.pins.get(env_id, {})
        values.update(pins)
        if boundary is not None and boundary.split(":")[0] in pins:
            boundary = None  # a pinned parameter's boundary is not being tested
        return values, boundary

    def update(self, env_id: str, boundary: str | None, success: float) -> None:
        if boundary is not None and env_id in self.adrs:
            self.adrs[env_id].update(boundary, success)

    def metrics(self) -> dict[str, float]:
        return {f"adr/entropy/{k}": adr.entropy() for k, adr in self.adrs.items()}

    def state_dict(self) -> dict[str, Any]:
        return {k: adr.state_dict() for k, adr in self.adrs.items()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        from multiverse.envs.randomization import ADR

        for k, s in state.items():
            if k in self.spaces:
                self.adrs[k] = ADR.from_state(self.spaces[k], s)
