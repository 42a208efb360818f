"""Record episodes with a scripted agent or a policy, and replay recorded ones step by step.

``record_env`` plays episodes of one env through :class:`~multiverse.agents.episodes.RecordEpisodes`.
``verify_dataset`` re-makes each recorded episode's env from its id, seed, reset
options and step limit, checks the randomization it samples, re-applies the
recorded actions and compares, step by step, the observation text (by sha256),
the legal actions, the reward and the two flags, and at the end the success; the
first difference is a :class:`Divergence` with both sides (a changed action is
named as such). Before replaying, each episode's summary columns are checked
against its steps (:mod:`multiverse.agents.summary`), so an edited return,
success or length, or missing steps, fail too. An env that is not registered
here (a missing plugin) or registered only under another version is refused
with :class:`ReplayRefused` before anything runs.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym

from multiverse.agents.episodes import (
    EpisodeMeta,
    EpisodeWriter,
    RecordedEpisode,
    RecordEpisodes,
    read_episodes,
    text_hash,
    to_json,
)
from multiverse.agents.rollout import Episode
from multiverse.agents.summary import summary_mismatch

__all__ = ["Divergence", "ReplayRefused", "VerifyReport", "check_replayable", "make_replay_env", "record_env",
           "replay_observations", "verify_dataset", "verify_episode"]


class ReplayRefused(ValueError):
    """The episode cannot be replayed here (env not registered, another env version): the message says what to do."""


@dataclasses.dataclass
class Divergence:
    """The first place where a replay differs from its recording. ``step`` 0 is the reset; step k is what
    action k (counted from 1) led to; None: the episode as a whole (a summary column that disagrees with its
    steps, which ``note`` says). ``field`` 'action': the stored action k does not give what was recorded after
    it, but ``replayed``, another legal action, does."""

    episode: int
    file: Path
    step: int | None
    field: str
    recorded: Any
    replayed: Any
    note: str = ""

    def describe(self) -> str:
        where = f"episode {self.episode} ({self.file.name})"
        if self.step is None:
            return f"{where} {self.note}"
        rec, rep = self.recorded, self.replayed
        head = f"{where} step {self.step}: {self.field} differs"
        if self.field == "observation":
            rec, rep = _first_difference(str(rec), str(rep))
        elif self.field == "randomization":
            keys = sorted(k for k in {*rec, *rep} if rec.get(k, _ABSENT) != rep.get(k, _ABSENT))
            head += " in " + ", ".join(map(repr, keys))
            rec, rep = (", ".join(f"{k}={d.get(k, _ABSENT)!r}" for k in keys) for d in (rec, rep))
        elif self.field == "action":
            rec, rep = repr(rec), f"{rep!r} gives what was recorded after this step ({self.note})"
        return f"{head}\n  recorded: {rec}\n  replayed: {rep}"


class _Absent:
    def __repr__(self) -> str:
        return "<absent>"


_ABSENT = _Absent()


def _first_difference(a: str, b: str) -> tuple[str, str]:
    """The first differing line of two texts, with its number and each text's sha256 prefix."""
    la, lb = a.splitlines(), b.splitlines()
    for i in range(max(len(la), len(lb))):
        x = la[i] if i < len(la) else "<no line>"
        y = lb[i] if i < len(lb) else "<no line>"
        if x != y:
            return (f"line {i + 1}: {x!r} (sha256 {text_hash(a)[:12]})", f"line {i + 1}: {y!r} (sha256 {text_hash(b)[:12]})")
    return (f"{a!r} (sha256 {text_hash(a)[:12]})", f"{b!r} (sha256 {text_hash(b)[:12]})")


@dataclasses.dataclass
class VerifyReport:
    episodes: int = 0
    steps: int = 0
    skipped: list[str] = dataclasses.field(default_factory=list)
    divergences: list[Divergence] = dataclasses.field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.divergences


# --------------------------------------------------------------------------- recording


