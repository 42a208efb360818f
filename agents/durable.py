"""Durable writes: what a temporary-file-then-rename write needs to survive a crash."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["fsync_dir", "write_text_atomic"]


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
