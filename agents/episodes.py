"""Recorded episodes: one schema, stored as Parquet, written atomically, read back with clear errors.

A dataset is a folder of Parquet files (``part-<time>-<id>.parquet``), one row
per episode. Episode-level columns hold what replay needs (env id and version,
seed, reset options, randomization values, the step limit) and where the
episode came from (agent kind, policy/checkpoint identity, ADR state, package
versions, schema version); the ``steps`` column is a list of structs, one per
action taken: the observation text the action was chosen on (and its image as
PNG bytes when pixels were on), the legal actions (and, where the env gave them,
their descriptions: ``action_descriptions``, null in files written before it), the action, its log-prob and
the distribution over the legal actions when a policy chose it, the reward, the
flags, the step's ``info`` as JSON (without the mission, legal actions and
randomization and descriptions, which have their own columns), ``action_error`` and
``infra_error``. The observation after the last step is ``final_observation``
(``final_image``). Free-form values (options, randomization, info, versions)
are JSON strings, so any Parquet reader gets plain columns; nothing is pickled.

    import pyarrow.dataset as ds
    ds.dataset("episodes/", format="parquet").to_table(columns=["env_id", "total_return"])
    ray.data.read_parquet("episodes/")            # Ray Data reads the same folder

Writes are atomic per file: :class:`EpisodeWriter` buffers finished episodes
and writes a file at a time into a hidden temporary file in the same folder,
fsyncs it and renames it into place (``os.replace``), then fsyncs the folder.
Readers skip hidden files, so a killed recorder leaves only complete episodes
visible: those of the files it finished. Files roll over at ``max_file_bytes``
(uncompressed estimate), so a long recording is many files.

:class:`RecordEpisodes` is a Gymnasium wrapper that records every episode of
any Multiverse env (games and web tasks, with pixels or without).
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import hashlib
import importlib.metadata
import io
import json
import os
import secrets
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from multiverse.agents.durable import fsync_dir
from multiverse.agents.rollout import Episode, Step
from multiverse.agents.summary import StepSummary, summarize

__all__ = [
    "SCHEMA",
    "SCHEMA_VERSION",
    "EpisodeDataError",
    "EpisodeMeta",
    "EpisodeWriter",
    "RecordEpisodes",
    "RecordedEpisode",
    "chromium_version",
    "dataset_files",
    "decode_png",
    "encode_png",
    "package_versions",
    "read_episodes",
    "text_hash",
]

SCHEMA_VERSION = 1
#: Parquet key-value metadata: the schema version of a file, checked before any row is read
SCHEMA_KEY = b"multiverse.episodes.schema_version"
DEFAULT_MAX_FILE_BYTES = 64 << 20
#: distributions whose versions are stored with every episode (None when not installed)
KEY_PACKAGES = ("multiverse-rl", "gymnasium", "numpy", "pygame", "playwright", "torch", "transformers", "peft",
                "pyarrow", "miniwob")

STEP_TYPE = pa.struct([
    ("observation", pa.string()),
    ("image", pa.binary()),
    ("legal_actions", pa.list_(pa.string())),
    ("action", pa.string()),
    ("logp", pa.float64()),
    ("probs", pa.list_(pa.float64())),
    ("reward", pa.float64()),
    ("terminated", pa.bool_()),
    ("truncated", pa.bool_()),
    ("info", pa.string()),
    ("action_error", pa.string()),
    ("infra_error", pa.string()),
    ("action_descriptions", pa.list_(pa.string())),  # optional: files without it read as None
])
SCHEMA = pa.schema([
    ("schema_version", pa.int32()),
    ("episode_id", pa.string()),
    ("env_id", pa.string()),
    ("env_version", pa.int32()),
    ("env_source", pa.string()),
    ("seed", pa.int64()),
    ("options", pa.string()),
    ("randomization", pa.string()),
    ("mission", pa.string()),
    ("max_steps", pa.int32()),
    ("pixels", pa.bool_()),
    ("agent", pa.string()),
    ("policy", pa.string()),
    ("adr_state", pa.string()),
    ("versions", pa.string()),
    ("recorded_at", pa.string()),
    ("length", pa.int32()),
    ("total_return", pa.float64()),
    ("success", pa.bool_()),
    ("infra_error", pa.string()),
    ("final_observation", pa.string()),
    ("final_image", pa.binary()),
    ("steps", pa.list_(STEP_TYPE)),
], metadata={SCHEMA_KEY: str(SCHEMA_VERSION).encode()})


class EpisodeDataError(ValueError):
    """A dataset that cannot be read: the message names the file and what to do; ``file`` is the bad file (None
    when the folder itself is the problem)."""

    def __init__(self, message: str, file: Path | None = None) -> None:
        super().__init__(message)
        self.file = file


# --------------------------------------------------------------------------- values


def _json_default(x: Any) -> Any:
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, (set, tuple)):
        return list(x)
    return repr(x)  # anything else is kept readable, never pickled


def to_json(x: Any) -> str:
    return json.dumps(x, sort_keys=True, default=_json_default)


def text_hash(text: str) -> str:
    """sha256 of an observation text (what replay compares)."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def encode_png(image: np.ndarray) -> bytes:
    """(H, W, 3) uint8 -> PNG bytes (lossless; fast compression, recording is on the hot path)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8)).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def decode_png(data: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


@functools.lru_cache(maxsize=1)
def package_versions() -> dict[str, str | None]:
    """Versions of Multiverse and the packages that shape an episode (None: not installed)."""
    out: dict[str, str | None] = {}
    for dist in KEY_PACKAGES:
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = None
    return out


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


@dataclasses.dataclass
class EpisodeMeta:
    """Where an episode came from, beside the :class:`~multiverse.agents.rollout.Episode` itself."""

    agent: str = "unknown"
    """'random', 'oracle', 'policy' (training), 'checkpoint', or what a caller names."""
    policy: dict[str, Any] | None = None
    """The policy's identity when one acted: model, checkpoint path and step, run dir and iteration."""
    env_version: int | None = None
    """The ``-vN`` of the env id (filled in from the registry when None)."""
    env_source: str | None = None
    """The distribution that registered the env (a plugin's name, or multiverse-rl)."""
    max_steps: int | None = None
    """A step limit below the env's own that cut the episode (replay applies the same)."""
    pixels: bool = False
    adr_state: dict[str, Any] | None = None
    versions: dict[str, str | None] = dataclasses.field(default_factory=package_versions)
    episode_id: str = dataclasses.field(default_factory=lambda: uuid.uuid4().hex)
    recorded_at: str = dataclasses.field(default_factory=lambda: _now())
    schema_version: int = SCHEMA_VERSION


