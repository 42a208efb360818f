"""The policy: packed scoring equals the naive form, sampling, generation in the action language, weights."""

from __future__ import annotations

import dataclasses
import re

import pytest
import torch

from multiverse.agents.models import ModelConfig, build_model
from multiverse.agents.policy import Policy, PolicyConfig, score_naive
from multiverse.agents.prompt import Turn

from agent_helpers import FP32, catch_turn, tiny_policy, web_turn

TYPE_ACTION = re.compile(r'^type\(1, "[^"\\\n]*"\)$')


def _turns() -> list[Turn]:
    return [
        catch_turn(history=(("Catch the falling ball with your paddle.\no....\n..=..", "left"),)),
        web_turn(),
        Turn("Wait.", "Wait.\nNothing happens.", ["noop()"]),
    ]


def _params(policy: Policy) -> dict[str, torch.nn.Parameter]:
    return {n: p for n, p in policy.model.named_parameters() if p.requires_grad}


@pytest.mark.parametrize("lora", [False, True])
def test_packed_scoring_equals_naive_scoring_and_gradients(lora: bool) -> None:
    policy = tiny_policy(lora=lora, seed=3)
    if lora:  # LoRA B starts at zero; give the adapters values so that they matter
        with torch.no_grad():
            for n, p in _params(policy).items():
                p.copy_(torch.randn(p.shape, generator=torch.Generator().manual_seed(len(n))) * 0.05)
    turns = _turns()
    decisions = policy.act(turns, generator=torch.Generator().manual_seed(0))
    # packed: every row in one forward
    out = policy.evaluate(decisions)
    packed_scores = out.scores_NA[out.mask_NA]
    policy.model.zero_grad()
    packed_scores.sum().backward()
    packed_grads = {n: p.grad.clone() for n, p in _params(policy).items()}
    # naive: one forward per candidate
    policy.model.zero_grad()
    naive_scores = torch.cat([score_naive(policy, d.prompt_ids, d.candidates) for d in decisions])
    naive_scores.sum().backward()
    assert packed_scores.shape == naive_scores.shape == (3 + 4 + 1,)
    # float32 rounding only: scores of a random tiny model reach -85, where 1e-5 is a couple of ulps
    assert torch.allclose(packed_scores, naive_scores, atol=1e-5, rtol=1e-6), (packed_scores - naive_scores).abs().max()
    worst = max(float((packed_grads[n] - p.grad).abs().max()) for n, p in _params(policy).items())
    assert worst < 1e-5, worst
    assert sum(float(g.abs().sum()) for g in packed_grads.values()) > 0


def test_act_returns_a_distribution_and_its_log_prob() -> None:
    policy = tiny_policy()
    [d] = policy.act([catch_turn()], temperature=0.7, generator=torch.Generator().manual_seed(1))
    assert d.action in ("left", "stay", "right") and d.action == d.candidates.actions[d.index]
    assert sum(d.probs) == pytest.approx(1.0, abs=1e-6)
    scores = policy.score([catch_turn()])[0]
    assert torch.allclose(torch.tensor(d.probs), torch.softmax(scores / 0.7, -1), atol=1e-6)
    assert d.logp == pytest.approx(float(torch.log_softmax(scores / 0.7, -1)[d.index]), abs=1e-6)
    assert d.prompt_ids == policy.encode(catch_turn())[0]


def test_sampling_is_seeded_and_greedy_is_the_argmax() -> None:
    policy = tiny_policy()
    turns = [catch_turn()] * 16
    a = [d.action for d in policy.act(turns, temperature=5.0, generator=torch.Generator().manual_seed(7))]
    b = [d.action for d in policy.act(turns, temperature=5.0, generator=torch.Generator().manual_seed(7))]
    assert a == b and len(set(a)) > 1  # reproducible, and a hot policy explores
    best = int(torch.argmax(policy.score([catch_turn()])[0]))
    assert {d.index for d in policy.act(turns, greedy=True)} == {best}


def test_batches_larger_than_one_forward_are_split() -> None:
    policy = tiny_policy(config=dataclasses.replace(FP32, rows_per_forward=2))
    turns = _turns() * 2
    split = policy.act(turns, greedy=True)
    whole = tiny_policy().act(turns, greedy=True)
    assert [d.action for d in split] == [d.action for d in whole]
    assert [d.logp for d in split] == pytest.approx([d.logp for d in whole], abs=1e-5)


