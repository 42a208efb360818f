"""``multiverse train``: one language-model policy trained jointly across envs, on Ray rollout workers.

This is :mod:`multiverse.agents.train_local`'s loop, distributed. One iteration:

1. plan: the sampler splits the iteration's groups over the env ids (mixture
   weights + learning progress); each group gets a seed and its parameters
   (from ADR, or sampled by the env from the configured split);
2. rollout: groups are packed into tasks, and idle workers take tasks until
   none are left; a worker that dies loses only its task's episodes;
3. ADR boundaries and the curriculum see the finished episodes;
4. advantages (group-relative, or GAE with the value head) and PPO steps on
   the learner (in the driver, or in a GPU actor);
5. the new trainable weights go to the object store once, and to each worker
   with its next task;
6. log the iteration; evaluate (greedy, fixed seeds, held-out split and
   held-out env ids) and checkpoint every N iterations.

Episodes cut short by the env's machinery (a crashed browser: ``infra_error``)
are counted, not trained on.
"""

from __future__ import annotations

import dataclasses
import math
import random
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from multiverse.launch.config import RunConfig, default_run_name, to_yaml
from multiverse.launch.rundir import MetricsLog, RunDir
from multiverse.launch.sampler import ADRBank, EnvSampler
from multiverse.launch.workers import Task, WorkerPool, make_learner

__all__ = ["Hooks", "learner_config", "train"]

EVAL_SEED_BASE = 1_000_000  # evaluation seeds: the same every time, far from training's


@dataclasses.dataclass
class Hooks:
    """Callbacks for tests and tools: after an iteration's tasks are dispatched, after each iteration."""

    on_rollout_dispatched: Callable[[int, WorkerPool], None] | None = None
    on_iteration: Callable[[int, dict[str, Any]], None] | None = None


def learner_config(config: RunConfig) -> Any:
    """The agents-level :class:`LearnerConfig` of a run config."""
    from multiverse.agents.learner import LearnerConfig
    from multiverse.agents.models import ModelConfig
    from multiverse.agents.policy import PolicyConfig
    from multiverse.agents.prompt import DEFAULT_SYSTEM_PROMPT, PromptConfig

    m, a = config.model, config.algorithm
    return LearnerConfig(
        model=ModelConfig(name=m.name, dtype=m.dtype, lora=m.lora, lora_rank=m.lora_rank, lora_alpha=m.lora_alpha,
                          value_head=a.uses_value_head, seed=m.seed),
        policy=PolicyConfig(
            prompt=PromptConfig(max_prompt_tokens=m.max_prompt_tokens, history_steps=m.history_steps,
                                system_prompt=m.system_prompt or DEFAULT_SYSTEM_PROMPT),
            temperature=m.temperature, max_text_tokens=m.max_text_tokens, compute_dtype=m.compute_dtype,
            score_norm=m.score_norm),
        lr=a.lr, weight_decay=a.weight_decay, grad_clip=a.grad_clip, micro_batch=a.micro_batch,
        keep_reference=a.kl_coef > 0 and not m.lora,
    )


def _nanmean(xs: Sequence[float]) -> float:
    xs = [x for x in xs if not math.isnan(x)]
    return float(np.mean(xs)) if xs else float("nan")


def _console() -> Any:
    import sys

    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else 160, log_path=False)


