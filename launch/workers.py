"""Ray actors: rollout workers with their envs and a policy replica, and the learner where it runs.

A :class:`Task` is a unit of rollout work: episode specs (env id, seed, reset
options) and a sampling seed. A worker runs it with
:func:`~multiverse.agents.rollout.run_episodes` over its own envs (built from
the ids, never pickled; a web env's Chromium lives in the worker process) and
returns the episodes. How many env instances per id a task uses depends only
on the task, so a task's episodes are the same whichever worker runs it: a run
is reproducible and ``--resume`` continues exactly.

:class:`WorkerPool` hands tasks to idle workers. New weights go into the object
store once per update (``ray.put``); each task carries the reference in a list,
so a worker fetches and loads them only when their version changed. A worker
that dies (killed, out of memory) loses the task it was running: the pool
counts those episodes, replaces the worker, and the iteration goes on with the
others' episodes. Past ``rollout.max_restarts`` replacements a dead worker is
dropped instead and the run goes on with the rest; with none left the pool
raises :class:`WorkerPoolError`, one line saying what to change.
"""

from __future__ import annotations

import dataclasses
import os
import random
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["EpisodeSummary", "LearnerService", "RolloutWorker", "Task", "TaskResult", "WorkerPool", "WorkerPoolError",
           "make_learner"]

THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


@dataclasses.dataclass
class Task:
    """Episodes for one worker call, in a fixed order, with the seed of the policy's sampling."""

    index: int
    specs: list[Any]  # list[EpisodeSpec]
    seed: int
    greedy: bool = False
    max_steps: int | None = None
    keep_episodes: bool = True
    """Return the full episodes (training); False returns only summaries (evaluation)."""


@dataclasses.dataclass
class EpisodeSummary:
    env_id: str
    seed: int
    success: bool
    return_: float
    length: int
    infra_error: str | None
    split: str = "train"
    """The randomization split the episode was reset with."""


@dataclasses.dataclass
class TaskResult:
    index: int
    summaries: list[EpisodeSummary]
    episodes: list[Any]  # list[Episode] with decisions, when the task keeps them
    seconds: float
    env_steps: int
    tokens: int
    worker: int


def _summary(ep: Any) -> EpisodeSummary:
    return EpisodeSummary(ep.env_id, ep.seed, bool(ep.success), ep.total_return, ep.length, ep.infra_error,
                          str(ep.options.get("split", "train")))


class _BrowserKillWrapper:
    """Test hook: SIGKILL this process's Chromium just before the env's n-th step (the real crash path)."""

    def __init__(self, env: Any, counter: list[int]) -> None:
        self.env, self.counter = env, counter

    def __getattr__(self, name: str) -> Any:
        return getattr(self.env, name)

    def reset(self, **kwargs: Any) -> Any:
        return self.env.reset(**kwargs)

    def step(self, action: Any) -> Any:
        self.counter[0] -= 1
        if self.counter[0] == 0:
            from multiverse.envs.web.browser import BrowserHost

            BrowserHost.get().kill()
        return self.env.step(action)


class RolloutWorker:
    """One rollout process: a policy replica and envs of every id it has been sent (see the module docstring)."""

    def __init__(self, index: int, model: dict[str, Any], policy: dict[str, Any], value_head: bool,
                 envs_per_id: int, torch_threads: int) -> None:
        for var in THREAD_VARS:
            os.environ[var] = str(torch_threads)
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
        os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
        import torch
        from multiverse.agents.learner import config_from_dict
        from multiverse.agents.models import build_model
        from multiverse.agents.policy import Policy

        torch.set_num_threads(torch_threads)
        cfg = config_from_dict({"model": model, "policy": policy})
        loaded = build_model(cfg.model)
        self.policy = Policy(loaded.model, loaded.tokenizer, cfg.policy, value_head=value_head).for_rollout()
        self.index, self.envs_per_id = index, envs_per_id
        self.version = -1
        self.envs: dict[str, list[Any]] = {}
        self._kill_after: list[int] | None = None

    def ready(self) -> int:
        """The worker's process id, once it is built."""
        return os.getpid()

    def _envs_for(self, specs: Sequence[Any]) -> tuple[list[Any], list[str]]:
        import multiverse.envs as menvs

        need: dict[str, int] = {}
        for s in specs:
            need[s.env_id] = need.get(s.env_id, 0) + 1
        envs, ids = [], []
        for env_id, n in need.items():
            pool = self.envs.setdefault(env_id, [])
            k = min(self.envs_per_id, n)
            while len(pool) < k:
                pool.append(menvs.make(env_id))
            envs += pool[:k]
            ids += [env_id] * k
        if self._kill_after is not None and any(menvs.lookup(i).kind == "web" for i in ids):
            envs = [_BrowserKillWrapper(e, self._kill_after) if menvs.lookup(i).kind == "web" else e
                    for e, i in zip(envs, ids)]
            self._kill_after = None
        return envs, ids

    def run(self, task: Task, version: int, weights: list[Any]) -> TaskResult:
        """Run a task with the weights of ``version`` (``weights[0]`` is their object reference)."""
        import ray
        from multiverse.agents.rollout import run_episodes

        if version != self.version:
            self.policy.set_weights(ray.get(weights[0]))
            self.version = version
        start = time.perf_counter()
        envs, ids = self._envs_for(task.specs)
        episodes = run_episodes(self.policy, envs, task.specs, greedy=task.greedy, seed=task.seed,
                                max_steps=task.max_steps, env_ids=ids)
        seconds = time.perf_counter() - start
        steps = sum(ep.length for ep in episodes)
        tokens = 0
        for ep in episodes:
            for s in ep.steps:
                if s.decision is not None:
                    d = s.decision
                    tokens += len(d.prompt_ids) + sum(len(b) for b in d.candidates.blocks) + len(d.gen_ids)
        return TaskResult(task.index, [_summary(e) for e in episodes], episodes if task.keep_episodes else [],
                          seconds, steps, tokens, self.index)

    def weights_version(self) -> tuple[int, float]:
        """(version of the weights loaded, sum of their absolute values): lets tests check the broadcast."""
        return self.version, float(sum(w.abs().sum() for w in self.policy.get_weights().values()))

    # -- fault-test hooks

    def browser_pids(self) -> list[int]:
        from multiverse.envs.web.browser import BrowserHost

        return BrowserHost.get().pids()

    def arm_browser_kill(self, after_steps: int) -> None:
        """Kill this worker's Chromium before the ``after_steps``-th web env step of its next task with web envs."""
        self._kill_after = [int(after_steps)]

    def close(self) -> None:
        for pool in self.envs.values():
            for env in pool:
                env.close()
        self.envs.clear()


