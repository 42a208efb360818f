"""multiverse.agents: the language-model policy, learner, losses, rollouts and episodes.

One policy plays every environment: a Hugging Face causal LM with its chat
template (default: the packaged SmolLM2-135M-Instruct, no network needed). It
scores every legal action in one packed forward pass and samples from the
softmax over them, and generates free text for ``type(id, <text>)`` templates
constrained to the action language. The learner exposes Tinker-style
primitives (``forward_backward``, ``optim_step``, ``get_weights`` /
``set_weights``, ``save`` / ``load``); :mod:`multiverse.agents.loop` is the RL
loop over them, written once, with the rollout passed in (an in-process env
pool here, Ray workers in ``multiverse.launch``); :mod:`multiverse.agents.train_local`
runs it in one process. No Ray here (that is ``multiverse.launch``).

Modules: ``models`` (loading), ``kernels`` (the device, and what computes the
forward: plain transformers + peft or the fused CPU forms), ``prompt``
(observation -> prompt), ``policy``
(scoring, sampling, generation), ``losses`` (PPO, GRPO, GAE, ...), ``learner``
(primitives, checkpoints), ``rollout`` (lockstep episodes, tasks, the
in-process rollout, advantages), ``config`` (the loop's settings), ``sampler``
(env curriculum, ADR), ``update`` (the learner handle, PPO steps), ``loop``
(the loop), ``runlog`` (its outputs), ``train_local`` (the loop in one
process), ``episodes`` (the recorded-episode schema, Parquet
storage, the recording wrapper), ``replay`` (record with an agent, verified
replay), ``render`` (GIF, HTML viewer), ``export`` (Minari), ``sft``
(behaviour cloning on recorded episodes).

The names below are imported lazily, so ``import multiverse.agents`` stays cheap
(torch and transformers load on first use).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ModelConfig": "models",
    "load_model": "models",
    "build_model": "models",
    "ModelNotFoundError": "models",
    "PromptConfig": "prompt",
    "PromptTooLongError": "prompt",
    "Turn": "prompt",
    "Policy": "policy",
    "PolicyConfig": "policy",
    "Decision": "policy",
    "Learner": "learner",
    "LearnerConfig": "learner",
    "Sample": "learner",
    "CheckpointError": "learner",
    "PPOConfig": "losses",
    "PPOLoss": "losses",
    "BCLoss": "losses",
    "EpisodeSpec": "rollout",
    "Episode": "rollout",
    "run_episodes": "rollout",
    "compute_advantages": "rollout",
    "EpisodeMeta": "episodes",
    "EpisodeWriter": "episodes",
    "RecordEpisodes": "episodes",
    "read_episodes": "episodes",
    "verify_dataset": "replay",
    "bc_samples": "sft",
    "train_bc": "sft",
    "TrainerConfig": "config",
    "train_loop": "loop",
    "LocalLearner": "update",
    "InProcessRollout": "rollout",
    "train": "train_local",
    "evaluate": "train_local",
}
__all__ = [
    "BCLoss",
    "CheckpointError",
    "Decision",
    "Episode",
    "EpisodeMeta",
    "EpisodeSpec",
    "EpisodeWriter",
    "InProcessRollout",
    "Learner",
    "LearnerConfig",
    "LocalLearner",
    "ModelConfig",
    "ModelNotFoundError",
    "PPOConfig",
    "PPOLoss",
    "Policy",
    "PolicyConfig",
    "PromptConfig",
    "PromptTooLongError",
    "RecordEpisodes",
    "Sample",
    "TrainerConfig",
    "Turn",
    "bc_samples",
    "build_model",
    "compute_advantages",
    "evaluate",
    "load_model",
    "read_episodes",
    "run_episodes",
    "train",
    "train_bc",
    "train_loop",
    "verify_dataset",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