def train(
    config: RunConfig,
    *,
    resume: str | Path | None = None,
    resume_checkpoint: str | None = None,
    config_name: str | None = None,
    hooks: Hooks | None = None,
) -> Path:
    """Run (or resume) a training run; returns its run dir. ``resume_checkpoint`` (``iter_N`` or ``N``) picks the
    checkpoint of ``resume`` to continue from (default: the newest one whose files match their manifest)."""
    import dataclasses as dc

    import ray
    from multiverse.agents.losses import EnvReturnScaler
    from multiverse.agents.rollout import EpisodeSpec, compute_advantages, to_samples
    from multiverse.launch.cluster import init_ray
    from multiverse.launch.preflight import check_start

    hooks = hooks or Hooks()
    console = _console()
    env_ids, eval_ids = config.env_ids(), config.eval_ids()
    pins = config.envs.params
    alg, ro = config.algorithm, config.rollout
    check_start(config)  # what can fail before Ray or a model starts, in seconds (ConfigError)

    # -- run dir: a new one, or the one we resume (the checkpoint asked for, else its newest intact one)
    if resume is not None:
        run = RunDir(resume)
        checkpoint, skipped = run.resume_point(resume_checkpoint)
        state: dict[str, Any] | None = RunDir.read_state(checkpoint)
        aside = run.set_aside_after(int(state["iteration"]))  # what an older checkpoint abandons
        if skipped or aside:
            console.print(_resume_note(run, checkpoint, skipped, aside), markup=False, highlight=False, soft_wrap=True)
        run.write_config(to_yaml(config))  # with this invocation's overrides (e.g. more iterations)
    else:
        run = RunDir(Path(config.run.root) / (config.run.name or default_run_name(config_name)))
        run.create(to_yaml(config))
        checkpoint, state = None, None
    start_iteration = int(state["iteration"]) if state else 0
    log = MetricsLog(run, resume_after=start_iteration if state else None)

    # -- state that a checkpoint carries: RNGs, sampler, ADR, return scaler, counters
    rng = random.Random(config.run.seed)
    np_rng = np.random.default_rng(config.run.seed)
    sampler = EnvSampler(config.envs.train, curriculum=config.envs.curriculum, mix=config.envs.curriculum_mix,
                         fast=config.envs.progress_fast, slow=config.envs.progress_slow)
    adr = ADRBank(env_ids, pins, step=config.envs.adr_step, buffer=config.envs.adr_buffer) if config.envs.adr else None
    scaler = EnvReturnScaler() if alg.name == "ppo" else None
    totals = {"env_steps": 0, "episodes": 0, "episodes_lost": 0, "workers_restarted": 0, "infra_errors": 0,
              "seconds": 0.0}
    if state:
        version, internal, gauss = state["rng"]
        rng.setstate((version, tuple(internal), gauss))
        np_rng.bit_generator.state = state["np_rng"]
        sampler.load_state_dict(state["sampler"])
        if adr is not None and state.get("adr"):
            adr.load_state_dict(state["adr"])
        if scaler is not None and state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        totals.update(state["totals"])

    # -- Ray, the learner, the rollout workers
    lcfg = learner_config(config)
    started, failed_start = False, None  # failed_start: the run dir to remove (see the except below)
    learner = pool = recorder = None
    try:
        needed, cpus_for = config.cpu_demand()
        started, where = init_ray(config.ray.address, dashboard=config.ray.dashboard, num_cpus=config.ray.num_cpus,
                                  needed_cpus=needed, cpus_for=cpus_for)
        loss_cfg = {"clip_eps": alg.clip_eps, "entropy_coef": alg.entropy_coef, "kl_coef": alg.kl_coef,
                    "value_coef": alg.value_coef, "skip_zero_advantage": alg.skip_zero_advantage}
        learner, learner_where = make_learner(dc.asdict(lcfg), loss_cfg, placement=config.ray.learner,
                                              gpus=config.ray.learner_gpus, threads=config.ray.learner_threads)
        if checkpoint is not None:
            learner.call("load", str(checkpoint / "learner"))
        worker_kwargs = {"model": dc.asdict(lcfg.model), "policy": dc.asdict(lcfg.policy),
                         "value_head": alg.uses_value_head, "envs_per_id": ro.envs_per_worker,
                         "torch_threads": ro.torch_threads}
        pool = WorkerPool(ro.workers, worker_kwargs, num_cpus=ro.worker_cpus, torch_threads=ro.torch_threads,
                          max_restarts=ro.max_restarts)
        pool.broadcast(learner.weights())
        recorder = _Recorder(run.path / "episodes", config, adr)
        console.print(f"[bold]multiverse train[/bold] run dir {run.path}")
        console.print(f"  {where}; {ro.workers} rollout workers; learner in the {learner_where}; model "
                      f"{config.model.name} ({'LoRA' if config.model.lora else 'full'}); "
                      + (f"resuming after iteration {start_iteration}" if state else "new run"))

        def options_for(env_id: str, split: str, params: dict[str, Any] | None, *, training: bool) -> dict[str, Any]:
            opts: dict[str, Any] = {"split": split}
            p = params if params is not None else pins.get(env_id)
            if p:
                opts["params"] = dict(p)
            if training and not config.envs.randomize:
                opts["randomize"] = False
            return opts

        def evaluate(iteration: int) -> None:
            """Greedy episodes on fixed seeds: every training id and held-out id, on the eval split."""
            tasks = []
            splits = ["train", "heldout"] if config.envs.eval_split == "both" else [config.envs.eval_split]
            for env_id in eval_ids:
                specs = [EpisodeSpec(env_id, EVAL_SEED_BASE + i, options_for(env_id, split, None, training=False))
                         for split in splits for i in range(config.run.eval_episodes)]
                for k in range(0, len(specs), ro.envs_per_worker):
                    tasks.append(Task(len(tasks), specs[k:k + ro.envs_per_worker], seed=0, greedy=True,
                                      max_steps=ro.max_steps, keep_episodes=config.run.record_eval))
            results, stats = pool.run(tasks)
            recorder.eval([e for r in results if r is not None for e in r.episodes], iteration, learner.call("step"))
            totals["episodes_lost"] += stats["episodes_lost"]
            totals["workers_restarted"] += stats["workers_restarted"]
            summaries = [s for r in results if r is not None for s in r.summaries]
            rows = []
            for env_id, split in ((e, sp) for e in eval_ids for sp in splits):
                mine = [s for s in summaries if s.env_id == env_id and s.split == split and not s.infra_error]
                rows.append({
                    "env": env_id, "split": split,
                    "role": "train" if env_id in config.envs.train else "held-out",
                    "success": _nanmean([float(s.success) for s in mine]),
                    "return": _nanmean([s.return_ for s in mine]),
                    "length": _nanmean([float(s.length) for s in mine]), "episodes": len(mine),
                })
            text = log.log_eval(iteration, rows)
            console.print(text.rstrip())

        def save_checkpoint(iteration: int) -> None:
            trainer_state = {
                "iteration": iteration,
                "rng": list(rng.getstate()),
                "np_rng": np_rng.bit_generator.state,
                "sampler": sampler.state_dict(),
                "adr": adr.state_dict() if adr is not None else None,
                "scaler": scaler.state_dict() if scaler is not None else None,
                "totals": totals,
                "learner_step": learner.call("step"),
            }
            run.save_checkpoint(iteration, lambda path: learner.call("save", str(path)), trainer_state,
                                keep=config.run.keep_checkpoints)

        if state is None and (config.run.eval_before or config.run.iterations == 0):
            evaluate(0)
        progress = _progress(console, config.run.progress, config.run.iterations, start_iteration)
        def budget_spent() -> bool:
            return config.run.max_env_steps is not None and totals["env_steps"] >= config.run.max_env_steps

        for it in range(start_iteration + 1, config.run.iterations + 1):
            if budget_spent():  # a resumed run that had already spent run.max_env_steps
                break
            t0 = time.perf_counter()
            # -- plan: env, seed and parameters of every group; groups packed into tasks
            group_env = sampler.allocate(ro.groups_per_iteration, rng)
            groups: list[tuple[str, str | None]] = []  # (env id, ADR boundary tested)
            specs: list[Any] = []
            for env_id in group_env:
                seed = rng.randrange(2**31)
                params, boundary = adr.sample(env_id, np_rng) if adr is not None else (None, None)
                opts = options_for(env_id, config.envs.split, params, training=True)
                specs += [EpisodeSpec(env_id, seed, opts)] * ro.group_size
                groups.append((env_id, boundary))
            tasks, owner = [], []  # owner[t][j]: the group of task t's j-th episode
            for g0 in range(0, len(groups), ro.groups_per_task):
                gs = list(range(g0, min(g0 + ro.groups_per_task, len(groups))))
                tasks.append(Task(len(tasks), [s for g in gs for s in specs[g * ro.group_size:(g + 1) * ro.group_size]],
                                  seed=rng.randrange(2**31), max_steps=ro.max_steps))
                owner.append([g for g in gs for _ in range(ro.group_size)])
            update_seed = rng.randrange(2**31)

            # -- rollout on the workers
            dispatched = (lambda p: hooks.on_rollout_dispatched(it, p)) if hooks.on_rollout_dispatched else None
            results, stats = pool.run(tasks, on_dispatch=dispatched)
            t_rollout = time.perf_counter() - t0
            episodes, episode_group = [], []
            for t, res in enumerate(results):
                if res is not None:
                    episodes += res.episodes
                    episode_group += owner[t]
            recorder.train(episodes, totals["episodes"], it, learner.call("step"))
            infra = [e for e in episodes if e.infra_error]
            usable = [(e, g) for e, g in zip(episodes, episode_group) if not e.infra_error]

            # -- ADR and the curriculum see what happened
            if adr is not None:
                for ep, g in usable:
                    adr.update(groups[g][0], groups[g][1], float(ep.success))
            per_env = {env_id: [e for e, _ in usable if e.env_id == env_id] for env_id in env_ids}
            for env_id, eps in per_env.items():
                if eps:
                    sampler.update(env_id, float(np.mean([e.success for e in eps])))

            # -- advantages and the PPO update
            train_eps = [e for e, _ in usable]
            update_metrics: dict[str, float] = {}
            adv_metrics: dict[str, float] = {}
            n_samples = 0
            t1 = time.perf_counter()
            if train_eps:
                mode = "gae" if alg.name == "ppo" else "group"
                advs, targets, adv_metrics = compute_advantages(train_eps, mode=mode, gamma=alg.gamma, lam=alg.lam,
                                                                scaler=scaler)
                samples = to_samples(train_eps, advs, targets)
                n_samples = len(samples)
                if samples:
                    update_metrics = learner.call("update", samples, alg.epochs, alg.minibatch, update_seed)
            # -- broadcast the new weights (once, through the object store)
            pool.broadcast(learner.weights())
            t_update = time.perf_counter() - t1

            # -- log
            env_steps = sum(r.env_steps for r in results if r is not None)
            tokens = sum(r.tokens for r in results if r is not None)
            seconds = time.perf_counter() - t0
            for k, v in (("env_steps", env_steps), ("episodes", len(episodes)), ("seconds", seconds),
                         ("episodes_lost", stats["episodes_lost"]), ("workers_restarted", stats["workers_restarted"]),
                         ("infra_errors", len(infra))):
                totals[k] += v
            probs = sampler.probabilities()
            row: dict[str, Any] = {
                "train/success": _nanmean([float(e.success) for e in train_eps]),
                "train/return": _nanmean([e.total_return for e in train_eps]),
                "train/length": _nanmean([float(e.length) for e in train_eps]),
            }
            for env_id in env_ids:
                eps = per_env[env_id]
                row[f"train/success/{env_id}"] = _nanmean([float(e.success) for e in eps])
                row[f"train/return/{env_id}"] = _nanmean([e.total_return for e in eps])
                row[f"train/length/{env_id}"] = _nanmean([float(e.length) for e in eps])
                row[f"train/groups/{env_id}"] = group_env.count(env_id)
                row[f"sampler/prob/{env_id}"] = probs[env_id]
                lp = sampler.progress(env_id)
                row[f"sampler/progress/{env_id}"] = float("nan") if lp is None else lp
            row.update({f"update/{k}": v for k, v in update_metrics.items()})
            row.update({f"adv/{k}": v for k, v in adv_metrics.items()})
            if adr is not None:
                row.update(adr.metrics())
            row.update({
                "perf/iteration_s": seconds, "perf/rollout_s": t_rollout, "perf/update_s": t_update,
                "perf/episodes": len(episodes), "perf/samples": n_samples, "perf/env_steps": env_steps,
                "perf/env_steps_per_s": env_steps / t_rollout if t_rollout > 0 else float("nan"),
                "perf/tokens_per_s": tokens / t_rollout if t_rollout > 0 else float("nan"),
                "perf/total_env_steps": totals["env_steps"],
                "faults/episodes_lost": stats["episodes_lost"], "faults/tasks_lost": stats["tasks_lost"],
                "faults/workers_restarted": stats["workers_restarted"], "faults/infra_errors": len(infra),
            })
            log.log(it, row)
            _report(console, progress, it, config.run.iterations, row, env_ids)
            if hooks.on_iteration:
                hooks.on_iteration(it, row)

            # -- evaluate and checkpoint every N iterations, and after the last
            last = it == config.run.iterations or budget_spent()
            if last or (config.run.eval_every and it % config.run.eval_every == 0):
                evaluate(it)
            if last or (config.run.checkpoint_every and it % config.run.checkpoint_every == 0):
                save_checkpoint(it)
            if last:
                break
        if progress is not None:
            progress.stop()
        console.print(f"done: {run.path}  (multiverse plot {run.path})")
        return run.path
    except BaseException:
        if resume is None and not (log.metrics.rows or log.eval.rows):
            failed_start = run.path  # a new run that failed before it logged anything: no empty run dir is left
        raise
    finally:
        log.close()
        if recorder is not None:
            recorder.close()
        if pool is not None:
            pool.close()
        if learner is not None:
            learner.close()
        if started:
            ray.shutdown()
        # checked after the recorder closed (it writes its episodes then): a recorded episode keeps the run dir
        if failed_start is not None and not any((failed_start / "episodes").rglob("*.parquet")):
            shutil.rmtree(failed_start, ignore_errors=True)


