"""What verify and the readers check beyond the step-by-step replay: the stored summary columns (length,
total_return, success) against the steps, missing steps, a changed action, bad files skipped on request; and a
dataset written before these checks existed still reads and verifies.

tests/agents/data/episodes-v1 was recorded by `multiverse record` before the checks were added (schema version 1):
file 0 holds two games/Catch-v0 oracle episodes (5 steps each, width 5, height 6, one ball), file 1 one
games/Maze-v0 random episode (300 steps, failed)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from multiverse.agents.episodes import SCHEMA, EpisodeDataError, read_episodes
from multiverse.agents.replay import verify_dataset
from multiverse.agents.summary import step_summary, summary_mismatch

OLD = Path(__file__).parent / "data" / "episodes-v1"


def old_copy(tmp_path: Path, edit=None, file: int = 1) -> Path:
    """A copy of the old dataset with ``edit(rows)`` applied to the rows of its file number ``file``."""
    out = tmp_path / "ds"
    shutil.copytree(OLD, out)
    if edit is not None:
        path = sorted(out.glob("*.parquet"))[file]
        rows = pq.read_table(path).to_pylist()
        edit(rows)
        pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMA), path)
    return out


def test_a_dataset_written_before_the_checks_still_reads_lists_and_verifies() -> None:
    recs = list(read_episodes(OLD))
    assert [(r.episode.env_id, r.episode.length, r.episode.success) for r in recs] == [
        ("games/Catch-v0", 5, True), ("games/Catch-v0", 5, True), ("games/Maze-v0", 300, False)]
    assert all(summary_mismatch(r) is None for r in recs)
    heads = list(read_episodes(OLD, steps=False))  # what the listing reads: no observations, no images
    assert all(not h.episode.steps for h in heads)
    assert [(step_summary(h).steps, step_summary(h).total_return, step_summary(h).success) for h in heads] == [
        (5, 1.0, True), (5, 1.0, True), (300, 0.0, False)]
    report = verify_dataset(recs)
    assert report.ok and (report.episodes, report.steps) == (3, 310), [d.describe() for d in report.divergences]


@pytest.mark.parametrize("column, value, message", [
    ("success", True, "stores success=True but its last step's info says success=False"),
    ("total_return", 100.0, "stores total_return 100 but its steps' rewards sum to 0"),
    ("length", 3, "stores length 3 but holds 300 steps"),
])
def test_a_faked_summary_column_fails_verify_and_is_named(tmp_path: Path, column: str, value, message: str) -> None:
    def edit(rows):
        rows[0][column] = value

    ds = old_copy(tmp_path, edit)
    (div,) = verify_dataset(read_episodes(ds), stop_at_first=False).divergences
    assert (div.episode, div.field, div.recorded) == (2, column, value)
    assert message in div.describe() and "episode 2" in div.describe()
    (head,) = list(read_episodes(ds, [2], steps=False))
    assert summary_mismatch(head).column == column  # the listing sees it without reading the steps


def _drop_all(rows):
    rows[0]["steps"] = []


def _drop_all_and_fix_columns(rows):
    rows[0]["steps"], rows[0]["length"], rows[0]["total_return"] = [], 0, 0.0


def _drop_the_end(rows):
    # the last 10 steps go; the columns and the final observation are made to fit what is left
    steps = rows[0]["steps"]
    rows[0]["final_observation"] = steps[-10]["observation"]
    rows[0]["steps"], rows[0]["length"] = steps[:-10], len(steps) - 10


@pytest.mark.parametrize("edit, field, message", [
    (_drop_all, "length", "stores length 300 but holds 0 steps"),
    (_drop_all_and_fix_columns, "steps", "holds no steps and no infra_error says why"),
    (_drop_the_end, "steps", "has a last step (step 290) that does not end the episode"),
])
def test_an_episode_with_missing_steps_fails_verify(tmp_path: Path, edit, field: str, message: str) -> None:
    report = verify_dataset(read_episodes(old_copy(tmp_path, edit)), stop_at_first=False)
    (div,) = report.divergences
    assert (div.episode, div.field) == (2, field) and message in div.describe(), div.describe()
    assert not report.ok and not report.skipped and report.episodes == 3


def test_a_changed_action_is_named_with_both_actions(tmp_path: Path) -> None:
    def edit(rows):
        assert rows[0]["steps"][0]["action"] == "left"
        rows[0]["steps"][0]["action"] = "right"

    (div,) = verify_dataset(read_episodes(old_copy(tmp_path, edit, file=0))).divergences
    assert (div.episode, div.step, div.field, div.recorded, div.replayed) == (0, 1, "action", "right", "left")
    text = div.describe()
    assert "step 1: action differs" in text and "recorded: 'right'" in text and "'left'" in text, text


def test_bad_files_are_skipped_named_and_counted_on_request(tmp_path: Path) -> None:
    ds = old_copy(tmp_path)
    bad = sorted(ds.glob("*.parquet"))[0]
    bad.write_bytes(bad.read_bytes()[:500])
    with pytest.raises(EpisodeDataError) as info:
        list(read_episodes(ds))
    assert info.value.file == bad
    skipped: dict[Path, str] = {}
    recs = list(read_episodes(ds, on_bad_file=skipped.setdefault))
    assert [r.episode.env_id for r in recs] == ["games/Maze-v0"] and [r.index for r in recs] == [0]
    assert list(skipped) == [bad] and "is not a readable Parquet file" in skipped[bad]
