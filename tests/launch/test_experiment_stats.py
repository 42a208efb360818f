"""The experiment's statistics on hand-made evaluation episodes: the two-level bootstrap, the categories, each
run's final evaluation, the table, the goal check, the learning curves and the value head's variance ratio."""

from __future__ import annotations

import math

import numpy as np
import pytest

from multiverse.launch.experiment.stats import (
    CATEGORIES,
    Categories,
    Eval,
    arm_table,
    bootstrap_ci,
    final_evals,
    goal_check,
    learning_curve,
    per_env_success,
    value_head_table,
)

CATS = Categories(frozenset({"games/Catch-v0", "web/ClickButton-v0"}), frozenset({"games/Maze-v0"}),
                  frozenset({"games/Catch-v0"}), "train")


def ev(arm: str = "multiverse", seed: int = 0, env_id: str = "games/Catch-v0", split: str = "heldout",
       steps: int = 100, success: float = 1.0, ret: float = 1.0) -> Eval:
    return Eval(arm, seed, env_id, split, steps, success, ret)


def test_the_bootstrap_resamples_seeds_then_episodes() -> None:
    rng = np.random.default_rng(0)
    # every episode alike: no spread at all
    assert bootstrap_ci({0: np.ones(4), 1: np.ones(3)}, rng) == (1.0, 1.0, 1.0)
    # two seeds that disagree completely: resampling seeds alone reaches both ends (half the draws pick one seed
    # twice), however many episodes each seed has; a bootstrap over the pooled episodes would stay near 0.5
    mean, lo, hi = bootstrap_ci({0: np.ones(50), 1: np.zeros(50)}, rng)
    assert (mean, lo, hi) == (0.5, 0.0, 1.0)
    # one seed: the episodes within it are resampled
    mean, lo, hi = bootstrap_ci({0: np.array([0.0, 1.0])}, rng)
    assert (mean, lo, hi) == (0.5, 0.0, 1.0)
    # the mean is over episodes, a seed without episodes counts for nothing, none at all is nan
    assert bootstrap_ci({0: np.array([1.0, 1.0, 1.0]), 1: np.array([0.0]), 2: np.array([])}, rng)[0] == 0.75
    assert all(math.isnan(x) for x in bootstrap_ci({0: np.array([])}, rng))
    # the same generator state, the same interval
    a = bootstrap_ci({0: np.array([0.0, 1.0, 1.0]), 1: np.array([1.0, 0.0])}, np.random.default_rng(7), n=300)
    b = bootstrap_ci({0: np.array([0.0, 1.0, 1.0]), 1: np.array([1.0, 0.0])}, np.random.default_rng(7), n=300)
    assert a == b and a[1] <= a[0] <= a[2]


@pytest.mark.parametrize("env_id, split, expected", [
    ("games/Catch-v0", "train", ["train"]),
    ("games/Catch-v0", "heldout", ["heldout", "heldout_games"]),
    ("web/ClickButton-v0", "heldout", ["heldout"]),
    ("games/Maze-v0", "train", ["heldout_envs"]),  # a held-out env, on the split the report counts it on
    ("games/Maze-v0", "heldout", []),
    ("web/Dropdown-v0", "train", []),  # in neither list
])
def test_each_episode_counts_in_its_categories(env_id: str, split: str, expected: list[str]) -> None:
    assert CATS.of(ev(env_id=env_id, split=split)) == expected
    assert set(expected) <= set(CATEGORIES)


def test_only_each_runs_last_evaluation_counts() -> None:
    evals = [ev(steps=0, success=0.0), ev(steps=100), ev(steps=100, seed=1, success=0.0), ev(steps=40, seed=1),
             ev(steps=0, split="train")]
    assert final_evals(evals) == [evals[1], evals[2], evals[4]]


def test_the_table_counts_episodes_per_arm_and_category() -> None:
    final = [ev(seed=0, success=1.0, ret=2.0), ev(seed=0, success=0.0, ret=0.0), ev(seed=1, success=1.0, ret=4.0),
             ev(arm="rllib_ppo", split="train", success=0.0)]
    table = arm_table(final, ["multiverse", "rllib_ppo", "no_randomization"], CATS, np.random.default_rng(0))
    mv = table["multiverse"]
    assert mv["seeds"] == [0, 1] and mv["train"] is None and mv["heldout_envs"] is None
    for cat in ("heldout", "heldout_games"):
        assert mv[cat]["episodes"] == 3
        assert mv[cat]["success"]["mean"] == pytest.approx(2 / 3)
        assert mv[cat]["return"]["mean"] == pytest.approx(2.0)
        lo, hi = mv[cat]["success"]["ci95"]
        assert 0.0 <= lo <= 2 / 3 <= hi <= 1.0
    assert table["rllib_ppo"]["train"]["success"] == {"mean": 0.0, "ci95": [0.0, 0.0]}
    assert table["no_randomization"] == {"seeds": [], **dict.fromkeys(CATEGORIES)}


