"""RLlib on Multiverse games: the from-scratch baseline.

RLlib cannot take Text observations, so :func:`register_rllib_env` registers a
game with Ray's env registry behind :class:`~multiverse.envs.wrappers.NumericObservation`
(the state array of a :class:`~multiverse.envs.wrappers.NumericObservable` game, or
pixels). RLlib's PPO then trains it unchanged:

    name = register_rllib_env("games/Catch-v0")
    config = PPOConfig().environment(name)
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
from ray.tune.registry import register_env

from multiverse import envs
from multiverse.envs.registry import entry_point_class
from multiverse.envs.wrappers import NumericObservable, NumericObservation, no_numeric_observation


def register_rllib_env(env_id: str, *, mode: str = "state", env_options: dict[str, Any] | None = None) -> str:
    """Register ``env_id`` for RLlib under ``multiverse:<id>:<mode>``; returns that name.

    ``env_options`` are ``reset`` options applied to every episode (e.g.
    ``{"split": "heldout"}``); RLlib's ``env_config`` may override them per runner.
    """
    spec = envs.lookup(env_id)  # unknown ids, and envs without a numeric state, fail here, not inside a Ray worker
    cls = entry_point_class(spec)
    if mode == "state" and isinstance(cls, type) and not issubclass(cls, NumericObservable):
        raise ValueError(f"{env_id}: {no_numeric_observation(cls)}")
    name = f"multiverse:{env_id}:{mode}"

    def creator(env_config: dict[str, Any]) -> NumericObservation:
        env = envs.make(env_id, pixels=(mode == "pixels"))
        options = dict(env_options or {}, **env_config.get("reset_options", {}))
        wrapped = NumericObservation(env, mode=mode)
        if options:
            wrapped = _WithResetOptions(wrapped, options)
        return wrapped

    register_env(name, creator)
    return name


class _WithResetOptions(gym.Wrapper):
    """Apply fixed reset options (split, pinned params) to every episode."""

    def __init__(self, env: Any, options: dict[str, Any]) -> None:
        super().__init__(env)
        self._options = options

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        return self.env.reset(seed=seed, options={**self._options, **(options or {})})
