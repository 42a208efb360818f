"""Recording and replay end to end: the training loop's recordings, every env's oracle episodes replayed and
verified (parametrized over the registry), tampered datasets, refusals and bad input through the CLI."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from multiverse.agents.episodes import read_episodes
from multiverse.agents.replay import verify_dataset
from multiverse.launch.config import load_config

from conftest import CHECKED_IDS, GAME_IDS


def run(cli: str, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([cli, *args], capture_output=True, text=True, timeout=timeout)


# --------------------------------------------------------------------------- the training loop records


def test_training_run_records_eval_and_every_nth_training_episode(multiverse_cli: str, tmp_path: Path) -> None:
    import ray

    from multiverse.launch.cluster import init_ray
    from multiverse.launch.train import train

    config = load_config("smoke", [f"run.root={tmp_path}", "run.name=rec", "run.iterations=2", "run.eval_every=0",
                                   "run.record_eval=true", "run.record_every=3", "envs.train={games/Catch-v0: 1}",
                                   "rollout.workers=1", "run.checkpoint_every=2"])
    init_ray(None, dashboard=False, num_cpus=2, needed_cpus=1)
    try:
        run_dir = train(config, config_name="smoke")
    finally:
        ray.shutdown()
    evals = list(read_episodes(run_dir / "episodes" / "eval"))
    # evaluated before the first and after the last iteration: 2 evaluations x 2 episodes x 2 env ids
    assert len(evals) == 8
    assert {r.episode.env_id for r in evals} == {"games/Catch-v0", "games/Maze-v0"}
    assert {r.meta.policy["iteration"] for r in evals} == {0, 2} and all(r.meta.policy["greedy"] for r in evals)
    trained = list(read_episodes(run_dir / "episodes" / "train"))
    per_iteration = config.rollout.groups_per_iteration * config.rollout.group_size  # 8
    assert len(trained) == len(range(0, 2 * per_iteration, 3))
    assert all(r.meta.agent == "policy" and r.meta.max_steps == 4 for r in trained)
    assert all(s.logp is not None and s.logp <= 0 for r in trained for s in r.episode.steps)
    assert all(r.meta.adr_state is not None for r in trained)  # the smoke config runs ADR
    report = verify_dataset(list(read_episodes(run_dir / "episodes" / "train")) + evals)
    assert report.ok and report.episodes == len(trained) + 8, [d.describe() for d in report.divergences]
    # the run dir itself is a checkpoint agent: its newest checkpoint's learner
    res = run(multiverse_cli, "record", "--env", "games/Catch-v0", "--agent", f"checkpoint:{run_dir}", "--episodes", "1",
              "--greedy", "--out", str(tmp_path / "by_run"))
    assert res.returncode == 0, res.stdout + res.stderr
    (rec,) = read_episodes(tmp_path / "by_run")
    assert rec.meta.policy["checkpoint"] == str(run_dir / "checkpoints" / "iter_000002" / "learner")


def test_recording_is_off_by_default_and_documented_in_train_help(multiverse_cli: str) -> None:
    config = load_config("smoke")
    assert config.run.record_eval is False and config.run.record_every == 0
    out = run(multiverse_cli, "train", "--help")
    assert "run.record_eval" in out.stdout and "run.record_every" in out.stdout


# --------------------------------------------------------------------------- every env: record, verify, tamper


def record(env_id: str, out: Path, episodes: int, **kw) -> None:
    from multiverse.agents.episodes import EpisodeWriter
    from multiverse.agents.replay import record_env

    with EpisodeWriter(out) as writer:
        record_env(env_id, writer, episodes=episodes, agent="oracle", **kw)


def tampered_copy(src: Path, dst: Path, edit) -> Path:
    """A copy of a dataset with ``edit(rows)`` applied to the rows of its (first) file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from multiverse.agents.episodes import SCHEMA

    dst.mkdir(parents=True)
    (file,) = sorted(src.glob("*.parquet"))
    rows = pq.read_table(file).to_pylist()
    edit(rows)
    pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMA), dst / file.name)
    return dst


#: tampered copies are replayed for every game and two web tasks (each web replay reloads pages; the
#: comparison code is the same for every env)
TAMPERED = set(GAME_IDS) | {"web/LoginForm-v0", "miniwob/choose-date-v1"}


