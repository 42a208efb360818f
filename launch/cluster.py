"""Starting or joining Ray, and submitting a training run to a cluster with ``ray job submit``.

Embedded (no address): ``ray.init(address="local")`` always starts a fresh
Ray inside this process (a plain ``ray.init()`` would try to join whatever
cluster a stale ``/tmp/ray`` file names, and can hang), usage stats off, the
dashboard only when asked for, and every server it starts (GCS, raylet, object
manager, worker gRPC, the dashboard and runtime-env agents, metrics) bound to
127.0.0.1: see :func:`_loopback_node`.

Joining: ``--address`` / ``ray.address`` or ``RAY_ADDRESS`` (which ``ray job
submit`` sets for the job's driver). The address is probed first (a TCP connect,
seconds), since ``ray.init`` retries an address where nothing listens for minutes;
then the cluster must have the CPUs the run asks for (:func:`wait_for_cpus`).

Token authentication: since Ray 2.5x a local ``ray.init()`` turns token auth on
and writes ``~/.ray/auth_token``; from then on a Ray CLI started with
``RAY_AUTH_MODE`` unset may talk to a token cluster without the token and fail
with an authentication error. :func:`ray_cli_env` sets ``RAY_AUTH_MODE=token``
when a token file exists and the user set no mode, so ``multiverse submit`` and
the cluster it talks to agree.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

__all__ = ["Submission", "check_address", "check_cpus", "init_ray", "ray_cli_env", "resolve_address", "submit",
           "wait_for_cpus"]

#: never uploaded with --working-dir (virtual environments, runs, caches, VCS data)
WORKING_DIR_EXCLUDES = [".venv", ".venv*", "bench/.venv-*", ".git", "runs", "**/__pycache__", "*.egg-info",
                        ".pytest_cache", ".ruff_cache", "**/*.safetensors", "**/*.gguf"]


def init_ray(address: str | None, *, dashboard: bool, num_cpus: int | None, needed_cpus: float,
             cpus_for: str = "its actors") -> tuple[bool, str]:
    """Start or join Ray. Returns (started here, a description for the log).

    ``needed_cpus`` (what ``cpus_for`` asks for, named in errors) must fit: in ``num_cpus`` before an embedded
    Ray starts, in the cluster's CPUs after joining one. A bad address or too few CPUs raise ConfigError."""
    from multiverse.launch.config import ConfigError

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    if ray.is_initialized():
        return False, "the Ray session already running in this process"
    address, what = resolve_address(address)
    common: dict[str, Any] = {"logging_level": "WARNING", "log_to_driver": True}
    # Token auth (module docstring) turned on here for a fresh or a joined cluster: its notice is not for our users.
    logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(logging.ERROR)
    if address:
        from ray._private.authentication.authentication_token_setup import maybe_enable_token_auth_if_token_available

        check_address(address, what)
        # What Ray does for address="auto" and ray_cli_env for the CLI: a token this user has is sent, since a
        # cluster started on this machine wants it (Ray sends none for an explicit address while RAY_AUTH_MODE is unset)
        maybe_enable_token_auth_if_token_available(warn_if_disabled=False)
        try:
            # No runtime_env here: a job's own (working dir, env vars from `ray job submit`) must stay in force.
            ray.init(address=address, **common)
        except ConnectionError as error:
            why = str(error.__cause__ or error)
            hint = ("it wants an authentication token: copy the head's ~/.ray/auth_token here (or set RAY_AUTH_TOKEN) "
                    "and set RAY_AUTH_MODE=token") if "uthentication" in why else why.strip().splitlines()[0][:200]
            raise ConfigError(f"could not join the Ray cluster at {what}={address!r}: {hint}") from None
        where = f"the Ray cluster at {address}"
        try:
            wait_for_cpus(needed_cpus, cpus_for, where)
        except BaseException:
            ray.shutdown()
            raise
        return True, where
    check_cpus(num_cpus, needed_cpus, cpus_for)
    try:
        have = len(os.sched_getaffinity(0))
    except AttributeError:
        have = os.cpu_count() or 1
    cpus = num_cpus or max(have, math.ceil(needed_cpus))
    with _loopback_node():
        context = ray.init(address="local", num_cpus=cpus, include_dashboard=dashboard, dashboard_host=LOOPBACK,
                           _node_ip_address=LOOPBACK, **common)
    where = f"embedded Ray ({cpus} CPUs, on {LOOPBACK} only"
    if dashboard:
        if not context.dashboard_url:
            ray.shutdown()
            raise ConfigError("ray.dashboard=true but Ray's dashboard did not start (see session_latest/logs/"
                              "dashboard.log under Ray's temp dir, /tmp/ray); set ray.dashboard=false")
        where += f", dashboard http://{context.dashboard_url}"
    return True, where + ")"


#: every server of an embedded Ray listens here
LOOPBACK = "127.0.0.1"
#: Ray's switch for "clusters on this OS", meant for macOS and Windows: off, a node started here gets the node IP
#: 127.0.0.1 (not this machine's outward address) and its servers bind it
LOCAL_ONLY_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


