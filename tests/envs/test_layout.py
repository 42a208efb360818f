"""Where the env modules end: no module outside the games imports them, and the web env reaches into no other
object's private state (read from the source with ``ast``, so a string such as a registered entry point is no
import)."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import ROOT

#: the product's packages (pyproject's package-dir)
PACKAGES = [ROOT / "envs", ROOT / "agents", ROOT / "launch"]
ENVS = ROOT / "envs"
GAMES = ENVS / "games"
#: the one line outside the family that imports it: the registry's `from multiverse.envs import games, web`
REGISTRATION = ENVS / "__init__.py"


def _product_files() -> list[Path]:
    return sorted(p for package in PACKAGES for p in package.rglob("*.py"))


def _imported(node: ast.AST) -> list[str]:
    """The dotted names an import statement brings in (``from a import b`` -> ``a.b``)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if isinstance(node, ast.ImportFrom) and node.module:
        return [f"{node.module}.{a.name}" for a in node.names]
    return []


def test_nothing_outside_the_games_imports_the_games_family() -> None:
    """Shared rendering lives in multiverse.envs.render; the contract (envs/core.py) and the web env use it,
    not a games module (they imported envs/games/_render.py)."""
    offenders = []
    for path in _product_files():
        if path.is_relative_to(GAMES):
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            for name in _imported(node):
                family = name == "multiverse.envs.games" or name.startswith("multiverse.envs.games.")
                if family and not (path == REGISTRATION and name == "multiverse.envs.games"):
                    offenders.append(f"{path}:{node.lineno} imports {name}")
    assert not offenders, offenders


def _private_reach(path: Path) -> list[str]:
    """``x._name`` where ``x`` is not ``self``/``cls``, and ``from m import _name``, in one file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        own = isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__") and not own:
            found.append(f"{path.name}:{node.lineno} {ast.unparse(node)}")
        if isinstance(node, ast.ImportFrom):
            found += [f"{path.name}:{node.lineno} from {node.module} import {a.name}"
                      for a in node.names if a.name.startswith("_")]
        probe = isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("getattr", "hasattr")
        if probe and node.args and "task" in ast.unparse(node.args[0]):  # a task's hooks are declared, not probed
            found.append(f"{path.name}:{node.lineno} {ast.unparse(node)}")
    return found


def test_the_web_env_and_its_page_driver_use_only_what_others_make_public() -> None:
    """WebEnv read BrowserHost's private ``_browser``, and probed its task for undeclared hooks with getattr."""
    web = ENVS / "web"
    assert (web / "driver.py").exists(), "the page driver is its own module beside the env"
    found = _private_reach(web / "env.py") + _private_reach(web / "driver.py")
    assert not found, found
