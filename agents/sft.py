"""Supervised warm start: behaviour cloning on recorded episodes, through the learner's primitives.

Each recorded step becomes a training :class:`~multiverse.agents.learner.Sample`
whose prompt is built exactly as when acting (mission, observation, the same
bounded history of earlier steps, the legal actions) and whose chosen candidate
is the recorded action. A template action such as ``type(2, "alice")`` is
matched to its template ``type(2, <text>)``; the typed text becomes the
generated tokens (then the closing quote), so its likelihood is trained too.
Steps that cannot be scored that way (an action that was not legal, text the
action language cannot generate, or longer than ``max_text_tokens``) are
skipped and counted. :func:`train_bc` minimises :class:`~multiverse.agents.losses.BCLoss`
with ``forward_backward`` and ``optim_step``; the caller ``save``-s the learner.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch

from multiverse.agents.episodes import RecordedEpisode
from multiverse.agents.learner import Learner, Sample
from multiverse.agents.losses import BCLoss
from multiverse.agents.policy import TEXT_SLOT, Policy
from multiverse.agents.prompt import Turn
from multiverse.agents.summary import step_summary

__all__ = ["action_probability", "bc_samples", "train_bc"]


def _close_quote_id(policy: Policy) -> int:
    _, close_V = policy.text_masks()
    ids = policy.tokenizer.encode('"', add_special_tokens=False)
    if len(ids) == 1 and bool(close_V[ids[0]]):
        return ids[0]
    return int(close_V.nonzero()[0, 0])


def _match(policy: Policy, action: str, legal: Sequence[str]) -> tuple[int, tuple[int, ...]] | None:
    """(candidate index, generated token ids) that reproduce ``action``, or None."""
    if action in legal:
        return list(legal).index(action), ()
    text_V, _ = policy.text_masks()
    for k, template in enumerate(legal):
        if TEXT_SLOT not in template:
            continue
        head, tail = template.split(TEXT_SLOT, 1)
        if action.startswith(head + '"') and action.endswith('"' + tail) and len(action) >= len(head) + len(tail) + 2:
            text = action[len(head) + 1: len(action) - len(tail) - 1]
            ids = policy.tokenizer.encode(text, add_special_tokens=False)
            if len(ids) + 1 > policy.config.max_text_tokens or not all(bool(text_V[i]) for i in ids):
                return None
            return k, (*ids, _close_quote_id(policy))
    return None


def bc_samples(policy: Policy, episodes: Iterable[RecordedEpisode], *, only_success: bool = False
               ) -> tuple[list[Sample], int]:
    """(samples, steps skipped): one sample per recorded step the policy can score. ``only_success``: only
    episodes whose last step's info says success (the ``success`` column where the steps carry no info)."""
    samples, skipped = [], 0
    for rec in episodes:
        ep = rec.episode
        success = step_summary(rec).success  # the last step's info, not the column an edit can fake
        if only_success and not (ep.success if success is None else success):
            continue
        for t, step in enumerate(ep.steps):
            match = _match(policy, step.action, step.legal_actions)
            if match is None:
                skipped += 1
                continue
            history = [(s.observation, s.action) for s in ep.steps[:t]]
            turn = Turn(ep.mission, step.observation, step.legal_actions, history, step.action_descriptions)
            prompt_ids, candidates, _ = policy.encode(turn)  # scored as acting scores them, descriptions included
            samples.append(Sample(prompt_ids, candidates, match[0], match[1], 0.0, 0.0, 0.0, ep.env_id))
    return samples, skipped


@torch.no_grad()
def action_probability(policy: Policy, samples: Sequence[Sample], chunk: int = 16) -> float:
    """Mean probability the policy gives the demonstrated actions (at its acting temperature)."""
    probs = []
    for start in range(0, len(samples), chunk):
        probs += policy.evaluate(samples[start:start + chunk]).logp_N.exp().tolist()
    return float(np.mean(probs)) if probs else float("nan")


def train_bc(learner: Learner, samples: Sequence[Sample], *, epochs: int, minibatch: int, seed: int = 0,
             on_epoch: Any = None) -> list[dict[str, float]]:
    """``epochs`` shuffled passes, one optimizer step per minibatch; returns mean metrics per epoch."""
    if not samples:
        raise ValueError("no samples to train on (no recorded step could be scored; see bc_samples)")
    rng = random.Random(seed)
    loss_fn = BCLoss()
    history = []
    for epoch in range(1, epochs + 1):
        order = list(range(len(samples)))
        rng.shuffle(order)
        rows = []
        for start in range(0, len(order), minibatch):
            m = learner.forward_backward([samples[i] for i in order[start:start + minibatch]], loss_fn)
            m.update(learner.optim_step())
            rows.append(m)
        row = {"epoch": float(epoch), **{k: float(np.mean([r[k] for r in rows])) for k in ("bc_loss", "p_action",
                                                                                          "grad_norm")}}
        history.append(row)
        if on_epoch is not None:
            on_epoch(row)
    return history
