"""Weights cross devices one way: ``get_weights`` copies every trainable tensor to the CPU (what a process without
CUDA can read from Ray's object store), ``set_weights`` copies each into the replica's own tensors, on the replica's
device. Off-CPU devices are stood in for by PyTorch's 'meta' device (no data, every shape and device rule kept), so
these run where there is no GPU: a CPU learner feeding a replica whose weights live elsewhere, and a learner whose
weights live elsewhere, whose get_weights must copy them off that device rather than hand them on as they are."""

from __future__ import annotations

import pytest
import torch

from multiverse.agents.learner import Learner, LearnerConfig
from multiverse.agents.models import ModelConfig, build_model
from multiverse.agents.policy import Policy

TINY = ModelConfig(name="tiny-test", value_head=True, kernels="reference")


def test_a_replica_loads_cpu_weights_onto_its_own_device() -> None:
    learner = Learner(LearnerConfig(model=TINY))
    weights = learner.get_weights()
    assert {w.device.type for w in weights.values()} == {"cpu"}
    loaded = build_model(TINY)
    replica = Policy(loaded.model.to("meta"), loaded.tokenizer, value_head=True)  # a replica on another device
    assert replica.device.type == "meta"
    before = dict(replica.trainable_parameters())
    replica.set_weights(weights)
    after = replica.trainable_parameters()
    # the very tensors the replica computes with, still on its device and dtype: copied into, not replaced by CPU ones
    assert all(after[n] is p and p.device.type == "meta" and p.dtype == weights[n].dtype for n, p in before.items())


def test_get_weights_copies_off_the_learners_device_and_never_aliases() -> None:
    learner = Learner(LearnerConfig(model=TINY))
    weights = learner.get_weights()
    with torch.no_grad():
        for p in learner.policy.trainable_parameters().values():
            p.add_(1.0)
    assert all(not torch.equal(w, learner.get_weights()[n]) for n, w in weights.items())  # copies, not views
    learner.policy.model.to("meta")
    learner.policy.value_head.to("meta")
    # a tensor off the CPU is copied to it (here the copy finds no data to read); handed on as it is, a CUDA tensor
    # would reach a CPU-only replica, which cannot even unpickle it
    with pytest.raises(NotImplementedError, match="meta tensor"):
        learner.get_weights()