def test_the_goal_check_compares_held_out_success() -> None:
    def row(**success: float) -> dict:
        return {cat: {"success": {"mean": v}} for cat, v in success.items()}

    table = {"multiverse": row(heldout=0.6, heldout_games=0.5, heldout_envs=0.25),
             "zero_shot": row(heldout=0.35, heldout_envs=0.25),
             "no_randomization": row(heldout=0.55), "rllib_ppo": row(heldout_games=0.25)}
    gain, goals = goal_check(table)
    assert gain == pytest.approx(25.0)
    assert goals == {"heldout_gain_vs_zero_shot_at_least_20_points": True,
                     "at_least_10_points_above_no_randomization": False,  # 5 points above: above, but short of 10
                     "above_rllib_ppo_on_games": True, "heldout_envs_not_below_zero_shot": True}
    table["no_randomization"], table["multiverse"]["heldout_envs"] = row(heldout=0.45), {"success": {"mean": 0.2}}
    _, goals = goal_check(table)
    assert goals["at_least_10_points_above_no_randomization"] and goals["heldout_envs_not_below_zero_shot"] is False
    gain, goals = goal_check({"multiverse": row(heldout=0.5)})
    assert gain is None and set(goals.values()) == {None}  # the arms it compares were not run


def test_per_env_success_and_learning_curves() -> None:
    evals = [ev(seed=0, steps=0, success=0.0), ev(seed=0, steps=100, success=1.0),
             ev(seed=1, steps=0, success=0.0), ev(seed=1, steps=110, success=0.0),
             ev(seed=1, steps=110, success=1.0, env_id="web/ClickButton-v0")]
    assert per_env_success(final_evals(evals), ["multiverse"]) == {
        "multiverse": {"games/Catch-v0": {"heldout": 0.5}, "web/ClickButton-v0": {"heldout": 1.0}}}
    # seeds that end at different env steps are aligned by evaluation round; seed 1's round 1 averages two envs
    xs, mean, sd = learning_curve(evals, [0, 1])
    assert xs.tolist() == [0.0, 105.0]
    assert mean.tolist() == [0.0, 0.75] and sd.tolist() == [0.0, 0.25]
    assert learning_curve([], [0, 1]) is None
    # a seed without the evaluation before training (the experiment makes it once) joins from round 1 on
    xs, mean, sd = learning_curve([e for e in evals if (e.seed, e.env_steps) != (1, 0)], [0, 1])
    assert xs.tolist() == [0.0, 105.0] and mean.tolist() == [0.0, 0.75] and sd.tolist() == [0.0, 0.25]


def test_the_value_head_table_counts_the_envs_whose_ratio_interval_is_below_one() -> None:
    nan = float("nan")
    ratios = {
        "games/Catch-v0": {0: [0.5, 0.7, nan], 1: [0.6, 0.4]},   # below 1 on every iteration: reduces
        "web/ClickButton-v0": {0: [1.5, 2.0], 1: [3.0]},         # above: raises
        "web/Dropdown-v0": {0: [0.5, 1.5], 1: [0.4, 1.6]},       # either side: unclear
        "games/Maze-v0": {0: [nan]},                              # never a ratio: no mean, too few
        "games/Pong-v0": {0: [0.1], 1: [0.2]},                    # two iterations: too few to say
    }
    t = value_head_table(ratios, np.random.default_rng(0))
    assert list(t["envs"]) == ["games/Catch-v0", "games/Maze-v0", "games/Pong-v0", "web/ClickButton-v0",
                               "web/Dropdown-v0"]
    assert t["envs"]["games/Maze-v0"] | {"ci95": None} == {"mean": None, "ci95": None, "seeds": [], "iterations": 0,
                                                           "no_ratio": 1, "verdict": "too few"}
    catch = t["envs"]["games/Catch-v0"]
    assert catch["mean"] == pytest.approx(0.55) and catch["iterations"] == 4 and catch["no_ratio"] == 1
    assert 0.4 <= catch["ci95"][0] <= 0.55 <= catch["ci95"][1] <= 0.7 and catch["seeds"] == [0, 1]
    assert [c["verdict"] for c in t["envs"].values()] == ["reduces", "too few", "too few", "raises", "unclear"]
    assert (t["reduces_on"], t["raises_on"], t["too_few"]) == (1, 1, 2)
    assert value_head_table({}, np.random.default_rng(0)) == {"envs": {}, "reduces_on": 0, "raises_on": 0,
                                                              "too_few": 0}