class _Recorder:
    """Evaluation episodes and every Nth training episode, written under RUN_DIR/episodes (``run.record_*``)."""

    def __init__(self, root: Path, config: RunConfig, adr: ADRBank | None) -> None:
        from multiverse.agents.episodes import EpisodeWriter

        self.every, self.adr = config.run.record_every, adr
        self.model, self.run, self.max_steps = config.model.name, str(root.parent), config.rollout.max_steps
        self.writers = {"eval": EpisodeWriter(root / "eval")} if config.run.record_eval else {}
        if self.every:
            self.writers["train"] = EpisodeWriter(root / "train")

    def _write(self, kind: str, episodes: Sequence[Any], iteration: int, learner_step: int) -> None:
        from multiverse.agents.episodes import EpisodeMeta

        writer = self.writers[kind]
        for ep in episodes:
            adr = self.adr.adrs.get(ep.env_id) if self.adr is not None and kind == "train" else None
            writer.write(ep, EpisodeMeta(
                agent="policy", max_steps=self.max_steps, adr_state=adr.state_dict() if adr is not None else None,
                policy={"model": self.model, "run": self.run, "iteration": iteration, "learner_step": learner_step,
                        "greedy": kind == "eval"}))
        writer.flush()  # one file per iteration: what a crash can lose is the iteration in flight

    def eval(self, episodes: Sequence[Any], iteration: int, learner_step: int) -> None:
        if "eval" in self.writers:
            self._write("eval", episodes, iteration, learner_step)

    def train(self, episodes: Sequence[Any], seen: int, iteration: int, learner_step: int) -> None:
        """Episodes ``seen + k`` (counted over the run) with ``(seen + k) % record_every == 0``."""
        if "train" in self.writers:
            self._write("train", [e for k, e in enumerate(episodes) if (seen + k) % self.every == 0], iteration,
                        learner_step)

    def close(self) -> None:
        for writer in self.writers.values():
            writer.close()


