"""Every loss and advantage function against values computed by hand."""

from __future__ import annotations

import math

import pytest
import torch

from multiverse.agents.losses import (
    EnvReturnScaler,
    PPOConfig,
    PPOLoss,
    advantage_variance,
    baseline_variances,
    behaviour_cloning_loss,
    candidate_entropy,
    candidate_kl,
    discounted_returns,
    gae,
    group_ids,
    group_relative_advantages,
    normalize_by_env,
    ppo_clip_loss,
    value_loss,
)
from multiverse.agents.policy import PAD_SCORE, PolicyOutput

approx = lambda x: pytest.approx(x, abs=1e-5)


def test_ppo_clip_loss_value_gradient_and_metrics() -> None:
    # ratios 1, 1.5, 0.5 with advantages +1, +1, -1 and eps 0.2:
    # min(1, 1) = 1; min(1.5, 1.2) = 1.2 (clipped); min(-0.5, -0.8) = -0.8 (clipped) -> loss -(1 + 1.2 - 0.8)/3
    logp = torch.tensor([0.0, math.log(1.5), math.log(0.5)], requires_grad=True)
    loss, m = ppo_clip_loss(logp, torch.zeros(3), torch.tensor([1.0, 1.0, -1.0]), 0.2)
    assert loss.item() == approx(-1.4 / 3)
    assert m["clip_frac"] == approx(2 / 3)
    assert m["ratio_mean"] == approx(1.0)
    assert m["approx_kl"] == approx(((0.5 - math.log(1.5)) + (-0.5 - math.log(0.5))) / 3)
    loss.backward()
    # only the unclipped item gets a gradient: d(-r A / 3)/dlogp = -r A / 3 = -1/3
    assert logp.grad.tolist() == [approx(-1 / 3), approx(0.0), approx(0.0)]


def test_ppo_clip_keeps_the_gradient_where_clipping_would_not_help() -> None:
    # a ratio below 1 - eps with a positive advantage is not clipped (min picks the unclipped term)
    logp = torch.tensor([math.log(0.5)], requires_grad=True)
    loss, _ = ppo_clip_loss(logp, torch.zeros(1), torch.tensor([2.0]), 0.2)
    assert loss.item() == approx(-1.0)
    loss.backward()
    assert float(logp.grad[0]) == approx(-1.0)  # -r A = -0.5 * 2


def test_group_relative_advantages() -> None:
    returns = torch.tensor([1.0, 0.0, 1.0, 3.0, 5.0, 7.0])
    groups = ["a", "a", "a", "b", "b", "c"]
    std_a = math.sqrt(2 / 9)  # population std of (1, 0, 1)
    adv = group_relative_advantages(returns, groups, eps=0.0)
    assert adv.tolist() == [approx((1 / 3) / std_a), approx((-2 / 3) / std_a), approx((1 / 3) / std_a),
                            approx(-1.0), approx(1.0), approx(0.0)]
    unscaled = group_relative_advantages(returns, groups, scale=False)
    assert unscaled.tolist() == [approx(1 / 3), approx(-2 / 3), approx(1 / 3), approx(-1.0), approx(1.0), approx(0.0)]
    # equal returns in a group: no signal, and no division by zero
    assert group_relative_advantages(torch.tensor([2.0, 2.0]), ["g", "g"]).tolist() == [0.0, 0.0]
    with pytest.raises(ValueError, match="group keys"):
        group_relative_advantages(returns, ["a"])


def test_group_ids_share_env_seed_and_params() -> None:
    keys = group_ids(["games/Catch-v0"] * 3 + ["games/Maze-v0"], [1, 1, 2, 1],
                     [{"w": 5, "h": 6}, {"h": 6, "w": 5}, {"w": 5, "h": 6}, {"w": 5, "h": 6}])
    assert keys[0] == keys[1] and len(set(keys)) == 3


def test_discounted_returns() -> None:
    assert discounted_returns(torch.tensor([1.0, 0.0, 2.0]), 0.5).tolist() == [1.5, 1.0, 2.0]
    assert discounted_returns(torch.tensor([1.0]), 0.5, last_value=4.0).tolist() == [3.0]


def test_gae_by_hand() -> None:
    # delta_1 = 1 + 0 - 0.2 = 0.8; delta_0 = 1 + 0.9 * 0.2 - 0.5 = 0.68; A_0 = 0.68 + 0.9 * 0.8 * 0.8
    adv, ret = gae(torch.tensor([1.0, 1.0]), torch.tensor([0.5, 0.2]), gamma=0.9, lam=0.8)
    assert adv.tolist() == [approx(1.256), approx(0.8)]
    assert ret.tolist() == [approx(1.756), approx(1.0)]
    # truncated: bootstrap from the value at the cut
    adv, _ = gae(torch.tensor([1.0]), torch.tensor([0.5]), gamma=0.9, lam=0.8, last_value=2.0)
    assert adv.tolist() == [approx(2.3)]
    # lambda = 1: A_t = G_t - V(s_t)
    rewards, values = torch.tensor([0.0, 1.0, -1.0, 2.0]), torch.tensor([0.3, -0.2, 0.1, 0.4])
    adv, _ = gae(rewards, values, gamma=0.95, lam=1.0)
    assert torch.allclose(adv, discounted_returns(rewards, 0.95) - values, atol=1e-6)


