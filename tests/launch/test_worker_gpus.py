"""rollout.worker_gpus: rollout workers ask Ray for a share of a GPU and get it; a replica whose worker holds a GPU
goes on it with model.device=auto, and where torch sees no CUDA (this machine: Ray is told of a GPU that is not
there) it says so in one line and acts on the CPU, with the same episodes as the learner in this process."""

from __future__ import annotations

import re
import sys
import time

import pytest
import ray

from multiverse.launch.config import load_config
from multiverse.launch.workers import RolloutWorker, WorkerPool, make_learner, place_learner

# Ray's worker processes cannot import tests/: this module's worker class travels by value
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])

GAMES_ONLY = "envs.train={games/Catch-v0: 1.0}"


class GpuProbe(RolloutWorker):
    def gpu_ids(self) -> list[str]:
        """The GPUs Ray assigned this worker."""
        return [str(i) for i in ray.get_gpu_ids()]


@pytest.fixture(scope="module")
def ray_with_one_gpu():
    """An embedded Ray told that this machine has one GPU: Ray's fractional GPU resources work on logical GPUs,
    while torch (a CPU build here, as in CI) sees none."""
    if ray.is_initialized():
        ray.shutdown()
    ray.init(address="local", num_cpus=2, num_gpus=1, include_dashboard=False, logging_level="WARNING",
             _node_ip_address="127.0.0.1")
    yield
    ray.shutdown()


def test_workers_take_their_gpu_share_and_a_replica_without_cuda_acts_on_the_cpu(ray_with_one_gpu, capfd) -> None:
    import torch

    from multiverse.agents.rollout import EpisodeSpec, InProcessRollout, Task

    config = load_config("smoke", [GAMES_ONLY, "rollout.workers=2", "rollout.worker_gpus=0.5"]).trainer()
    placement, learner_cfg, replica_cfg = place_learner(config.learner, placement="driver", gpus=0.0, workers=2,
                                                        worker_gpus=0.5)
    assert (learner_cfg.model.device, replica_cfg.model.device, replica_cfg.model.kernels) == ("cpu", "auto",
                                                                                                "reference")
    learner, _ = make_learner(learner_cfg, config.loss, placement=placement, gpus=0.0, threads=None)
    pool = WorkerPool(2, replica_cfg, envs_per_id=2, num_cpus=1, num_gpus=0.5, torch_threads=1, max_restarts=0,
                      worker_cls=GpuProbe)
    try:
        assert ray.available_resources().get("GPU", 0.0) == 0.0  # two halves: the one GPU is taken
        assert [ray.get(h.gpu_ids.remote()) for h in pool.handles] == [["0"], ["0"]]
        assert not torch.cuda.is_available()  # what the fallback below needs; CI's torch is a CPU build
        assert pool.where() == ["cpu (its GPU unused: torch sees no CUDA)"] * 2
        # the weights go through the object store as CPU tensors; the replica acts as the learner does
        pool.sync(learner)
        task = Task(0, [EpisodeSpec("games/Catch-v0", s, {"params": {"width": 5, "height": 6, "balls": 1}})
                        for s in (0, 1)], seed=3, max_steps=4, keep_episodes=True)
        [there], stats = pool.run([task])
        [here], _ = InProcessRollout(learner.policy, envs_per_id=2).run([task])
        assert stats["episodes_lost"] == 0 and there is not None and here is not None
        assert [[(s.action, s.logp) for s in e.steps] for e in there.episodes] == [
            [(s.action, s.logp) for s in e.steps] for e in here.episodes]
    finally:
        pool.close()
    # each worker printed the line when it was built; Ray forwards worker output to this process a moment later
    line = re.compile(r"multiverse: rollout worker [01] holds GPU 0 but torch " + re.escape(torch.__version__)
                      + r" sees no CUDA device there \(CUDA build: none\), so its policy replica runs on the CPU; "
                        r"install a CUDA build of torch on the GPU nodes, or set rollout\.worker_gpus=0\n")
    err, deadline = "", time.monotonic() + 30
    while not line.search(err) and time.monotonic() < deadline:
        time.sleep(0.5)
        err += capfd.readouterr().err
    assert line.search(err) and "Traceback" not in err, err[-2000:]


def test_worker_gpus_is_documented_in_train_help(capsys) -> None:
    from multiverse.launch.cli import main

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert ("rollout.worker_gpus (float >= 0 <= 1, default 0.0) GPUs Ray reserves per worker, a fraction to share "
            "one (0.25: 4 replicas per GPU).") in out
