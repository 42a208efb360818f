"""No product module uses another module's private names: ``from multiverse.x import _y``, ``from .x import _y``,
``import multiverse.x._y``, ``x._y`` on an imported module, class or function of another module. A private name
(``_y``) belongs to the module or package that defines it: its own files may use it, nothing else (tests may).
Read from the source with ``ast``, so a string such as a registered entry point is no use of a name."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from conftest import ROOT

#: the product's packages, by the import name each folder is installed as (pyproject's package-dir)
PACKAGES = {"multiverse.envs": ROOT / "envs", "multiverse.agents": ROOT / "agents",
            "multiverse.launch": ROOT / "launch", "multiverse": ROOT / "launch" / "toplevel"}

#: uses still to be made public, in files other refactors of issue 17 own right now, as "file name" (no line
#: number, so that edits above them do not move them). Empty it as they land: an entry that is no longer found
#: fails the test, so the list cannot go stale.
ALLOWED: set[str] = set()


def _module_name(path: Path) -> str:
    """The dotted import name of a product file (``envs/web/env.py`` -> ``multiverse.envs.web.env``)."""
    for package, folder in sorted(PACKAGES.items(), key=lambda kv: -len(kv[1].parts)):
        if path.is_relative_to(folder):
            parts = [package, *path.relative_to(folder).with_suffix("").parts]
            return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
    raise ValueError(path)


def _product_files() -> list[Path]:
    return sorted({p for folder in PACKAGES.values() for p in folder.rglob("*.py")})


def _private(part: str) -> bool:
    return part.startswith("_") and not (part.startswith("__") and part.endswith("__"))


def _outside(full: str, module: str) -> bool:
    """``full`` (a dotted name) reaches a private part that belongs to a scope ``module`` is not inside."""
    parts = full.split(".")
    if parts[0] != "multiverse":
        return False  # another library's private names: not this rule's concern
    for i, part in enumerate(parts):
        if _private(part):
            scope = ".".join(parts[:i])
            return not (module == scope or module.startswith(scope + "."))
    return False


def _resolve(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    base = base[: len(base) - node.level + (1 if is_package else 0)]
    return ".".join(base + ([node.module] if node.module else []))


def offenders(path: Path) -> list[tuple[str, int, str]]:
    """(file, line, dotted name) of every use of another module's private name in one product file."""
    rel = path.relative_to(ROOT).as_posix()
    return [(rel, line, name) for line, name in uses(path.read_text(), _module_name(path), path.name == "__init__.py")]


def uses(source: str, module: str, is_package: bool = False) -> list[tuple[int, str]]:
    """(line, dotted name) of every other module's private name that ``source``, module ``module``, uses."""
    tree = ast.parse(source)
    bound: dict[str, str] = {}  # a local name -> the dotted name it was imported as
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            origin = _resolve(node, module, is_package)
            for alias in node.names:
                full = f"{origin}.{alias.name}"
                bound[alias.asname or alias.name] = full
                if _outside(full, module):
                    found.append((node.lineno, full))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                bound[alias.asname or alias.name.split(".")[0]] = alias.name if alias.asname else alias.name.split(".")[0]
                if _outside(alias.name, module):
                    found.append((node.lineno, alias.name))
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr):
            chain, value = [node.attr], node.value
            while isinstance(value, ast.Attribute):
                chain.append(value.attr)
                value = value.value
            if isinstance(value, ast.Name) and value.id in bound:
                full = ".".join([bound[value.id], *reversed(chain)])
                if _outside(full, module):
                    found.append((node.lineno, full))
    return found


def test_no_product_module_uses_another_modules_private_names() -> None:
    found = [o for path in _product_files() for o in offenders(path)]
    new = sorted(f"{file}:{line} {name}" for file, line, name in found if f"{file} {name}" not in ALLOWED)
    assert not new, "make these public (drop the underscore, or add a public function):\n" + "\n".join(new)
    fixed = ALLOWED - {f"{file} {name}" for file, _, name in found}
    assert not fixed, f"no longer used: drop these from ALLOWED: {sorted(fixed)}"


@pytest.mark.parametrize("module, source, expected", [
    ("multiverse.launch.a", "from multiverse.launch.config import _Section, RunConfig", ["multiverse.launch.config._Section"]),
    ("multiverse.launch.a", "from .config import _Section", ["multiverse.launch.config._Section"]),
    ("multiverse.launch.a", "from . import config\nconfig._Section", ["multiverse.launch.config._Section"]),
    ("multiverse.launch.a", "import multiverse.launch.config as c\nc._set_dotted(t, k, v)",
     ["multiverse.launch.config._set_dotted"]),
    ("multiverse.launch.a", "import multiverse.launch.config\nmultiverse.launch.config._x",
     ["multiverse.launch.config._x"]),
    ("multiverse.launch.a", "from multiverse.launch.config import RunConfig\nRunConfig._walk()",
     ["multiverse.launch.config.RunConfig._walk"]),
    ("multiverse.envs.core", "from multiverse.envs.games import _render", ["multiverse.envs.games._render"]),
    ("multiverse.envs.core", "import multiverse.envs.games._render", ["multiverse.envs.games._render"]),
    # a private module is its package's: its siblings, and the package itself, may use it
    ("multiverse.envs.games.catch", "from multiverse.envs.games._render import draw", []),
    ("multiverse.envs.games.__init__", "from ._render import draw", []),
    # a module's own private names, an object's own attributes, other libraries' private names, dunders
    ("multiverse.launch.a", "def _f(): pass\n_f()\nself._x = cls._y", []),
    ("multiverse.launch.a", "from ray._private import ray_constants\nimport torch\ntorch._C", []),
    ("multiverse.launch.a", "from multiverse.launch import __version__", []),
])
def test_the_check_finds_what_it_says(module: str, source: str, expected: list[str]) -> None:
    package = module.endswith(".__init__")
    assert [name for _, name in uses(source, module.removesuffix(".__init__"), package)] == expected
