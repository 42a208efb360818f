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
  the last step), so the choice each action was made from is not lost;
* each episode's ``seed`` and reset ``options`` (split, pinned parameters) are
  Minari's own episode fields; a one-env dataset also carries the env's spec,
  so ``dataset.recover_environment()`` works once Multiverse is imported.

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

__all__ = ["to_minari"]


def _text_space(texts: Iterable[str]) -> Any:
    from gymnasium import spaces

    texts = list(texts)
    chars = set(string.printable) | {c for t in texts for c in t}
    return spaces.Text(max_length=max([1, *map(len, texts)]), min_length=0, charset="".join(sorted(chars)))


def to_minari(episodes: Iterable[RecordedEpisode], dataset_id: str, *, path: str | Path | None = None,
              author: str | None = None, description: str | None = None) -> Any:
    """Write episodes as the Minari dataset ``dataset_id`` (under ``path``, else MINARI_DATASETS_PATH or
    ~/.minari/datasets) and return the :class:`minari.MinariDataset`."""
    import os

    import gymnasium as gym
    import minari
    from gymnasium import spaces
    from minari.data_collector.episode_buffer import EpisodeBuffer

    if not re.fullmatch(r"([\w.-]+/){0,2}[\w.]+(-[\w.]+)*-v\d+", dataset_id):
        raise ValueError(f"{dataset_id!r} is not a Minari dataset id: use [namespace/][env/]name-vN, "
                         f"e.g. multiverse/catch-oracle-v0")
    recs = [r for r in episodes if r.episode.steps]
    if not recs:
        raise ValueError("no episode with steps to export")
    with_images = all(r.episode.final_image is not None and all(s.image is not None for s in r.episode.steps)
                      for r in recs)
    buffers, obs_texts, act_texts, shapes = [], [], [], set()
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
        buffers.append(EpisodeBuffer(
            id=k, seed=int(ep.seed), options=ep.options, observations=obs, actions=actions,
            rewards=[float(s.reward) for s in ep.steps], terminations=[bool(s.terminated) for s in ep.steps],
            truncations=[bool(s.truncated) for s in ep.steps], infos={"legal_actions": legal}))
        obs_texts += texts
        act_texts += actions
    obs_space: dict[str, Any] = {"text": _text_space(obs_texts)}
    if with_images:
        if len(shapes) != 1:
            raise ValueError(f"the episodes' images differ in shape ({sorted(shapes)}); export datasets recorded with "
                             f"one image size, or without images")
        obs_space["image"] = spaces.Box(0, 255, next(iter(shapes)), np.uint8)
    env_ids = sorted({r.episode.env_id for r in recs})
    env = None
    if len(env_ids) == 1:
        import multiverse.envs as menvs

        menvs.lookup(env_ids[0])  # registers the built-ins and plugins with Gymnasium
        env = gym.spec(env_ids[0])
    previous = os.environ.get("MINARI_DATASETS_PATH")
    if path is not None:
        os.environ["MINARI_DATASETS_PATH"] = str(Path(path).expanduser().resolve())
    try:
        with warnings.catch_warnings():  # Minari's advice to add an author e-mail and an eval env
            warnings.filterwarnings("ignore", message=r"`(author_email|eval_env|code_permalink)` is set to None",
                                    category=UserWarning)
            return minari.create_dataset_from_buffers(
                dataset_id, buffers, env=env, observation_space=spaces.Dict(obs_space),
                action_space=_text_space(act_texts), algorithm_name=", ".join(sorted({r.meta.agent for r in recs})),
                author=author or "multiverse export", code_permalink=None,
                description=description or f"Multiverse episodes of {', '.join(env_ids)} (multiverse export minari)",
                data_format="arrow", jpeg_encoding=False)
    finally:
        if path is not None:
            if previous is None:
                os.environ.pop("MINARI_DATASETS_PATH", None)
            else:
                os.environ["MINARI_DATASETS_PATH"] = previous