def test_normalize_by_env() -> None:
    out = normalize_by_env(torch.tensor([1.0, 3.0, 10.0, 10.0]), ["a", "a", "b", "b"])
    assert out.tolist() == [approx(-1.0), approx(1.0), 0.0, 0.0]


def test_env_return_scaler_and_its_state() -> None:
    s = EnvReturnScaler(eps=0.0)
    assert s.scale("a") == 1.0
    s.update("a", [1.0, 3.0])
    s.update("b", [10.0, 30.0, 20.0])
    assert s.scale("a") == approx(1.0)
    assert s.scale("b") == approx(math.sqrt(200 / 3))
    t = EnvReturnScaler()
    t.load_state_dict(s.state_dict())
    assert t.scale("b") == approx(s.scale("b"))


def test_candidate_entropy_and_kl_ignore_padding() -> None:
    mask = torch.tensor([[True, True, False]])
    logdist = torch.tensor([[math.log(0.5), math.log(0.5), PAD_SCORE]], requires_grad=True)
    ref = torch.tensor([[math.log(0.25), math.log(0.75), PAD_SCORE]])
    assert candidate_entropy(logdist, mask)[0].item() == approx(math.log(2))
    kl = candidate_kl(logdist, ref, mask)
    assert kl[0].item() == approx(0.5 * math.log(2) + 0.5 * math.log(0.5 / 0.75))
    kl.sum().backward()
    assert torch.isfinite(logdist.grad).all()


def test_value_bc_and_variance_metrics() -> None:
    assert float(value_loss(torch.tensor([1.0, 2.0]), torch.zeros(2))) == approx(1.25)
    assert float(behaviour_cloning_loss(torch.tensor([-1.0, -3.0]))) == approx(2.0)
    m = advantage_variance(torch.tensor([0.0, 2.0]), torch.tensor([0.5, -0.5]))
    assert m == {"adv_var_no_baseline": approx(1.0), "adv_var_with_baseline": approx(0.25), "adv_var_ratio": approx(0.25)}


def test_baseline_variances_are_within_env_variances_of_the_same_samples() -> None:
    # env A: no value (1, -1) var 1, value-head (0.5, -0.5) var 0.25; env B: (2, -2) var 4, (3, 0) centred (1.5,
    # -1.5) var 2.25 (the value head's offset is not counted); pooled: 10/4 and 5/4
    envs = ["A", "A", "B", "B"]
    m = baseline_variances(torch.tensor([1.0, -1.0, 2.0, -2.0]), torch.tensor([0.5, -0.5, 3.0, 0.0]), envs)
    assert m == {"adv_var_no_value": approx(2.5), "adv_var_gae": approx(1.25), "adv_var_value_ratio": approx(0.5),
                 "adv_var_no_value/A": approx(1.0), "adv_var_gae/A": approx(0.25), "adv_var_value_ratio/A": approx(0.25),
                 "adv_var_no_value/B": approx(4.0), "adv_var_gae/B": approx(2.25),
                 "adv_var_value_ratio/B": approx(0.5625)}
    # no value head: the no-value variance alone; equal returns everywhere: no ratio to give
    assert baseline_variances(torch.tensor([1.0, -1.0]), None, ["A", "A"]) == {
        "adv_var_no_value": approx(1.0), "adv_var_no_value/A": approx(1.0)}
    flat = baseline_variances(torch.zeros(2), torch.tensor([1.0, 0.0]), ["A", "A"])
    assert math.isnan(flat["adv_var_value_ratio"]) and flat["adv_var_gae"] == approx(0.25)
    assert baseline_variances(torch.zeros(0), None, []) == {}


def test_ppo_loss_adds_its_terms() -> None:
    logdist = torch.log(torch.tensor([[0.5, 0.5], [0.25, 0.75]]))
    ref = torch.log(torch.tensor([[0.5, 0.5], [0.5, 0.5]]))
    mask = torch.ones(2, 2, dtype=torch.bool)
    out = PolicyOutput(logp_N=logdist[:, 0], logdist_NA=logdist, mask_NA=mask, values_N=torch.tensor([1.0, 0.0]),
                       scores_NA=logdist, ref_logdist_NA=ref)
    batch = {"old_logp_N": logdist[:, 0].clone(), "adv_N": torch.tensor([1.0, -1.0]), "returns_N": torch.zeros(2)}
    loss_fn = PPOLoss(PPOConfig(clip_eps=0.2, entropy_coef=0.1, kl_coef=0.5, value_coef=2.0))
    assert loss_fn.needs_reference
    loss, m = loss_fn(out, batch)
    entropy = (math.log(2) + -(0.25 * math.log(0.25) + 0.75 * math.log(0.75))) / 2
    kl = (0.25 * math.log(0.25 / 0.5) + 0.75 * math.log(0.75 / 0.5)) / 2
    expected = -(1 - 1) / 2 - 0.1 * entropy + 2.0 * 0.5 * (1.0 + 0.0) / 2 + 0.5 * kl
    assert loss.item() == approx(expected)
    assert m["entropy"] == approx(entropy) and m["kl_to_initial"] == approx(kl) and m["value_loss"] == approx(0.25)
    assert not PPOLoss(PPOConfig(kl_coef=0.0)).needs_reference
