"""multiverse submit: a real `ray start --head` cluster on 127.0.0.1, the smoke config through `ray job submit` with a
plugin's wheel shipped as py_modules; a run the cluster cannot hold; submissions that never got in."""

from __future__ import annotations

import csv
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from multiverse.launch.cluster import ray_cli_env, ray_executable

ROOT = Path(__file__).resolve().parents[2]

PLUGIN_PYPROJECT = """
[build-system]
requires = ["setuptools"]
build-backend = "setuptools.build_meta"
[project]
name = "mv-submit-plugin"
version = "0.1"
[project.entry-points."multiverse.envs"]
mv_submit_plugin = "mv_submit_plugin:register_envs"
"""
PLUGIN_MODULE = '''
from multiverse.envs import register
from multiverse.envs.games.catch import CatchEnv


class ShippedCatch(CatchEnv):
    """Catch, from a plugin shipped to the cluster with the job."""


def register_envs():
    register("subplug/ShippedCatch-v0", "mv_submit_plugin:ShippedCatch", kind="game", max_episode_steps=60)
'''


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


def plugin_wheel(tmp_path: Path) -> tuple[Path, Path]:
    """A third-party plugin (an env registered through the multiverse.envs entry point) built into a wheel by pip,
    and the wheel unpacked into a folder for this machine's PYTHONPATH (submit checks the env ids here first)."""
    src = tmp_path / "plugin"
    src.mkdir()
    (src / "pyproject.toml").write_text(textwrap.dedent(PLUGIN_PYPROJECT))
    (src / "mv_submit_plugin.py").write_text(PLUGIN_MODULE)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path / "dist"), str(src)], check=True, capture_output=True, timeout=300)
    [wheel] = (tmp_path / "dist").glob("mv_submit_plugin-0.1-*.whl")
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as z:
        z.extractall(site)
    return wheel, site


def test_submit_to_an_address_where_nothing_listens_says_no_job_was_submitted(capsys) -> None:
    from multiverse.launch.cli import main

    port = free_port()
    assert main(["submit", "--config", "smoke", "--address", f"http://127.0.0.1:{port}"]) == 1
    assert capsys.readouterr().err == (
        f"multiverse submit: no job was submitted: nothing answers at http://127.0.0.1:{port} (Connection refused); "
        f"give the cluster's dashboard address (ray start --head prints it, e.g. http://127.0.0.1:8265) with --address "
        f"or RAY_ADDRESS\n")
    assert main(["submit", "--config", "smoke", "--py-modules", "no/such/plugin.whl"]) == 2
    assert "--py-modules 'no/such/plugin.whl': no such file or folder" in capsys.readouterr().err


def test_submit_smoke_to_a_local_cluster(multiverse_cli: str, tmp_path: Path) -> None:
    # A user's shell: the venv on PATH (the job's entrypoint is `multiverse`), no Ray variables set. A token
    # file from an earlier ray.init() may exist; submit must cope either way.
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    wheel, site = plugin_wheel(tmp_path)
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
        # A run that asks for more CPUs than the cluster has would wait for them forever: one line, no run dir.
        big = subprocess.run([multiverse_cli, "train", "--config", "smoke", "--address", f"127.0.0.1:{gcs}",
                              f"run.root={tmp_path / 'big'}", "rollout.workers=4"],
                             env=env, capture_output=True, text=True, timeout=300)
        assert big.returncode == 2 and "Traceback" not in big.stderr, big.stderr[-3000:]
        assert (f"error: the Ray cluster at 127.0.0.1:{gcs} has 3 CPUs, less than the 4 the run asks for "
                f"(rollout.workers=4 x rollout.worker_cpus=1): its workers could never start") in big.stderr
        assert not (tmp_path / "big").exists() or list((tmp_path / "big").iterdir()) == []
        # The plugin's env trains on the cluster: its wheel goes with the job (py_modules); here it is on PYTHONPATH.
        job = f"multiverse-test-{os.getpid()}"
        out = subprocess.run(
            [multiverse_cli, "submit", "--config", "smoke", "--address", address, "--submission-id", job,
             "--py-modules", str(wheel), f"run.root={tmp_path / 'runs'}", "run.name=submitted", "run.iterations=2",
             "rollout.workers=1", "envs.train={subplug/ShippedCatch-v0: 1}", "envs.params={}", "envs.heldout_ids=[]"],
            cwd=ROOT, env=env | {"PYTHONPATH": str(site)}, capture_output=True, text=True, timeout=400)
        assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]
        assert "Authentication" not in out.stdout + out.stderr
        assert f"multiverse submit: job {job} succeeded" in out.stderr
        status = subprocess.run([ray_executable(), "job", "status", job, "--address", address],
                                env=ray_cli_env(env), capture_output=True, text=True, timeout=60)
        assert f"Job '{job}' succeeded" in status.stdout + status.stderr, status.stdout + status.stderr  # SUCCEEDED
        run = tmp_path / "runs" / "submitted"
        with open(run / "metrics.csv", newline="") as f:
            metrics = list(csv.DictReader(f))
        assert [int(r["iteration"]) for r in metrics] == [1, 2]
        assert metrics[-1]["train/success/subplug/ShippedCatch-v0"] != ""
        assert (run / "checkpoints" / "iter_000002" / "trainer.json").is_file()
        assert "the Ray cluster at" in (out.stdout + out.stderr)  # the job joined the cluster, no embedded Ray
        # The same submission id again: ray job submit refuses it, and submit says that no job went in.
        again = subprocess.run([multiverse_cli, "submit", "--config", "smoke", "--address", address, "--submission-id",
                                job, "--no-wait"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert again.returncode != 0 and "already exists" in again.stdout + again.stderr, again.stdout + again.stderr
        assert again.stderr.strip().splitlines()[-1] == (
            f"multiverse submit: no job was submitted: ray job submit exited with status {again.returncode}; its "
            f"output above says why")
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
    from multiverse.launch.cluster import AGENT_NOT_READY, SUBMITTED, _submit_when_agent_ready

    tries = tmp_path / "tries"
    script = (f"n=$(cat {tries} 2>/dev/null || echo 0); echo $((n+1)) > {tries}; "
              f"if [ $n -lt 2 ]; then echo 'RuntimeError: {AGENT_NOT_READY}, please try again later..'; exit 1; fi; "
              f"echo \"Job 'x' {SUBMITTED}\"")
    assert _submit_when_agent_ready(["sh", "-c", script], patience=30) == (0, True)
    assert tries.read_text().strip() == "3" and SUBMITTED in capsys.readouterr().out
    tries.unlink()
    assert _submit_when_agent_ready(["sh", "-c", f"echo 1 > {tries}; echo 'some other error'; exit 3"]) == (3, False)
    assert tries.read_text().strip() == "1"
    # An agent that never comes up (its port held by another Ray): give up after the patience, saying why and what to do.
    never = f"echo 'RuntimeError: {AGENT_NOT_READY}, please try again later..'; exit 1"
    assert _submit_when_agent_ready(["sh", "-c", never], patience=0) == (1, False)
    assert "--dashboard-agent-listen-port" in capsys.readouterr().err
