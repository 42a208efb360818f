"""Durable writes: what a temporary-file-then-rename write needs to survive a crash, and a folder's manifest
(every file's size and sha256, recorded when it was written) to tell later whether it is still whole."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

__all__ = ["MANIFEST", "check_folder", "file_problem", "file_sha256", "fsync_dir", "write_manifest",
           "write_text_atomic"]

#: a folder's manifest: {"files": {relative path: {"bytes": N, "sha256": HEX}}}
MANIFEST = "manifest.json"


def fsync_dir(path: str | Path) -> None:
    """fsync a folder, so that the renames into it (``os.replace`` of a finished temporary file) are durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` whole or not at all: a hidden temporary file beside ``path``, fsynced, then renamed over it.
    (Call :func:`fsync_dir` on the folder too when the rename itself must survive a crash.)"""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w", newline="") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def file_problem(path: Path, recorded: dict[str, Any], name: str) -> str | None:
    """What is wrong with ``path`` against its recorded ``{"bytes", "sha256"}`` (None: it matches), naming it ``name``."""
    if not path.is_file():
        return f"{name} is missing"
    size = path.stat().st_size
    if size != recorded["bytes"]:
        return f"{name} is {size} bytes, {recorded['bytes']} recorded" + (": truncated" if size < recorded["bytes"] else "")
    if file_sha256(path) != recorded["sha256"]:
        return f"{name}: sha256 differs from the recorded one"
    return None


def write_manifest(folder: str | Path) -> None:
    """Record every file under ``folder`` (size, sha256) in ``folder/manifest.json``, fsynced: call it last, on the
    temporary folder, before renaming it into place."""
    folder = Path(folder)
    files = {p.relative_to(folder).as_posix(): {"bytes": p.stat().st_size, "sha256": file_sha256(p)}
             for p in sorted(folder.rglob("*")) if p.is_file() and p.name != MANIFEST}
    with open(folder / MANIFEST, "w") as f:
        f.write(json.dumps({"files": files}, indent=1) + "\n")
        f.flush()
        os.fsync(f.fileno())


def check_folder(folder: str | Path, required: tuple[str, ...] = ()) -> str | None:
    """Why ``folder`` is not as it was written (None: it is): a file that differs from its manifest, or with no
    manifest (a folder written before manifests), a ``required`` file missing, a JSON file that does not parse or
    a safetensors file whose header does not (or does not match the file's size)."""
    folder = Path(folder)
    manifest = folder / MANIFEST
    if manifest.is_file():
        try:
            files = json.loads(manifest.read_text())["files"]
        except (ValueError, KeyError, TypeError) as error:
            return f"{MANIFEST} is not readable: {error}"
        for name, recorded in files.items():
            problem = file_problem(folder / name, recorded, name)
            if problem:
                return problem
        return None
    for name in required:
        if not (folder / name).is_file():
            return f"{name} is missing"
    for path in sorted(folder.rglob("*.json")):
        try:
            json.loads(path.read_text())
        except (ValueError, UnicodeDecodeError) as error:
            return f"{path.relative_to(folder).as_posix()} is not valid JSON: {error}"
    from safetensors import safe_open

    for path in sorted(folder.rglob("*.safetensors")):
        try:
            with safe_open(str(path), framework="numpy"):  # reads the header; a truncated file fails here
                pass
        except Exception as error:  # safetensors raises its own error types
            return f"{path.relative_to(folder).as_posix()} cannot be read: {error}"
    return None
