"""Every code block of README.md and of the reference docs beside the code (envs/, agents/, launch/ and bench/
README.md) runs as written; README.md stays a short guide, and every relative link in them leads somewhere.

The convention:

* ```python: run as a script in a fresh interpreter, in an empty folder of its own; a first line ``# NAME.py``
  names the file (so a block can be a module that its own ``__main__`` part imports). It fails if an env
  refuses one of its actions (``info["action_error"]``).
* ```bash: each line is one command, run in order in a folder of its own where the repo's top-level entries
  are linked, all in one fresh interpreter: ``multiverse`` (``.venv/bin/multiverse``) lines through the CLI's
  ``main()``, other programs as processes (``.venv/bin/X`` is this interpreter's). No display: a human
  player reads end of input and quits.
* ```toml: parsed. A block without a language, or ```text / ```console, shows output or a layout and is
  not run. Fences may be indented (a block inside a list item).
* An HTML comment on the line right before the fence changes how a bash block is checked:
  ``<!-- check: args -->`` parses each line's arguments with the real parser (a ``train``, ``submit``,
  ``experiment`` or ``sft`` config is loaded with its overrides, so a bad field fails), syntax-checks a
  ``bash`` script, checks that a ``python SCRIPT.py`` or ``python -m MODULE`` line names a script or module
  that exists, compiles and declares every ``--option`` the line passes, and finds any other program;
  ``<!-- check: budget CMD ARGS; CMD ARGS -->`` runs the block with ARGS appended to each ``multiverse CMD``
  line (the smallest budget). Long commands (the benchmarks, a whole training run) get ``args``.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

from conftest import ROOT, cli_path

#: the guide, and the reference docs beside the code they describe (the top level of the repo is fixed)
DOCS = [ROOT / "README.md", *(ROOT / folder / "README.md" for folder in ("envs", "agents", "launch", "bench"))]
#: README.md is a guide a newcomer reads in ten minutes; reference goes to the docs above
README_MAX_CHARS = 12_000
MARKER = re.compile(r"^\s*<!--\s*check:\s*(args|budget)\b(.*?)-->\s*$")
FENCE = re.compile(r"^\s*```\s*([\w+-]*)\s*$")
NOT_RUN = ("", "text", "console")
LINE_TIMEOUT = 300  # seconds; a README line that takes longer is long by nature and wants a marker


@dataclasses.dataclass(frozen=True)
class Block:
    doc: Path
    line: int  # of the opening fence, 1-based
    lang: str
    code: str
    check: str  # "run", "args" or "budget"
    budget: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @property
    def where(self) -> str:
        return f"{self.doc.relative_to(ROOT)}:{self.line}"


def blocks(doc: Path) -> list[Block]:
    out: list[Block] = []
    lines = doc.read_text().splitlines()
    i = 0
    while i < len(lines):
        fence = FENCE.match(lines[i])
        if not fence:
            i += 1
            continue
        indent = len(lines[i]) - len(lines[i].lstrip())
        end = next(j for j in range(i + 1, len(lines)) if lines[j].lstrip().startswith("```"))
        marker = MARKER.match(lines[i - 1]) if i else None
        check, budget = "run", ()
        if marker:
            check = marker.group(1)
            if check == "budget":
                budget = tuple((p.split()[0], tuple(shlex.split(p)[1:])) for p in marker.group(2).split(";") if p.strip())
        code = "\n".join(line[indent:] if line[:indent].isspace() else line for line in lines[i + 1:end]) + "\n"
        out.append(Block(doc, i + 1, fence.group(1).lower(), code, check, budget))
        i = end + 1
    return out


BLOCKS = [b for doc in DOCS if doc.is_file() for b in blocks(doc) if b.lang not in NOT_RUN]  # a missing doc: below


def test_every_doc_is_there() -> None:
    missing = [str(d.relative_to(ROOT)) for d in DOCS if not d.is_file()]
    assert not missing, f"the reference docs {missing} are gone; move their text, and update DOCS here"


def test_the_readme_is_a_short_guide() -> None:
    size = len((ROOT / "README.md").read_text())
    assert size <= README_MAX_CHARS, (f"README.md is {size} characters, over {README_MAX_CHARS}: it is the newcomer's "
                                      "guide; move reference and internals to envs/, agents/, launch/ or bench/README.md")


def slug(heading: str) -> str:
    """A heading's anchor as GitHub makes it: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def prose(doc: Path) -> list[tuple[int, str]]:
    """A doc's lines outside code blocks, numbered from 1."""
    out, in_code = [], False
    for k, line in enumerate(doc.read_text().splitlines(), 1):
        if line.lstrip().startswith("```"):
            in_code = not in_code
        elif not in_code:
            out.append((k, line))
    return out


