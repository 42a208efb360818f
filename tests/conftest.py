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
WEB_IDS = [s.id for s in menvs.list_envs(kind="web")]
OWN_WEB_IDS = [i for i in WEB_IDS if i.startswith("web/")]
ALL_IDS = [s.id for s in menvs.list_envs()]
#: envs that get every author check in the suite: all games, all own web tasks, and the MiniWoB
#: tasks with a scripted oracle (every other MiniWoB task is loaded and played in test_miniwob.py;
#: running all checks on 100+ of them would take most of the suite's time budget)
CHECKED_IDS = GAME_IDS + OWN_WEB_IDS + [
    i for i in WEB_IDS if not i.startswith("web/") and menvs.spec(i).get("oracle_success_rate", 0) > 0
]


def seeds_for(env_id: str) -> int:
    """Oracle seeds per env in the suite: 20 for games, 5 for browser tasks (a reset costs ~0.1 s)."""
    return 20 if env_id in GAME_IDS else 5


def cli_path() -> str:
    """The installed ``multiverse`` console script of this interpreter's environment."""
    path = Path(sys.executable).parent / "multiverse"
    return str(path) if path.exists() else shutil.which("multiverse") or "multiverse"


@pytest.fixture(scope="session")
def multiverse_cli() -> str:
    return cli_path()