# all games, all own web tasks, and the MiniWoB sample that gets every author check (conftest.MINIWOB_CHECKED:
# one page of each kind). All 128 MiniWoB ids would take minutes here; the suite is over its time budget.
@pytest.mark.parametrize("env_id", CHECKED_IDS)
def test_oracle_episodes_replay_verified_and_tampering_is_caught(env_id: str, tmp_path: Path) -> None:
    kind = "game" if env_id in GAME_IDS else "web"
    record(env_id, tmp_path / "ds", 2 if kind == "game" else 1, split="heldout")
    recs = list(read_episodes(tmp_path / "ds"))
    assert all(r.episode.success for r in recs)  # the oracle solved them: real episodes, not a first-step failure
    report = verify_dataset(recs)
    assert report.ok, report.divergences[0].describe()
    assert report.episodes == len(recs) and report.steps == sum(r.episode.length for r in recs) > 0
    if env_id not in TAMPERED:
        return

    ep = recs[0].episode
    k = ep.length // 2  # a step in the middle

    def edit_reward(rows):  # the return too, so that the summary agrees and the replay finds the edit
        rows[0]["steps"][k]["reward"] += 0.5
        rows[0]["total_return"] += 0.5

    div = verify_dataset(read_episodes(tampered_copy(tmp_path / "ds", tmp_path / "reward", edit_reward))).divergences
    assert [(d.episode, d.step, d.field) for d in div] == [(0, k + 1, "reward")]
    assert div[0].recorded == ep.steps[k].reward + 0.5 and div[0].replayed == ep.steps[k].reward
    assert "step" in div[0].describe() and "recorded:" in div[0].describe() and "replayed:" in div[0].describe()

    def edit_observation(rows):
        rows[0]["steps"][k]["observation"] += " (edited)"

    div = verify_dataset(read_episodes(tampered_copy(tmp_path / "ds", tmp_path / "obs", edit_observation))).divergences
    assert [(d.episode, d.step, d.field) for d in div] == [(0, k, "observation")]
    assert "(edited)" in div[0].describe()


# --------------------------------------------------------------------------- the CLI: divergence, refusals


@pytest.fixture(scope="module")
def catch_dataset(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("catch") / "ds"
    record("games/Catch-v0", out, 2)
    return out


def test_cli_verify_passes_and_prints_the_first_divergence(multiverse_cli: str, catch_dataset: Path,
                                                           tmp_path: Path) -> None:
    ok = run(multiverse_cli, "replay", str(catch_dataset), "--verify")
    assert ok.returncode == 0, ok.stderr
    assert "replay --verify ok: 2 episodes" in ok.stdout

    (one,) = read_episodes(catch_dataset, [1])
    n = one.episode.length

    def edit(rows):  # the last step still ends the episode (the summary agrees): the replay finds the edit
        rows[1]["steps"][-1]["truncated"] = True

    bad = run(multiverse_cli, "replay", str(tampered_copy(catch_dataset, tmp_path / "t", edit)), "--verify")
    assert bad.returncode == 1
    assert "DIVERGENCE episode 1" in bad.stdout and f"step {n}: truncated differs" in bad.stdout
    assert "recorded: True" in bad.stdout and "replayed: False" in bad.stdout
    assert "Traceback" not in bad.stderr


def test_cli_lists_what_the_steps_say_and_verify_fails_faked_summary_columns(multiverse_cli: str,
                                                                            tmp_path: Path) -> None:
    import shutil

    import pyarrow as pa
    import pyarrow.parquet as pq

    from multiverse.agents.episodes import SCHEMA

    old = Path(__file__).parents[1] / "agents" / "data" / "episodes-v1"  # written before these checks existed
    shutil.copytree(old, tmp_path / "ds")
    maze = sorted((tmp_path / "ds").glob("*.parquet"))[1]  # episode 2: a failed 300-step Maze episode
    rows = pq.read_table(maze).to_pylist()
    rows[0].update(success=True, total_return=100.0, length=3)  # what passed before: a failure made a short success
    pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMA), maze)
    listing = run(multiverse_cli, "replay", str(tmp_path / "ds"))
    assert listing.returncode == 0, listing.stderr
    row = next(line for line in listing.stdout.splitlines() if "games/Maze-v0" in line)
    assert "300" in row and "+0.00" in row and " no " in row and "+100" not in row, row
    assert f"episode 2 ({maze.name}) stores length 3 but holds 300 steps" in listing.stdout
    bad = run(multiverse_cli, "replay", str(tmp_path / "ds"), "--verify", "--all-divergences")
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert f"DIVERGENCE episode 2 ({maze.name}) stores length 3 but holds 300 steps" in bad.stdout
    assert "replay --verify FAILED: 3 episodes" in bad.stdout and "1 divergent" in bad.stdout


