"""Recording and replay end to end: the training loop's recordings, every env's oracle episodes replayed and
verified (parametrized over the registry), tampered datasets, refusals and bad input through the CLI."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from conftest import CHECKED_IDS, GAME_IDS

from multiverse.agents.episodes import read_episodes
from multiverse.agents.replay import verify_dataset
from multiverse.launch.config import load_config


def run(cli: str, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([cli, *args], capture_output=True, text=True, timeout=timeout)


# --------------------------------------------------------------------------- the training loop records


def test_training_run_records_eval_and_every_nth_training_episode(tmp_path: Path) -> None:
    import ray

    from multiverse.launch.cluster import init_ray
    from multiverse.launch.train import train

    config = load_config("smoke", [f"run.root={tmp_path}", "run.name=rec", "run.iterations=2", "run.eval_every=0",
                                   "run.record_eval=true", "run.record_every=3", "envs.train={games/Catch-v0: 1}",
                                   "rollout.workers=1", "run.checkpoint_every=0"])
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

    def edit_reward(rows):
        rows[0]["steps"][k]["reward"] += 0.5

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

    def edit(rows):
        rows[1]["steps"][2]["terminated"] = True

    bad = run(multiverse_cli, "replay", str(tampered_copy(catch_dataset, tmp_path / "t", edit)), "--verify")
    assert bad.returncode == 1
    assert "DIVERGENCE episode 1" in bad.stdout and "step 3: terminated differs" in bad.stdout
    assert "recorded: True" in bad.stdout and "replayed: False" in bad.stdout
    assert "Traceback" not in bad.stderr


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
