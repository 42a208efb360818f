"""The registry: ids, errors, Gymnasium registration, specs and plugin discovery."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import gymnasium as gym
import pytest

import multiverse.envs as menvs
from multiverse.envs.registry import RegistryError

from conftest import ALL_IDS, GAME_IDS, OWN_WEB_IDS, cli_path


def test_unknown_id_suggests_the_nearest() -> None:
    with pytest.raises(RegistryError, match=r"unknown env 'games/Cach-v0'; did you mean 'games/Catch-v0'\?"):
        menvs.make("games/Cach-v0")
    with pytest.raises(RegistryError, match=r"did you mean 'games/Catch-v0'"):
        menvs.spec("game/catch-v0")
    with pytest.raises(RegistryError, match=r"multiverse envs list"):
        menvs.make("nothing/LikeThis-v9")


def test_duplicate_id_needs_replace() -> None:
    menvs.register("testonly/Dup-v0", "multiverse.envs.games.catch:CatchEnv", kind="game", max_episode_steps=5)
    with pytest.raises(RegistryError, match=r"already registered.*replace=True"):
        menvs.register("testonly/Dup-v0", "multiverse.envs.games.catch:CatchEnv", kind="game", max_episode_steps=5)
    menvs.register("testonly/Dup-v0", "multiverse.envs.games.catch:CatchEnv", kind="game", max_episode_steps=7, replace=True)
    assert menvs.lookup("testonly/Dup-v0").max_episode_steps == 7
    assert gym.spec("testonly/Dup-v0").max_episode_steps == 7


@pytest.mark.parametrize(
    "id, kwargs, message",
    [
        ("Catch-v0", {}, "malformed"),
        ("games/Catch", {}, "malformed"),
        ("games/Catch-v0x", {}, "malformed"),
        ("testonly/Kind-v0", {"kind": "board"}, "kind must be one of"),
        ("testonly/Steps-v0", {"max_episode_steps": 0}, "max_episode_steps must be a positive int"),
        ("testonly/Tags-v0", {"tags": "grid"}, "tags must be a list"),
        ("testonly/Ep-v0", {"entry_point": "no_colon_here"}, "entry_point must be"),
    ],
)
def test_bad_registrations_are_refused(id: str, kwargs: dict, message: str) -> None:
    args = {"entry_point": "multiverse.envs.games.catch:CatchEnv", "kind": "game", "max_episode_steps": 10} | kwargs
    entry_point = args.pop("entry_point")
    with pytest.raises(RegistryError, match=message):
        menvs.register(id, entry_point, **args)


def test_gymnasium_make_works_for_every_registered_id() -> None:
    for env_id in ALL_IDS:
        env = gym.make(env_id)
        assert env.spec.max_episode_steps == menvs.lookup(env_id).max_episode_steps
        if env_id in GAME_IDS or env_id == OWN_WEB_IDS[0]:  # (every web task is reset in test_every_env.py)
            obs, info = env.reset(seed=0)
            assert isinstance(obs["text"], str) and info["mission"]
        env.close()
    # without importing multiverse first, through Gymnasium's module:id form
    out = subprocess.run(
        [sys.executable, "-c", "import gymnasium as g; e = g.make('multiverse.envs:games/Catch-v0'); print(e.reset(seed=0)[1]['mission'])"],
        capture_output=True, text=True, check=True,
    )
    assert "Catch" in out.stdout


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_spec_is_json_and_complete(env_id: str) -> None:
    spec = json.loads(json.dumps(menvs.spec(env_id)))
    assert spec["id"] == env_id and spec["kind"] in ("game", "web") and spec["summary"]
    assert spec["randomization"], "every env randomizes something"
    for name, p in spec["randomization"].items():
        assert {"nominal", "train", "heldout"} <= set(p), name


# --------------------------------------------------------------------------- plugins


def write_dist(site: Path, dist: str, module: str, body: str) -> None:
    """A minimal installed distribution: a module plus its .dist-info with an entry point."""
    (site / f"{module}.py").write_text(textwrap.dedent(body))
    info = site / f"{dist.replace('-', '_')}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[multiverse.envs]\n{module} = {module}:register_envs\n")
    (info / "RECORD").write_text("")


@pytest.fixture
def plugin_site(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    site.mkdir()
    write_dist(site, "mv-plugin-good", "mv_plugin_good", """
        import dataclasses
        from multiverse.envs import register
        from multiverse.envs.games.catch import CatchEnv

        class WideCatch(CatchEnv):
            '''Catch on a wide board: a plugin's own env class.'''

        def register_envs():
            register("plugdemo/WideCatch-v0", "mv_plugin_good:WideCatch", kind="game", max_episode_steps=60, tags=["plugin"])
    """)
    write_dist(site, "mv-plugin-broken", "mv_plugin_broken", """
        def register_envs():
            raise RuntimeError("this plugin is broken on purpose")
    """)
    return site


def run_with(site: Path, args: list[str]) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(site))
    return subprocess.run(args, capture_output=True, text=True, env=env, timeout=120)


def test_plugin_distribution_is_discovered_and_a_broken_one_only_warns(plugin_site: Path) -> None:
    code = (
        "import json, multiverse.envs as m\n"
        "ids = [s.id for s in m.list_envs()]\n"
        "env = m.make('plugdemo/WideCatch-v0')\n"
        "obs, info = env.reset(seed=0)\n"
        "print(json.dumps({'ids': ids, 'source': m.lookup('plugdemo/WideCatch-v0').source, 'mission': info['mission'],"
        " 'cls': type(env.unwrapped).__name__}))\n"
    )
    out = run_with(plugin_site, [sys.executable, "-c", code])
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert "plugdemo/WideCatch-v0" in result["ids"] and "games/Catch-v0" in result["ids"]
    assert result["source"] == "mv-plugin-good" and result["cls"] == "WideCatch"
    assert "multiverse env plugin 'mv_plugin_broken'" in out.stderr
    assert "this plugin is broken on purpose" in out.stderr and "mv-plugin-broken" in out.stderr


def test_plugin_envs_show_in_the_cli(plugin_site: Path) -> None:
    out = run_with(plugin_site, [cli_path(), "envs", "list", "--json"])
    assert out.returncode == 0, out.stderr
    rows = {r["id"]: r for r in json.loads(out.stdout)}
    assert rows["plugdemo/WideCatch-v0"]["source"] == "mv-plugin-good"
    assert rows["plugdemo/WideCatch-v0"]["tags"] == ["plugin"]


def test_gymnasium_make_module_form_finds_a_plugin_env(plugin_site: Path) -> None:
    # a fresh interpreter that never imports multiverse itself: Gymnasium imports multiverse.envs, then looks the id up
    code = (
        "import gymnasium as g\n"
        "env = g.make('multiverse.envs:plugdemo/WideCatch-v0')\n"
        "obs, info = env.reset(seed=0)\n"
        "print(type(env.unwrapped).__name__, env.spec.max_episode_steps, info['mission'])\n"
    )
    out = run_with(plugin_site, [sys.executable, "-c", code])
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.startswith("WideCatch 60 "), out.stdout
    assert "this plugin is broken on purpose" in out.stderr  # the broken plugin still only warns
