"""multiverse train checks what it can before Ray or a model starts: each run that cannot work stops within seconds
with one line naming what to change, exit status 2, and leaves no run dir."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

from multiverse.launch.cli import main


def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens (bound once to get it, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


#: a port where nothing listens, found once per process: the parameters below name it as {port}, filled in by the
#: test (a port in a test's id would differ between pytest-xdist workers, which then refuse to run)
PORT = closed_port()


@pytest.mark.parametrize(
    "overrides, env, message",
    [
        # 2 workers x 1 CPU on a 1-CPU Ray: the workers could never be scheduled (it waited, silent, for ever)
        (["ray.num_cpus=1"], {}, ("error: ray.num_cpus=1 is less than the 2 CPUs the run asks for "
                                  "(rollout.workers=2 x rollout.worker_cpus=1): its workers could never start")),
        (["ray.num_cpus=2", "ray.learner=actor", "ray.learner_gpus=0"], {},
         "the 3 CPUs the run asks for (rollout.workers=2 x rollout.worker_cpus=1 + 1 for ray.learner=actor)"),
        # nothing listens there: ray.init retried it for minutes
        (["ray.address=127.0.0.1:{port}"], {},
         "error: no Ray cluster answers at ray.address='127.0.0.1:{port}' (Connection refused); start its head"),
        ([], {"RAY_ADDRESS": "127.0.0.1:{port}"}, "no Ray cluster answers at RAY_ADDRESS='127.0.0.1:{port}'"),
        (["ray.address=http://127.0.0.1:8265"], {}, "is an HTTP (dashboard) address; multiverse train joins a cluster"),
        (["model.name=defualt"], {}, "error: model.name: unknown model 'defualt'; did you mean 'default'?"),
        (["model.name=tiny-tset"], {}, "did you mean 'tiny-test'?"),
        # an embedded Ray runs here: CUDA that torch does not see here stopped the learner's build with a traceback
        (["model.device=cuda:99"], {}, "error: model.device='cuda:99' but torch sees "),
        (["model.device=cuda", "model.kernels=cpu_fused"], {}, "error: model.kernels='cpu_fused' runs on cpu only"),
        # GPU shares that this machine's GPUs cannot hold: the workers past them would never be scheduled
        (["rollout.workers=64", "rollout.worker_gpus=1"], {},
         "error: rollout.workers=64 x rollout.worker_gpus=1 need 64 GPUs but this machine "),
        (["rollout.worker_gpus=0.5", "model.device=cpu"], {},
         ("error: rollout.worker_gpus=0.5 reserves GPUs for rollout replicas that model.device=cpu keeps on the CPU; "
          "set model.device=auto (replicas on their GPU share) or rollout.worker_gpus=0")),
        (["rollout.worker_gpus=1.5"], {}, "error: rollout.worker_gpus: Input should be less than or equal to 1"),
        (["model.max_prompt_tokens=16"], {}, ("error: model.max_prompt_tokens=16 is too small: games/Catch-v0's first "
                                              "prompt (train split) needs ")),
        (["model.max_prompt_tokens=300"], {}, "games/Maze-v0's first prompt (train split) needs "),  # the held-out id
        ([], {"MULTIVERSE_TIMEOUT_SCALE": "abc"}, "error: MULTIVERSE_TIMEOUT_SCALE='abc' is not a positive number"),
    ],
)
def test_a_run_that_cannot_start_stops_at_once_with_one_line(
        overrides: list[str], env: dict[str, str], message: str, tmp_path: Path, monkeypatch, capsys) -> None:
    import ray

    overrides = [o.replace("{port}", str(PORT)) for o in overrides]
    message = message.replace("{port}", str(PORT))
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.delenv("MULTIVERSE_TIMEOUT_SCALE", raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v.replace("{port}", str(PORT)))
    ray_before = ray.is_initialized()
    start = time.monotonic()
    assert main(["train", "--config", "smoke", f"run.root={tmp_path}", *overrides]) == 2
    seconds = time.monotonic() - start
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert list(tmp_path.iterdir()) == []  # no run dir
    assert ray.is_initialized() == ray_before  # no Ray started
    assert seconds < 60, seconds  # 0.1 s here (CI runs up to 7x slower); Ray and the Hub took minutes


def test_a_hub_model_that_is_not_cached_while_the_hub_cannot_be_reached_fails_at_once(multiverse_cli: str,
                                                                                        tmp_path: Path) -> None:
    """A real connection to a Hub endpoint where nothing listens (the Hub's address is read at import, hence a fresh
    process): one line, where the download retried for a minute and a half."""
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "RAY_ADDRESS")}
    env |= {"HF_ENDPOINT": f"http://127.0.0.1:{PORT}", "HF_HOME": str(tmp_path / "hf")}
    out = subprocess.run([multiverse_cli, "train", "--config", "smoke", f"run.root={tmp_path / 'runs'}",
                          "model.name=multiverse-tests/no-such-model"], capture_output=True, text=True, env=env,
                         timeout=300)
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr[-3000:]
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert (f"error: model.name: model 'multiverse-tests/no-such-model' is not a local folder and not in the Hugging "
            f"Face cache, and the Hub at http://127.0.0.1:{PORT} cannot be reached (ConnectError") in out.stderr
    assert not (tmp_path / "runs").exists()