@pytest.mark.parametrize("env_id, source, message", [
    ("games/Catch-v7", "multiverse-rl", "was recorded on games/Catch-v7; this install has games/Catch-v0 instead"),
    ("acme/Rocket-v0", "acme-envs", "needs env 'acme/Rocket-v0', which is not registered here: install acme-envs"),
])
def test_cli_refuses_other_env_versions_and_missing_plugins(multiverse_cli: str, catch_dataset: Path, tmp_path: Path,
                                                           env_id: str, source: str, message: str) -> None:
    def edit(rows):
        for row in rows:
            row["env_id"], row["env_version"], row["env_source"] = env_id, int(env_id[-1]), source

    out = run(multiverse_cli, "replay", str(tampered_copy(catch_dataset, tmp_path / "t", edit)), "--verify")
    assert out.returncode == 2
    assert message in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert "Traceback" not in out.stderr and "DIVERGENCE" not in out.stdout


# --------------------------------------------------------------------------- render


def test_cli_renders_a_gif_from_stored_images_and_from_a_replay(multiverse_cli: str, catch_dataset: Path,
                                                                tmp_path: Path) -> None:
    from PIL import Image

    record("games/Maze-v0", tmp_path / "px", 1, pixels=True)
    (rec,) = list(read_episodes(tmp_path / "px"))
    (one,) = read_episodes(catch_dataset, [1])
    for src, episode, rerendered, length in ((tmp_path / "px", "0", False, rec.episode.length),
                                             (catch_dataset, "1", True, one.episode.length)):
        gif = tmp_path / f"ep{episode}.gif"
        out = run(multiverse_cli, "replay", str(src), "--episode", episode, "--render", str(gif))
        assert out.returncode == 0, out.stderr
        assert ("re-rendered" in out.stdout) == rerendered
        with Image.open(gif) as im:
            assert im.format == "GIF" and im.n_frames == length + 1 and min(im.size) >= 252


def test_a_gif_has_one_frame_per_step_also_where_frames_repeat(tmp_path: Path) -> None:
    from PIL import Image

    from multiverse.agents.render import render_gif

    # a random Maze walk bumps into walls: many frames equal the one before (GIF writers merge those)
    (rec,) = list(read_episodes(Path(__file__).parents[1] / "agents" / "data" / "episodes-v1", [2]))
    path, rerendered = render_gif(rec, tmp_path / "maze.gif")
    assert rerendered and rec.episode.length == 300
    with Image.open(path) as im:
        assert im.n_frames == rec.episode.length + 1  # the reset's frame, then one per step
        durations = []
        for k in range(im.n_frames):
            im.seek(k)
            durations.append(im.info["duration"])
    assert set(durations) == {200}


def test_html_viewer_is_self_contained_and_its_slider_moves_through_the_steps(tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    from multiverse.agents.episodes import chromium_version
    from multiverse.agents.render import render_html
    from multiverse.envs.web.browser import LAUNCH_ARGS, chromium_path, timeout_scale

    record("web/LoginForm-v0", tmp_path / "ds", 1)  # text only: the viewer's images are re-rendered by replay
    (rec,) = list(read_episodes(tmp_path / "ds"))
    ep = rec.episode
    assert "chromium" in rec.meta.versions and rec.meta.versions["chromium"] == chromium_version()
    path, rerendered = render_html(rec, tmp_path / "viewer.html")
    assert rerendered
    text = path.read_text()
    assert "http://" not in text.replace("http://multiverse.test", "") and "https://" not in text
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path(), headless=True, args=LAUNCH_ARGS)
        try:
            page = browser.new_page()
            requests: list[str] = []
            page.on("request", lambda r: requests.append(r.url))
            page.goto(path.as_uri())
            assert page.locator("#obs").text_content() == ep.steps[0].observation
            assert page.locator("#img").get_attribute("src").startswith("data:image/png;base64,")
            # a full-size page screenshot (the task's viewport), not the 84 x 84 observation image
            size = [ep.randomization["viewport_width"], ep.randomization["viewport_height"]]
            assert page.evaluate("[document.getElementById('img').naturalWidth, "
                                 "document.getElementById('img').naturalHeight]") == size
            # a template's row shows what was typed: type(2, <text>)  ->  type(2, "alice")
            assert page.locator("#actions li.chosen").text_content().endswith(ep.steps[0].action)
            last = ep.length - 1
            page.locator("#step").fill(str(last))  # moves the slider (fires its input event)
            assert page.locator("#t").text_content() == str(last)
            assert page.locator("#obs").text_content() == ep.steps[last].observation
            assert page.locator("#actions li.chosen").count() == 1
            assert ep.steps[last].action in page.locator("#actions li.chosen").text_content()
            assert float(page.locator("#return").text_content()) == pytest.approx(ep.total_return, abs=1e-3)
            assert float(page.locator("#reward").text_content()) == pytest.approx(ep.steps[last].reward, abs=1e-3)
            page.locator("#step").fill("0")
            assert float(page.locator("#return").text_content()) == pytest.approx(ep.steps[0].reward, abs=1e-3)
            page.locator("#next").click()
            assert page.locator("#obs").text_content() == ep.steps[1].observation
            page.locator("#play").click()  # plays from here to the end, then stops
            assert page.locator("#play").text_content() == "pause"
            # expect() polls (the page's CSP forbids eval); timeouts by the test command's factor for a slow host
            expect(page.locator("#t")).to_have_text(str(ep.length), timeout=20_000 * timeout_scale())
            expect(page.locator("#play")).to_have_text("play", timeout=5_000 * timeout_scale())
            assert page.locator("#obs").text_content() == ep.final_observation
            page.screenshot(path=str(tmp_path / "viewer.png"))
        finally:
            browser.close()
    # one file, nothing fetched: only the page itself, and the images as data: URIs
    assert all(u.startswith(("file://", "data:")) for u in requests), requests
    assert sum(u.startswith("file://") for u in requests) == 1