@dataclasses.dataclass
class RecordedEpisode:
    """An episode read back: the episode, its metadata, and where it is stored."""

    episode: Episode
    meta: EpisodeMeta
    file: Path
    row: int
    index: int
    """Position in the dataset (files in name order, rows in order): what ``--episode K`` selects."""
    length: int = 0
    """Steps, as stored (also when the steps were not read)."""
    total_return: float = 0.0
    """Return, as stored (also when the steps were not read)."""
    steps_summary: StepSummary | None = None
    """When the steps were not read: what their rewards, flags and last info say (see :mod:`.summary`)."""


# --------------------------------------------------------------------------- rows


@functools.lru_cache(maxsize=1)
def chromium_version() -> str | None:
    """``chromium --version`` of the browser web tasks use here (None: Playwright's own, or unreadable)."""
    import subprocess

    from multiverse.envs.web.browser import BrowserCrashed, chromium_path

    try:
        path = chromium_path()
        if path is None:
            return None
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30)
        return out.stdout.strip() or None
    except (BrowserCrashed, OSError, subprocess.SubprocessError):
        return None


def _fill_env_meta(env_id: str, meta: EpisodeMeta) -> EpisodeMeta:
    """The env's version and source from the registry, and for a web task the Chromium that rendered it."""
    from multiverse.envs.registry import lookup

    spec = lookup(env_id)
    versions = meta.versions
    if spec.kind == "web" and "chromium" not in versions:
        versions = {**versions, "chromium": chromium_version()}
    return dataclasses.replace(meta, env_version=spec.version if meta.env_version is None else meta.env_version,
                               env_source=meta.env_source or spec.source, versions=versions)


