"""The episode schema and its Parquet storage: round trips, readers (pyarrow, Ray Data), rolling, crash safety."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest

import multiverse.envs as menvs
from multiverse.agents.episodes import (
    SCHEMA_VERSION,
    EpisodeDataError,
    EpisodeMeta,
    EpisodeWriter,
    RecordEpisodes,
    decode_png,
    read_episodes,
)
from multiverse.agents.replay import verify_dataset
from multiverse.agents.rollout import EpisodeSpec, run_episodes
from multiverse.envs.play import oracle_agent, play_episode, random_agent

from agent_helpers import tiny_policy

TINY_CATCH = {"params": {"balls": 1, "width": 5, "height": 6}}


def _record_catch(out: Path, episodes: int, *, pixels: bool, **writer_kw) -> list:
    played = []
    with EpisodeWriter(out, **writer_kw) as writer:
        env = RecordEpisodes(menvs.make("games/Catch-v0", pixels=pixels), writer, EpisodeMeta(agent="oracle"))
        for seed in range(episodes):
            trace = []
            play_episode(env, oracle_agent(), seed=seed, options={"split": "heldout"},
                         on_step=lambda obs, r, te, tr, info: trace.append((obs, r, te, tr)))  # noqa: B023 (called in this iteration)
            played.append(trace)
        env.close()
    return played


def test_recorded_episode_round_trips_with_images_and_metadata(tmp_path: Path) -> None:
    played = _record_catch(tmp_path, 2, pixels=True)
    recs = list(read_episodes(tmp_path))
    assert [r.index for r in recs] == [0, 1]
    for rec, trace in zip(recs, played):
        ep, meta = rec.episode, rec.meta
        assert (ep.env_id, meta.env_version, meta.agent, meta.pixels) == ("games/Catch-v0", 0, "oracle", True)
        assert meta.schema_version == SCHEMA_VERSION and meta.versions["multiverse-rl"] and meta.versions["gymnasium"]
        assert ep.options == {"split": "heldout"} and set(ep.randomization) == set(menvs.randomization_space("games/Catch-v0").params)
        assert ep.length == len(trace) and ep.total_return == pytest.approx(sum(t[1] for t in trace))
        assert ep.steps[-1].terminated and not any(s.terminated or s.truncated for s in ep.steps[:-1])
        # the observation after action k is the one action k + 1 was chosen on; the last is final_*
        for k, (obs, _, _, _) in enumerate(trace[:-1]):
            assert ep.steps[k + 1].observation == obs["text"]
            assert np.array_equal(decode_png(ep.steps[k + 1].image), obs["image"])
        assert ep.final_observation == trace[-1][0]["text"]
        assert np.array_equal(decode_png(ep.final_image), trace[-1][0]["image"])
        assert all(s.action in s.legal_actions and s.logp is None for s in ep.steps)
        assert ep.success is True and "success" in ep.steps[-1].info


def test_plain_pyarrow_and_ray_data_read_the_dataset(tmp_path: Path) -> None:
    _record_catch(tmp_path, 3, pixels=False)
    table = pads.dataset(tmp_path, format="parquet").to_table()
    assert table.num_rows == 3 and table.column("env_id").to_pylist() == ["games/Catch-v0"] * 3
    lengths = [len(s) for s in table.column("steps").to_pylist()]
    assert lengths == table.column("length").to_pylist()
    (file,) = list(tmp_path.glob("*.parquet"))
    assert pq.read_table(file, columns=["seed"]).column("seed").to_pylist() == [0, 1, 2]

    import ray

    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        ds = ray.data.read_parquet(str(tmp_path))
        rows = sorted(ds.select_columns(["seed", "length", "total_return"]).take_all(), key=lambda r: r["seed"])
    finally:
        ray.shutdown()
    assert [r["seed"] for r in rows] == [0, 1, 2]
    assert [r["length"] for r in rows] == lengths


def test_files_roll_by_size_and_keep_the_episode_order(tmp_path: Path) -> None:
    _record_catch(tmp_path, 6, pixels=True, max_file_bytes=6_000)
    files = sorted(tmp_path.glob("*.parquet"))
    assert len(files) >= 3
    assert not list(tmp_path.glob(".*"))  # no temporary files left behind
    recs = list(read_episodes(tmp_path))
    assert [r.episode.seed for r in recs] == list(range(6))
    assert [r.index for r in recs] == list(range(6))
    assert [r.episode.seed for r in read_episodes(tmp_path, [4])] == [4]
    heads = list(read_episodes(tmp_path, steps=False))  # episode-level columns only: no steps, no images
    assert [(h.length, h.total_return) for h in heads] == [(r.episode.length, r.episode.total_return) for r in recs]
    assert all(not h.episode.steps and h.episode.final_image is None for h in heads)
    # a file being written (what a killed writer leaves) is invisible to every reader
    (tmp_path / f".{files[0].name}.tmp").write_bytes(files[0].read_bytes()[:500])
    assert len(list(read_episodes(tmp_path))) == 6
    assert pads.dataset(tmp_path, format="parquet").count_rows() == 6


def test_training_rollout_episodes_are_recordable_with_log_probs(tmp_path: Path) -> None:
    policy = tiny_policy()
    envs = [menvs.make("games/Catch-v0") for _ in range(2)]
    specs = [EpisodeSpec("games/Catch-v0", s, TINY_CATCH) for s in range(3)]
    episodes = run_episodes(policy, envs, specs, seed=0, max_steps=4)
    with EpisodeWriter(tmp_path) as writer:
        for ep in episodes:
            writer.write(ep, EpisodeMeta(agent="policy", policy={"model": "tiny-test"}, max_steps=4))
    recs = list(read_episodes(tmp_path))
    for rec, ep in zip(recs, episodes):
        assert [s.action for s in rec.episode.steps] == [s.action for s in ep.steps]
        assert [s.logp for s in rec.episode.steps] == pytest.approx([s.logp for s in ep.steps])
        assert rec.episode.steps[0].probs == pytest.approx(ep.steps[0].probs)
        assert rec.meta.policy == {"model": "tiny-test"} and rec.meta.max_steps == 4
    # episodes cut by the rollout's max_steps replay exactly: replay applies the same limit
    report = verify_dataset(read_episodes(tmp_path))
    assert report.ok and report.episodes == 3, [d.describe() for d in report.divergences]


def test_a_killed_recorder_leaves_only_complete_episodes(tmp_path: Path) -> None:
    """SIGKILL a real `multiverse record` mid-way: every visible episode is complete, valid and replays."""
    out = tmp_path / "ds"
    cli = str(Path(sys.executable).parent / "multiverse")
    proc = subprocess.Popen([cli, "record", "--env", "games/Catch-v0", "--agent", "random", "--episodes", "100000",
                             "--pixels", "--max-file-mb", "0.002", "--out", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while len(list(out.glob("*.parquet"))) < 4:
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "the recorder wrote fewer than 4 files in 120 s"
            time.sleep(0.05)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    recs = list(read_episodes(out))
    assert len(recs) >= 4
    table = pads.dataset(out, format="parquet").to_table(columns=["length", "steps"])
    assert table.num_rows == len(recs)  # pyarrow.dataset sees exactly the same (hidden temp files are skipped)
    for rec in recs:
        ep = rec.episode
        assert ep.length == len(ep.steps) >= 1
        assert ep.steps[-1].terminated or ep.steps[-1].truncated
        assert not any(s.terminated or s.truncated for s in ep.steps[:-1])
        assert all(s.image is not None for s in ep.steps) and ep.final_image is not None
    assert [r.episode.seed for r in recs] == list(range(len(recs)))  # nothing in the middle is missing
    report = verify_dataset(read_episodes(out))
    assert report.ok and report.episodes == len(recs)


def test_corrupt_and_foreign_files_are_named_with_what_to_do(tmp_path: Path) -> None:
    _record_catch(tmp_path, 1, pixels=False)
    good = next(tmp_path.glob("*.parquet"))
    bad = tmp_path / "part-99999999999999999999-garbage.parquet"  # sorts after the good file
    bad.write_bytes(b"not parquet at all " * 50)
    with pytest.raises(EpisodeDataError, match=rf"{bad}.* is not a readable Parquet file .*it is truncated or corrupt"):
        list(read_episodes(tmp_path))
    pq.write_table(pq.read_table(good).replace_schema_metadata({}), bad)  # Parquet, but not written by Multiverse
    with pytest.raises(EpisodeDataError, match=rf"{bad} is not a Multiverse episode file"):
        list(read_episodes(tmp_path))
    bad.unlink()
    assert len(list(read_episodes(tmp_path))) == 1


def test_record_wrapper_draws_a_seed_when_none_is_given(tmp_path: Path) -> None:
    with EpisodeWriter(tmp_path) as writer:
        env = RecordEpisodes(menvs.make("games/Snake-v0"), writer, EpisodeMeta(agent="random"))
        play_episode(env, random_agent(0))  # no seed: the wrapper picks one and stores it
        env.close()
    (rec,) = list(read_episodes(tmp_path))
    assert isinstance(rec.episode.seed, int)
    assert verify_dataset([rec]).ok


def test_a_tampered_randomization_is_a_divergence_at_the_reset(tmp_path: Path) -> None:
    _record_catch(tmp_path, 1, pixels=False)
    (rec,) = list(read_episodes(tmp_path))
    rec.episode.randomization["width"] = rec.episode.randomization["width"] + 1
    (div,) = verify_dataset([rec]).divergences
    assert (div.step, div.field) == (0, "randomization") and div.replayed["width"] == div.recorded["width"] - 1
    width = rec.episode.randomization["width"]
    assert div.describe().splitlines() == [f"episode 0 ({rec.file.name}) step 0: randomization differs in 'width'",
                                           f"  recorded: width={width}", f"  replayed: width={width - 1}"]
