"""Shared test set-up: headless pygame, one thread per process, the registry's ids."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest

import multiverse.envs as menvs

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
#: checks of what every browser task shares (Gymnasium's checker on the spaces, the action parser, screenshots
#: and their determinism):
#: one code path for all of them, so in the suite they run on games and on this sample of browser tasks (a plain
#: page, a two-page flow with navigation, a widget, two MiniWoB pages). A browser reset costs a new Chromium
#: renderer (~1-2 CPU-seconds on this machine); all checks on all browser tasks took over half of the suite's
#: 20-minute budget. `multiverse envs check --all` runs every check on every env.
MACHINERY_CHECKS = ("gymnasium", "illegal-actions", "pixels", "determinism-pixels")
WEB_MACHINERY_SAMPLE = ["web/ClickButton-v0", "web/TwoPageFlow-v0", "web/DatePicker-v0", "miniwob/click-button-v1",
                        "miniwob/email-inbox-v1"]
#: ids that get the machinery checks and the contract tests: every game, the browser sample
MACHINERY_IDS = GAME_IDS + [i for i in WEB_MACHINERY_SAMPLE if i in WEB_IDS]


def pytest_configure(config: pytest.Config) -> None:
    # pytest-xdist registers it too, but not when the suite runs with -p no:xdist (--strict-markers)
    config.addinivalue_line("markers", "xdist_group(name): run these tests on one pytest-xdist worker")


#: the longest tests (training runs, the experiment, a Ray cluster), started first: collected last, they ended the
#: run on one pytest-xdist worker while the other had nothing left to do. Order only; every test still runs.
LONG_FIRST = ("tests/launch/test_train.py", "tests/launch/test_experiment.py", "tests/launch/test_submit.py",
              "tests/launch/")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        return next((i for i, prefix in enumerate(LONG_FIRST) if item.nodeid.startswith(prefix)), len(LONG_FIRST))

    items.sort(key=rank)  # stable: the collection order within each rank


def seeds_for(env_id: str) -> int:
    """Oracle seeds per env in the suite: 20 for games, 3 for browser tasks (a reset costs a new renderer)."""
    return 20 if env_id in GAME_IDS else 3


def cli_path() -> str:
    """The installed ``multiverse`` console script of this interpreter's environment."""
    path = Path(sys.executable).parent / "multiverse"
    return str(path) if path.exists() else shutil.which("multiverse") or "multiverse"


@pytest.fixture(scope="session")
def multiverse_cli() -> str:
    return cli_path()