@contextlib.contextmanager
def _loopback_node() -> Iterator[None]:
    """While ``ray.init`` starts a node: Ray's local-only switch off, so ``_node_ip_address="127.0.0.1"`` is kept
    (Ray otherwise replaces a loopback node IP by the machine's address, and its GCS, raylet, workers and agents bind
    all interfaces). Ray reads the switch once, at import, hence the module constant too; both are put back after,
    so that joining a cluster later in this process works as before. The node's processes inherit the variable."""
    from ray._private import ray_constants

    saved_env, saved_flag = os.environ.get(LOCAL_ONLY_ENV), ray_constants.ENABLE_RAY_CLUSTER
    os.environ[LOCAL_ONLY_ENV] = "0"
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = saved_flag
        if saved_env is None:
            os.environ.pop(LOCAL_ONLY_ENV, None)
        else:
            os.environ[LOCAL_ONLY_ENV] = saved_env


def resolve_address(address: str | None) -> tuple[str | None, str]:
    """The cluster to join (``ray.address``, else ``RAY_ADDRESS``; None or 'local': an embedded Ray), and the name
    of where it came from, for messages."""
    what = "ray.address"
    if not address:
        address, what = os.environ.get("RAY_ADDRESS") or None, "RAY_ADDRESS"
    return (None if address == "local" else address), what


def check_address(address: str, what: str = "ray.address", timeout: float = 5.0) -> None:
    """ConfigError unless ``address`` is HOST:PORT (or ray://HOST:PORT, or 'auto') and something accepts a TCP
    connection there: ``ray.init`` retries an address where nothing listens for minutes, silently."""
    from multiverse.launch.config import ConfigError

    if address == "auto":  # Ray looks the address up in its temp dir itself
        return
    shown = address if len(address) <= 80 else address[:80] + "..."
    scheme, sep, rest = address.partition("://")
    if not sep:
        scheme, rest = "", address
    if scheme in ("http", "https"):
        raise ConfigError(f"{what}={shown!r} is an HTTP (dashboard) address; multiverse train joins a cluster by its "
                          f"GCS address, HOST:6379 (the dashboard address is for multiverse submit --address)")
    try:
        parsed = urllib.parse.urlsplit("//" + rest)
        host, port = parsed.hostname, parsed.port
    except ValueError:
        host = port = None
    if scheme not in ("", "ray") or not host or port is None or parsed.path:
        raise ConfigError(f"{what}={shown!r} is not a Ray address; give HOST:PORT of the cluster's head "
                          f"(e.g. 127.0.0.1:6379), or unset it for an embedded Ray")
    why = _no_answer(host, port, timeout)
    if why:
        raise ConfigError(f"no Ray cluster answers at {what}={shown!r} ({why}); start its head there (ray start "
                          f"--head), fix {what}, or unset it for an embedded Ray")