def _actor_died_errors() -> tuple[type[BaseException], ...]:
    import ray.exceptions as rex

    return tuple(c for c in (getattr(rex, "RayActorError", None), getattr(rex, "OutOfMemoryError", None),
                             getattr(rex, "WorkerCrashedError", None), getattr(rex, "ObjectLostError", None)) if c)


class WorkerPoolError(RuntimeError):
    """Every rollout worker died and none may be replaced: the message says what to change."""


class WorkerPool:
    """Rollout workers, the weights they act with, and fault handling (see the module docstring)."""

    def __init__(self, n: int, init_kwargs: dict[str, Any], *, num_cpus: float, torch_threads: int,
                 max_restarts: int) -> None:
        import ray

        self._remote = ray.remote(RolloutWorker)
        self.init_kwargs, self.num_cpus, self.max_restarts = init_kwargs, num_cpus, max_restarts
        self.env_vars = {var: str(torch_threads) for var in THREAD_VARS} | {
            "SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy", "TOKENIZERS_PARALLELISM": "false"}
        self.handles = [self._new(i) for i in range(n)]
        self._ready = [h.ready.remote() for h in self.handles]
        ray.get(self._ready)  # fail here, not mid-iteration, if a worker cannot start
        self.version, self.weights_ref = -1, None
        self.restarts = 0
        self.dropped: set[int] = set()  # dead workers past rollout.max_restarts: never sent a task again

    def _new(self, index: int) -> Any:
        return self._remote.options(num_cpus=self.num_cpus, max_restarts=0, max_task_retries=0,
                                    runtime_env={"env_vars": self.env_vars}).remote(index, **self.init_kwargs)

    def broadcast(self, weights: Any) -> None:
        """New weights for every worker: ``weights`` is a dict of tensors or already an object reference."""
        import ray

        self.weights_ref = weights if isinstance(weights, ray.ObjectRef) else ray.put(weights)
        self.version += 1

    def _replace(self, index: int) -> bool:
        """A new worker in dead worker ``index``'s place; False (it is dropped) once rollout.max_restarts is used up."""
        import ray

        if self.max_restarts >= 0 and self.restarts >= self.max_restarts:
            self.dropped.add(index)
            left = len(self.handles) - len(self.dropped)
            why = (f"rollout worker {index} died; not replaced (rollout.max_restarts={self.max_restarts}, "
                   f"{self.restarts} replaced so far)")
            if not left:
                raise WorkerPoolError(f"{why} and no rollout worker is left; raise rollout.max_restarts (-1: replace "
                                      f"every dead worker), or look for why workers die (memory?)")
            print(f"multiverse: {why}; going on with {left} workers", file=sys.stderr, flush=True)
            return False
        try:
            ray.kill(self.handles[index], no_restart=True)
        except Exception:
            pass
        self.handles[index] = self._new(index)
        self._ready[index] = self.handles[index].ready.remote()
        self.restarts += 1
        return True

    @property
    def pids(self) -> list[int]:
        """The workers' process ids (waits for a replaced worker to be up)."""
        import ray

        return ray.get(self._ready)

    def run(self, tasks: Sequence[Task], on_dispatch: Callable[[WorkerPool], None] | None = None
            ) -> tuple[list[TaskResult | None], dict[str, int]]:
        """Run every task on the workers; results in task order (None for a task lost with its worker)."""
        import ray

        died = _actor_died_errors()
        queue = deque(tasks)
        idle = deque(i for i in range(len(self.handles)) if i not in self.dropped)
        inflight: dict[Any, tuple[int, Task]] = {}
        results: list[TaskResult | None] = [None] * len(tasks)
        position = {id(t): i for i, t in enumerate(tasks)}
        stats = {"episodes_lost": 0, "tasks_lost": 0, "workers_restarted": 0}
        box = [self.weights_ref]
        dispatched = False
        while queue or inflight:
            while queue and idle:
                w, task = idle.popleft(), queue.popleft()
                inflight[self.handles[w].run.remote(task, self.version, box)] = (w, task)
            if on_dispatch is not None and not dispatched:
                dispatched = True
                on_dispatch(self)
            done, _ = ray.wait(list(inflight), num_returns=1)
            for ref in done:
                w, task = inflight.pop(ref)
                try:
                    results[position[id(task)]] = ray.get(ref)
                except died:
                    stats["episodes_lost"] += len(task.specs)
                    stats["tasks_lost"] += 1
                    if any(v[0] == w for v in inflight.values()):
                        continue  # calls queued on the dead worker fail too; replace it once
                    if not self._replace(w):
                        continue
                    stats["workers_restarted"] += 1
                idle.append(w)
        return results, stats

    def call_all(self, method: str, *args: Any) -> list[Any]:
        import ray

        return ray.get([getattr(h, method).remote(*args) for h in self.handles])

    def close(self) -> None:
        import ray

        try:
            ray.get([h.close.remote() for i, h in enumerate(self.handles) if i not in self.dropped], timeout=30)
        except Exception:
            pass
        for h in self.handles:
            try:
                ray.kill(h)
            except Exception:
                pass


