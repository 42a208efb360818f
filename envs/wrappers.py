"""Numeric views of Multiverse games, for libraries such as RLlib that cannot take Text spaces.

A game that offers its state as a fixed-shape array inherits :class:`NumericObservable`;
:class:`NumericObservation` wraps any env in that view (or in its pixels).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

__all__ = ["NumericObservable", "NumericObservation"]


class NumericObservable:
    """Mixin of an env that also offers its state as a fixed-shape float32 array (optional; RLlib trains on it).

    The env sets ``numeric_space`` in ``__init__``, a ``Box`` of one shape across all randomized variants
    (pad to the largest board), and implements :meth:`numeric_observation`.
    """

    #: the Box that numeric_observation() returns values in; the same shape for every variant
    numeric_space: spaces.Box

    def numeric_observation(self) -> np.ndarray:
        """The current state as a float32 array in ``numeric_space``."""
        raise NotImplementedError


class NumericObservation(gym.ObservationWrapper):
    """Replace the text observation by a numeric one, for libraries such as
    RLlib that cannot take Text spaces.

    ``mode="state"``: the env's own fixed-shape array (a :class:`NumericObservable`'s
    ``numeric_observation()``, same shape across all randomized variants). ``mode="pixels"``: the
    (H, W, 3) uint8 image. ``info`` (mission, legal actions, randomization) is
    passed through unchanged.
    """

    def __init__(self, env: gym.Env, mode: str = "state") -> None:
        super().__init__(env)
        if mode not in ("state", "pixels"):
            raise ValueError(f"mode must be 'state' or 'pixels', got {mode!r}")
        self.mode = mode
        if mode == "state":
            if not isinstance(env.unwrapped, NumericObservable):
                raise TypeError(no_numeric_observation(env.unwrapped))
            self.observation_space = env.unwrapped.numeric_space
        else:
            if "image" not in env.observation_space.spaces:
                raise ValueError("mode='pixels' needs an env made with pixels=True")
            self.observation_space = env.observation_space["image"]

    def observation(self, observation: dict[str, Any]) -> np.ndarray:
        if self.mode == "pixels":
            return observation["image"]
        return self.env.unwrapped.numeric_observation()


def no_numeric_observation(env: Any) -> str:
    """The one line saying that ``env`` (an env or its class) has no numeric state observation, and what to do."""
    cls = env if isinstance(env, type) else type(env)
    spec = getattr(env, "spec", None) if not isinstance(env, type) else None
    where = f"{spec.id}: {cls.__qualname__}" if spec is not None else cls.__qualname__
    return (f"{where} offers no numeric observation (it does not inherit multiverse.envs.wrappers.NumericObservable); "
            "use mode='pixels' with pixels=True, or give the env numeric_space and numeric_observation() with that mixin")
