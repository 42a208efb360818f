"""The learner's primitives: updates, checkpoints (atomic, verified, no pickle), weights, reference KL."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from multiverse.agents.learner import CheckpointError, Learner, LearnerConfig, Sample
from multiverse.agents.losses import PPOConfig, PPOLoss
from multiverse.agents.models import ModelConfig

from agent_helpers import FP32, _turns_for_learner


def learner(lora: bool = True, **kw) -> Learner:
    return Learner(LearnerConfig(model=ModelConfig(name="tiny-test", lora=lora, lora_rank=4), policy=FP32, lr=3e-3, **kw))


def samples(lrn: Learner, seed: int = 0) -> list[Sample]:
    decisions = lrn.act(_turns_for_learner(), temperature=2.0, generator=torch.Generator().manual_seed(seed))
    return [Sample.from_decision(d, advantage=1.0 if i % 2 else -1.0, return_=float(i)) for i, d in enumerate(decisions)]


def train_steps(lrn: Learner, n: int) -> list[dict[str, float]]:
    out = []
    for i in range(n):
        m = lrn.forward_backward(samples(lrn, i), PPOLoss(PPOConfig(entropy_coef=0.01)))
        m.update(lrn.optim_step())
        out.append(m)
    return out


def test_forward_backward_then_optim_step_changes_only_trainable_weights() -> None:
    lrn = learner()
    before = lrn.get_weights()
    frozen = {n: p.detach().clone() for n, p in lrn.policy.model.named_parameters() if not p.requires_grad}
    [m] = train_steps(lrn, 1)
    assert {"loss", "policy_loss", "entropy", "clip_frac", "approx_kl", "grad_norm", "samples"} <= set(m)
    assert m["samples"] == 8 and m["grad_norm"] > 0 and lrn.step == 1
    after = lrn.get_weights()
    assert any(not torch.equal(before[n], after[n]) for n in before)
    assert all(torch.equal(p, frozen[n]) for n, p in lrn.policy.model.named_parameters() if not p.requires_grad)
    assert all(p.grad is None for p in lrn.policy.trainable_parameters().values())


def test_micro_batches_accumulate_to_the_full_batch_gradient() -> None:
    a, b = learner(micro_batch=8), learner(micro_batch=3)
    batch = samples(a)
    a.forward_backward(batch, PPOLoss())
    b.forward_backward(batch, PPOLoss())
    for (n, p), q in zip(a.policy.trainable_parameters().items(), b.policy.trainable_parameters().values()):
        assert torch.allclose(p.grad, q.grad, atol=1e-6), n


def test_save_load_gives_identical_log_probs_and_optimizer_state(tmp_path: Path) -> None:
    lrn = learner()
    train_steps(lrn, 2)
    path = lrn.save(tmp_path / "ckpt")
    assert sorted(p.name for p in path.iterdir()) == ["learner.json", "optimizer.safetensors", "weights.safetensors"]
    assert not list(tmp_path.glob(".ckpt.*"))  # no temporary folder left behind
    restored = Learner.from_checkpoint(path)
    assert restored.step == 2 and restored.config == lrn.config
    probe = samples(lrn, 99)
    with torch.no_grad():
        assert torch.equal(lrn.policy.evaluate(probe).logp_N, restored.policy.evaluate(probe).logp_N)
    # the optimizer state came back too: the next update is the same on both
    batch = samples(lrn, 5)
    for x in (lrn, restored):
        x.forward_backward(batch, PPOLoss())
        x.optim_step()
    for n, w in lrn.get_weights().items():
        assert torch.allclose(w, restored.get_weights()[n], atol=1e-7), n


def test_full_fine_tuning_checkpoint_round_trip(tmp_path: Path) -> None:
    lrn = learner(lora=False)
    train_steps(lrn, 1)
    lrn.save(tmp_path / "full")
    other = learner(lora=False)
    other.load(tmp_path / "full")
    probe = samples(lrn, 3)
    with torch.no_grad():
        assert torch.equal(lrn.policy.evaluate(probe).logp_N, other.policy.evaluate(probe).logp_N)


def test_save_replaces_an_existing_checkpoint_whole(tmp_path: Path) -> None:
    lrn = learner()
    lrn.save(tmp_path / "ckpt")
    train_steps(lrn, 1)
    lrn.save(tmp_path / "ckpt")
    assert json.loads((tmp_path / "ckpt" / "learner.json").read_text())["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt"]


@pytest.mark.parametrize("damage", ["truncate", "flip", "remove", "json"])
def test_a_corrupt_checkpoint_is_a_clear_error(tmp_path: Path, damage: str) -> None:
    lrn = learner()
    path = lrn.save(tmp_path / "ckpt")
    weights = path / "weights.safetensors"
    if damage == "truncate":
        weights.write_bytes(weights.read_bytes()[:100])
        match = r"weights.safetensors is corrupt or truncated"
    elif damage == "flip":
        data = bytearray(weights.read_bytes())
        data[-5] ^= 0xFF
        weights.write_bytes(bytes(data))
        match = r"weights.safetensors is corrupt or truncated .*sha256 differs"
    elif damage == "remove":
        weights.unlink()
        match = "weights.safetensors is missing"
    else:
        (path / "learner.json").write_text('{"format": "multiverse-learner", "vers')
        match = "learner.json is corrupt or truncated"
    with pytest.raises(CheckpointError, match=match):
        learner().load(path)


def test_not_a_checkpoint_or_another_model_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="does not exist"):
        learner().load(tmp_path / "nothing")
    # a save killed between its two renames leaves the previous checkpoint aside: the error says where
    learner().save(tmp_path / "ckpt").rename(tmp_path / ".ckpt.old-123")
    with pytest.raises(CheckpointError, match=r"a save was interrupted.*rename \.ckpt\.old-123 back to ckpt"):
        learner().load(tmp_path / "ckpt")
    learner(lora=False).save(tmp_path / "full")
    with pytest.raises(CheckpointError, match="do not match this learner"):
        learner(lora=True).load(tmp_path / "full")


def test_kl_to_the_initial_policy_starts_at_zero_and_grows() -> None:
    loss = PPOLoss(PPOConfig(kl_coef=0.1))
    for lrn in (learner(lora=True), learner(lora=False, keep_reference=True)):
        m0 = lrn.forward_backward(samples(lrn), loss)
        assert m0["kl_to_initial"] == pytest.approx(0.0, abs=1e-7)
        lrn.optim_step()
        train_steps(lrn, 3)
        assert lrn.forward_backward(samples(lrn), loss)["kl_to_initial"] > 1e-4
    with pytest.raises(ValueError, match="keep_reference"):
        learner(lora=False).forward_backward(samples(learner(lora=False)), loss)


def test_empty_batch_is_an_error() -> None:
    with pytest.raises(ValueError, match="empty batch"):
        learner().forward_backward([], PPOLoss())


def test_value_head_trains_toward_the_returns() -> None:
    lrn = Learner(LearnerConfig(model=ModelConfig(name="tiny-test", lora=True, value_head=True), policy=FP32, lr=1e-2))
    batch = [dataclasses.replace(s, advantage=0.0, return_=2.0) for s in samples(lrn)]
    first = lrn.forward_backward(batch, PPOLoss())["value_loss"]
    lrn.optim_step()
    for _ in range(10):
        lrn.forward_backward(batch, PPOLoss())
        lrn.optim_step()
    assert lrn.forward_backward(batch, PPOLoss())["value_loss"] < 0.5 * first


def test_zero_advantage_samples_are_skipped_only_when_asked() -> None:
    import random

    from multiverse.agents.train_local import ppo_update

    def run(skip: bool, keep_zero: bool) -> tuple[dict[str, float], dict[str, torch.Tensor]]:
        lrn = learner()
        batch = samples(lrn)
        batch = [dataclasses.replace(s, advantage=0.0) if i < 4 else s for i, s in enumerate(batch)]
        if not keep_zero:
            batch = batch[4:]
        loss = PPOLoss(PPOConfig(entropy_coef=0.0, skip_zero_advantage=skip))
        m = ppo_update(lrn, batch, loss, epochs=1, minibatch=64, rng=random.Random(0))
        return m, lrn.get_weights()

    skipped, w_skipped = run(skip=True, keep_zero=True)
    assert skipped["samples_used"] == 4 and skipped["samples_skipped"] == 4
    plain, w_plain = run(skip=False, keep_zero=False)  # the same update as training on the 4 nonzero ones
    assert plain["samples_used"] == 4 and plain["samples_skipped"] == 0
    assert all(torch.equal(w_skipped[k], w_plain[k]) for k in w_plain)
    kept, w_kept = run(skip=False, keep_zero=True)  # off: the zeros dilute the mean loss, another update
    assert kept["samples_used"] == 8 and not all(torch.equal(w_kept[k], w_plain[k]) for k in w_plain)


def test_a_groups_equal_turns_stay_in_one_minibatch_and_are_computed_once() -> None:
    """ppo_update shuffles rows, not samples: the 4 samples of each turn (a group's first turn, 4 actions taken)
    go into one minibatch and one micro-batch, where their row is computed once."""
    import random

    from multiverse.agents.update import ppo_update

    lrn = learner(micro_batch=2)
    rows: list[int] = []
    lrn.policy.model.get_base_model().get_decoder().register_forward_pre_hook(
        lambda _m, _a, kw: rows.append(kw["input_ids"].shape[0]), with_kwargs=True)
    turns = _turns_for_learner()[:3]
    decisions = lrn.act([t for t in turns for _ in range(4)], temperature=3.0,
                        generator=torch.Generator().manual_seed(0))
    batch = [Sample.from_decision(d, advantage=1.0 if i % 2 else -1.0) for i, d in enumerate(decisions)]
    distinct = len({(tuple(s.prompt_ids), s.index if s.gen_ids else None, s.gen_ids) for s in batch})
    rows.clear()
    m = ppo_update(lrn, batch, PPOLoss(PPOConfig(entropy_coef=0.0)), epochs=2, minibatch=4, rng=random.Random(0))
    assert m["samples_used"] == 12
    assert sum(rows) == 2 * distinct < 2 * len(batch)  # each epoch computes every distinct row once


def test_a_folder_manifest_names_what_changed_and_older_folders_get_what_can_be_checked(tmp_path: Path) -> None:
    from multiverse.agents.durable import MANIFEST, check_folder, write_manifest

    path = learner().save(tmp_path / "ckpt")
    write_manifest(path)
    assert check_folder(path) is None
    weights = path / "weights.safetensors"
    data = bytearray(weights.read_bytes())
    data[-5] ^= 0xFF
    weights.write_bytes(bytes(data))
    assert check_folder(path) == "weights.safetensors: sha256 differs from the recorded one"
    weights.write_bytes(bytes(data) + b"x")
    assert check_folder(path) == f"weights.safetensors is {len(data) + 1} bytes, {len(data)} recorded"
    # without a manifest (a folder written before them): required files, JSON and safetensors headers
    (path / MANIFEST).unlink()
    assert check_folder(path, required=("learner.json", "weights.safetensors")).startswith(
        "weights.safetensors cannot be read: ")
    weights.write_bytes(bytes(data))
    assert check_folder(path, required=("learner.json", "weights.safetensors")) is None  # a flipped byte parses
    (path / "learner.json").write_text('{"format": "multiverse-learner", "vers')
    assert check_folder(path).startswith("learner.json is not valid JSON: ")
    weights.unlink()
    assert check_folder(path, required=("weights.safetensors",)) == "weights.safetensors is missing"