def episode_row(ep: Episode, meta: EpisodeMeta) -> dict[str, Any]:
    """One Parquet row (a dict matching :data:`SCHEMA`)."""
    meta = _fill_env_meta(ep.env_id, meta)
    steps = [{
        "observation": s.observation,
        "image": s.image,
        "legal_actions": list(s.legal_actions),
        "action": s.action,
        "logp": None if s.logp is None or (isinstance(s.logp, float) and np.isnan(s.logp)) else float(s.logp),
        "probs": [float(p) for p in s.probs] if s.probs else None,
        "reward": float(s.reward),
        "terminated": bool(s.terminated),
        "truncated": bool(s.truncated),
        "info": (to_json(s.info) if s.info else "{}") if s.info is not None else None,
        "action_error": s.action_error,
        "infra_error": s.infra_error,
        "action_descriptions": s.action_descriptions,
    } for s in ep.steps]
    return {
        "schema_version": meta.schema_version, "episode_id": meta.episode_id, "env_id": ep.env_id,
        "env_version": meta.env_version, "env_source": meta.env_source, "seed": int(ep.seed),
        "options": to_json(ep.options), "randomization": to_json(ep.randomization), "mission": ep.mission,
        "max_steps": meta.max_steps, "pixels": meta.pixels, "agent": meta.agent,
        "policy": to_json(meta.policy) if meta.policy is not None else None,
        "adr_state": to_json(meta.adr_state) if meta.adr_state is not None else None,
        "versions": to_json(meta.versions), "recorded_at": meta.recorded_at, "length": ep.length,
        "total_return": ep.total_return, "success": bool(ep.success), "infra_error": ep.infra_error,
        "final_observation": ep.final_observation, "final_image": ep.final_image, "steps": steps,
    }


def _loads(value: str | None, default: Any = None) -> Any:
    return json.loads(value) if value is not None else default


def _from_row(row: dict[str, Any]) -> tuple[Episode, EpisodeMeta]:
    steps = [Step(
        observation=s["observation"], legal_actions=list(s["legal_actions"] or []), action=s["action"],
        logp=s["logp"], probs=list(s["probs"] or []), reward=float(s["reward"]), terminated=bool(s["terminated"]),
        truncated=bool(s["truncated"]), action_error=s["action_error"], infra_error=s["infra_error"],
        info=_loads(s["info"]), image=s["image"],
        action_descriptions=s.get("action_descriptions"),
    ) for s in row["steps"]]
    ep = Episode(row["env_id"], int(row["seed"]), _loads(row["options"], {}), row["mission"] or "",
                 _loads(row["randomization"], {}), steps, bool(row["success"]), row["final_observation"] or "",
                 row["infra_error"], final_image=row["final_image"])
    meta = EpisodeMeta(
        agent=row["agent"], policy=_loads(row["policy"]), env_version=row["env_version"], env_source=row["env_source"],
        max_steps=row["max_steps"], pixels=bool(row["pixels"]), adr_state=_loads(row["adr_state"]),
        versions=_loads(row["versions"], {}), episode_id=row["episode_id"], recorded_at=row["recorded_at"],
        schema_version=int(row["schema_version"]),
    )
    return ep, meta


# --------------------------------------------------------------------------- writing


def _row_bytes(row: dict[str, Any]) -> int:
    """A cheap estimate of a row's uncompressed size (texts and images dominate)."""
    n = len(row["final_observation"] or "") + len(row["final_image"] or b"") + 512
    for s in row["steps"]:
        n += len(s["observation"]) + len(s["image"] or b"") + len(s["info"] or "") + 16 * len(s["legal_actions"]) + 64
        n += sum(map(len, s["action_descriptions"] or ()))
    return n


