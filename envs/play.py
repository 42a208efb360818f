"""Play without a language model: random and oracle agents, one episode at a time.

Used by ``multiverse play``, ``multiverse envs check`` and the demo. An agent is
a callable ``(env, obs, info) -> action``; it draws any randomness from its own
generator, never from the env's, so the env's episode depends only on its seed,
parameters and the actions taken. An agent may raise :class:`Quit` (a person
stopping, see :mod:`multiverse.envs.human`): the episode ends there, unfinished.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np

from multiverse.envs.web.actions import TEXT_TEMPLATE

Agent = Callable[[gym.Env, Any, dict[str, Any]], Any]
AGENTS = ("random", "oracle")


class Quit(Exception):
    """Raised by an agent to stop playing; :func:`play_episode` returns the episode so far."""


#: words a random agent types into free-text templates such as ``type(5, <text>)``
RANDOM_WORDS = ("hello", "alice", "blue", "42", "search", "yes", "Paris", "test@example.com")


def random_agent(seed: int | None = None) -> Agent:
    """Uniform over the actions legal now; free-text templates get a random word."""
    rng = np.random.default_rng(seed)

    def act(env: gym.Env, obs: Any, info: dict[str, Any]) -> Any:
        legal = info["legal_actions"]
        if not legal:
            return env.action_space.sample()
        action = legal[int(rng.integers(len(legal)))]
        if isinstance(action, str) and TEXT_TEMPLATE in action:
            action = action.replace(TEXT_TEMPLATE, f'"{RANDOM_WORDS[int(rng.integers(len(RANDOM_WORDS)))]}"')
        return action

    return act


def oracle_agent(seed: int | None = None) -> Agent:
    """The env's scripted expert."""

    def act(env: gym.Env, obs: Any, info: dict[str, Any]) -> Any:
        return env.unwrapped.oracle_action()

    return act


def make_agent(name: str, seed: int | None = None) -> Agent:
    if name == "random":
        return random_agent(seed)
    if name == "oracle":
        return oracle_agent(seed)
    raise ValueError(f"unknown agent {name!r}; use one of {list(AGENTS)}")


@dataclasses.dataclass
class EpisodeStats:
    seed: int | None
    steps: int
    total_return: float
    success: bool
    terminated: bool
    truncated: bool
    action_errors: int
    randomization: dict[str, Any]
    seconds: float
    #: the agent stopped the episode before its end (a person quitting)
    quit: bool = False


def play_episode(
    env: gym.Env,
    agent: Agent,
    *,
    seed: int | None = None,
    options: dict[str, Any] | None = None,
    on_step: Callable[[Any, float, bool, bool, dict[str, Any]], None] | None = None,
) -> EpisodeStats:
    """Run one episode to its end (or until the agent raises :class:`Quit`);
    ``on_step(obs, reward, terminated, truncated, info)`` sees each step."""
    start = time.perf_counter()
    obs, info = env.reset(seed=seed, options=options)
    randomization = info["randomization"]
    steps, total, errors = 0, 0.0, 0
    terminated = truncated = quit = False
    while not (terminated or truncated):
        try:
            action = agent(env, obs, info)
        except Quit:
            quit = True
            break
        obs, reward, terminated, truncated, info = env.step(action)
        steps += 1
        total += float(reward)
        errors += "action_error" in info
        if on_step is not None:
            on_step(obs, reward, terminated, truncated, info)
    return EpisodeStats(
        seed=seed,
        steps=steps,
        total_return=total,
        success=bool(info.get("success", False)),
        terminated=terminated,
        truncated=truncated,
        action_errors=errors,
        randomization=randomization,
        seconds=time.perf_counter() - start,
        quit=quit,
    )
