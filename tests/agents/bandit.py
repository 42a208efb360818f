"""A one-step contextual bandit following the Multiverse env contract, for the learning test."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
from gymnasium import spaces

SIGNALS = {"red": "stop", "green": "walk"}
ACTIONS = ["stop", "walk", "wait"]
MISSION = "Obey the traffic light."


class SignalBandit(gym.Env):
    """Reset shows a light (red or green, from the seed); the one step is rewarded 1 for the matching
    action (red: stop, green: walk), 0 otherwise. ``info`` follows the Multiverse contract."""

    def __init__(self) -> None:
        self.observation_space = spaces.Dict({"text": spaces.Text(256)})
        self.action_space = spaces.Discrete(len(ACTIONS))
        self.light = "red"

    def _info(self) -> dict[str, Any]:
        return {"mission": MISSION, "legal_actions": list(ACTIONS), "randomization": {"light": self.light}}

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.light = "red" if self.np_random.random() < 0.5 else "green"
        # The colour is repeated so that it is a large share of the tiny model's short prompt: a random
        # 2-layer model attends almost uniformly at first, and this keeps the learning test fast and robust.
        return {"text": f"{MISSION}\nThe light is {self.light}: " + " ".join([self.light] * 8)}, self._info()

    def step(self, action: Any):
        info = self._info()
        if action not in ACTIONS:
            info["action_error"] = f"unknown action {action!r}"
        success = action == SIGNALS[self.light]
        info["success"] = success
        return {"text": f"{MISSION}\nDone."}, float(success), True, False, info