# --------------------------------------------------------------------------- bad input


def _digest(folder: Path) -> dict[str, str]:
    import hashlib

    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def _two_files(tmp_path: Path) -> Path:
    out = tmp_path / "ds"
    record("games/Catch-v0", out, 1)
    record("games/Catch-v0", out, 1, seed=5)  # a second recording adds a file beside the first
    assert len(list(out.glob("*.parquet"))) == 2
    return out


def _truncate(file: Path) -> None:
    data = file.read_bytes()
    file.write_bytes(data[: len(data) // 2])


def _schema_99(file: Path) -> None:
    import pyarrow.parquet as pq

    table = pq.read_table(file)
    pq.write_table(table.replace_schema_metadata({b"multiverse.episodes.schema_version": b"99"}), file)


# (a file of garbage bytes is checked in-process in tests/agents/test_episodes.py: the same message, no CLI start-up)
@pytest.mark.parametrize("damage, message", [
    (_truncate, "is not a readable Parquet file"),
    (_schema_99, "has episode schema version 99; this Multiverse"),
])
def test_a_bad_file_is_named_in_one_line_and_the_others_stay_intact(multiverse_cli: str, tmp_path: Path,
                                                                    damage, message: str) -> None:
    out = _two_files(tmp_path)
    bad = sorted(out.glob("*.parquet"))[1]
    damage(bad)
    before = _digest(out)
    for args in (["replay", str(out)], ["replay", str(out), "--verify"]):
        res = run(multiverse_cli, *args)
        assert res.returncode == 2, (args, res.stdout, res.stderr)
        assert len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.stderr
        assert str(bad) in res.stderr and message in res.stderr
        assert "record it again" in res.stderr or "move it out" in res.stderr
        assert "--skip-bad skips it and reads the other files" in res.stderr
    if damage is _truncate:  # (both kinds of bad file take the same path through the reader)
        skip = run(multiverse_cli, "replay", str(out), "--verify", "--skip-bad")
        assert skip.returncode == 0, skip.stdout + skip.stderr
        assert f"skipped {bad}" in skip.stdout and message in skip.stdout
        assert "ok: 1 episodes" in skip.stdout and "1 unreadable file skipped (--skip-bad)" in skip.stdout
    assert _digest(out) == before  # reading never writes
    bad.rename(tmp_path / bad.name)  # what the message says to do
    ok = run(multiverse_cli, "replay", str(out), "--verify")
    assert ok.returncode == 0 and "1 episodes" in ok.stdout, ok.stdout + ok.stderr


@pytest.mark.parametrize("args, message", [
    (["replay", "{tmp}/empty"], "holds no episodes (no .parquet files); record some with `multiverse record"),
    (["replay", "{tmp}/missing", "--verify"], "does not exist; pass a folder written by `multiverse record --out DIR`"),
    (["replay", "{catch}", "--episode", "7", "--verify"], "holds 2 episodes (0..1); there is no episode 7"),
    (["replay", "{catch}", "--render", "{tmp}/out.mp4"], "--render writes OUT.gif or OUT.html"),
    (["replay", "{catch}", "--render", "{tmp}/out.gif"], "--render draws one episode; pick it with --episode K"),
    (["record", "--env", "games/Snak-v0", "--out", "{tmp}/r"], "unknown env 'games/Snak-v0'; did you mean 'games/Snake-v0'"),
    (["record", "--env", "games/Catch-v0", "--agent", "checkpoint:{tmp}/nope", "--out", "{tmp}/r"], "is not a learner checkpoint"),
    (["record", "--env", "games/Catch-v0", "--agent", "checkpoint:{tmp}/run", "--out", "{tmp}/r"],
     "has no complete checkpoint yet"),
])
def test_bad_arguments_are_one_clear_line(multiverse_cli: str, catch_dataset: Path, tmp_path: Path,
                                          args: list[str], message: str) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "run" / "checkpoints" / "iter_000004").mkdir(parents=True)  # a run whose first checkpoint is being written
    before = _digest(catch_dataset)
    res = run(multiverse_cli, *[a.format(tmp=tmp_path, catch=catch_dataset) for a in args])
    assert res.returncode == 2, res.stdout + res.stderr
    assert message in res.stderr and len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.stderr
    assert _digest(catch_dataset) == before
    assert not (tmp_path / "r").exists() or not any((tmp_path / "r").iterdir())


# --------------------------------------------------------------------------- Minari export


def test_export_minari_reloads_with_minari_load_dataset(multiverse_cli: str, tmp_path: Path, monkeypatch) -> None:
    import json
    import os

    import minari
    import numpy as np

    from multiverse.agents.episodes import decode_png

    record("games/Catch-v0", tmp_path / "px", 2, pixels=True)
    record("web/LoginForm-v0", tmp_path / "mixed", 1)
    record("games/Catch-v0", tmp_path / "mixed", 1, seed=3)
    root = tmp_path / "minari"
    env = dict(os.environ, MINARI_DATASETS_PATH=str(root))
    for src, name in ((tmp_path / "px", "multiverse/catch-oracle-v0"), (tmp_path / "mixed", "multiverse/mixed-v0")):
        out = subprocess.run([multiverse_cli, "export", "minari", str(src), "--out", name], capture_output=True,
                             text=True, env=env, timeout=300)
        assert out.returncode == 0, out.stderr
        assert name in out.stdout or src.name == "mixed"
    again = subprocess.run([multiverse_cli, "export", "minari", str(tmp_path / "px"), "--out", "multiverse/catch-oracle-v0"],
                           capture_output=True, text=True, env=env, timeout=300)
    assert again.returncode == 2 and "already exists" in again.stderr and "Traceback" not in again.stderr

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(root))
    ds = minari.load_dataset("multiverse/catch-oracle-v0")
    recs = list(read_episodes(tmp_path / "px"))
    assert ds.total_episodes == 2 and ds.total_steps == sum(r.episode.length for r in recs)
    assert set(ds.observation_space.spaces) == {"text", "image"}
    for m, rec in zip(ds.iterate_episodes(), recs):
        ep = rec.episode
        assert list(m.actions) == [s.action for s in ep.steps]
        assert list(m.rewards) == [s.reward for s in ep.steps]
        assert list(m.terminations) == [s.terminated for s in ep.steps]
        assert list(m.observations["text"]) == [s.observation for s in ep.steps] + [ep.final_observation]
        assert np.array_equal(m.observations["image"][0], decode_png(ep.steps[0].image))  # exact: stored raw
        assert np.array_equal(m.observations["image"][-1], decode_png(ep.final_image))
        assert json.loads(m.infos["legal_actions"][0]) == ep.steps[0].legal_actions
        assert all(ds.observation_space["text"].contains(t) for t in m.observations["text"])
        assert all(ds.action_space.contains(a) for a in m.actions)
    assert ds.recover_environment().spec.id == "games/Catch-v0"

    # several env ids: one Minari dataset per id, NAMESPACE/<env id with '-' for '/'>/NAME-vN (Minari's own
    # (namespace/)(env_name/)dataset_name-vN), each with its env's spec
    assert "multiverse/games-Catch-v0/mixed-v0" in out.stdout and "multiverse/web-LoginForm-v0/mixed-v0" in out.stdout
    for rec in read_episodes(tmp_path / "mixed"):
        name = rec.episode.env_id.replace("/", "-")
        part = minari.load_dataset(f"multiverse/{name}/mixed-v0")
        assert part.total_episodes == 1 and set(part.observation_space.spaces) == {"text"}
        assert list(next(part.iterate_episodes()).actions) == [s.action for s in rec.episode.steps]
        env = part.recover_environment()
        assert env.spec.id == rec.episode.env_id
        env.close()
    with pytest.raises(FileNotFoundError):
        minari.load_dataset("multiverse/mixed-v0")
