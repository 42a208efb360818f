"""The Universe-2016 baseline: RLlib PPO trained from scratch on one game, evaluated on fixed seed sets.

One arm of the generalization experiment. :func:`train_and_evaluate_ppo` trains
RLlib's PPO (new API stack, torch) on a game's numeric "state" observation
(:func:`~multiverse.launch.rllib.register_rllib_env`, training split) and
evaluates the greedy policy on named sets of (env seed, reset options), before
training, every ``eval_every_steps`` env steps and at the end. Every evaluation
episode is recorded with :class:`~multiverse.agents.episodes.RecordEpisodes`,
so it lands in the project's one episode schema and ``multiverse replay
--verify`` can re-run it:

    ray.init(...)
    seeds = range(10**6, 10**6 + 20)
    result = train_and_evaluate_ppo("games/Catch-v0", env_steps=50_000, seed=0, eval_every_steps=10_000,
                                    eval_sets={"train": [(s, {"split": "train"}) for s in seeds],
                                               "heldout": [(s, {"split": "heldout"}) for s in seeds]},
                                    out=Path("runs/ppo-catch"))
    result["curve"]  # [{"env_steps", "eval_set", "success", "return", "episodes"}, ...]

The caller owns Ray (``ray.init`` / ``ray.shutdown``). Sampling runs in the
driver (``num_env_runners=0``), which suits the small machines this runs on.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import numpy as np

from multiverse import envs
from multiverse.agents.episodes import EpisodeMeta, EpisodeWriter, RecordEpisodes
from multiverse.agents.rollout import Episode
from multiverse.envs.wrappers import NumericObservable, NumericObservation

__all__ = ["PPOSettings", "train_and_evaluate_ppo"]

AGENT = "rllib-ppo"


@dataclasses.dataclass(frozen=True)
class PPOSettings:
    """PPO hyperparameters of the baseline; defaults are sized for a small game on a 2-core machine."""

    train_batch_size: int = 1000
    """Env steps sampled per ``train()`` iteration (RLlib's ``train_batch_size_per_learner``; one local learner)."""
    minibatch_size: int = 250
    """SGD minibatch size within an iteration."""
    num_epochs: int = 4
    """Passes over each iteration's batch."""
    lr: float = 3e-4
    """Adam learning rate."""
    entropy_coeff: float = 0.0
    """Entropy bonus coefficient (RLlib's default)."""
    gamma: float = 0.99
    """Discount factor (RLlib's default)."""

    @classmethod
    def from_overrides(cls, overrides: dict[str, Any] | None) -> PPOSettings:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(overrides or {}) - known)
        if unknown:
            raise ValueError(f"unknown PPO setting(s) {unknown}; the baseline takes {sorted(known)}")
        settings = cls(**(overrides or {}))
        if settings.minibatch_size > settings.train_batch_size:
            raise ValueError(f"minibatch_size ({settings.minibatch_size}) must be <= train_batch_size "
                             f"({settings.train_batch_size})")
        return settings


