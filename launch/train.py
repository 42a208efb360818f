"""``multiverse train``: :mod:`multiverse.agents.loop` with Ray, a run dir and a CLI around it.

This module only orchestrates: the checks before the start, the run dir (new, or the one resumed with its
checkpoint), an embedded or joined Ray, the learner (in the driver or an actor), the rollout workers
(:class:`~multiverse.launch.workers.WorkerPool`), then :func:`~multiverse.agents.loop.train_loop`, the same loop
``python -m multiverse.agents.train_local`` runs in one process. What one iteration does is written there.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from multiverse.agents.loop import EVAL_SEED_BASE, TrainerState, train_loop
from multiverse.launch.config import RunConfig, default_run_name, to_yaml
from multiverse.launch.rundir import RunDir, RunDirLog
from multiverse.launch.workers import RolloutWorker, WorkerPool, make_learner, place_learner

__all__ = ["EVAL_SEED_BASE", "learner_config", "train"]


def learner_config(config: RunConfig) -> Any:
    """The agents-level :class:`~multiverse.agents.learner.LearnerConfig` of a run config."""
    return config.trainer().learner


def _console() -> Any:
    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else 160, log_path=False)


def _open_run(config: RunConfig, resume: str | Path | None, choice: str | None, config_name: str | None,
              console: Any) -> tuple[RunDir, Path | None, dict[str, Any] | None]:
    """A new run dir, or the resumed one with the checkpoint to continue from (the one asked for, else the newest
    intact one) and its trainer state."""
    if resume is None:
        run = RunDir(Path(config.run.root) / (config.run.name or default_run_name(config_name)))
        run.create(to_yaml(config))
        return run, None, None
    run = RunDir(resume)
    checkpoint, skipped = run.resume_point(choice)
    state = RunDir.read_state(checkpoint)
    aside = run.set_aside_after(int(state["iteration"]))  # what an older checkpoint abandons
    if skipped or aside:
        console.print(_resume_note(run, checkpoint, skipped, aside), markup=False, highlight=False, soft_wrap=True)
    run.write_config(to_yaml(config))  # with this invocation's overrides (e.g. more iterations)
    return run, checkpoint, state


def train(
    config: RunConfig,
    *,
    resume: str | Path | None = None,
    resume_checkpoint: str | None = None,
    config_name: str | None = None,
    worker_cls: type[RolloutWorker] = RolloutWorker,
) -> Path:
    """Run (or resume) a training run; returns its run dir. ``resume_checkpoint`` (``iter_N`` or ``N``) picks the
    checkpoint of ``resume`` to continue from (default: the newest one whose files match their manifest);
    ``worker_cls`` is the rollout workers' class."""
    import ray

    from multiverse.launch.cluster import init_ray
    from multiverse.launch.preflight import check_start

    check_start(config)  # what can fail before Ray or a model starts, in seconds (ConfigError)
    trainer, console = config.trainer(), _console()
    run, checkpoint, saved = _open_run(config, resume, resume_checkpoint, config_name, console)
    state = TrainerState.new(trainer)
    if saved is not None:
        state.load_state_dict(saved)
    log = RunDirLog(run, env_ids=config.env_ids(), iterations=config.run.iterations,
                    keep_checkpoints=config.run.keep_checkpoints, resume_after=state.iteration if saved else None,
                    model=config.model.name, max_steps=config.rollout.max_steps, console=console,
                    progress=config.run.progress)
    started, failed_start = False, None  # failed_start: the run dir to remove (see the except below)
    learner = pool = None
    try:
        needed, cpus_for = config.cpu_demand()
        started, where = init_ray(config.ray.address, dashboard=config.ray.dashboard, num_cpus=config.ray.num_cpus,
                                  needed_cpus=needed, cpus_for=cpus_for)
        # the learner and the replicas: each on its device, one kernel set for both (they score the same bits)
        ro = config.rollout
        placement, learner_cfg, replica_cfg = place_learner(trainer.learner, placement=config.ray.learner,
                                                            gpus=config.ray.learner_gpus, workers=ro.workers,
                                                            worker_gpus=ro.worker_gpus)
        learner, learner_where = make_learner(learner_cfg, trainer.loss, placement=placement,
                                              gpus=config.ray.learner_gpus, threads=config.ray.learner_threads)
        if checkpoint is not None:
            learner.load(checkpoint / "learner")
        pool = WorkerPool(ro.workers, replica_cfg, envs_per_id=ro.envs_per_worker, num_cpus=ro.worker_cpus,
                          num_gpus=ro.worker_gpus, torch_threads=ro.torch_threads, max_restarts=ro.max_restarts,
                          worker_cls=worker_cls)
        pool.sync(learner)
        console.print(f"[bold]multiverse train[/bold] run dir {run.path}", soft_wrap=True)  # lines stay whole
        replicas = ", ".join(sorted(set(pool.where())))  # cpu, cuda:0, or a worker's GPU fallback line
        console.print(f"  {where}; {ro.workers} rollout workers (replicas on {replicas}); learner in the "
                      f"{learner_where}; model "
                      f"{config.model.name} ({'LoRA' if config.model.lora else 'full'}, "
                      f"{learner_cfg.model.kernels} kernels); "
                      + (f"resuming after iteration {state.iteration}" if saved else "new run"), soft_wrap=True)
        train_loop(trainer, learner, pool, log, state)
        console.print(f"done: {run.path}  (multiverse plot {run.path})", soft_wrap=True)
        return run.path
    except BaseException:
        if resume is None and not log.logged:
            failed_start = run.path  # a new run that failed before it logged anything: no empty run dir is left
        raise
    finally:
        log.close()
        if pool is not None:
            pool.close()
        if learner is not None:
            learner.close()
        if started:
            ray.shutdown()
        # checked after the recorder closed (it writes its episodes then): a recorded episode keeps the run dir
        if failed_start is not None and not any((failed_start / "episodes").rglob("*.parquet")):
            shutil.rmtree(failed_start, ignore_errors=True)


def _resume_note(run: RunDir, checkpoint: Path, skipped: Sequence[tuple[Path, str]], aside: Path | None) -> str:
    """One line: the checkpoints a resume skipped and why, the one it resumes from, where the later ones went."""
    parts = ["skipped " + ", ".join(f"{p.relative_to(run.path)} ({why})" for p, why in skipped)] if skipped else []
    parts.append(f"resuming from {checkpoint.name}")
    if aside is not None:
        parts.append(f"later checkpoints set aside in {aside.relative_to(run.path)}")
    return "resume: " + "; ".join(parts)