def test_generation_stays_in_the_action_language_and_its_log_prob_is_exact() -> None:
    policy = tiny_policy(config=dataclasses.replace(FP32, max_text_tokens=6, temperature=1.5))
    only_type = Turn("Log in as alice.", "Log in as alice.\n[1] textbox 'Username'", ["type(1, <text>)"])
    decisions = policy.act([only_type] * 24, generator=torch.Generator().manual_seed(0))
    text_V, close_V = policy.text_masks()
    for d in decisions:
        assert TYPE_ACTION.match(d.action), d.action
        assert 1 <= len(d.gen_ids) <= 6 and close_V[d.gen_ids[-1]] and all(text_V[t] for t in d.gen_ids[:-1])
    assert len({d.action for d in decisions}) > 10
    assert any(len(d.gen_ids) == 6 for d in decisions)  # the closing quote is forced at the limit
    # training re-scores the same tokens to the same log-prob (packed, vs the KV-cache sampling loop)
    out = policy.evaluate(decisions)
    assert out.logp_N.tolist() == pytest.approx([d.logp for d in decisions], abs=1e-4)
    # and a template competes with the fixed actions under one softmax
    mixed = policy.act([web_turn()] * 32, temperature=5.0, generator=torch.Generator().manual_seed(0))
    assert any(TYPE_ACTION.match(d.action) for d in mixed) and any(d.action == "click(2)" for d in mixed)


def test_bad_legal_actions_are_clear_errors() -> None:
    policy = tiny_policy()
    with pytest.raises(ValueError, match="legal-action list is empty"):
        policy.act([Turn("m", "m", [])])
    with pytest.raises(ValueError, match="non-empty string"):
        policy.act([Turn("m", "m", ["left", ""])])
    with pytest.raises(ValueError, match="more than one <text>"):
        policy.act([Turn("m", "m", ["type(<text>, <text>)"])])
    with pytest.raises(ValueError, match="temperature must be > 0"):
        PolicyConfig(temperature=0)


def test_bf16_autocast_scores_close_to_float32() -> None:
    exact = tiny_policy().score(_turns())
    fast = tiny_policy(config=dataclasses.replace(FP32, compute_dtype="bfloat16")).score(_turns())
    for a, b in zip(exact, fast):
        assert torch.allclose(a, b, atol=0.5), (a, b)


def test_set_weights_on_a_second_policy_gives_identical_actions() -> None:
    turns = _turns() * 3
    first, second = tiny_policy(seed=0), tiny_policy(seed=1)
    assert not torch.allclose(first.score(turns)[0], second.score(turns)[0])
    second.set_weights(first.get_weights())
    a = first.act(turns, temperature=3.0, generator=torch.Generator().manual_seed(5))
    b = second.act(turns, temperature=3.0, generator=torch.Generator().manual_seed(5))
    assert [d.action for d in a] == [d.action for d in b]
    assert [d.logp for d in a] == [d.logp for d in b]


def test_lora_weights_are_only_the_adapters_and_transfer() -> None:
    # same base model (seed); the first policy's adapters are then moved away from the shared initial values
    first, second = tiny_policy(lora=True, value_head=True), tiny_policy(lora=True, value_head=True)
    weights = first.get_weights()
    adapters = [n for n in weights if "lora_" in n]
    assert len(adapters) == 2 * 7 * 2  # A and B, 7 target modules, 2 layers
    assert set(weights) - set(adapters) == {"value_head.weight", "value_head.bias"}
    assert sum(w.numel() for w in weights.values()) < 0.2 * sum(p.numel() for p in first.model.parameters())
    with torch.no_grad():
        for n, p in first.trainable_parameters().items():
            p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(len(n))) * 0.05)
    second.set_weights(first.get_weights())
    a = first.act(_turns(), temperature=2.0, generator=torch.Generator().manual_seed(5))
    b = second.act(_turns(), temperature=2.0, generator=torch.Generator().manual_seed(5))
    assert [(d.action, d.logp, d.value) for d in a] == [(d.action, d.logp, d.value) for d in b]
    assert a[0].value != 0.0  # the value head is live


