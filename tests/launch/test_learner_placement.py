"""place_learner: the learner on its GPU where it holds one, the rollout replicas on the CPU, one kernel set for both."""

from __future__ import annotations

import pytest
import torch

from multiverse.agents.learner import LearnerConfig
from multiverse.agents.models import ModelConfig
from multiverse.launch.config import ConfigError
from multiverse.launch.workers import place_learner


def _placed(placement: str, gpus: float, **model) -> tuple[str, tuple[str, str], tuple[str, str]]:
    where, learner, replicas = place_learner(LearnerConfig(model=ModelConfig(name="tiny-test", **model)),
                                             placement=placement, gpus=gpus)
    return where, (learner.model.device, learner.model.kernels), (replicas.model.device, replicas.model.kernels)


def test_the_learner_and_the_replicas_get_their_devices_and_one_kernel_set() -> None:
    # a GPU actor: the learner on CUDA, so both run the reference kernels (the replicas on their CPUs)
    assert _placed("actor", 1.0) == ("actor", ("cuda", "reference"), ("cpu", "reference"))
    assert _placed("actor", 0.0) == ("actor", ("cpu", "cpu_fused"), ("cpu", "cpu_fused"))  # a CPU actor
    here = "cuda" if torch.cuda.is_available() else "cpu"  # a learner in the driver: this process's device
    kernels = "cpu_fused" if here == "cpu" else "reference"
    assert _placed("driver", 1.0) == ("driver", (here, kernels), ("cpu", kernels))
    assert _placed("actor", 1.0, device="cpu") == ("actor", ("cpu", "cpu_fused"), ("cpu", "cpu_fused"))
    assert _placed("actor", 1.0, kernels="reference")[1:] == (("cuda", "reference"), ("cpu", "reference"))
    with pytest.raises(ConfigError, match=r"model\.kernels='cpu_fused' runs on cpu only, but a policy of this run is "
                                          r"on cuda; set model\.kernels: auto or reference"):
        place_learner(LearnerConfig(model=ModelConfig(kernels="cpu_fused")), placement="actor", gpus=1.0)
