"""Rollouts in lockstep over real envs, episode records, and advantages from them."""

from __future__ import annotations

import json

import pytest
import torch

import multiverse.envs as menvs
from multiverse.agents.losses import EnvReturnScaler
from multiverse.agents.policy import Policy
from multiverse.agents.rollout import Episode, EpisodeSpec, Step, compute_advantages, run_episodes, to_samples

from agent_helpers import tiny_policy

TINY_CATCH = {"params": {"balls": 1, "width": 5, "height": 6}}


class CountingPolicy(Policy):
    """The real policy, counting its batched calls."""

    calls: list[int]

    def act(self, turns, **kw):  # type: ignore[override]
        self.calls.append(len(turns))
        return super().act(turns, **kw)


def counting_policy() -> CountingPolicy:
    p = tiny_policy()
    c = CountingPolicy(p.model, p.tokenizer, p.config)
    c.calls = []
    return c


def test_run_episodes_steps_envs_in_lockstep_and_records_everything() -> None:
    policy = counting_policy()
    envs = [menvs.make("games/Catch-v0") for _ in range(3)] + [menvs.make("games/Maze-v0")]
    specs = [EpisodeSpec("games/Catch-v0", s, TINY_CATCH) for s in range(5)] + [EpisodeSpec("games/Maze-v0", 9)]
    episodes = run_episodes(policy, envs, specs, seed=0, max_steps=8)
    assert [(e.env_id, e.seed) for e in episodes] == [(s.env_id, s.seed) for s in specs]
    catch = episodes[0]
    assert catch.length == 5 and catch.steps[-1].terminated and catch.randomization["width"] == 5
    assert catch.mission == "Catch the falling ball with your paddle."
    for step in catch.steps:
        assert step.action in step.legal_actions and step.decision is not None
        assert step.logp == pytest.approx(torch.log(torch.tensor(step.probs[step.decision.index])).item(), abs=1e-5)
    assert episodes[-1].length <= 8
    # 4 envs: the first call batches all of them, and every call batches more than one while 2+ are busy
    assert policy.calls[0] == 4 and max(policy.calls) == 4
    assert sum(policy.calls) == sum(e.length for e in episodes)
    json.dumps([e.to_dict() for e in episodes])  # the record is plain JSON


def test_episodes_are_reproducible_and_replay_from_seed_and_actions() -> None:
    policy = tiny_policy()
    envs = [menvs.make("games/Catch-v0") for _ in range(2)]
    specs = [EpisodeSpec("games/Catch-v0", s, {"split": "heldout"}) for s in (1, 2)]
    a = run_episodes(policy, envs, specs, seed=3, max_steps=30)
    b = run_episodes(policy, envs, specs, seed=3, max_steps=30)
    assert [[s.action for s in e.steps] for e in a] == [[s.action for s in e.steps] for e in b]
    env = menvs.make("games/Catch-v0")
    for ep in a:
        obs, info = env.reset(seed=ep.seed, options=ep.options)
        assert info["randomization"] == ep.randomization
        for step in ep.steps:
            assert obs["text"] == step.observation
            obs, reward, *_ = env.step(step.action)
            assert reward == step.reward


def test_missing_env_instance_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"no env instance for \['games/Maze-v0'\]"):
        run_episodes(tiny_policy(), [menvs.make("games/Catch-v0")], [EpisodeSpec("games/Maze-v0", 0)])


def _episode(env_id: str, seed: int, rewards: list[float], values: list[float] | None = None) -> Episode:
    steps = [Step("obs", ["a"], "a", 0.0, [1.0], r, i == len(rewards) - 1, False, value=(values[i] if values else None))
             for i, r in enumerate(rewards)]
    return Episode(env_id, seed, {}, "m", {"p": 1}, steps)