def record_env(
    env_id: str,
    writer: EpisodeWriter,
    *,
    episodes: int,
    agent: str = "oracle",
    seed: int = 0,
    split: str = "train",
    pixels: bool = False,
    params: dict[str, Any] | None = None,
    policy: Any = None,
    policy_identity: dict[str, Any] | None = None,
    greedy: bool = False,
) -> list[Episode]:
    """Play ``episodes`` episodes (seeds ``seed``, ``seed + 1``, ...) and write them; returns them.

    ``agent`` is 'random' or 'oracle' (:mod:`multiverse.envs.play`), or any name when ``policy`` (a
    :class:`~multiverse.agents.policy.Policy`) acts; its log-probs and distributions are recorded."""
    import torch

    import multiverse.envs as menvs
    from multiverse.agents.prompt import Turn
    from multiverse.envs.play import make_agent

    done: list[Episode] = []
    meta = EpisodeMeta(agent=agent, policy=policy_identity)
    env = RecordEpisodes(menvs.make(env_id, pixels=pixels), lambda ep, m: (writer.write(ep, m), done.append(ep)), meta)
    scripted = make_agent(agent, seed) if policy is None else None
    generator = torch.Generator().manual_seed(seed)
    options: dict[str, Any] = {"split": split}
    if params:
        options["params"] = dict(params)
    try:
        for k in range(episodes):
            obs, info = env.reset(seed=seed + k, options=options)
            history: list[tuple[str, str]] = []
            ended = not info.get("legal_actions")  # an env that could not even start (infra_error)
            while not ended:
                if scripted is not None:
                    action = scripted(env, obs, info)
                else:
                    turn = Turn.from_env(obs, info, history)
                    d = policy.act([turn], greedy=greedy, generator=generator)[0]
                    env.annotate(d.logp, d.probs)
                    history.append((turn.observation, d.action))
                    action = d.action
                obs, _, terminated, truncated, info = env.step(action)
                ended = terminated or truncated
    finally:
        env.close()
    return done


# --------------------------------------------------------------------------- replay


def _check_env(rec: RecordedEpisode) -> Any:
    """The registry spec of the recorded env, or :class:`ReplayRefused` saying what to install."""
    from multiverse.envs.registry import RegistryError, list_envs, lookup

    env_id = rec.episode.env_id
    where = f"episode {rec.index} ({rec.file.name})"
    recorded_mv = rec.meta.versions.get("multiverse-rl")
    try:
        spec = lookup(env_id)
    except RegistryError:
        stem = env_id.rsplit("-v", 1)[0]
        others = [s.id for s in list_envs() if s.id.rsplit("-v", 1)[0] == stem]
        if others:
            raise ReplayRefused(
                f"{where} was recorded on {env_id}; this install has {', '.join(others)} instead (the env changed "
                f"behaviour since). Replay it with the version that recorded it: pip install "
                f"{rec.meta.env_source or 'multiverse-rl'}{'==' + recorded_mv if recorded_mv and (rec.meta.env_source in (None, 'multiverse-rl')) else ''}"
            ) from None
        source = rec.meta.env_source or "the plugin that registers it"
        raise ReplayRefused(
            f"{where} needs env {env_id!r}, which is not registered here: install {source} "
            f"(it was recorded with {source} registering it; see `multiverse envs list`)") from None
    if rec.meta.env_version is not None and rec.meta.env_version != spec.version:
        raise ReplayRefused(f"{where}: its metadata says env version {rec.meta.env_version} but its id is {env_id}; "
                            f"the file was edited or is inconsistent: record it again")
    return spec


def make_replay_env(rec: RecordedEpisode, *, pixels: bool = False, render_mode: str | None = None) -> gym.Env:
    """A fresh env for a recorded episode: same id and step limit (refuses what cannot be replayed here)."""
    import multiverse.envs as menvs

    spec = _check_env(rec)
    limit = rec.meta.max_steps
    kwargs: dict[str, Any] = {"pixels": pixels}
    if render_mode is not None:
        kwargs["render_mode"] = render_mode
    if limit is not None and limit < spec.max_episode_steps:
        kwargs["max_episode_steps"] = int(limit)
    return menvs.make(rec.episode.env_id, **kwargs)


def _text(obs: Any) -> str:
    return str(obs["text"] if isinstance(obs, dict) else obs)


