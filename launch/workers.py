"""Ray actors: the rollout worker pool the loop runs its tasks on, and the learner in an actor.

:class:`WorkerPool` is :mod:`multiverse.agents.loop`'s rollout (the
:class:`~multiverse.agents.rollout.Rollout` protocol) on Ray. Each
:class:`RolloutWorker` holds a policy replica and its own envs (built from the
ids, never pickled; a web env's Chromium lives in the worker process) and runs
a task with :func:`~multiverse.agents.rollout.run_task`, as the in-process
rollout does, so a task's episodes are the same whichever worker (or process)
runs it: a run is reproducible and ``--resume`` continues exactly.

A worker may hold a share of a GPU (``rollout.worker_gpus``: Ray's fractional ``num_gpus``, so 0.25 puts four
replicas on one GPU); with ``model.device: auto`` its replica then sits on that GPU (Ray makes it the worker's
only visible CUDA device) and scores its envs' turns in batched forwards there. A worker that holds a GPU its
torch cannot use (a CPU build of torch, or Ray told of a GPU that is not there) says so in one line and acts on
the CPU. Weights travel as CPU tensors (the learner's ``get_weights``), so a replica on either device loads
them (``set_weights`` copies each onto the replica's device).

The pool hands tasks to idle workers. New weights go into the object store once
per update (``ray.put``); each task carries the reference in a list, so a
worker fetches and loads them only when their version changed. A worker that
dies (killed, out of memory) loses the task it was running: the pool counts
those episodes, replaces the worker, and the iteration goes on with the
others' episodes. Past ``rollout.max_restarts`` replacements a dead worker is
dropped instead and the run goes on with the rest; with none left the pool
raises :class:`WorkerPoolError`, one line saying what to change. The pool
takes the worker class (a test passes a subclass that injects faults).

:class:`ActorLearner` is the :class:`~multiverse.agents.update.LocalLearner`
inside an actor, behind the same methods (:func:`make_learner` picks one).
"""

from __future__ import annotations

import os
import sys
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from multiverse.agents.learner import LearnerConfig, Sample
from multiverse.agents.losses import PPOConfig
from multiverse.agents.rollout import NO_FAULTS, EnvPool, Task, TaskResult, run_task
from multiverse.agents.update import LearnerHandle, LocalLearner

__all__ = ["ActorLearner", "RolloutWorker", "WorkerPool", "WorkerPoolError", "make_learner", "place_learner"]

THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


class RolloutWorker:
    """One rollout process: a policy replica and envs of every id it has been sent (see the module docstring)."""

    def __init__(self, index: int, config: LearnerConfig, envs_per_id: int, torch_threads: int) -> None:
        for var in THREAD_VARS:
            os.environ[var] = str(torch_threads)
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
        os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
        import torch

        from multiverse.agents.models import build_model
        from multiverse.agents.policy import Policy

        torch.set_num_threads(torch_threads)
        loaded = build_model(config.model)
        self.policy = Policy(loaded.model, loaded.tokenizer, config.policy,
                             value_head=config.model.value_head).for_rollout()
        self.index, self.version = index, -1
        self.envs = EnvPool(envs_per_id)
        self.fallback = _gpu_fallback(index, config.model.device, loaded.device)
        if self.fallback:
            print(f"multiverse: {self.fallback}", file=sys.stderr, flush=True)

    def ready(self) -> int:
        """The worker's process id, once it is built."""
        return os.getpid()

    def where(self) -> str:
        """Where the replica acts: its device, marked when the worker holds a GPU that torch cannot use."""
        return str(self.policy.device) + (" (its GPU unused: torch sees no CUDA)" if self.fallback else "")

    def run(self, task: Task, version: int, weights: list[Any]) -> TaskResult:
        """Run a task with the weights of ``version`` (``weights[0]`` is their object reference)."""
        import ray

        if version != self.version:
            self.policy.set_weights(ray.get(weights[0]))
            self.version = version
        return run_task(self.policy, self.envs, task, worker=self.index)

    def close(self) -> None:
        self.envs.close()


def _gpu_fallback(index: int, device: str, placed: Any) -> str | None:
    """The line a worker says when it holds GPUs (Ray's ids) but its replica, asked for on ``auto``, is on the CPU."""
    import ray
    import torch

    ids = ray.get_gpu_ids() if ray.is_initialized() else []  # a worker built outside Ray (a benchmark) holds none
    if not ids or device != "auto" or placed.type != "cpu":
        return None
    return (f"rollout worker {index} holds GPU {', '.join(str(i) for i in ids)} but torch {torch.__version__} sees no "
            f"CUDA device there (CUDA build: {torch.version.cuda or 'none'}), so its policy replica runs on the CPU; "
            f"install a CUDA build of torch on the GPU nodes, or set rollout.worker_gpus=0")


