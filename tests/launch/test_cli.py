"""Smoke runs of every CLI command, through the installed console script, with tiny budgets."""

from __future__ import annotations

import json
import subprocess

import pytest

from conftest import GAME_IDS


def run(cli: str, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([cli, *args], capture_output=True, text=True, timeout=timeout)


def test_envs_list(multiverse_cli: str) -> None:
    out = run(multiverse_cli, "envs", "list")
    assert out.returncode == 0 and "games/Catch-v0" in out.stdout
    rows = json.loads(run(multiverse_cli, "envs", "list", "--json").stdout)
    assert {r["id"] for r in rows} >= set(GAME_IDS) and len(GAME_IDS) >= 6
    assert all({"id", "kind", "tags"} <= set(r) for r in rows)
    games = json.loads(run(multiverse_cli, "envs", "list", "--kind", "game", "--json").stdout)
    assert games and all(r["kind"] == "game" for r in games)


def test_envs_show(multiverse_cli: str) -> None:
    out = run(multiverse_cli, "envs", "show", "games/Catch-v0")
    assert out.returncode == 0
    assert "int[5..9]" in out.stdout and "int[10..12]" in out.stdout  # train and held-out ranges
    spec = json.loads(run(multiverse_cli, "envs", "show", "games/Catch-v0", "--json").stdout)
    assert spec["randomization"]["width"]["heldout"] == {"kind": "int_range", "low": 10, "high": 12}


def test_envs_check_one_env(multiverse_cli: str) -> None:
    out = run(multiverse_cli, "envs", "check", "games/Catch-v0", "--seeds", "5")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "all checks passed" in out.stdout and "determinism" in out.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["envs", "show", "games/Snak-v0"], "unknown env 'games/Snak-v0'; did you mean 'games/Snake-v0'?"),
        (["envs", "check"], "give env ids or --all"),
        (["envs", "check", "games/Nope-v0"], "unknown env 'games/Nope-v0'"),
        (["play", "games/Catch-v0", "--episodes", "0"], "--episodes must be >= 1"),
        (["play", "games/Catch-v0", "--param", "widht=7"], "unknown parameter 'widht'; did you mean 'width'?"),
        (["play", "games/Catch-v0", "--param", "width=40"], "parameter 'width'=40 is outside its space"),
        (["play", "games/Catch-v0", "--param", "width"], "--param takes NAME=VALUE"),
    ],
)
def test_bad_input_is_one_clear_line(multiverse_cli: str, args: list[str], message: str) -> None:
    out = run(multiverse_cli, *args)
    assert out.returncode == 2
    assert message in out.stderr and "Traceback" not in out.stderr


def test_play(multiverse_cli: str) -> None:
    out = run(multiverse_cli, "play", "games/Maze-v0", "--agent", "oracle", "--episodes", "3", "--seed", "5", "--split", "heldout")
    assert out.returncode == 0, out.stderr
    assert "seed 5: success" in out.stdout and "success 100%" in out.stdout
    out = run(multiverse_cli, "play", "games/Catch-v0", "--agent", "random", "--episodes", "2", "--pixels")
    assert out.returncode == 0 and "games/Catch-v0 random (train)" in out.stdout
    out = run(multiverse_cli, "play", "games/Catch-v0", "--episodes", "2", "--param", "width=11", "--param", "palette=mono")
    assert out.returncode == 0 and out.stdout.count('"width": 11') == 2 and '"palette": "mono"' in out.stdout


def test_demo_covers_every_game_and_filters_by_family(multiverse_cli: str) -> None:
    # the games only: the same loop over the 16 web tasks costs a minute of suite time, and their
    # oracle and random play are tested env by env in tests/envs
    out = run(multiverse_cli, "demo", "--episodes", "1", "--family", "games")
    assert out.returncode == 0, out.stderr
    for env_id in GAME_IDS:
        assert env_id in out.stdout
    assert "web/" not in out.stdout and "miniwob/" not in out.stdout
    assert "oracle" in out.stdout and "random" in out.stdout and "steps/s" in out.stdout


def test_version_and_help(multiverse_cli: str) -> None:
    assert run(multiverse_cli, "--version").stdout.startswith("multiverse ")
    out = run(multiverse_cli, "--help")
    assert out.returncode == 0 and "envs" in out.stdout and "play" in out.stdout