def _replay(env: gym.Env, rec: RecordedEpisode, on_obs: Callable[[int, Any], None] | None = None
            ) -> tuple[Divergence | None, int]:
    """Re-run one episode on ``env``; the first divergence (or None) and the steps replayed."""
    ep = rec.episode

    def differ(step: int, field: str, recorded: Any, replayed: Any) -> Divergence:
        return Divergence(rec.index, rec.file, step, field, recorded, replayed)

    obs, info = env.reset(seed=ep.seed, options=dict(ep.options))
    if on_obs:
        on_obs(0, obs)
    sampled = json.loads(to_json(info.get("randomization", {})))  # as stored: JSON values (tuples become lists)
    if sampled != ep.randomization:
        return differ(0, "randomization", ep.randomization, sampled), 0
    for t, step in enumerate(ep.steps):
        text = _text(obs)
        if text_hash(text) != text_hash(step.observation):
            return differ(t, "observation", step.observation, text), t
        if list(info.get("legal_actions", [])) != list(step.legal_actions):
            return differ(t, "legal_actions", step.legal_actions, info.get("legal_actions")), t
        if step.action_descriptions is not None and info.get("action_descriptions") != step.action_descriptions:
            # checked where recorded: files from before the column have none, and replay as before
            return differ(t, "action_descriptions", step.action_descriptions, info.get("action_descriptions")), t
        obs, reward, terminated, truncated, info = env.step(step.action)
        if on_obs:
            on_obs(t + 1, obs)
        for field, recorded, replayed in (("reward", step.reward, float(reward)),
                                          ("terminated", step.terminated, bool(terminated)),
                                          ("truncated", step.truncated, bool(truncated))):
            if recorded != replayed:
                return differ(t + 1, field, recorded, replayed), t + 1
    n = len(ep.steps)
    text = _text(obs)
    if text_hash(text) != text_hash(ep.final_observation):
        return differ(n, "observation", ep.final_observation, text), n
    if bool(info.get("success", False)) != bool(ep.success):
        return differ(n, "success", bool(ep.success), bool(info.get("success", False))), n
    return None, n


#: what action k leads to (step k): when one of these diverges, the stored action k may be what was changed
_AFTER_ACTION = ("observation", "legal_actions", "reward", "terminated", "truncated", "success")
#: at most this many other legal actions are tried to explain a divergence (each a replay up to the step)
MAX_ACTION_CANDIDATES = 64


def _fits_recording(rec: RecordedEpisode, t: int, obs: Any, reward: float, terminated: bool, truncated: bool,
                    info: dict[str, Any]) -> bool:
    """Whether this outcome of the action at ``ep.steps[t]`` is what was recorded after it."""
    ep = rec.episode
    step, after = ep.steps[t], ep.steps[t + 1] if t + 1 < len(ep.steps) else None
    if (float(reward), bool(terminated), bool(truncated)) != (step.reward, step.terminated, step.truncated):
        return False
    if text_hash(_text(obs)) != text_hash(after.observation if after else ep.final_observation):
        return False
    if after is None:
        return bool(info.get("success", False)) == bool(ep.success)
    return list(info.get("legal_actions", [])) == list(after.legal_actions)


def _action_that_fits(env: gym.Env, rec: RecordedEpisode, t: int) -> str | None:
    """Another legal action at ``ep.steps[t]`` whose outcome is what was recorded after it (the first in the
    legal order), or None. Templates with a text slot are not tried: their text is unknown."""
    from multiverse.envs.web.actions import TEXT_TEMPLATE

    ep = rec.episode

    def replay_to(k: int) -> None:
        env.reset(seed=ep.seed, options=dict(ep.options))
        for step in ep.steps[:k]:
            env.step(step.action)

    # First the stored action, once: when its next observation is the recorded one, or the recording agrees
    # again one step later, the env went the recorded way and a reward, a flag or a text was edited, not the
    # action (and no web task reloads a page for every legal action).
    replay_to(t)
    obs, _, terminated, truncated, _ = env.step(ep.steps[t].action)
    after = ep.steps[t + 1] if t + 1 < len(ep.steps) else None
    if text_hash(_text(obs)) == text_hash(after.observation if after else ep.final_observation):
        return None
    if after is not None and not (terminated or truncated) and _fits_recording(rec, t + 1, *env.step(after.action)):
        return None
    candidates = [a for a in ep.steps[t].legal_actions if a != ep.steps[t].action and TEXT_TEMPLATE not in a]
    for action in candidates[:MAX_ACTION_CANDIDATES]:
        replay_to(t)
        if _fits_recording(rec, t, *env.step(action)):
            return action
    return None