def _resume_note(run: RunDir, checkpoint: Path, skipped: Sequence[tuple[Path, str]], aside: Path | None) -> str:
    """One line: the checkpoints a resume skipped and why, the one it resumes from, where the later ones went."""
    parts = ["skipped " + ", ".join(f"{p.relative_to(run.path)} ({why})" for p, why in skipped)] if skipped else []
    parts.append(f"resuming from {checkpoint.name}")
    if aside is not None:
        parts.append(f"later checkpoints set aside in {aside.relative_to(run.path)}")
    return "resume: " + "; ".join(parts)


def _progress(console: Any, enabled: bool, total: int, done: int) -> Any:
    """A rich progress bar when the terminal is interactive (logs get one line per iteration either way)."""
    if not (enabled and console.is_terminal):
        return None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    progress = Progress(TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        TimeRemainingColumn(), TextColumn("{task.description}"), console=console)
    progress.add_task("", total=total, completed=done)
    progress.start()
    return progress


def _report(console: Any, progress: Any, it: int, total: int, row: dict[str, Any], env_ids: Sequence[str]) -> None:
    def f(x: float) -> str:
        return "-" if isinstance(x, float) and math.isnan(x) else f"{x:.2f}"

    per_env = " ".join(f"{e.split('/')[-1]}={f(row[f'train/success/{e}'])}" for e in env_ids)
    faults = "" if not (row["faults/episodes_lost"] or row["faults/infra_errors"]) else (
        f"  lost {row['faults/episodes_lost']} infra {row['faults/infra_errors']}")
    line = (f"iter {it}/{total}  success {f(row['train/success'])} ({per_env})  return {f(row['train/return'])}  "
            f"loss {f(row.get('update/loss', float('nan')))}  {row['perf/iteration_s']:.1f}s  "
            f"{row['perf/env_steps_per_s']:.0f} steps/s{faults}")
    console.print(line)
    if progress is not None:
        progress.update(progress.task_ids[0], completed=it, description=f"success {f(row['train/success'])}")
