"""Export recorded episodes to other formats: a Minari dataset.

Minari wants one observation space and one action space for the whole dataset,
and Multiverse's observations and actions are text. The encoding:

* observations: ``Dict(text=Text)``, plus ``image=Box(H, W, 3, uint8)`` when
  every episode stored images (stored raw, not JPEG, so they stay exact);
* actions: ``Text`` -- the action string as the env took it (a game's action
  name, ``click(3)``, ``type(2, "alice")``). Indices would not do: web actions
  are text, and a game's names change with its text randomization;
* the Text spaces' ``max_length`` is the longest text in the data and their
  charset is every character that occurs in it (plus printable ASCII), so each
  stored value lies in its space;
* ``infos``: ``legal_actions`` per observation as a JSON list (``"[]"`` after
  the last step), so the choice each action was made from is not lost, and
  ``action_descriptions`` the same way where the episodes stored them (``"null"``
  for a step that has none);
* each episode's ``seed`` and reset ``options`` (split, pinned parameters) are
  Minari's own episode fields, and the dataset carries the env's spec, so
  ``dataset.recover_environment()`` makes the env (its entry point imports
  Multiverse). Minari keeps one spec per dataset, so episodes of several env
  ids become one dataset per id, named by :func:`dataset_ids`.

Minari's ``DataCollector`` needs jax; :func:`minari.create_dataset_from_buffers`
does not, and is what this uses (with Minari's Arrow storage: pyarrow, no h5py).
"""

from __future__ import annotations

import json
import re
import string
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from multiverse.agents.episodes import RecordedEpisode, decode_png

__all__ = ["dataset_ids", "to_minari"]


def _text_space(texts: Iterable[str]) -> Any:
    from gymnasium import spaces

    texts = list(texts)
    chars = set(string.printable) | {c for t in texts for c in t}
    return spaces.Text(max_length=max([1, *map(len, texts)]), min_length=0, charset="".join(sorted(chars)))


def dataset_ids(dataset_id: str, env_ids: Iterable[str]) -> dict[str, str]:
    """The Minari dataset id for each env id: ``dataset_id`` itself for one env; for several, Minari's
    ``(namespace/)(env_name/)dataset_name-vN`` form with the env id as env name ('/' becomes '-'):
    ``multiverse/oracle-v0`` -> ``multiverse/games-Catch-v0/oracle-v0``, ``multiverse/web-LoginForm-v0/oracle-v0``."""
    env_ids = sorted(set(env_ids))
    if len(env_ids) == 1:
        return {env_ids[0]: dataset_id}
    namespace, _, name = dataset_id.rpartition("/")
    prefix = f"{namespace}/" if namespace else ""
    return {env_id: f"{prefix}{re.sub(r'[^-_A-Za-z0-9]', '-', env_id)}/{name}" for env_id in env_ids}


def to_minari(episodes: Iterable[RecordedEpisode], dataset_id: str, *, path: str | Path | None = None,
              author: str | None = None, description: str | None = None) -> dict[str, Any]:
    """Write episodes as the Minari dataset ``dataset_id`` (under ``path``, else MINARI_DATASETS_PATH or
    ~/.minari/datasets), one per env id (see :func:`dataset_ids`): Minari keeps one env spec per dataset,
    which ``recover_environment()`` makes. Returns {dataset id: :class:`minari.MinariDataset`}; nothing is
    written when one of the ids is taken."""
    import os

    from minari.storage import get_dataset_path

    if not re.fullmatch(r"([\w.-]+/){0,2}[\w.]+(-[\w.]+)*-v\d+", dataset_id):
        raise ValueError(f"{dataset_id!r} is not a Minari dataset id: use [namespace/][env/]name-vN, "
                         f"e.g. multiverse/catch-oracle-v0")
    recs = [r for r in episodes if r.episode.steps]
    if not recs:
        raise ValueError("no episode with steps to export")
    ids = dataset_ids(dataset_id, (r.episode.env_id for r in recs))
    previous = os.environ.get("MINARI_DATASETS_PATH")
    if path is not None:
        os.environ["MINARI_DATASETS_PATH"] = str(Path(path).expanduser().resolve())
    try:
        taken = [i for i in ids.values() if get_dataset_path(i).exists()]
        if taken:
            raise ValueError(f"the Minari dataset {taken[0]!r} already exists under {get_dataset_path()}: pick "
                             f"another --out, or delete it first (minari delete {taken[0]})")
        return {ids[env_id]: _write(ids[env_id], env_id, [r for r in recs if r.episode.env_id == env_id],
                                    author, description) for env_id in sorted(ids)}
    finally:
        if path is not None:
            if previous is None:
                os.environ.pop("MINARI_DATASETS_PATH", None)
            else:
                os.environ["MINARI_DATASETS_PATH"] = previous


def _write(dataset_id: str, env_id: str, recs: list[RecordedEpisode], author: str | None,
           description: str | None) -> Any:
    """One env's episodes as one Minari dataset, with the env's spec."""
    import gymnasium as gym
    import minari
    from gymnasium import spaces
    from minari.data_collector.episode_buffer import EpisodeBuffer

    import multiverse.envs as menvs

    with_images = all(r.episode.final_image is not None and all(s.image is not None for s in r.episode.steps)
                      for r in recs)
    buffers, obs_texts, act_texts, shapes = [], [], [], set()
    described = any(s.action_descriptions is not None for r in recs for s in r.episode.steps)
    for k, rec in enumerate(recs):
        ep = rec.episode
        texts = [s.observation for s in ep.steps] + [ep.final_observation]
        actions = [s.action for s in ep.steps]
        obs: dict[str, Any] = {"text": texts}
        if with_images:
            images = [decode_png(s.image) for s in ep.steps] + [decode_png(ep.final_image)]
            shapes.update(i.shape for i in images)
            obs["image"] = images
        legal = [json.dumps(list(s.legal_actions)) for s in ep.steps] + ["[]"]
        infos = {"legal_actions": legal}
        if described:  # every episode of a dataset has the same info keys
            infos["action_descriptions"] = [json.dumps(s.action_descriptions) for s in ep.steps] + ["[]"]
        buffers.append(EpisodeBuffer(
            id=k, seed=int(ep.seed), options=ep.options, observations=obs, actions=actions,
            rewards=[float(s.reward) for s in ep.steps], terminations=[bool(s.terminated) for s in ep.steps],
            truncations=[bool(s.truncated) for s in ep.steps], infos=infos))
        obs_texts += texts
        act_texts += actions
    obs_space: dict[str, Any] = {"text": _text_space(obs_texts)}
    if with_images:
        if len(shapes) != 1:
            raise ValueError(f"the episodes' images differ in shape ({sorted(shapes)}); export datasets recorded with "
                             f"one image size, or without images")
        obs_space["image"] = spaces.Box(0, 255, next(iter(shapes)), np.uint8)
    menvs.lookup(env_id)  # registers the built-ins and plugins with Gymnasium
    with warnings.catch_warnings():  # Minari's advice to add an author e-mail and an eval env
        warnings.filterwarnings("ignore", message=r"`(author_email|eval_env|code_permalink)` is set to None",
                                category=UserWarning)
        return minari.create_dataset_from_buffers(
            dataset_id, buffers, env=gym.spec(env_id), observation_space=spaces.Dict(obs_space),
            action_space=_text_space(act_texts), algorithm_name=", ".join(sorted({r.meta.agent for r in recs})),
            author=author or "multiverse export", code_permalink=None,
            description=description or f"Multiverse episodes of {env_id} (multiverse export minari)",
            data_format="arrow", jpeg_encoding=False)
