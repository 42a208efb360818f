"""Headless pygame drawing shared by every env that makes frames: imported only when pixels are asked for.

pygame draws on an off-screen Surface (``SDL_VIDEODRIVER=dummy``; never a
window) and frames come back as (H, W, 3) uint8 arrays: a game draws on
:func:`surface` and :class:`~multiverse.envs.core.GameEnv` returns it with
:func:`to_array`; a browser screenshot becomes a frame with :func:`decode_png`.
"""

from __future__ import annotations

import io
import os
from typing import Any

import numpy as np

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

import pygame  # after the environment variables above

_fonts: dict[int, Any] = {}


def surface(size: tuple[int, int]) -> pygame.Surface:
    """An off-screen RGB surface of (width, height)."""
    return pygame.Surface(size)


def font(px: int) -> Any:
    """pygame's bundled default font at ``px`` pixels (cached)."""
    if px not in _fonts:
        if not pygame.font.get_init():
            pygame.font.init()
        _fonts[px] = pygame.font.Font(None, px)
    return _fonts[px]


def to_array(surf: pygame.Surface, size: tuple[int, int] | None = None) -> np.ndarray:
    """The surface as an (H, W, 3) uint8 array, scaled (nearest) to (height, width) when given."""
    if size is not None and surf.get_size() != (size[1], size[0]):
        surf = pygame.transform.scale(surf, (size[1], size[0]))
    return np.ascontiguousarray(pygame.surfarray.pixels3d(surf).transpose(1, 0, 2))


def decode_png(png: bytes, size: tuple[int, int] | None = None) -> np.ndarray:
    """PNG bytes as an (H, W, 3) uint8 array, scaled (smoothly) to (height, width) when given."""
    surf = pygame.image.load(io.BytesIO(png), "shot.png")
    if size is not None:
        surf = pygame.transform.smoothscale(surf, (size[1], size[0]))
    return to_array(surf)


def draw_grid(surf: pygame.Surface, cells: np.ndarray, colors: dict[int, tuple[int, int, int]], cell: int,
              background: tuple[int, int, int]) -> None:
    """Fill ``surf`` with one ``cell``-pixel square per grid entry, coloured by code."""
    surf.fill(background)
    for code, color in colors.items():
        ys, xs = np.nonzero(cells == code)
        for y, x in zip(ys.tolist(), xs.tolist()):
            surf.fill(color, (x * cell, y * cell, cell, cell))