def train_and_evaluate_ppo(
    env_id: str,
    *,
    env_steps: int,
    seed: int,
    eval_every_steps: int,
    eval_sets: dict[str, list[tuple[int, dict]]],
    out: Path,
    max_steps: int | None = None,
    ppo: dict | None = None,
    train_options: dict[str, Any] | None = None,
) -> dict:
    """Train PPO on ``env_id`` for ``env_steps`` env steps and evaluate it greedily along the way.

    ``env_steps``: training stops after the first ``train()`` iteration that reaches it. ``seed``: RLlib's
    seed. Evaluation runs on every (env seed, reset options) of every set in ``eval_sets`` at 0 steps
    (untrained policy), after the first iteration that passes each multiple of ``eval_every_steps``, and at
    the end; its episodes are written under ``out/episodes/eval``. ``max_steps`` truncates evaluation
    episodes (None: the env's own limit). ``ppo`` overrides fields of :class:`PPOSettings`.
    ``train_options``: reset options of the training episodes (default ``{"split": "train"}``; e.g. add
    ``"params"`` to pin parameters as the evaluation sets do).

    Returns ``{"env_id", "seed", "env_steps" (trained), "iterations", "wall_s" (training and evaluation),
    "train_wall_s" (building the algorithm and ``train()``), "curve": [{"env_steps", "eval_set", "success",
    "return", "episodes"}, ...]}``."""
    import ray
    from ray.rllib.algorithms.ppo import PPOConfig
    from ray.rllib.utils.metrics import NUM_ENV_STEPS_SAMPLED_LIFETIME

    from multiverse.launch.rllib import register_rllib_env

    start = time.perf_counter()
    _check_game(env_id)
    if env_steps < 1 or eval_every_steps < 1:
        raise ValueError(f"env_steps and eval_every_steps must be >= 1, got {env_steps} and {eval_every_steps}")
    if max_steps is not None and max_steps < 1:
        raise ValueError(f"max_steps must be >= 1 or None, got {max_steps}")
    if not eval_sets or not all(eval_sets.values()):
        raise ValueError(f"eval_sets needs at least one set, each with at least one (seed, options); got "
                         f"{ {name: len(v) for name, v in (eval_sets or {}).items()} }")
    settings = PPOSettings.from_overrides(ppo)
    if not ray.is_initialized():
        raise RuntimeError("train_and_evaluate_ppo runs in an already-running Ray: call ray.init() first "
                           "(and ray.shutdown() after); it does not start or stop Ray itself")

    # -- build PPO on the training split
    train_start = time.perf_counter()
    name = register_rllib_env(env_id, mode="state", env_options=train_options or {"split": "train"})
    algo = (
        PPOConfig()
        .environment(name)
        .framework("torch")
        .env_runners(num_env_runners=0)
        .training(train_batch_size_per_learner=settings.train_batch_size, minibatch_size=settings.minibatch_size,
                  num_epochs=settings.num_epochs, lr=settings.lr, entropy_coeff=settings.entropy_coeff,
                  gamma=settings.gamma)
        .debugging(seed=seed)
        .build_algo()
    )
    train_wall = time.perf_counter() - train_start

    writer = EpisodeWriter(Path(out) / "episodes" / "eval")
    curve: list[dict[str, Any]] = []
    steps = iterations = 0

    def evaluate() -> None:
        module = algo.get_module()
        for set_name, episodes in eval_sets.items():
            meta = EpisodeMeta(agent=AGENT, max_steps=max_steps, policy={
                "algorithm": AGENT, "env_steps": steps, "iteration": iterations, "seed": seed, "eval_set": set_name})
            done = _evaluate(module, env_id, episodes, writer, meta, max_steps)
            curve.append({"env_steps": steps, "eval_set": set_name,
                          "success": float(np.mean([ep.success for ep in done])),
                          "return": float(np.mean([ep.total_return for ep in done])), "episodes": len(done)})
        writer.flush()

    # -- train, evaluating at 0 steps, after each multiple of eval_every_steps, and at the end
    try:
        evaluate()
        next_eval = eval_every_steps
        while steps < env_steps:
            t = time.perf_counter()
            result = algo.train()
            train_wall += time.perf_counter() - t
            iterations += 1
            steps = int(result[NUM_ENV_STEPS_SAMPLED_LIFETIME])
            if steps >= next_eval or steps >= env_steps:
                evaluate()
                next_eval = (steps // eval_every_steps + 1) * eval_every_steps
    finally:
        writer.close()
        algo.stop()
    return {"env_id": env_id, "seed": seed, "env_steps": steps, "iterations": iterations,
            "wall_s": time.perf_counter() - start, "train_wall_s": train_wall, "curve": curve}


def _check_game(env_id: str) -> None:
    """A game with a numeric observation, or ValueError (web tasks are refused before any browser starts)."""
    spec = envs.lookup(env_id)
    if spec.kind != "game":
        raise ValueError(f"{env_id!r} is a {spec.kind} env: RLlib's baseline only covers games (it trains on "
                         f"the numeric state observation, which {spec.kind} envs do not have); see "
                         f"`multiverse envs list --kind game`")
    env = envs.make(env_id)
    try:
        offered = isinstance(env.unwrapped, NumericObservable)
        if offered:
            env.reset(seed=0)
            env.unwrapped.numeric_observation()
    except NotImplementedError:
        offered = False
    finally:
        env.close()
    if not offered:
        raise ValueError(f"{env_id!r} has no numeric observation: RLlib's baseline only covers games that offer "
                         f"one (the NumericObservable mixin: numeric_space and numeric_observation())")


def _evaluate(module: Any, env_id: str, episodes: list[tuple[int, dict]], writer: EpisodeWriter,
              meta: EpisodeMeta, max_steps: int | None) -> list[Episode]:
    """Play each (seed, options) greedily with the RLModule, recording every episode; returns them."""
    import torch
    from ray.rllib.core.columns import Columns

    done: list[Episode] = []
    limit = envs.lookup(env_id).max_episode_steps
    # The env's own limit at max_steps truncates the episode exactly as replay's env does (make_replay_env).
    kwargs = {"max_episode_steps": max_steps} if max_steps is not None and max_steps < limit else {}
    recorder = RecordEpisodes(envs.make(env_id, **kwargs), lambda ep, m: (writer.write(ep, m), done.append(ep)), meta)
    env = NumericObservation(recorder)
    n = env.action_space.n
    try:
        for env_seed, options in episodes:
            obs, info = env.reset(seed=int(env_seed), options=dict(options))
            ended = False
            while not ended:
                with torch.no_grad():
                    out = module.forward_inference({Columns.OBS: torch.as_tensor(obs[None], dtype=torch.float32)})
                logits_A = out[Columns.ACTION_DIST_INPUTS][0].double()  # (actions,)
                logp_A = torch.log_softmax(logits_A, dim=-1).numpy()
                action = int(np.argmax(logp_A))
                # probs line up with the step's legal actions only when every action is legal
                probs = np.exp(logp_A).tolist() if len(info["legal_actions"]) == n else ()
                recorder.annotate(float(logp_A[action]), probs)
                obs, _, terminated, truncated, info = env.step(action)
                ended = terminated or truncated
    finally:
        env.close()
    return done
