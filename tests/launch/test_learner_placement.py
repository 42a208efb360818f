"""place_learner: the learner on its GPU where it holds one, the rollout replicas on their GPU share where they hold
one (rollout.worker_gpus) else on the CPU, one kernel set for all; and what the cluster's GPUs cannot hold stops the
run with one line."""

from __future__ import annotations

import pytest
import torch

from multiverse.agents.learner import LearnerConfig
from multiverse.agents.models import ModelConfig
from multiverse.launch.config import ConfigError
from multiverse.launch.preflight import gpus_needed
from multiverse.launch.workers import place_learner


def _placed(placement: str, gpus: float, *, worker_gpus: float = 0.0, cluster_gpus: float = 1.0,
            **model) -> tuple[str, tuple[str, str], tuple[str, str]]:
    where, learner, replicas = place_learner(LearnerConfig(model=ModelConfig(name="tiny-test", **model)),
                                             placement=placement, gpus=gpus, workers=2, worker_gpus=worker_gpus,
                                             cluster_gpus=cluster_gpus)
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
    assert _placed("auto", 1.0, cluster_gpus=0)[0] == "driver" and _placed("auto", 1.0)[0] == "actor"
    with pytest.raises(ConfigError, match=r"model\.kernels='cpu_fused' runs on cpu only, but a policy of this run is "
                                          r"on cuda; set model\.kernels: auto or reference"):
        place_learner(LearnerConfig(model=ModelConfig(kernels="cpu_fused")), placement="actor", gpus=1.0,
                      cluster_gpus=1)


def test_replicas_that_hold_a_gpu_share_go_on_it_with_the_learners_kernels() -> None:
    # rollout.worker_gpus > 0: each replica resolves auto in its worker (CUDA there, else the CPU), and every
    # policy of the run computes with the reference kernels, the ones that run on a GPU
    assert _placed("actor", 0.5, worker_gpus=0.25) == ("actor", ("cuda", "reference"), ("auto", "reference"))
    assert _placed("driver", 0.0, worker_gpus=0.5, cluster_gpus=1)[2] == ("auto", "reference")
    assert _placed("actor", 0.0, worker_gpus=0.5)[1] == ("cpu", "reference")  # a CPU learner matches them
    with pytest.raises(ConfigError, match=r"model\.kernels='cpu_fused' runs on cpu only"):
        _placed("actor", 0.0, worker_gpus=0.5, kernels="cpu_fused")


def test_gpus_are_counted_as_ray_places_fractions() -> None:
    assert gpus_needed([]) == 0 and gpus_needed([0.0, 0.0]) == 0
    assert gpus_needed([0.25] * 4) == 1 and gpus_needed([0.25] * 5) == 2
    assert gpus_needed([0.3] * 4) == 2  # three fit on a GPU, 0.1 of it is left over
    assert gpus_needed([1.0] + [0.5] * 3) == 3 and gpus_needed([0.5] + [0.25] * 2) == 1
    assert gpus_needed([2.0, 0.5]) == 3 and gpus_needed([1 / 3] * 3) == 1


def test_what_the_clusters_gpus_cannot_hold_is_one_line_saying_what_to_change() -> None:
    config = LearnerConfig(model=ModelConfig(name="tiny-test"))
    with pytest.raises(ConfigError) as err:  # the workers past the fourth GPU would wait forever
        place_learner(config, placement="auto", gpus=1.0, workers=32, worker_gpus=0.25, cluster_gpus=4)
    assert str(err.value) == (
        "rollout.workers=32 x rollout.worker_gpus=0.25 beside ray.learner_gpus=1 for the learner actor need 9 GPUs but "
        "the Ray cluster has 4: the workers that do not fit would never start; set rollout.worker_gpus=0.0909 (11 "
        "replicas share a GPU), fewer rollout.workers, or rollout.worker_gpus=0 (replicas on the CPUs)")
    assert place_learner(config, placement="auto", gpus=1.0, workers=33, worker_gpus=0.0909, cluster_gpus=4)[0] == "actor"
    with pytest.raises(ConfigError, match=r"^rollout\.workers=2 x rollout\.worker_gpus=0\.5 need 1 GPU but the Ray "
                                          r"cluster has 0: .*; set fewer rollout\.workers, or rollout\.worker_gpus=0 "):
        place_learner(config, placement="auto", gpus=1.0, workers=2, worker_gpus=0.5, cluster_gpus=0)
    # CUDA named on a cluster without a GPU: its replicas (and a CPU learner actor) would fail to build, in a traceback
    for placement in ("actor", "driver"):
        with pytest.raises(ConfigError, match=r"^model\.device='cuda' but the Ray cluster has no GPU resource for its "
                                              r"rollout workers or a learner actor; set model\.device: auto"):
            place_learner(LearnerConfig(model=ModelConfig(name="tiny-test", device="cuda")), placement=placement,
                          gpus=0.0, cluster_gpus=0)
    if not torch.cuda.is_available():  # a learner in this process, on CUDA it does not have: before the build
        with pytest.raises(ConfigError, match=r"^model\.device='cuda' but torch sees no CUDA device here"):
            place_learner(LearnerConfig(model=ModelConfig(name="tiny-test", device="cuda")), placement="driver",
                          gpus=0.0, cluster_gpus=1)
