"""The author checks fail on envs that break the contract (so a green check means something)."""

from __future__ import annotations

from typing import Any

import pytest

import multiverse.envs as menvs
from multiverse.envs.checks import check_env_id
from multiverse.envs.games.catch import CatchEnv


class Nondeterministic(CatchEnv):
    """Catch whose balls spawn from a global, unseeded source."""

    def _spawn(self) -> None:
        import random

        self.ball = [random.randrange(self.params.width), 0]


class NoSuccessInfo(CatchEnv):
    """Catch that forgets info['success'] at the end."""

    def step(self, action: Any):
        obs, r, term, trunc, info = super().step(action)
        info.pop("success", None)
        return obs, r, term, trunc, info


class RaisesOnBadAction(CatchEnv):
    """Catch that raises instead of reporting an action_error."""

    def step(self, action: Any):
        if not isinstance(action, (int, str)) or isinstance(action, bool):
            raise TypeError("bad action")
        return super().step(action)


class BadOracle(CatchEnv):
    """Catch whose oracle runs away from the ball."""

    def oracle_action(self) -> int:
        return 2 - super().oracle_action()


class LeaksHeldout(CatchEnv):
    """Catch that ignores the split and always plays a held-out width."""

    def _new_episode(self) -> None:
        self.randomization = dict(self.randomization, width=11)
        super()._new_episode()


class IgnoresSeed(CatchEnv):
    """Catch that plays the same episode whatever the seed."""

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        return super().reset(seed=0, options=options)


@pytest.mark.parametrize(
    "cls, check, expect",
    [
        (Nondeterministic, "determinism", "differs between two runs"),
        (NoSuccessInfo, "info", "no bool 'success'"),
        (RaisesOnBadAction, "illegal-actions", "raised TypeError"),
        (BadOracle, "oracle", "oracle success"),
        (LeaksHeldout, "randomization", "width=11 outside"),
        (IgnoresSeed, "randomization", "the same first observation"),
    ],
)
def test_check_catches_a_broken_env(cls: type, check: str, expect: str) -> None:
    env_id = f"testbroken/{cls.__name__}-v0"
    menvs.register(env_id, cls, kind="game", max_episode_steps=100, replace=True)
    (result,) = check_env_id(env_id, seeds=20, only=[check])
    assert not result.ok and expect in result.detail, result.detail
    # the same check passes on the real game, so it is the breakage that fails it
    (good,) = check_env_id("games/Catch-v0", seeds=20, only=[check])
    assert good.ok, good.detail