def _actor_died_errors() -> tuple[type[BaseException], ...]:
    import ray.exceptions as rex

    return tuple(c for c in (getattr(rex, "RayActorError", None), getattr(rex, "OutOfMemoryError", None),
                             getattr(rex, "WorkerCrashedError", None), getattr(rex, "ObjectLostError", None)) if c)


class WorkerPoolError(RuntimeError):
    """Every rollout worker died and none may be replaced: the message says what to change."""


class WorkerPool:
    """Rollout workers, the weights they act with, and fault handling (see the module docstring)."""

    def __init__(self, n: int, config: LearnerConfig, *, envs_per_id: int, num_cpus: float, torch_threads: int,
                 max_restarts: int, num_gpus: float = 0.0, worker_cls: type[RolloutWorker] = RolloutWorker) -> None:
        import ray

        self._remote = ray.remote(worker_cls)
        self.init_args = (config, envs_per_id, torch_threads)
        self.num_cpus, self.num_gpus, self.max_restarts = num_cpus, num_gpus, max_restarts
        self.env_vars = {var: str(torch_threads) for var in THREAD_VARS} | {
            "SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy", "TOKENIZERS_PARALLELISM": "false",
            "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE")}  # see multiverse/__init__.py
        self.handles = [self._new(i) for i in range(n)]
        self._ready = [h.ready.remote() for h in self.handles]
        ray.get(self._ready)  # fail here, not mid-iteration, if a worker cannot start
        self.version, self.weights_ref = -1, None
        self.restarts = 0
        self.dropped: set[int] = set()  # dead workers past rollout.max_restarts: never sent a task again

    def _new(self, index: int) -> Any:
        return self._remote.options(num_cpus=self.num_cpus, num_gpus=self.num_gpus, max_restarts=0,
                                    max_task_retries=0, runtime_env={"env_vars": self.env_vars}
                                    ).remote(index, *self.init_args)

    def broadcast(self, weights: Any) -> None:
        """New weights for every worker: ``weights`` is a dict of tensors or already an object reference."""
        import ray

        self.weights_ref = weights if isinstance(weights, ray.ObjectRef) else ray.put(weights)
        self.version += 1

    def sync(self, learner: LearnerHandle) -> None:
        """The learner's current weights, for every task from now on."""
        self.broadcast(learner.weights())

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
        except Exception:  # already gone
            pass
        self.handles[index] = self._new(index)
        self._ready[index] = self.handles[index].ready.remote()
        self.restarts += 1
        return True

    def where(self) -> list[str]:
        """Where each live worker's replica acts (:meth:`RolloutWorker.where`)."""
        import ray

        return ray.get([h.where.remote() for i, h in enumerate(self.handles) if i not in self.dropped])

    @property
    def pids(self) -> list[int]:
        """The workers' process ids (waits for a replaced worker to be up)."""
        import ray

        return ray.get(self._ready)

    def run(self, tasks: Sequence[Task]) -> tuple[list[TaskResult | None], dict[str, int]]:
        """Run every task on the workers; results in task order (None for a task lost with its worker)."""
        import ray

        died = _actor_died_errors()
        queue = deque(tasks)
        idle = deque(i for i in range(len(self.handles)) if i not in self.dropped)
        inflight: dict[Any, tuple[int, Task]] = {}
        results: list[TaskResult | None] = [None] * len(tasks)
        position = {id(t): i for i, t in enumerate(tasks)}
        stats = dict(NO_FAULTS)
        box = [self.weights_ref]
        while queue or inflight:
            while queue and idle:
                w, task = idle.popleft(), queue.popleft()
                inflight[self.handles[w].run.remote(task, self.version, box)] = (w, task)
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

    def close(self) -> None:
        import ray

        try:
            ray.get([h.close.remote() for i, h in enumerate(self.handles) if i not in self.dropped], timeout=30)
        except Exception:  # a worker that is gone has nothing to close
            pass
        for h in self.handles:
            try:
                ray.kill(h)
            except Exception:
                pass


# --------------------------------------------------------------------------- the learner