def _no_answer(host: str, port: int, timeout: float) -> str | None:
    """Why nothing accepts a TCP connection at ``host:port`` (refused, unknown host, timed out), else None."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except OSError as error:
        return error.strerror or type(error).__name__


def check_cpus(num_cpus: int | None, needed_cpus: float, cpus_for: str) -> None:
    """ConfigError when an embedded Ray of ``ray.num_cpus`` CPUs could never schedule what the run asks for."""
    from multiverse.launch.config import ConfigError

    if num_cpus is not None and num_cpus < needed_cpus:
        raise ConfigError(f"ray.num_cpus={num_cpus} is less than the {needed_cpus:g} CPUs the run asks for "
                          f"({cpus_for}): its workers could never start; raise ray.num_cpus or ask for fewer")


def wait_for_cpus(needed_cpus: float, cpus_for: str, where: str, patience: float = 5.0) -> None:
    """Wait up to ``patience`` seconds (nodes of a cluster started a moment ago are still joining) for the cluster
    to have ``needed_cpus`` CPUs in all; ConfigError if it does not: the workers would wait for them forever."""
    import ray

    from multiverse.launch.config import ConfigError

    deadline = time.monotonic() + patience
    while (have := ray.cluster_resources().get("CPU", 0.0)) < needed_cpus:
        if time.monotonic() > deadline:
            raise ConfigError(f"{where} has {have:g} CPUs, less than the {needed_cpus:g} the run asks for "
                              f"({cpus_for}): its workers could never start; ask for fewer or add nodes")
        time.sleep(0.5)


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


@dataclasses.dataclass
class Submission:
    """What ``multiverse submit`` did: whether ``ray job submit`` got a job in, its id, and its exit status."""

    submitted: bool
    job: str
    code: int
    why: str = ""
    """Why nothing was submitted, when it is known here (else ``ray job submit``'s output said it)."""


def submit(
    config: str, overrides: Sequence[str], *, address: str | None, working_dir: str = ".", wait: bool = True,
    submission_id: str | None = None, entrypoint: str = "multiverse", extra_env: dict[str, str] | None = None,
    pip: Sequence[str] = (), py_modules: Sequence[str] = (),
) -> Submission:
    """``ray job submit`` a ``multiverse train`` run.

    The config is validated here first, so a bad field fails before anything is sent. The config path is
    passed relative to the working dir when it lies inside it (the job runs in an uploaded copy). ``pip``
    (requirements, installed into a virtualenv for the job) and ``py_modules`` (local folders, .py files or
    .whl files: a plugin's wheel brings its entry points) go into the job's runtime_env."""
    from multiverse.launch.config import ConfigError, find_config, load_config

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
    modules = []
    for module in py_modules:  # a local path, uploaded by `ray job submit`, or a URI the cluster fetches
        if "://" in module:
            modules.append(module)
        elif not Path(module).exists():
            raise ConfigError(f"--py-modules {module!r}: no such file or folder (give a package folder, a .py or a "
                              f".whl file, or a URI)")
        else:
            modules.append(str(Path(module).resolve()))
    address = address or os.environ.get("RAY_ADDRESS") or "http://127.0.0.1:8265"
    submission_id = submission_id or f"multiverse-{Path(cfg_arg).stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    unreachable = _dashboard_unreachable(address)
    if unreachable:
        return Submission(False, submission_id, 1, unreachable)
    env_vars = {"RAY_USAGE_STATS_ENABLED": "0", "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE",
                "PYTHONUNBUFFERED": "1"} | (extra_env or {})
    runtime_env: dict[str, Any] = {"env_vars": env_vars, "excludes": WORKING_DIR_EXCLUDES}
    if pip:
        runtime_env["pip"] = list(pip)
    if modules:
        runtime_env["py_modules"] = modules
    cmd = [ray_executable(), "job", "submit", "--address", address, "--submission-id", submission_id,
           "--working-dir", str(wd), "--runtime-env-json", json.dumps(runtime_env)]
    if not wait:
        cmd.append("--no-wait")
    cmd += ["--", entrypoint, "train", "--config", cfg_arg, *overrides]
    print("multiverse submit: " + " ".join(_quote(c) for c in cmd), file=sys.stderr, flush=True)
    code, submitted = _submit_when_agent_ready(cmd)
    return Submission(submitted, submission_id, code)


def _dashboard_unreachable(address: str, timeout: float = 5.0) -> str | None:
    """Why nothing can be submitted to ``address`` (nothing accepts a connection there), else None."""
    parsed = urllib.parse.urlsplit(address if "://" in address else "http://" + address)
    try:
        host, port = parsed.hostname, parsed.port or (443 if parsed.scheme == "https" else 80)
    except ValueError:
        return f"{address!r} is not a dashboard address; give --address http://HEAD:8265"
    why = _no_answer(host or "", port, timeout)
    return why and (f"nothing answers at {address} ({why}); give the cluster's dashboard address (ray start --head "
                    f"prints it, e.g. http://127.0.0.1:8265) with --address or RAY_ADDRESS")


#: what the jobs API answers (HTTP 500) while a freshly started head node's job agent is not up yet
AGENT_NOT_READY = "No available agent to submit job"
#: what ``ray job submit`` prints once the job is in (its exit status alone cannot tell: a failed job exits 1 too)
SUBMITTED = "submitted successfully"


def _submit_when_agent_ready(cmd: list[str], patience: float = 120.0) -> tuple[int, bool]:
    """Run ``ray job submit``, passing its output through; while the cluster says its job agent is not up yet
    (nothing was submitted), try again every 2 s for up to ``patience`` seconds. Returns (its exit status,
    whether a job was submitted)."""
    deadline = time.monotonic() + patience
    while True:
        proc = subprocess.Popen(cmd, env=ray_cli_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        not_ready = submitted = False
        assert proc.stdout is not None
        for line in proc.stdout:
            not_ready = not_ready or AGENT_NOT_READY in line
            submitted = submitted or SUBMITTED in line
            sys.stdout.write(line)
            sys.stdout.flush()
        code = proc.wait()
        if code == 0 or submitted or not not_ready:
            return code, submitted
        if time.monotonic() > deadline:
            print(f"multiverse submit: the cluster still has no job agent after {patience:.0f} s. Its dashboard agent "
                  "may have failed to start: a common cause is another Ray instance on the same machine holding "
                  "the agent's default port 52365. Look in the head node's logs (session_latest/logs/"
                  "dashboard_agent.log under its --temp-dir, /tmp/ray by default) and restart the head with "
                  "--dashboard-agent-listen-port=<a free port>.", file=sys.stderr, flush=True)
            return code, False
        print("multiverse submit: the cluster's job agent is not up yet; trying again in 2 s", file=sys.stderr,
              flush=True)
        time.sleep(2)


def _quote(s: str) -> str:
    import shlex

    return shlex.quote(s)
