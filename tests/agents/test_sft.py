"""Behaviour cloning on recorded oracle episodes with the tiny model: the loss falls, the oracle's actions
become more likely; the CLI writes a checkpoint that records episodes as an agent."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from multiverse.agents.episodes import EpisodeWriter, read_episodes
from multiverse.agents.learner import Learner, LearnerConfig
from multiverse.agents.models import ModelConfig
from multiverse.agents.policy import PolicyConfig
from multiverse.agents.prompt import PromptConfig
from multiverse.agents.replay import record_env, verify_dataset
from multiverse.agents.sft import action_probability, bc_samples, train_bc

SMALL_CATCH = {"balls": 1, "width": 5, "height": 6}


@pytest.fixture(scope="module")
def oracle_episodes(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("oracle") / "ds"
    with EpisodeWriter(out) as writer:
        record_env("games/Catch-v0", writer, episodes=4, params=SMALL_CATCH)
        record_env("web/LoginForm-v0", writer, episodes=2)  # type(id, "text") steps: generated tokens are trained
    return out


def test_behaviour_cloning_lowers_the_loss_and_raises_the_oracle_actions_probability(oracle_episodes: Path) -> None:
    config = LearnerConfig(model=ModelConfig(name="tiny-test", lora=False),
                           policy=PolicyConfig(compute_dtype="float32",
                                               # bare actions: see agent_helpers.BARE
                                               prompt=PromptConfig(system_prompt="Act.", history_steps=1,
                                                                   action_text="action")), lr=1e-3)
    learner = Learner(config)
    recs = list(read_episodes(oracle_episodes))
    samples, skipped = bc_samples(learner.policy, recs)
    assert skipped == 0 and len(samples) == sum(r.episode.length for r in recs)
    assert any(s.gen_ids for s in samples)  # the typed username/password are part of the targets
    before = action_probability(learner.policy, samples)
    history = train_bc(learner, samples, epochs=4, minibatch=8)
    after = action_probability(learner.policy, samples)
    assert history[-1]["bc_loss"] < 0.75 * history[0]["bc_loss"], history
    assert after > before + 0.05, (before, after)
    assert learner.step == 4 * -(-len(samples) // 8)


def test_cli_sft_writes_a_checkpoint_that_records_as_an_agent(oracle_episodes: Path, tmp_path: Path) -> None:
    cli = str(Path(sys.executable).parent / "multiverse")
    ckpt = tmp_path / "sft"
    ds, bad = _bad_dataset(oracle_episodes, tmp_path)  # --skip-bad leaves out the corrupt file and the faked episode
    out = subprocess.run([cli, "sft", "--episodes", str(ds), "--config", "smoke", "--out", str(ckpt), "--skip-bad",
                          "--epochs", "2", "algorithm.lr=0.003"], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    assert "epoch 2/2" in out.stdout and "p(recorded action)" in out.stdout
    steps = sum(r.episode.length for r in read_episodes(oracle_episodes))
    assert f"sft: {steps} steps from 6 episodes" in out.stdout, out.stdout
    assert f"skipped {bad}" in out.stdout and "skipped episode 6 (part-99999999999999999998-faked.parquet)" in out.stdout
    assert "skipped 1 unreadable file and 1 episode whose summary disagrees with its steps (--skip-bad)" in out.stdout
    assert Learner.read_meta(ckpt)["step"] >= 2
    rec = subprocess.run([cli, "record", "--env", "games/Catch-v0", "--agent", f"checkpoint:{ckpt}", "--episodes", "2",
                          "--param", "width=5", "--param", "height=6", "--param", "balls=1", "--out", str(tmp_path / "by_policy")],
                         capture_output=True, text=True, timeout=600)
    assert rec.returncode == 0, rec.stderr
    recs = list(read_episodes(tmp_path / "by_policy"))
    assert len(recs) == 2 and all(r.meta.agent == "checkpoint" for r in recs)
    assert recs[0].meta.policy["checkpoint"] == str(ckpt.resolve()) and recs[0].meta.policy["weights_sha256"]
    assert all(s.logp is not None and len(s.probs) == len(s.legal_actions) for r in recs for s in r.episode.steps)
    assert verify_dataset(recs).ok


def test_only_success_takes_success_from_the_steps_not_the_summary_column() -> None:
    from agent_helpers import tiny_policy

    recs = list(read_episodes(Path(__file__).parent / "data" / "episodes-v1"))  # 2 Catch successes, 1 Maze failure
    assert [r.episode.success for r in recs] == [True, True, False]
    recs[2].episode.success = True  # a faked column: the last step's info still says success=False
    samples, skipped = bc_samples(tiny_policy(), recs, only_success=True)
    assert skipped == 0 and len(samples) == 10 and {s.env_id for s in samples} == {"games/Catch-v0"}


def _bad_dataset(oracle: Path, tmp_path: Path) -> tuple[Path, Path]:
    """The oracle dataset plus a corrupt file (named to sort last) and a file with a faked success column."""
    import shutil

    import pyarrow as pa
    import pyarrow.parquet as pq

    from multiverse.agents.episodes import SCHEMA

    out = tmp_path / "ds"
    shutil.copytree(oracle, out)
    bad = out / "part-99999999999999999999-corrupt.parquet"
    bad.write_bytes(next(out.glob("*.parquet")).read_bytes()[:300])
    old = sorted((Path(__file__).parent / "data" / "episodes-v1").glob("*.parquet"))[1]  # the failed Maze episode
    rows = pq.read_table(old).to_pylist()
    rows[0]["success"] = True
    pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMA), out / "part-99999999999999999998-faked.parquet")
    return out, bad


def test_cli_sft_names_a_bad_file_and_a_faked_episode_and_says_skip_bad_skips_them(oracle_episodes: Path,
                                                                                     tmp_path: Path) -> None:
    cli = str(Path(sys.executable).parent / "multiverse")
    ds, bad = _bad_dataset(oracle_episodes, tmp_path)
    args = [cli, "sft", "--episodes", str(ds), "--config", "smoke", "--out", str(tmp_path / "ckpt"), "--only-success"]
    out = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert str(bad) in out.stderr and "--skip-bad" in out.stderr and "Traceback" not in out.stderr
    bad.unlink()
    out = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert ("episode 6 (part-99999999999999999998-faked.parquet) stores success=True but its last step's info says "
            "success=False") in out.stderr and "--skip-bad" in out.stderr
    assert not (tmp_path / "ckpt").exists()


def test_bc_loss_is_the_mean_negative_log_likelihood() -> None:
    import math

    import torch

    from multiverse.agents.losses import BCLoss
    from multiverse.agents.policy import PolicyOutput

    logp_N = torch.log(torch.tensor([0.5, 0.25]))
    out = PolicyOutput(logp_N, torch.zeros(2, 2), torch.ones(2, 2, dtype=torch.bool), None, torch.zeros(2, 2))
    loss, metrics = BCLoss()(out, {})
    assert float(loss) == pytest.approx(-(math.log(0.5) + math.log(0.25)) / 2)
    assert metrics["p_action"] == pytest.approx(0.375)
