"""Durable writes: what a temporary-file-then-rename write needs to survive a crash."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["fsync_dir"]


def fsync_dir(path: str | Path) -> None:
    """fsync a folder, so that the renames into it (``os.replace`` of a finished temporary file) are durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
