"""The local RL loop: success rises on a bandit with tiny-test; smoke runs on a game, GAE, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

from bandit import SignalBandit
from agent_helpers import FP32
from multiverse.agents.learner import Learner, LearnerConfig
from multiverse.agents.losses import PPOConfig
from multiverse.agents.models import ModelConfig
from multiverse.agents.policy import PolicyConfig
from multiverse.agents.prompt import PromptConfig
from multiverse.agents.train_local import TrainConfig, train

SHORT = PromptConfig(system_prompt="Act.", history_steps=0, list_legal_actions=False)


def test_success_rises_on_a_contextual_bandit_with_tiny_test() -> None:
    # A red light asks for "stop", a green one for "walk" ("wait" is never right): the policy must read the
    # observation. The tiny random model starts at chance or below (it prefers one action whatever the light);
    # GRPO with PPO updates must reach >= 0.9 greedy success. Measured with this config on seeds 0-5: 1.0 after
    # 5 iterations on five seeds, after 15 on the sixth; this seed reaches it at 5, so 15 leave a 3x margin.
    config = TrainConfig(
        env_ids=("bandit",),
        learner=LearnerConfig(model=ModelConfig(name="tiny-test", lora=False, seed=1),
                              policy=PolicyConfig(compute_dtype="float32", prompt=SHORT), lr=5e-4),
        loss=PPOConfig(entropy_coef=0.0),
        iterations=15, groups_per_env=8, group_size=4, envs_per_id=32, minibatch=8, epochs=2,
        eval_episodes=64, eval_split="train", seed=1,
    )
    history = train(config, make_env=lambda _: SignalBandit())
    evals = [row["eval"]["bandit"]["success"] for row in history if "eval" in row]
    assert len(evals) == 2 and evals[0] <= 0.6, evals
    assert evals[-1] >= 0.9, evals
    assert sum(1 for row in history if "eval" not in row) == 15


def test_train_on_a_game_writes_metrics_and_a_loadable_checkpoint(tmp_path: Path) -> None:
    config = TrainConfig(
        env_ids=("games/Catch-v0",), env_params={"games/Catch-v0": {"balls": 1, "width": 5, "height": 6}},
        learner=LearnerConfig(model=ModelConfig(name="tiny-test", value_head=True), policy=FP32),
        iterations=1, groups_per_env=2, group_size=2, envs_per_id=4, eval_episodes=2, advantage="gae",
        out_dir=str(tmp_path),
    )
    history = train(config)
    row = history[1]
    assert row["samples"] == 4 * 5 and "value_loss" in row and "adv_var_ratio" in row
    assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == 3
    assert Learner.from_checkpoint(tmp_path / "checkpoint").step >= 1


def test_gae_without_a_value_head_is_refused() -> None:
    import pytest

    with pytest.raises(ValueError, match="value head"):
        train(TrainConfig(advantage="gae", learner=LearnerConfig(model=ModelConfig(name="tiny-test"))))


def test_command_line_prints_a_line_per_iteration_between_evaluations(tmp_path: Path) -> None:
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "multiverse.agents.train_local", "--env", "games/Catch-v0", "--model", "tiny-test",
         "--iterations", "2", "--groups", "1", "--group-size", "2", "--eval-episodes", "1", "--max-steps", "3",
         "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert [line.split()[:2] for line in lines] == [["eval", "0"], ["iter", "1/2"], ["iter", "2/2"], ["eval", "2"]], lines
    assert "success 0.00 (Catch-v0=0.00)" in lines[1] and "steps/s" in lines[1] and "loss " in lines[1]
    assert "games/Catch-v0 success 0.00 return " in lines[0]
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in rows] == [0, 1, 2, 2] and "eval" in rows[0] and rows[1]["env_steps"] == 6
    assert (tmp_path / "checkpoint" / "learner.json").is_file()