def anchors(doc: Path) -> set[str]:
    return {slug(m.group(1)) for _, line in prose(doc) if (m := re.match(r"^#+\s+(.*)$", line))}


LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def test_every_relative_link_leads_to_a_file_and_heading() -> None:
    broken = []
    for doc in (d for d in DOCS if d.is_file()):
        for k, line in prose(doc):
            for target in LINK.findall(re.sub(r"`[^`]*`", "", line)):
                if re.match(r"^[a-z][a-z+.-]*:", target):  # https:, mailto: ...
                    continue
                path, _, anchor = target.partition("#")
                file = (doc.parent / path).resolve() if path else doc
                where = f"{doc.relative_to(ROOT)}:{k}: ({target})"
                if not file.exists():
                    broken.append(f"{where}: no file {path}")
                elif anchor and (file.suffix != ".md" or anchor not in anchors(file)):
                    broken.append(f"{where}: no heading #{anchor} in {file.relative_to(ROOT)}")
    assert not broken, "broken links:\n" + "\n".join(broken)


def test_every_block_is_of_a_checked_kind() -> None:
    assert len(BLOCKS) >= 10, "README.md lost its code blocks?"
    for b in BLOCKS:
        assert b.lang in ("python", "bash", "toml"), (f"{b.where}: a ```{b.lang} block; the README test runs "
                                                      "python, bash and toml blocks (a block without a language is shown, not run)")
        assert b.check == "run" or b.lang == "bash", f"{b.where}: check markers apply to bash blocks only"


# --------------------------------------------------------------------------- running


def work_dir(tmp: Path) -> Path:
    """A folder where README commands find the repo's files (launch/configs, .venv, ...) and write their own."""
    for entry in ROOT.iterdir():
        if entry.name not in (".git", "runs", "data", "ckpt") and not (tmp / entry.name).exists():
            (tmp / entry.name).symlink_to(entry)
    return tmp


