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
#: MiniWoB tasks that also get every author check: one per kind of page (buttons, a form, a widget,
#: an app). All 128 are loaded and played in test_miniwob.py and the 66 with oracles are solved there;
#: every check on every one of them would take most of the suite's 20-minute budget.
MINIWOB_CHECKED = ["miniwob/click-button-v1", "miniwob/login-user-v1", "miniwob/choose-date-v1", "miniwob/email-inbox-v1"]
#: envs that get every author check in the suite: all games, all own web tasks, the MiniWoB sample
CHECKED_IDS = GAME_IDS + OWN_WEB_IDS + [i for i in MINIWOB_CHECKED if i in WEB_IDS]


def pytest_configure(config: pytest.Config) -> None:
    # pytest-xdist registers it too, but not when the suite runs with -p no:xdist (--strict-markers)
    config.addinivalue_line("markers", "xdist_group(name): run these tests on one pytest-xdist worker")


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