def test_group_advantages_give_each_step_its_episodes_relative_return() -> None:
    eps = [_episode("A", 0, [0, 1]), _episode("A", 0, [0, 0, 0]), _episode("A", 1, [5])]
    advs, targets, m = compute_advantages(eps, mode="group", normalize=False)
    assert [a.tolist() for a in advs] == [[0.5, 0.5], [-0.5, -0.5, -0.5], [0.0]]
    assert [t.tolist() for t in targets] == [[1.0, 1.0], [0.0, 0.0, 0.0], [5.0]]
    assert m["adv_var_with_baseline"] < m["adv_var_no_baseline"]
    normed, _, _ = compute_advantages(eps, mode="group")
    flat = torch.cat(normed)
    assert float(flat.mean()) == pytest.approx(0.0, abs=1e-6) and float(flat.std(unbiased=False)) == pytest.approx(1.0, abs=1e-5)


def test_a_timeout_reward_makes_running_out_of_steps_no_better_than_a_wrong_answer() -> None:
    """RadioChoice's shape: a wrong answer -1, a success +1, and stalling until the step limit 0, which group
    advantages would rank above the wrong answer; timeout_reward=-1 ranks it with it, for the advantages only."""

    def cut(rewards: list[float], success: bool = False) -> Episode:  # truncated by the step limit
        ep = _episode("A", 0, rewards)
        ep.steps[-1].terminated, ep.steps[-1].truncated, ep.success = False, True, success
        return ep

    wrong, stalled, right = _episode("A", 0, [0, -1]), cut([0, 0, 0]), _episode("A", 0, [0, 1])
    right.success = True
    plain, _, _ = compute_advantages([wrong, stalled, right], mode="group", normalize=False)
    assert [a[0].item() for a in plain] == [-1.0, 0.0, 1.0]
    advs, targets, _ = compute_advantages([wrong, stalled, right], mode="group", normalize=False, timeout_reward=-1.0)
    assert [a[0].item() for a in advs] == [pytest.approx(-2 / 3), pytest.approx(-2 / 3), pytest.approx(4 / 3)]
    assert targets[1].tolist() == [-1.0, -1.0, -1.0] and stalled.total_return == 0.0  # the env's return stands
    # a success on the last allowed step is not a timeout
    late = cut([0, 1], success=True)
    advs, _, _ = compute_advantages([late, wrong], mode="group", normalize=False, timeout_reward=-1.0)
    assert [a[0].item() for a in advs] == [1.0, -1.0]


def test_gae_advantages_use_the_recorded_values() -> None:
    eps = [_episode("A", 0, [1.0, 1.0], values=[0.5, 0.2])]
    advs, _, _ = compute_advantages(eps, mode="gae", gamma=0.9, lam=0.8, normalize=False)
    assert advs[0].tolist() == [pytest.approx(1.256), pytest.approx(0.8)]
    with pytest.raises(ValueError, match="value head"):
        compute_advantages([_episode("A", 0, [1.0])], mode="gae")
    # per-env reward scaling: env B's returns (10, 30) have std 10, so its rewards are divided by 10
    scaler = EnvReturnScaler(eps=0.0)
    eps_b = [_episode("B", 0, [10.0], values=[0.0]), _episode("B", 1, [30.0], values=[0.0])]
    advs, targets, _ = compute_advantages(eps_b, mode="gae", normalize=False, scaler=scaler)
    assert [a.tolist() for a in advs] == [[pytest.approx(1.0)], [pytest.approx(3.0)]]
    assert [t.tolist() for t in targets] == [[pytest.approx(1.0)], [pytest.approx(3.0)]]  # value 0: returns = adv
    assert scaler.scale("B") == pytest.approx(10.0)
    with pytest.raises(ValueError, match="'group' or 'gae'"):
        compute_advantages(eps, mode="ppo")


