"""Rollout workers for tests: subclasses of the real worker (the pool takes a worker class), which probe it or inject
faults through the real paths (a SIGKILLed process, ray.kill, a killed Chromium)."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import ray

from multiverse.launch.workers import RolloutWorker

# Ray's worker processes cannot import tests/: the classes of this module travel by value
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])


class ProbeWorker(RolloutWorker):
    def weights_version(self) -> tuple[int, float]:
        """(version of the weights loaded, sum of their absolute values): what the broadcast delivered."""
        return self.version, float(sum(w.abs().sum() for w in self.policy.get_weights().values()))


class _KillChromiumFirst(gym.Wrapper):
    """SIGKILL this process's Chromium just before the wrapped env's next step, once for all the wrapped envs."""

    def __init__(self, env: gym.Env, fired: list[bool]) -> None:
        super().__init__(env)
        self.fired = fired

    def step(self, action: Any) -> Any:
        if not self.fired[0]:
            from multiverse.envs.web.browser import BrowserHost

            self.fired[0] = True
            BrowserHost.get().kill()
        return self.env.step(action)


class FaultyWorker(RolloutWorker):
    """Faults by the weights' version a training task runs with (version v: iteration v + 1), each once per run
    (a marker file in ``marker_dir``, since a replaced worker is a new process):

    * from ``chromium_from`` on, each worker kills its Chromium before the first web step of its first training
      task with web envs (a replacement does not: the worker did): those episodes end with ``infra_error``;
    * at ``sigkill`` = (worker, version), that worker SIGKILLs its own process as its task starts;
    * at ``ray_kill`` = (worker, version), that worker is ended through ``ray.kill`` as its task starts."""

    marker_dir: str = ""
    chromium_from: int | None = None
    sigkill: tuple[int, int] | None = None
    ray_kill: tuple[int, int] | None = None

    def _once(self, name: str) -> bool:
        marker = Path(self.marker_dir) / name
        if marker.exists():
            return False
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(str(os.getpid()))
        return True

    def run(self, task: Any, version: int, weights: list[Any]) -> Any:
        import multiverse.envs as menvs

        if not task.greedy:
            if (self.index, version) == self.sigkill and self._once("sigkill"):
                os.kill(os.getpid(), signal.SIGKILL)
            if (self.index, version) == self.ray_kill and self._once("ray_kill"):
                ray.kill(ray.get_runtime_context().current_actor, no_restart=True)
                time.sleep(600)  # dies here, its task in flight
            web = {s.env_id for s in task.specs if menvs.lookup(s.env_id).kind == "web"}
            if (self.chromium_from is not None and version >= self.chromium_from and web
                    and self._once(f"chromium-{self.index}")):
                fired = [False]
                self.envs.for_specs(task.specs)  # make the task's envs, then wrap the web ones in place
                for env_id in web:
                    self.envs.envs[env_id] = [_KillChromiumFirst(e, fired) for e in self.envs.envs[env_id]]
        return super().run(task, version, weights)


def faulty_worker(marker_dir: Path, **faults: Any) -> type[FaultyWorker]:
    """A :class:`FaultyWorker` class with these faults (``chromium_from``, ``sigkill``, ``ray_kill``)."""
    return type("FaultyWorker", (FaultyWorker,), {"marker_dir": str(marker_dir), **faults})
