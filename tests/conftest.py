"""Shared test set-up: headless pygame, one thread per process, the registry's ids."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402

import multiverse.envs as menvs  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
GAME_IDS = [s.id for s in menvs.list_envs(kind="game")]
ALL_IDS = [s.id for s in menvs.list_envs()]


def cli_path() -> str:
    """The installed ``multiverse`` console script of this interpreter's environment."""
    path = Path(sys.executable).parent / "multiverse"
    return str(path) if path.exists() else shutil.which("multiverse") or "multiverse"


@pytest.fixture(scope="session")
def multiverse_cli() -> str:
    return cli_path()