class ActorLearner:
    """A :class:`~multiverse.agents.update.LocalLearner` in a Ray actor, behind the same methods; ``weights()`` is an
    object reference the workers fetch from."""

    def __init__(self, config: LearnerConfig, loss: PPOConfig, *, gpus: float, threads: int | None) -> None:
        import ray

        self.actor = ray.remote(LocalLearner).options(num_gpus=gpus, num_cpus=1, max_restarts=0).remote(
            config, loss, threads=threads)

    def update(self, samples: list[Sample], *, epochs: int, minibatch: int, seed: int) -> dict[str, float]:
        import ray

        return ray.get(self.actor.update.remote(samples, epochs=epochs, minibatch=minibatch, seed=seed))

    def step(self) -> int:
        import ray

        return ray.get(self.actor.step.remote())

    def save(self, path: str | Path) -> None:
        import ray

        ray.get(self.actor.save.remote(str(path)))

    def load(self, path: str | Path) -> None:
        import ray

        ray.get(self.actor.load.remote(str(path)))

    def weights(self) -> Any:
        return self.actor.weights.remote()

    def where(self) -> str:
        import ray

        return ray.get(self.actor.where.remote())

    def close(self) -> None:
        import ray

        ray.kill(self.actor)


def place_learner(config: LearnerConfig, *, placement: str, gpus: float, workers: int = 0, worker_gpus: float = 0.0,
                  cluster_gpus: float | None = None) -> tuple[str, LearnerConfig, LearnerConfig]:
    """Where the learner runs (``driver`` or ``actor``; ``auto``: an actor with a GPU when the cluster has one), and
    the learner's and the rollout replicas' configs: with ``model.device: auto`` the learner on CUDA where it holds
    a GPU (an actor with ray.learner_gpus > 0, or a driver that has one) and the replicas on their GPU share where
    ``worker_gpus`` > 0, else on the CPU, all on one kernel set (:func:`~multiverse.agents.models.for_run`) so they
    score the same bits.

    Checked against the cluster's GPUs (``cluster_gpus``; None: ask the Ray this process is connected to):
    ``workers`` x ``worker_gpus`` beside the learner fit on them, and a policy named on CUDA has a GPU to run on
    (ConfigError, one line each)."""
    import dataclasses

    from multiverse.agents.kernels import resolve_device
    from multiverse.agents.models import for_run
    from multiverse.launch.config import ConfigError
    from multiverse.launch.preflight import check_gpus, learner_placement

    if cluster_gpus is None:
        import ray

        cluster_gpus = ray.cluster_resources().get("GPU", 0.0)
    have: float = cluster_gpus
    placement = learner_placement(placement, gpus, have)
    check_gpus(have, workers=workers, worker_gpus=worker_gpus, learner_gpus=gpus if placement == "actor" else 0.0,
               where="the Ray cluster")
    device = config.model.device
    try:
        if device.startswith("cuda") and not have:  # the replicas (and a learner actor) would find no CUDA
            raise ValueError(f"model.device={device!r} but the Ray cluster has no GPU resource for its rollout "
                             f"workers or a learner actor; set model.device: auto (CUDA where a policy holds a GPU) "
                             f"or cpu, or add GPU nodes")
        if device == "auto":
            device = ("cuda" if gpus > 0 else "cpu") if placement == "actor" else resolve_device("auto").type
        elif placement == "driver":
            resolve_device(device)  # the learner is built here: CUDA that this process lacks stops the run now
        learner_model, replica_model = for_run(config.model, learner_device=device, replicas_on_gpu=worker_gpus > 0)
    except ValueError as error:  # cpu_fused asked for beside a GPU policy; CUDA where there is none
        raise ConfigError(str(error)) from None
    return placement, dataclasses.replace(config, model=learner_model), dataclasses.replace(config, model=replica_model)


def make_learner(config: LearnerConfig, loss: PPOConfig, *, placement: str, gpus: float,
                 threads: int | None) -> tuple[LearnerHandle, str]:
    """The learner in the driver, or in an actor (``placement`` as :func:`place_learner` resolved it)."""
    import ray

    if placement == "driver":
        return LocalLearner(config, loss, threads=threads), "driver"
    have = ray.cluster_resources().get("GPU", 0)
    if gpus > have:  # an actor waiting for a GPU that is not there would hang the run
        from multiverse.launch.config import ConfigError

        raise ConfigError(f"ray.learner=actor asks for ray.learner_gpus={gpus:g} GPUs but the cluster has {have:g}; "
                          f"set ray.learner_gpus=0 (a CPU actor), ray.learner=driver, or add GPU nodes")
    learner = ActorLearner(config, loss, gpus=gpus, threads=threads)
    return learner, f"actor ({learner.where()}, {gpus:g} GPU)"