# --------------------------------------------------------------------------- the learner


class LearnerService:
    """The learner and its update loop, in the driver or inside an actor (same methods either way)."""

    def __init__(self, learner_config: dict[str, Any], loss_config: dict[str, Any], threads: int | None) -> None:
        import torch
        from multiverse.agents.learner import Learner, config_from_dict
        from multiverse.agents.losses import PPOConfig, PPOLoss

        if threads:
            torch.set_num_threads(threads)
        self.learner = Learner(config_from_dict(learner_config))
        self.loss_fn = PPOLoss(PPOConfig(**loss_config))

    def update(self, samples: list[Any], epochs: int, minibatch: int, seed: int) -> dict[str, float]:
        from multiverse.agents.train_local import ppo_update

        return ppo_update(self.learner, samples, self.loss_fn, epochs=epochs, minibatch=minibatch,
                          rng=random.Random(seed))

    def get_weights(self) -> dict[str, Any]:
        return self.learner.get_weights()

    def save(self, path: str) -> None:
        self.learner.save(path)

    def load(self, path: str) -> None:
        self.learner.load(path)

    def step(self) -> int:
        return self.learner.step

    def where(self) -> str:
        import socket

        return f"{socket.gethostname()} pid {os.getpid()}"


class LearnerHandle:
    """Calls a :class:`LearnerService` directly or through its actor; ``weights()`` is a ref when remote."""

    def __init__(self, service: Any, actor: bool) -> None:
        self.service, self.actor = service, actor

    def call(self, method: str, *args: Any) -> Any:
        import ray

        if self.actor:
            return ray.get(getattr(self.service, method).remote(*args))
        return getattr(self.service, method)(*args)

    def weights(self) -> Any:
        """The trainable weights: an object reference (actor) or the tensors (driver)."""
        return self.service.get_weights.remote() if self.actor else self.service.get_weights()

    def close(self) -> None:
        import ray

        if self.actor:
            ray.kill(self.service)


def make_learner(learner_config: dict[str, Any], loss_config: dict[str, Any], *, placement: str, gpus: float,
                 threads: int | None) -> tuple[LearnerHandle, str]:
    """The learner in the driver, or in an actor (``auto``: an actor with a GPU when the cluster has one)."""
    import ray

    if placement == "auto":
        placement = "actor" if ray.cluster_resources().get("GPU", 0) >= max(gpus, 1e-9) and gpus > 0 else "driver"
    if placement == "driver":
        return LearnerHandle(LearnerService(learner_config, loss_config, threads), actor=False), "driver"
    have = ray.cluster_resources().get("GPU", 0)
    if gpus > have:  # an actor waiting for a GPU that is not there would hang the run
        from multiverse.launch.config import ConfigError

        raise ConfigError(f"ray.learner=actor asks for ray.learner_gpus={gpus:g} GPUs but the cluster has {have:g}; "
                         f"set ray.learner_gpus=0 (a CPU actor), ray.learner=driver, or add GPU nodes")
    actor = ray.remote(LearnerService).options(num_gpus=gpus, num_cpus=1, max_restarts=0).remote(
        learner_config, loss_config, threads)
    handle = LearnerHandle(actor, actor=True)
    return handle, f"actor ({handle.call('where')}, {gpus:g} GPU)"