def environment(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    return env | {"MINARI_DATASETS_PATH": str(tmp / "minari"), "PYTHONUNBUFFERED": "1"}


def program(name: str) -> str | None:
    """A command's executable: multiverse and .venv/bin/X are this interpreter's."""
    bindir = Path(sys.executable).parent
    if name.startswith(".venv/bin/"):
        name = name.removeprefix(".venv/bin/")
    if (bindir / name).exists():
        return str(bindir / name)
    if name == "multiverse":
        return cli_path()
    return shutil.which(name)


def commands(block: Block) -> list[tuple[int, list[str]]]:
    out = []
    for k, line in enumerate(block.code.splitlines()):
        argv = shlex.split(line, comments=True)
        if argv:
            out.append((block.line + 1 + k, argv))
    return out


def subcommand(argv: list[str]) -> str | None:
    return argv[1] if Path(argv[0]).name == "multiverse" and len(argv) > 1 else None


#: runs a bash block's lines in order in one fresh interpreter (the CLI's imports, and a web line's Chromium, are
#: paid once per block, not per line): a multiverse line through the CLI's main(), any other program as a process.
#: It stops at the first line that fails, naming it.
CLI_RUNNER = """
import json, subprocess, sys
from multiverse.launch.cli import main

for line, argv in json.load(open(sys.argv[1])):
    print(f"$ {' '.join(argv)}", flush=True)
    if argv[0] == "multiverse":
        try:
            rc = main(argv[1:])
        except SystemExit as exc:  # --help, or a refused argument (argparse has printed why)
            rc = exc.code if isinstance(exc.code, int) else 1
    else:
        rc = subprocess.run(argv, stdin=subprocess.DEVNULL).returncode
    sys.stdout.flush()
    if rc != 0:
        print(f"README line {line} exited {rc}", file=sys.stderr)
        sys.exit(1)
"""


def run_bash(block: Block, tmp: Path) -> None:
    cwd, env = work_dir(tmp), environment(tmp)
    budget = dict(block.budget)
    lines = []
    for line, argv in commands(block):
        if subcommand(argv) is not None:
            lines.append((line, ["multiverse", *argv[1:], *budget.get(subcommand(argv) or "", ())]))
        else:
            exe = program(argv[0])
            assert exe, f"{block.doc.name}:{line}: {argv[0]!r} is not installed"
            lines.append((line, [exe, *argv[1:]]))
    (tmp / "_readme_lines.json").write_text(json.dumps(lines))
    (tmp / "_readme_cli.py").write_text(CLI_RUNNER)
    out = subprocess.run([sys.executable, str(tmp / "_readme_cli.py"), str(tmp / "_readme_lines.json")], cwd=cwd,
                         env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                         timeout=LINE_TIMEOUT * len(lines))
    assert out.returncode == 0, (f"{block.where}: the bash block failed ({out.stderr.strip().splitlines()[-1:]}):\n"
                                 f"{out.stdout[-1500:]}\n{out.stderr[-2500:]}")


def options_of(source: str) -> set[str]:
    """The ``--options`` a script's argparse declares (string constants passed to ``add_argument``)."""
    return {arg.value for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "add_argument"
            for arg in node.args if isinstance(arg, ast.Constant) and str(arg.value).startswith("--")}


def check_python_line(args: list[str], where: str) -> None:
    """``python SCRIPT.py ...`` or ``python -m MODULE ...``: the script or module exists and compiles, and it
    declares every ``--option`` the line passes (without running it: a benchmark takes minutes)."""
    if args[0] == "-m":
        try:
            spec = importlib.util.find_spec(args[1])
        except ModuleNotFoundError:  # a parent package is missing
            spec = None
        assert spec is not None and spec.origin, f"{where}: no module {args[1]}"
        script, rest = Path(spec.origin), args[2:]
    else:
        script, rest = ROOT / args[0], args[1:]
        assert script.is_file(), f"{where}: {args[0]} does not exist"
    source = script.read_text()
    compile(source, str(script), "exec")
    declared = options_of(source)
    unknown = [a.split("=")[0] for a in rest if a.startswith("--") and a.split("=")[0] not in declared]
    assert not unknown, f"{where}: {script.name} declares no {unknown} (it has {sorted(declared)})"


def check_args(block: Block, monkeypatch: pytest.MonkeyPatch) -> None:
    from multiverse.launch.cli import build_parser
    from multiverse.launch.config import ConfigError, load_config
    from multiverse.launch.experiment import load_experiment

    monkeypatch.chdir(ROOT)  # paths such as launch/configs/local.yaml are relative to the repo
    for line, argv in commands(block):
        where = f"{block.doc.name}:{line}"
        if argv[0] in ("bash", "source", "."):
            script = Path(program(argv[1]) or ROOT / argv[1]) if argv[1].startswith(".venv/") else ROOT / argv[1]
            assert script.is_file(), f"{where}: {argv[1]} does not exist"
            if argv[0] == "bash":
                syntax = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
                assert syntax.returncode == 0, f"{where}: {argv[1]}: {syntax.stderr}"
            continue
        assert program(argv[0]), f"{where}: {argv[0]!r} is not installed"
        if re.fullmatch(r"python[\d.]*", Path(argv[0]).name) and len(argv) > 1:
            check_python_line(argv[1:], where)
            continue
        if subcommand(argv) is None:
            continue
        try:
            args = build_parser().parse_args(argv[1:])
        except SystemExit as exc:  # --help exits 0; a bad argument exits 2 after printing why
            assert exc.code == 0, f"{where}: `{shlex.join(argv)}` is refused by the parser (see stderr above)"
            continue
        try:
            if args.command in ("train", "submit", "sft") and getattr(args, "config", None):
                load_config(args.config, args.overrides)
            elif args.command == "experiment":
                load_experiment(args.config, args.overrides, budget=args.budget)
        except ConfigError as exc:
            pytest.fail(f"{where}: `{shlex.join(argv)}`: {exc}")


#: runs a python block as __main__, failing it when an env refuses one of its actions: an example whose action
#: is an no-op with info["action_error"] (a heading typed into, a word of another split) runs, but shows nothing
STRICT_RUNNER = """
import runpy, sys
from multiverse.envs.core import GameEnv
from multiverse.envs.web.env import WebEnv

def strict(cls):
    step = cls.step
    def checked(self, action):
        out = step(self, action)
        if "action_error" in out[4]:
            raise AssertionError(f"the env refused the action {action!r}: {out[4]['action_error']}")
        return out
    cls.step = checked

strict(GameEnv)
strict(WebEnv)
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def run_python(block: Block, tmp: Path) -> None:
    first = block.code.splitlines()[0] if block.code.strip() else ""
    name = re.match(r"^#\s*(\w+\.py)\b", first)
    script = tmp / (name.group(1) if name else "block.py")
    script.write_text(block.code)
    (tmp / "_readme_runner.py").write_text(STRICT_RUNNER)
    out = subprocess.run([sys.executable, "_readme_runner.py", script.name], cwd=tmp, env=environment(tmp),
                         stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=LINE_TIMEOUT)
    assert out.returncode == 0, f"{block.where}: the python block failed:\n{out.stdout[-1500:]}\n{out.stderr[-3000:]}"


@pytest.mark.parametrize("block", BLOCKS, ids=lambda b: f"{b.where}-{b.lang}-{b.check}")
def test_block_runs_as_written(block: Block, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if block.lang == "toml":
        tomllib.loads(block.code)
    elif block.lang == "python":
        run_python(block, tmp_path)
    elif block.check == "args":
        check_args(block, monkeypatch)
    else:
        run_bash(block, tmp_path)