class EpisodeWriter:
    """Append episodes to a dataset folder; each file appears whole or not at all (see the module docstring).

    ``max_file_bytes``: roll to a new file once the buffered episodes reach this (uncompressed estimate).
    ``max_file_episodes``: also write a file after this many episodes (None: only by size), which bounds
    what a crash can lose. Use as a context manager, or call :meth:`close`."""

    def __init__(self, path: str | Path, *, max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
                 max_file_episodes: int | None = None, compression: str = "zstd") -> None:
        self.path = Path(path).expanduser()
        self.path.mkdir(parents=True, exist_ok=True)
        if max_file_bytes < 1:
            raise ValueError(f"max_file_bytes must be >= 1, got {max_file_bytes}")
        self.max_file_bytes, self.max_file_episodes, self.compression = max_file_bytes, max_file_episodes, compression
        self._rows: list[dict[str, Any]] = []
        self._bytes = 0
        self.files: list[Path] = []
        self.episodes_written = 0

    def write(self, ep: Episode, meta: EpisodeMeta | None = None) -> None:
        """Buffer one finished episode; writes a file when the buffer is full."""
        row = episode_row(ep, meta or EpisodeMeta())
        self._rows.append(row)
        self._bytes += _row_bytes(row)
        if self._bytes >= self.max_file_bytes or (self.max_file_episodes and len(self._rows) >= self.max_file_episodes):
            self.flush()

    def flush(self) -> Path | None:
        """Write the buffered episodes as one new file (atomically); None when nothing is buffered."""
        if not self._rows:
            return None
        table = pa.Table.from_pylist(self._rows, schema=SCHEMA)
        name = f"part-{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.parquet"
        final, tmp = self.path / name, self.path / f".{name}.tmp"
        try:
            with open(tmp, "wb") as f:
                pq.write_table(table, f, compression=self.compression)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, final)
        finally:
            if tmp.exists():
                tmp.unlink()
        fsync_dir(self.path)
        self.files.append(final)
        self.episodes_written += len(self._rows)
        self._rows, self._bytes = [], 0
        return final

    def close(self) -> None:
        self.flush()

    def __enter__(self) -> EpisodeWriter:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


# --------------------------------------------------------------------------- reading


def dataset_files(path: str | Path) -> list[Path]:
    """The dataset's visible Parquet files in name (= write) order; a folder without any is an error."""
    path = Path(path).expanduser()
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise EpisodeDataError(f"{path} does not exist; pass a folder written by `multiverse record --out DIR`")
    files = sorted(p for p in path.rglob("*.parquet") if not any(part.startswith((".", "_"))
                                                                for part in p.relative_to(path).parts))
    if not files:
        raise EpisodeDataError(
            f"{path} holds no episodes (no .parquet files); record some with "
            f"`multiverse record --env ID --agent oracle --episodes N --out {path}`")
    return files


def _open(file: Path) -> pq.ParquetFile:
    try:
        pf = pq.ParquetFile(file)
    except (pa.ArrowException, OSError) as error:
        raise EpisodeDataError(
            f"{file} is not a readable Parquet file ({str(error).splitlines()[0]}); it is truncated or corrupt: "
            f"move it out of the dataset (the other files are unaffected) or record it again", file) from error
    meta = pf.schema_arrow.metadata or {}
    version = meta.get(SCHEMA_KEY)
    if version is None:
        raise EpisodeDataError(f"{file} is not a Multiverse episode file (no {SCHEMA_KEY.decode()} in its metadata); "
                               f"keep only files written by `multiverse record` in the folder", file)
    if version.decode() != str(SCHEMA_VERSION):
        raise EpisodeDataError(
            f"{file} has episode schema version {version.decode()}; this Multiverse "
            f"({package_versions().get('multiverse-rl')}) reads version {SCHEMA_VERSION}: read it with the "
            f"Multiverse version that wrote it (see its 'versions' column), or record it again", file)
    missing = [n for n in SCHEMA.names if n not in pf.schema_arrow.names]
    if missing:
        raise EpisodeDataError(f"{file} lacks the columns {missing}; it was not written by Multiverse's "
                               f"EpisodeWriter: record it again", file)
    return pf