def test_the_value_head_ratio_is_zero_for_exact_values_and_one_for_the_group_mean() -> None:
    # rewards only at the end, gamma = lam = 1: GAE is the return minus the value, GRPO the return minus the
    # group's mean. Groups: A seed 0 returns (1, 0), A seed 1 (3, 1), B seed 0 (2, 0)
    rewards = [("A", 0, [0.0, 1.0]), ("A", 0, [0.0, 0.0]), ("A", 1, [0.0, 3.0]), ("A", 1, [0.0, 1.0]),
               ("B", 0, [2.0]), ("B", 0, [0.0])]
    group_mean = {("A", 0): 0.5, ("A", 1): 2.0, ("B", 0): 1.0}
    exact = [_episode(e, s, r, values=[sum(r)] * len(r)) for e, s, r in rewards]
    mean = [_episode(e, s, r, values=[group_mean[e, s]] * len(r)) for e, s, r in rewards]
    for mode in ("gae", "group"):  # the metrics are the same whichever estimator trains
        _, _, m = compute_advantages(exact, mode=mode, lam=1.0)
        assert m["adv_var_gae"] == pytest.approx(0.0, abs=1e-12) and m["adv_var_value_ratio"] == pytest.approx(0.0)
        # A's GRPO advantages: +-0.5 (seed 0) and +-1 (seed 1), two steps each; B's +-1
        assert m["adv_var_no_value/A"] == pytest.approx((0.25 + 1.0) / 2) and m["adv_var_no_value/B"] == 1.0
        assert m["adv_var_no_value"] == pytest.approx((4 * 0.25 + 4 * 1.0 + 2 * 1.0) / 10)
        _, _, m = compute_advantages(mean, mode=mode, lam=1.0)
        for key in ("adv_var_value_ratio", "adv_var_value_ratio/A", "adv_var_value_ratio/B"):
            assert m[key] == pytest.approx(1.0), key
    # without values (a grpo run without a value head) there is no ratio
    _, _, m = compute_advantages([_episode(e, s, r) for e, s, r in rewards], mode="group")
    assert "adv_var_no_value/A" in m and not any(k.startswith(("adv_var_gae", "adv_var_value_ratio")) for k in m)


def test_samples_carry_the_decisions_tokens() -> None:
    policy = tiny_policy()
    eps = run_episodes(policy, [menvs.make("games/Catch-v0")], [EpisodeSpec("games/Catch-v0", 0, TINY_CATCH)] * 2)
    advs, targets, _ = compute_advantages(eps)
    samples = to_samples(eps, advs, targets)
    assert len(samples) == sum(e.length for e in eps)
    assert samples[0].prompt_ids == eps[0].steps[0].decision.prompt_ids
    assert samples[0].behaviour_logp == eps[0].steps[0].logp


def test_a_tasks_episodes_depend_only_on_the_task() -> None:
    """The same task gives the same episodes on a fresh env pool, on one that ran other tasks before, and through the
    in-process rollout: what lets a task run on any worker, and the two rollouts agree."""
    from multiverse.agents.rollout import EnvPool, InProcessRollout, Task, run_task

    policy = tiny_policy()
    task = Task(0, [EpisodeSpec("games/Catch-v0", s, TINY_CATCH) for s in (4, 4, 5)], seed=7, max_steps=6)
    other = Task(1, [EpisodeSpec("games/Catch-v0", 9, {"split": "heldout"})] * 4, seed=1, max_steps=6)
    used = EnvPool(envs_per_id=2)
    run_task(policy, used, other)
    results = [run_task(policy, EnvPool(envs_per_id=2), task), run_task(policy, used, task),
               InProcessRollout(policy, envs_per_id=2).run([task])[0][0]]
    first = [[(s.action, s.logp) for s in e.steps] for e in results[0].episodes]
    assert all([[(s.action, s.logp) for s in e.steps] for e in r.episodes] == first for r in results)
    assert len(used.envs["games/Catch-v0"]) == 2  # min(envs_per_id, the task's episodes of the id), reused
    assert results[0].env_steps == sum(len(steps) for steps in first) and results[0].tokens > 0
    assert [s.seed for s in results[0].summaries] == [4, 4, 5]
