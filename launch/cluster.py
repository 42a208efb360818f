"""Starting or joining Ray, and submitting a training run to a cluster with ``ray job submit``.

Embedded (no address): ``ray.init(address="local")`` always starts a fresh
Ray inside this process (a plain ``ray.init()`` would try to join whatever
cluster a stale ``/tmp/ray`` file names, and can hang), usage stats off, the
dashboard only on 127.0.0.1 and only when asked for.

Joining: ``--address`` / ``ray.address`` or ``RAY_ADDRESS`` (which ``ray job
submit`` sets for the job's driver).

Token authentication: since Ray 2.5x a local ``ray.init()`` turns token auth on
and writes ``~/.ray/auth_token``; from then on a Ray CLI started with
``RAY_AUTH_MODE`` unset may talk to a token cluster without the token and fail
with an authentication error. :func:`ray_cli_env` sets ``RAY_AUTH_MODE=token``
when a token file exists and the user set no mode, so ``multiverse submit`` and
the cluster it talks to agree.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["init_ray", "ray_cli_env", "submit"]

#: never uploaded with --working-dir (virtual environments, runs, caches, VCS data)
WORKING_DIR_EXCLUDES = [".venv", ".venv*", "bench/.venv-*", ".git", "runs", "**/__pycache__", "*.egg-info",
                        ".pytest_cache", ".ruff_cache", "**/*.safetensors", "**/*.gguf"]


def init_ray(address: str | None, *, dashboard: bool, num_cpus: int | None, needed_cpus: float) -> tuple[bool, str]:
    """Start or join Ray. Returns (started here, a description for the log)."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    if ray.is_initialized():
        return False, "the Ray session already running in this process"
    address = address or os.environ.get("RAY_ADDRESS")
    common: dict[str, Any] = {"logging_level": "WARNING", "log_to_driver": True}
    if address:
        # No runtime_env here: a job's own (working dir, env vars from `ray job submit`) must stay in force.
        ray.init(address=address, **common)
        return True, f"the Ray cluster at {address}"
    # Our own fresh cluster turns token auth on (Ray's default); its notice about that is not for our users.
    logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(logging.ERROR)
    try:
        have = len(os.sched_getaffinity(0))
    except AttributeError:
        have = os.cpu_count() or 1
    cpus = num_cpus or max(have, math.ceil(needed_cpus))
    ray.init(address="local", num_cpus=cpus, include_dashboard=dashboard, dashboard_host="127.0.0.1", **common)
    where = f"embedded Ray ({cpus} CPUs"
    if dashboard:
        where += f", dashboard http://{ray.get_runtime_context().dashboard_url or '127.0.0.1:8265'}"
    return True, where + ")"


def ray_cli_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a Ray CLI call: RAY_AUTH_MODE consistent with ~/.ray/auth_token (module docstring)."""
    env = dict(os.environ if base is None else base)
    env.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if "RAY_AUTH_MODE" not in env and (Path.home() / ".ray" / "auth_token").is_file():
        env["RAY_AUTH_MODE"] = "token"
    return env


def ray_executable() -> str:
    """The ``ray`` CLI of this Python environment (else the one on PATH)."""
    here = Path(sys.executable).parent / "ray"
    return str(here) if here.exists() else (shutil.which("ray") or "ray")


def submit(
    config: str, overrides: Sequence[str], *, address: str | None, working_dir: str = ".", wait: bool = True,
    submission_id: str | None = None, entrypoint: str = "multiverse", extra_env: dict[str, str] | None = None,
) -> tuple[int, str]:
    """``ray job submit`` a ``multiverse train`` run. Returns (exit status, submission id).

    The config is validated here first, so a bad field fails before anything is sent. The config path is
    passed relative to the working dir when it lies inside it (the job runs in an uploaded copy)."""
    from multiverse.launch.config import find_config, load_config

    resolved = load_config(config, overrides)  # raises ConfigError naming the problem
    overrides = list(overrides)
    if not any(o.strip().startswith("run.root=") for o in overrides):
        # The job runs in a temporary copy of the working dir: write the run where the submitter looks for it
        # (the same machine, or a filesystem the cluster shares; pass run.root=... for anything else).
        overrides.append(f"run.root={Path(resolved.run.root).expanduser().resolve()}")
    wd = Path(working_dir).resolve()
    cfg = find_config(config).resolve()
    try:
        cfg_arg = str(cfg.relative_to(wd))
    except ValueError:
        cfg_arg = str(cfg)
    address = address or os.environ.get("RAY_ADDRESS") or "http://127.0.0.1:8265"
    submission_id = submission_id or f"multiverse-{Path(cfg_arg).stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    env_vars = {"RAY_USAGE_STATS_ENABLED": "0", "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"} | (extra_env or {})
    runtime_env = {"env_vars": env_vars, "excludes": WORKING_DIR_EXCLUDES}
    cmd = [ray_executable(), "job", "submit", "--address", address, "--submission-id", submission_id,
           "--working-dir", str(wd), "--runtime-env-json", json.dumps(runtime_env)]
    if not wait:
        cmd.append("--no-wait")
    cmd += ["--", entrypoint, "train", "--config", cfg_arg, *overrides]
    print("multiverse submit: " + " ".join(_quote(c) for c in cmd), file=sys.stderr, flush=True)
    return _submit_when_agent_ready(cmd), submission_id


#: what the jobs API answers (HTTP 500) while a freshly started head node's job agent is not up yet
AGENT_NOT_READY = "No available agent to submit job"


def _submit_when_agent_ready(cmd: list[str], patience: float = 120.0) -> int:
    """Run ``ray job submit``, passing its output through; while the cluster says its job agent is not up yet
    (nothing was submitted), try again every 2 s for up to ``patience`` seconds."""
    deadline = time.monotonic() + patience
    while True:
        proc = subprocess.Popen(cmd, env=ray_cli_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        not_ready = False
        assert proc.stdout is not None
        for line in proc.stdout:
            not_ready = not_ready or AGENT_NOT_READY in line
            sys.stdout.write(line)
            sys.stdout.flush()
        code = proc.wait()
        if code == 0 or not not_ready:
            return code
        if time.monotonic() > deadline:
            print(f"multiverse submit: the cluster still has no job agent after {patience:.0f} s. Its dashboard agent "
                  "may have failed to start: a common cause is another Ray instance on the same machine holding "
                  "the agent's default port 52365. Look in the head node's logs (session_latest/logs/"
                  "dashboard_agent.log under its --temp-dir, /tmp/ray by default) and restart the head with "
                  "--dashboard-agent-listen-port=<a free port>.", file=sys.stderr, flush=True)
            return code
        print("multiverse submit: the cluster's job agent is not up yet; trying again in 2 s", file=sys.stderr,
              flush=True)
        time.sleep(2)


def _quote(s: str) -> str:
    import shlex

    return shlex.quote(s)
