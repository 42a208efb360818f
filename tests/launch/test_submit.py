"""multiverse submit: a real `ray start --head` cluster on 127.0.0.1, the smoke config through `ray job submit`."""

from __future__ import annotations

import csv
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from multiverse.launch.cluster import ray_cli_env, ray_executable

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, seconds: float, head: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except urllib.error.HTTPError:
            return  # it answers (401 when the cluster uses token auth): it is up
        except Exception:
            if head.poll() is not None:
                raise AssertionError(f"ray start exited with {head.returncode}:\n{log.read_text()[-3000:]}") from None
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


def test_submit_smoke_to_a_local_cluster(multiverse_cli: str, tmp_path: Path) -> None:
    # A user's shell: the venv on PATH (the job's entrypoint is `multiverse`), no Ray variables set. A token
    # file from an earlier ray.init() may exist; submit must cope either way.
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    gcs, dashboard = free_port(), free_port()
    address = f"http://127.0.0.1:{dashboard}"
    log = open(tmp_path / "head.log", "w")
    temp_dir = tempfile.mkdtemp(prefix="mvray-", dir="/tmp")  # Ray's socket paths must stay under 108 bytes
    head = subprocess.Popen(
        [ray_executable(), "start", "--head", "--block", "--node-ip-address=127.0.0.1", f"--port={gcs}",
         "--include-dashboard=true", "--dashboard-host=127.0.0.1", f"--dashboard-port={dashboard}",
         # The agent's default port (52365) is held by any other Ray on this machine, e.g. an embedded one in a
         # test on the other xdist worker; the head then never gets a job agent.
         f"--dashboard-agent-listen-port={free_port()}",
         "--num-cpus=3", "--disable-usage-stats", f"--temp-dir={temp_dir}"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=tmp_path)
    try:
        wait_for(f"{address}/api/version", 120, head, tmp_path / "head.log")
        job = f"multiverse-test-{os.getpid()}"
        out = subprocess.run(
            [multiverse_cli, "submit", "--config", "smoke", "--address", address, "--submission-id", job,
             f"run.root={tmp_path / 'runs'}", "run.name=submitted", "run.iterations=2", "rollout.workers=1",
             "envs.train={games/Catch-v0: 1}", "envs.heldout_ids=[]"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=400)
        assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]
        assert "Authentication" not in out.stdout + out.stderr
        status = subprocess.run([ray_executable(), "job", "status", job, "--address", address],
                                env=ray_cli_env(env), capture_output=True, text=True, timeout=60)
        assert f"Job '{job}' succeeded" in status.stdout + status.stderr, status.stdout + status.stderr  # SUCCEEDED
        run = tmp_path / "runs" / "submitted"
        with open(run / "metrics.csv", newline="") as f:
            assert [int(r["iteration"]) for r in csv.DictReader(f)] == [1, 2]
        assert (run / "checkpoints" / "iter_000002" / "trainer.json").is_file()
        assert "the Ray cluster at" in (out.stdout + out.stderr)  # the job joined the cluster, no embedded Ray
    finally:
        head.send_signal(signal.SIGTERM)  # `ray start --block` stops the processes it started
        try:
            head.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
        log.close()
        shutil.rmtree(temp_dir, ignore_errors=True)


def test_submit_waits_for_a_job_agent_that_is_not_up_yet(tmp_path: Path, capsys) -> None:
    """A head node started a moment ago answers 'No available agent to submit job' (nothing submitted):
    submit tries again; any other failure is returned at once, and so is the last try after the patience ran out."""
    from multiverse.launch.cluster import AGENT_NOT_READY, _submit_when_agent_ready

    tries = tmp_path / "tries"
    script = (f"n=$(cat {tries} 2>/dev/null || echo 0); echo $((n+1)) > {tries}; "
              f"if [ $n -lt 2 ]; then echo 'RuntimeError: {AGENT_NOT_READY}, please try again later..'; exit 1; fi; "
              "echo submitted")
    assert _submit_when_agent_ready(["sh", "-c", script], patience=30) == 0
    assert tries.read_text().strip() == "3" and "submitted" in capsys.readouterr().out
    tries.unlink()
    assert _submit_when_agent_ready(["sh", "-c", f"echo 1 > {tries}; echo 'some other error'; exit 3"]) == 3
    assert tries.read_text().strip() == "1"
    # An agent that never comes up (its port held by another Ray): give up after the patience, saying why and what to do.
    never = f"echo 'RuntimeError: {AGENT_NOT_READY}, please try again later..'; exit 1"
    assert _submit_when_agent_ready(["sh", "-c", never], patience=0) == 1
    assert "--dashboard-agent-listen-port" in capsys.readouterr().err
