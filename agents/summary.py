"""What a recorded episode's steps say about it, and where its stored summary columns disagree.

The episode-level columns ``length``, ``total_return`` and ``success`` repeat what the
steps hold, so that a listing need not read the steps. A reader that trusted them
(the listing, ``sft --only-success``) would be fooled by an edited file, and a
replay that only walks the stored steps would not notice steps that are missing.
So they are recomputed from the steps: the step count, the sum of the rewards,
the last step's ``info["success"]``, and the flags (the last step, and only it,
ends the episode). Episodes recorded by the training loop store no step info:
their success is known only from the column, which ``replay --verify`` checks
by replaying.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from multiverse.agents.episodes import RecordedEpisode

__all__ = ["StepSummary", "SummaryMismatch", "step_summary", "summarize", "summary_mismatch"]


@dataclasses.dataclass(frozen=True)
class StepSummary:
    """An episode's summary as its steps say it."""

    steps: int
    total_return: float
    success: bool | None
    """The last step's ``info["success"]``; None when the steps carry no info (training rollouts)."""
    ended: bool
    """The last step terminated or truncated the episode."""
    ended_early: int | None
    """The index of the first step before the last that ended the episode (None: none did)."""


@dataclasses.dataclass(frozen=True)
class SummaryMismatch:
    """A stored column that disagrees with the episode's steps (``column`` 'steps': the steps themselves)."""

    column: str
    stored: Any
    from_steps: Any
    message: str
    """What is wrong, said of the episode: 'stores length 3 but holds 300 steps ...'."""


def summarize(rewards: Sequence[float], terminated: Sequence[bool], truncated: Sequence[bool],
              last_info: str | dict[str, Any] | None) -> StepSummary:
    """The summary of steps given as their rewards, flags and the last step's info (a dict or its JSON)."""
    if isinstance(last_info, str):
        try:
            last_info = json.loads(last_info)
        except ValueError:
            last_info = None
    success = last_info.get("success") if isinstance(last_info, dict) else None
    ends = [bool(a) or bool(b) for a, b in zip(terminated, truncated)]
    early = next((t for t, end in enumerate(ends[:-1]) if end), None)
    return StepSummary(len(rewards), float(sum(float(r) for r in rewards)),
                       None if success is None else bool(success), bool(ends and ends[-1]), early)


def step_summary(rec: RecordedEpisode) -> StepSummary:
    """The summary the episode's steps give: from its steps when they were read, else from the step fields the
    reader fetched without them (``read_episodes(..., steps=False)``)."""
    steps = rec.episode.steps
    if not steps and rec.steps_summary is not None:
        return rec.steps_summary
    return summarize([s.reward for s in steps], [s.terminated for s in steps], [s.truncated for s in steps],
                     steps[-1].info if steps else None)


def summary_mismatch(rec: RecordedEpisode) -> SummaryMismatch | None:
    """The first stored column (length, total_return, success) that disagrees with the steps, or steps that
    are missing (none at all without an infra_error to say why; a last step that does not end the episode;
    a step before the last that ends it). None when all agree. Steps are numbered as in a
    :class:`~multiverse.agents.replay.Divergence`: step k is what action k (from 1) led to."""
    s = step_summary(rec)
    ep = rec.episode
    if rec.length != s.steps:
        return SummaryMismatch("length", rec.length, s.steps, f"stores length {rec.length} but holds {s.steps} steps "
                               f"(steps are missing or were added)")
    if not math.isclose(rec.total_return, s.total_return, rel_tol=1e-9, abs_tol=1e-9):
        return SummaryMismatch("total_return", rec.total_return, s.total_return,
                               f"stores total_return {rec.total_return:g} but its steps' rewards sum to "
                               f"{s.total_return:g}")
    if s.success is not None and bool(ep.success) != s.success:
        return SummaryMismatch("success", bool(ep.success), s.success,
                               f"stores success={bool(ep.success)} but its last step's info says success={s.success}")
    if ep.infra_error:
        return None  # cut short by the env's machinery: its steps may stop anywhere
    if s.steps == 0:
        return SummaryMismatch("steps", 0, 0, "holds no steps and no infra_error says why: its steps are missing")
    if s.ended_early is not None:
        return SummaryMismatch("steps", s.steps, s.ended_early + 1,
                               f"ends at step {s.ended_early + 1}, yet {s.steps - s.ended_early - 1} more steps follow "
                               f"it")
    if not s.ended:
        return SummaryMismatch("steps", s.steps, s.steps,
                               f"has a last step (step {s.steps}) that does not end the episode: steps are "
                               f"missing at the end")
    return None