def verify_episode(rec: RecordedEpisode, env: gym.Env | None = None) -> tuple[Divergence | None, int]:
    """Replay one recorded episode and compare it; ``env`` (from :func:`make_replay_env`) is reused when given.

    When what followed action k diverges and another legal action there gives exactly what was recorded,
    the divergence is the action's (field 'action', both actions named), not the reward's or observation's."""
    own = env is None
    env = env or make_replay_env(rec)
    try:
        div, steps = _replay(env, rec)
        if div is not None and div.field in _AFTER_ACTION and div.step:
            other = _action_that_fits(env, rec, div.step - 1)
            if other is not None:
                div = Divergence(rec.index, rec.file, div.step, "action", rec.episode.steps[div.step - 1].action,
                                 other, note=f"the stored action gives another {div.field}")
        return div, steps
    finally:
        if own:
            env.close()


def replay_observations(rec: RecordedEpisode, *, pixels: bool = True, full_size: bool = False
                        ) -> tuple[list[Any], Divergence | None]:
    """The observations of a replay (reset, then one per action), e.g. to re-render images not stored.
    ``full_size``: the env's full-size frames (``render_mode="rgb_array"``: a web task's page screenshot at
    its viewport size) instead, as (H, W, 3) arrays."""
    observations: list[Any] = []
    env = make_replay_env(rec, pixels=pixels and not full_size, render_mode="rgb_array" if full_size else None)
    try:
        div, _ = _replay(env, rec, on_obs=lambda t, obs: observations.append(env.render() if full_size else obs))
    finally:
        env.close()
    return observations, div


def verify_dataset(episodes: Iterable[RecordedEpisode], *, stop_at_first: bool = True,
                   on_episode: Callable[[RecordedEpisode, Divergence | None], None] | None = None) -> VerifyReport:
    """Verify episodes in order, one env per (id, step limit) reused across them.

    First each episode's stored summary (length, total_return, success) is checked against its steps, and
    steps that are missing fail it (:func:`~multiverse.agents.summary.summary_mismatch`); an episode cut
    short by the env's machinery (``infra_error``) is then skipped, the others are replayed."""
    report = VerifyReport()
    start = time.perf_counter()
    envs: dict[tuple[str, int | None], gym.Env] = {}
    try:
        for rec in episodes:
            mismatch = summary_mismatch(rec)
            if mismatch is not None:
                div: Divergence | None = Divergence(rec.index, rec.file, None, mismatch.column, mismatch.stored,
                                                    mismatch.from_steps, mismatch.message)
                steps = 0
            elif rec.episode.infra_error:
                report.skipped.append(f"episode {rec.index}: cut short by the env's machinery "
                                      f"({rec.episode.infra_error}), not replayable")
                continue
            else:
                key = (rec.episode.env_id, rec.meta.max_steps)
                if key not in envs:
                    envs[key] = make_replay_env(rec)
                div, steps = verify_episode(rec, envs[key])
            report.episodes += 1
            report.steps += steps
            if on_episode:
                on_episode(rec, div)
            if div is not None:
                report.divergences.append(div)
                if stop_at_first:
                    break
    finally:
        for env in envs.values():
            env.close()
        report.seconds = time.perf_counter() - start
    return report


def check_replayable(path: str | Path, indices: Sequence[int] | None = None, *,
                     on_bad_file: Callable[[Path, str], Any] | None = None) -> int:
    """Look up every selected episode's env before anything is replayed (reading no steps): a bad file, a
    missing plugin or another env version is reported first. Returns the number of episodes."""
    n = 0
    for rec in read_episodes(path, indices, steps=False, on_bad_file=on_bad_file):
        _check_env(rec)
        n += 1
    return n
