"""Wrappers that let other libraries train on Multiverse games unchanged."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np


class NumericObservation(gym.ObservationWrapper):
    """Replace the text observation by a numeric one, for libraries such as
    RLlib that cannot take Text spaces.

    ``mode="state"``: the game's own fixed-shape array (``numeric_observation()``,
    same shape across all randomized variants). ``mode="pixels"``: the
    (H, W, 3) uint8 image. ``info`` (mission, legal actions, randomization) is
    passed through unchanged.
    """

    def __init__(self, env: gym.Env, mode: str = "state") -> None:
        super().__init__(env)
        if mode not in ("state", "pixels"):
            raise ValueError(f"mode must be 'state' or 'pixels', got {mode!r}")
        self.mode = mode
        if mode == "state":
            if not hasattr(env.unwrapped, "numeric_space"):
                raise TypeError(f"{env.unwrapped.spec.id if env.unwrapped.spec else env}: no numeric observation; use mode='pixels'")
            self.observation_space = env.unwrapped.numeric_space
        else:
            if "image" not in env.observation_space.spaces:
                raise ValueError("mode='pixels' needs an env made with pixels=True")
            self.observation_space = env.observation_space["image"]

    def observation(self, observation: dict[str, Any]) -> np.ndarray:
        if self.mode == "pixels":
            return observation["image"]
        return self.env.unwrapped.numeric_observation()