#: the step fields read without the steps (steps=False): what the summary columns are checked against
_SUMMARY_FIELDS = ("reward", "terminated", "truncated", "info")


def _read_file(file: Path, pf: pq.ParquetFile, rows_wanted: Callable[[int], bool], steps: bool
               ) -> list[tuple[int, Episode, EpisodeMeta, int, float, StepSummary | None]]:
    """The wanted rows of one file, all converted before any is used, so a bad row fails the whole file."""
    columns = None
    if not steps:  # the episode-level columns, and only the steps' fields a summary needs (no texts, no images)
        columns = [n for n in SCHEMA.names if n not in ("steps", "final_image")]
        columns += [c.path for c in pf.schema if c.path.split(".")[0] == "steps"
                    and c.path.rsplit(".", 1)[-1] in _SUMMARY_FIELDS]
    try:
        rows = pf.read(columns=columns).to_pylist()
    except (pa.ArrowException, OSError) as error:
        raise EpisodeDataError(f"{file} cannot be read ({str(error).splitlines()[0]}); it is corrupt: move it out "
                               f"of the dataset or record it again", file) from error
    out = []
    for row_no, row in enumerate(rows):
        if not rows_wanted(row_no):
            continue
        try:
            summary = None
            if not steps:
                stored = row["steps"] or []
                summary = summarize([s["reward"] for s in stored], [s["terminated"] for s in stored],
                                    [s["truncated"] for s in stored], stored[-1]["info"] if stored else None)
            ep, meta = _from_row(row if steps else {**row, "steps": [], "final_image": None})
            out.append((row_no, ep, meta, int(row["length"]), float(row["total_return"]), summary))
        except (KeyError, TypeError, ValueError) as error:
            raise EpisodeDataError(f"{file} row {row_no}: not a valid episode ({error}); record it again",
                                   file) from error
    return out


def read_episodes(path: str | Path, indices: Sequence[int] | None = None, *, steps: bool = True,
                  on_bad_file: Callable[[Path, str], Any] | None = None) -> Iterator[RecordedEpisode]:
    """Episodes of a dataset folder (or one file), in order; ``indices`` selects some by position.

    ``steps=False`` reads only the episode-level columns and the steps' rewards, flags and info (no
    observations, no images: cheap, for listing and for checking that every env can be replayed); their
    summary is :attr:`RecordedEpisode.steps_summary`. Every file is checked (readable Parquet, Multiverse
    schema, schema version) before its rows are yielded; a bad file raises :class:`EpisodeDataError` naming
    it, or with ``on_bad_file`` is passed to it (file, message) and skipped whole: positions then count the
    readable files only."""
    wanted = set(indices) if indices is not None else None
    index = 0
    for file in dataset_files(path):
        try:
            pf = _open(file)
            n = pf.metadata.num_rows
            if wanted is not None and not any(index <= k < index + n for k in wanted):
                index += n
                continue
            rows = _read_file(file, pf, lambda r, first=index: wanted is None or first + r in wanted, steps)
        except EpisodeDataError as error:
            if on_bad_file is None:
                raise
            on_bad_file(file, str(error))
            continue
        for row_no, ep, meta, length, total, summary in rows:
            yield RecordedEpisode(ep, meta, file, row_no, index + row_no, length, total, summary)
        index += n
    if wanted is not None and wanted and max(wanted) >= index:
        raise EpisodeDataError(f"{path} holds {index} episodes (0..{index - 1}); there is no episode {max(wanted)}")


# --------------------------------------------------------------------------- the recording wrapper