@pytest.mark.parametrize("alpha, kernels", [(16.0, "cpu_fused"), (12.0, "cpu_fused"), (12.0, "reference")])
def test_a_rollout_replica_acts_bit_identically(alpha: float, kernels: str) -> None:
    """Policy.for_rollout stores the adapters in bf16 and, on the fused CPU kernels, holds each base linear
    once (views into the joint weights): the same scores as the learner's float32 adapters under autocast,
    whether the learner scores with gradients (its PPO ratios) or without (acting), on either kernel set."""
    bf16 = PolicyConfig(compute_dtype="bfloat16")

    def build() -> Policy:
        loaded = build_model(ModelConfig(name="tiny-test", lora=True, lora_alpha=alpha, dtype="bfloat16",
                                         device="cpu", kernels=kernels))
        return Policy(loaded.model, loaded.tokenizer, bf16)

    learner, replica = build(), build().for_rollout().for_rollout()  # a second call changes nothing
    assert {p.dtype for n, p in learner.trainable_parameters().items()} == {torch.float32}
    assert {p.dtype for n, p in replica.trainable_parameters().items()} == {torch.bfloat16}
    with torch.no_grad():
        for n, p in learner.trainable_parameters().items():
            p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(len(n))) * 0.05)
    weights = learner.get_weights()
    replica.set_weights(weights)
    turns = _turns() * 2
    a = learner.act(turns, temperature=2.0, generator=torch.Generator().manual_seed(5))
    b = replica.act(turns, temperature=2.0, generator=torch.Generator().manual_seed(5))
    assert [(d.action, d.logp, d.probs) for d in a] == [(d.action, d.logp, d.probs) for d in b]
    with_grad = learner.evaluate(b)  # what the learner computes for the replica's episodes
    with torch.no_grad():
        acting = replica.evaluate(b)
    assert with_grad.logp_N.requires_grad and torch.equal(with_grad.logp_N.detach(), acting.logp_N)
    assert torch.equal(with_grad.scores_NA.detach(), acting.scores_NA)
    back = replica.get_weights()  # what the learner sent, rounded to bf16
    assert all(torch.equal(back[n], w.to(torch.bfloat16)) for n, w in weights.items())

    def qkv_storages(policy: Policy) -> set[int]:
        attn = policy.model.get_base_model().model.layers[0].self_attn
        return {m.base_layer.weight.untyped_storage().data_ptr() for m in (attn.q_proj, attn.k_proj, attn.v_proj)}

    # fused: q, k and v share one joint weight; the learner keeps its own three (reference: peft's three)
    assert len(qkv_storages(replica)) == (1 if kernels == "cpu_fused" else 3)
    assert len(qkv_storages(learner)) == 3
    float32_base = tiny_policy(lora=True).for_rollout()  # float32 base weights: left alone
    assert {p.dtype for p in float32_base.trainable_parameters().values()} == {torch.float32}


def test_set_weights_rejects_weights_of_another_model() -> None:
    with pytest.raises(ValueError, match="do not match this policy's trainable tensors"):
        tiny_policy(lora=True).set_weights(tiny_policy(lora=False).get_weights())
    weights = tiny_policy().get_weights()
    name = next(iter(weights))
    weights[name] = weights[name][:1]
    with pytest.raises(ValueError, match=f"{re.escape(name)} has shape"):
        tiny_policy().set_weights(weights)


def _rows_per_forward(policy: Policy) -> list[int]:
    """Rows of every decoder forward from now on (a hook on the real model)."""
    seen: list[int] = []
    policy.model.get_base_model().get_decoder().register_forward_pre_hook(
        lambda _m, _a, kw: seen.append(kw["input_ids"].shape[0]), with_kwargs=True)
    return seen


def test_items_that_score_the_same_row_share_it_and_keep_their_own_choice_and_gradient() -> None:
    """A group's envs start from equal turns: acting and re-scoring compute each distinct row once, and each item
    still gets its own chosen action's log-prob; the shared row's gradient is the sum of the items'."""
    policy = tiny_policy(lora=True, seed=5, config=dataclasses.replace(FP32, max_text_tokens=4))
    with torch.no_grad():
        for n, p in _params(policy).items():
            p.copy_(torch.randn(p.shape, generator=torch.Generator().manual_seed(len(n))) * 0.05)
    rows = _rows_per_forward(policy)
    turns = [web_turn(), catch_turn(), web_turn(), web_turn(), catch_turn()]
    decisions = policy.act(turns, temperature=5.0, generator=torch.Generator().manual_seed(1))
    assert rows == [2]  # 5 turns, 2 distinct: one row each (generated text runs apart, with its own cache)
    assert len({d.action for d in decisions}) >= 3  # the equal turns sampled on their own
    rows.clear()
    out = policy.evaluate(decisions, temperature=5.0)
    distinct = len({(tuple(d.prompt_ids), d.index if d.gen_ids else None, d.gen_ids) for d in decisions})
    assert rows == [distinct] and distinct < len(decisions)
    policy.model.zero_grad()
    out.logp_N.sum().backward()
    shared = {n: p.grad.clone() for n, p in _params(policy).items()}
    policy.model.zero_grad()
    alone = [policy.evaluate([d], temperature=5.0) for d in decisions]
    torch.stack([a.logp_N[0] for a in alone]).sum().backward()
    assert out.logp_N.tolist() == pytest.approx([a.logp_N[0].item() for a in alone], abs=1e-5)
    assert out.logp_N.tolist() == pytest.approx([d.logp for d in decisions], abs=1e-4)
    for i, a in enumerate(alone):
        width = a.logdist_NA.shape[1]
        assert torch.allclose(out.logdist_NA[i, :width], a.logdist_NA[0], atol=1e-5)
    worst = max(float((shared[n] - p.grad).abs().max()) for n, p in _params(policy).items())
    assert worst < 1e-5, worst
