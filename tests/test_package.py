"""Packaging: one distribution `multiverse-rl`, everything under `multiverse`, nothing generic at the top."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

from conftest import ROOT


def test_nothing_generic_is_importable_outside_the_repo(tmp_path: Path) -> None:
    for name in ("envs", "agents", "launch"):
        out = subprocess.run([sys.executable, "-c", f"import {name}"], cwd=tmp_path, capture_output=True, text=True)
        assert out.returncode != 0 and "No module named" in out.stderr, name
    out = subprocess.run(
        [sys.executable, "-c", "import multiverse.envs, multiverse.agents, multiverse.launch.cli; print('ok')"],
        cwd=tmp_path, capture_output=True, text=True,
    )
    assert out.stdout.strip() == "ok", out.stderr


def test_wheel_holds_only_the_multiverse_package(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(ROOT)],
        check=True, capture_output=True,
    )
    (wheel,) = tmp_path.glob("multiverse_rl-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert tops == {"multiverse", next(t for t in tops if t.endswith(".dist-info"))}, tops
    assert "multiverse/envs/games/catch.py" in names and "multiverse/launch/cli.py" in names
    assert "multiverse/__main__.py" in names and not any(n.startswith("multiverse/launch/toplevel") for n in names)
    entry = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "multiverse = multiverse.launch.cli:main" in entry


def test_python_m_multiverse_is_the_console_script(tmp_path: Path) -> None:
    from conftest import cli_path

    for args in (["--version"], ["envs", "list", "--kind", "game"]):
        script = subprocess.run([cli_path(), *args], cwd=tmp_path, capture_output=True, text=True, timeout=120)
        module = subprocess.run([sys.executable, "-m", "multiverse", *args], cwd=tmp_path, capture_output=True,
                                text=True, timeout=120)
        assert module.returncode == script.returncode == 0, module.stderr
        assert module.stdout == script.stdout and module.stdout.strip(), args


def test_torch_threads_wait_passively_unless_the_user_said_otherwise() -> None:
    """Spinning OpenMP threads made updates 5-10x slower beside Chromium and rollout workers (bench/README.md):
    importing any multiverse package sets OMP_WAIT_POLICY=PASSIVE before torch loads, keeping a user's value."""
    code = "import os, multiverse.agents.policy, torch; print(os.environ.get('OMP_WAIT_POLICY'))"
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split()[-1] == "PASSIVE"
    out = subprocess.run([sys.executable, "-c", code], env=env | {"OMP_WAIT_POLICY": "ACTIVE"}, capture_output=True,
                         text=True, check=True)
    assert out.stdout.split()[-1] == "ACTIVE"