def _action_text(env: gym.Env, action: Any) -> str:
    """An action as the text replay re-applies: a game's index becomes its name (both are accepted)."""
    if isinstance(action, np.ndarray) and action.shape == ():
        action = action.item()
    if isinstance(action, str):
        return action
    names = getattr(env.unwrapped, "action_names", None)
    if isinstance(action, (int, np.integer)) and not isinstance(action, bool) and names and 0 <= int(action) < len(names):
        return names[int(action)]
    return to_json(action)


#: info keys with their own columns; the rest of info is stored per step as JSON
_INFO_COLUMNS = ("mission", "legal_actions", "randomization", "action_descriptions")


class RecordEpisodes(gym.Wrapper):
    """Record every finished episode of ``env`` to ``sink`` (an :class:`EpisodeWriter` or a callable).

    ``reset(seed=None)`` draws a fresh seed and passes it on, so every recorded episode can be replayed.
    An episode abandoned by a new ``reset`` before it ended is not recorded. ``annotate(logp, probs)``
    before a ``step`` stores the acting policy's log-prob and distribution with that step.
    ``meta`` is the template of each episode's :class:`EpisodeMeta` (agent, policy identity, ...)."""

    def __init__(self, env: gym.Env, sink: EpisodeWriter | Callable[[Episode, EpisodeMeta], None],
                 meta: EpisodeMeta | None = None) -> None:
        super().__init__(env)
        spec = env.spec or env.unwrapped.spec
        if spec is None:
            raise ValueError("RecordEpisodes needs an env made by id (multiverse.envs.make), so replay can re-make it")
        self.env_id = spec.id
        self._sink = sink.write if isinstance(sink, EpisodeWriter) else sink
        self._meta = meta or EpisodeMeta()
        self._pixels = "image" in getattr(env.observation_space, "spaces", {})
        self._episode: Episode | None = None
        self._obs: Any = None
        self._info: dict[str, Any] = {}
        self._note: tuple[float | None, list[float]] = (None, [])
        self.recorded = 0

    def _split(self, obs: Any) -> tuple[str, bytes | None]:
        if isinstance(obs, dict):
            image = obs.get("image")
            return str(obs["text"]), encode_png(image) if image is not None else None
        return str(obs), None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        if seed is None:
            seed = secrets.randbits(31)
        obs, info = self.env.reset(seed=seed, options=options)
        self._episode = Episode(self.env_id, int(seed), dict(options or {}), str(info.get("mission", "")),
                                dict(info.get("randomization", {})), infra_error=info.get("infra_error"))
        self._obs, self._info = obs, info
        return obs, info

    def annotate(self, logp: float | None = None, probs: Sequence[float] = ()) -> None:
        """The acting policy's log-prob and distribution over the legal actions, for the next step."""
        self._note = (logp, list(probs))

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        if self._episode is None:
            raise gym.error.ResetNeeded("RecordEpisodes: call reset() before step()")
        obs, reward, terminated, truncated, info = self.env.step(action)
        text, image = self._split(self._obs)
        logp, probs = self._note
        self._note = (None, [])
        ep = self._episode
        ep.steps.append(Step(text, list(self._info.get("legal_actions", [])), _action_text(self.env, action), logp,
                             probs, float(reward), bool(terminated), bool(truncated), info.get("action_error"),
                             infra_error=info.get("infra_error"), image=image,
                             info={k: v for k, v in info.items() if k not in _INFO_COLUMNS},
                             action_descriptions=self._info.get("action_descriptions")))
        if info.get("infra_error"):
            ep.infra_error = str(info["infra_error"])
        self._obs, self._info = obs, info
        if terminated or truncated:
            ep.success = bool(info.get("success", False))
            ep.final_observation, ep.final_image = self._split(obs)
            self._sink(ep, dataclasses.replace(self._meta, pixels=self._pixels, episode_id=uuid.uuid4().hex,
                                                   recorded_at=_now()))
            self.recorded += 1
            self._episode = None
        return obs, reward, terminated, truncated, info
