"""The learner as the loop sees it: one typed handle (``update``, ``step``, ``save``, ``load``, ``weights``), and the
PPO update over shuffled minibatches.

:class:`LocalLearner` is the learner in this process; ``multiverse.launch.workers.ActorLearner`` runs the same class
inside a Ray actor behind the same methods. The loop only sees :class:`LearnerHandle`.
"""

from __future__ import annotations

import os
import random
import socket
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from multiverse.agents.learner import Learner, LearnerConfig, Sample, rows_of
from multiverse.agents.losses import PPOConfig, PPOLoss
from multiverse.agents.policy import Policy

__all__ = ["LearnerHandle", "LocalLearner", "ppo_update"]


def ppo_update(
    learner: Learner, samples: Sequence[Sample], loss_fn: PPOLoss, *, epochs: int, minibatch: int, rng: random.Random
) -> dict[str, float]:
    """``epochs`` passes over the samples in shuffled minibatches of about ``minibatch`` samples, one optimizer step
    each; mean metrics. Samples that score the same forward row (a group's equal first turns) are shuffled as one
    and go into one minibatch.

    With ``loss_fn.config.skip_zero_advantage`` (and no value head) samples whose advantage is exactly 0
    are left out first; ``samples_used`` reports how many were trained on."""
    used = len(samples)
    if loss_fn.config.skip_zero_advantage and learner.policy.value_head is None:
        samples = [s for s in samples if s.advantage != 0.0]
    update_metrics: list[dict[str, float]] = []
    rows = rows_of(samples)  # samples that score the same row stay in one minibatch, where the row is computed once
    for _ in range(epochs):
        rng.shuffle(rows)
        for batch in _minibatches(rows, minibatch):
            m = learner.forward_backward(batch, loss_fn)
            m.update(learner.optim_step())
            update_metrics.append(m)
    if not update_metrics:
        return {"samples_used": 0.0, "samples_skipped": float(used)}
    means = {k: float(np.mean([m[k] for m in update_metrics])) for k in update_metrics[0] if k not in ("samples", "tokens")}
    return means | {"samples_used": float(len(samples)), "samples_skipped": float(used - len(samples)),
                    "tokens": float(sum(m["tokens"] for m in update_metrics))}


def _minibatches(rows: Sequence[Sequence[Sample]], size: int) -> list[list[Sample]]:
    """Whole rows in order, a minibatch closed once it holds ``size`` samples or more."""
    out: list[list[Sample]] = [[]]
    for row in rows:
        if len(out[-1]) >= size:
            out.append([])
        out[-1] += row
    return [b for b in out if b]


class LearnerHandle(Protocol):
    """What the loop calls on the learner, wherever it runs."""

    def update(self, samples: list[Sample], *, epochs: int, minibatch: int, seed: int) -> dict[str, float]:
        """PPO steps on ``samples`` (:func:`ppo_update`, minibatch order from ``seed``); their mean metrics."""
        ...

    def step(self) -> int:
        """Optimizer steps taken so far."""
        ...

    def save(self, path: str | Path) -> None: ...

    def load(self, path: str | Path) -> None: ...

    def weights(self) -> Any:
        """The trainable tensors (a dict), or a reference a rollout can fetch them from."""
        ...

    def where(self) -> str: ...

    def close(self) -> None: ...


class LocalLearner:
    """A :class:`~multiverse.agents.learner.Learner` and its loss, in this process (see the module docstring)."""

    def __init__(self, config: LearnerConfig, loss: PPOConfig | None = None, *, threads: int | None = None) -> None:
        if threads:
            torch.set_num_threads(threads)
        self.learner = Learner(config)
        self.loss_fn = PPOLoss(loss or PPOConfig())

    @property
    def policy(self) -> Policy:
        """The trainable policy (what an in-process rollout acts with)."""
        return self.learner.policy

    def update(self, samples: list[Sample], *, epochs: int, minibatch: int, seed: int) -> dict[str, float]:
        return ppo_update(self.learner, samples, self.loss_fn, epochs=epochs, minibatch=minibatch,
                          rng=random.Random(seed))

    def step(self) -> int:
        return self.learner.step

    def save(self, path: str | Path) -> None:
        self.learner.save(path)

    def load(self, path: str | Path) -> None:
        self.learner.load(path)

    def weights(self) -> dict[str, torch.Tensor]:
        return self.learner.get_weights()

    def where(self) -> str:
        return f"{socket.gethostname()} pid {os.getpid()}"

    def close(self) -> None:
        """Nothing to release (an actor's handle ends its actor)."""
