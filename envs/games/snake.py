"""Snake: steer a growing snake to the food without hitting a wall, an obstacle or itself."""

from __future__ import annotations

import dataclasses
from collections import deque
from typing import Any, ClassVar

import numpy as np
from gymnasium import spaces

from multiverse.envs.core import GameEnv
from multiverse.envs.games.common import DIRECTION_WORDS, DIRECTION_WORDS_PARAM, PALETTE_PARAM, PALETTES, describe_moves
from multiverse.envs.randomization import Choice, IntRange, Param, ParamSpace
from multiverse.envs.wrappers import NumericObservable

# Index i is action i: up, down, left, right (y grows downwards).
_DIRS = ((0, -1), (0, 1), (-1, 0), (1, 0))
_OPPOSITE = (1, 0, 3, 2)
_LEGAL = tuple(tuple(i for i in range(4) if i != _OPPOSITE[h]) for h in range(4))
_PLAIN = ("up", "down", "left", "right")
#: largest board side over train and held-out; the numeric observation is padded to it
_MAX_SIDE = 16


@dataclasses.dataclass(frozen=True)
class Params:
    width: int = 10
    height: int = 10
    target: int = 4
    obstacles: int = 0
    start_length: int = 3
    palette: str = "classic"
    text_style: str = "grid"
    action_words: str = "arrows"


class SnakeEnv(GameEnv, NumericObservable):
    """Classic Snake: eat food to grow, never run into a wall or yourself.

    ## Description
    A snake lives on a ``width`` x ``height`` board surrounded by walls, with
    ``obstacles`` extra wall cells inside. Every step it moves one cell in its
    heading; an action changes the heading first. When its head reaches the
    food it grows by one cell and new food appears on a random free cell. It
    dies when its head moves into a wall, an obstacle or its own body (the cell
    its tail is leaving this step is free). Eat ``target`` foods to win.

    ## Action Space
    ``Discrete(4)``: 0 up, 1 down, 2 left, 3 right (the words vary, see
    Randomization). Reversing into the neck (the direction opposite the
    heading) is illegal: it is left out of ``legal_actions`` and acts as a
    no-op. A no-op keeps the current heading; the snake still moves.

    ## Observation Space
    ``text``: the mission, then the board as an ASCII grid (``#`` wall, ``@``
    head, ``o`` body, ``*`` food, ``.`` empty), as coordinates (x from the
    left, y from the top; obstacles, head, body from neck to tail, food), or
    relative to the head (food offset, free cells before danger in each
    direction, distances to the walls, body and obstacle offsets); then the
    heading, length and food eaten, and which word moves which way.
    ``image`` (``pixels=True``): the board with its wall ring, 8 px per cell,
    scaled to ``image_size``. ``numeric_observation()``: four 16 x 16 planes
    (wall/obstacle with everything off the board counted as wall; body, valued
    (length - i) / length for segment i from the head, so it tells when each
    cell frees; head; food), flattened, then the heading one-hot, food eaten /
    target, foods left / 10 and length / 64.

    ## Rewards
    +1 for each food eaten, -1 on death, 0 otherwise.

    ## Starting State
    A straight snake of ``start_length`` cells at a random place and heading,
    with at least two free cells ahead. Obstacles on random cells off the
    edge rows, never touching each other (even diagonally) nor in the two
    cells ahead of the head, so the free cells stay connected without dead
    ends. Food on a random free cell.

    ## Episode End
    Terminates on death (failure) or when ``target`` foods are eaten
    (success). Truncated at the registered step limit (500).

    ## Arguments
    ``pixels``, ``image_size``, ``render_mode`` (``"rgb_array"``), as for every env.

    ## Randomization
    | parameter | nominal | train | held-out |
    |---|---|---|---|
    | width | 10 | 8..12 | 14..16 |
    | height | 10 | 8..12 | 14..16 |
    | target (foods to eat) | 4 | 3..6 | 8..10 |
    | obstacles (wall cells inside the board) | 0 | 0..3 | 5..6 |
    | start_length | 3 | 2..4 | 5..6 |
    | palette | classic | classic, pastel, night | mono, desert |
    | text_style | grid | grid, coords | relative |
    | action_words | arrows | arrows (up/down/left/right), moves (move up/move down/move left/move right) | compass (north/south/west/east) |

    ## Version History
    * v0: initial version.
    """

    ACTIONS: ClassVar[tuple[str, ...]] = ("up", "down", "left", "right")
    ACTION_WORDS = DIRECTION_WORDS
    ACTION_DESCRIPTIONS = describe_moves(DIRECTION_WORDS, "the snake heads {dir}", "{verb}")
    PARAM_SPACE = ParamSpace(
        Params,
        width=Param(IntRange(8, 12), IntRange(14, 16), "board columns inside the walls"),
        height=Param(IntRange(8, 12), IntRange(14, 16), "board rows inside the walls"),
        target=Param(IntRange(3, 6), IntRange(8, 10), "foods to eat to win"),
        obstacles=Param(IntRange(0, 3), IntRange(5, 6), "wall cells placed inside the board"),
        start_length=Param(IntRange(2, 4), IntRange(5, 6), "snake length at the start"),
        palette=PALETTE_PARAM,
        text_style=Param(Choice(("grid", "coords")), Choice(("relative",)), "how the board is written"),
        action_words=DIRECTION_WORDS_PARAM,
    )
    oracle_success_rate = 1.0
    CELL = 8

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.numeric_space = spaces.Box(0.0, 1.0, (4 * _MAX_SIDE * _MAX_SIDE + 7,), np.float32)

    @property
    def mission(self) -> str:
        n = self.params.target
        return f"Steer the snake to eat {n} pieces of food without hitting a wall, an obstacle or itself."

    # -- episode

    def _new_episode(self) -> None:
        p, rng = self.params, self.np_random
        w, h, n = p.width, p.height, p.start_length
        self.heading = int(rng.integers(4))
        dx, dy = _DIRS[self.heading]
        # The body trails behind the head and two cells ahead stay on the board.
        xs = self._head_range(w, dx, n)
        ys = self._head_range(h, dy, n)
        hx = int(rng.integers(xs[0], xs[1] + 1))
        hy = int(rng.integers(ys[0], ys[1] + 1))
        self.body: deque[tuple[int, int]] = deque((hx - k * dx, hy - k * dy) for k in range(n))
        self.body_set = set(self.body)
        self.blocked: set[tuple[int, int]] = set()
        self._place_obstacles({(hx + dx, hy + dy), (hx + 2 * dx, hy + 2 * dy)})
        self.eaten = 0
        self.dead = False
        self._spawn_food()
        self._bg: Any = None
        self._static_text()

    @staticmethod
    def _head_range(side: int, d: int, n: int) -> tuple[int, int]:
        if d > 0:
            return n - 1, side - 3
        if d < 0:
            return 2, side - n
        return 0, side - 1

    def _place_obstacles(self, keep_clear: set[tuple[int, int]]) -> None:
        p, rng = self.params, self.np_random
        # Obstacles sit off the edge rows and never touch each other, even
        # diagonally: each keeps a free ring around it, so the free cells stay
        # connected and every free cell keeps two free neighbours (no dead ends).
        for _ in range(p.obstacles):
            for _ in range(50):
                x = int(rng.integers(1, p.width - 1))
                y = int(rng.integers(1, p.height - 1))
                if (x, y) in self.body_set or (x, y) in keep_clear:
                    continue
                if any((x + dx, y + dy) in self.blocked for dx in (-1, 0, 1) for dy in (-1, 0, 1)):
                    continue
                self.blocked.add((x, y))
                break

    def _spawn_food(self) -> None:
        p, rng = self.params, self.np_random
        # Rejection sampling: the board is never more than a third full
        # (at most 6 + 10 body cells and 6 obstacles on >= 64 cells).
        while True:
            cell = (int(rng.integers(p.width)), int(rng.integers(p.height)))
            if cell not in self.body_set and cell not in self.blocked:
                self.food = cell
                return

    def _advance(self, action: int | None) -> tuple[float, bool]:
        if action is not None:
            self.heading = action
        dx, dy = _DIRS[self.heading]
        hx, hy = self.body[0]
        cell = (hx + dx, hy + dy)
        if (
            not (0 <= cell[0] < self.params.width and 0 <= cell[1] < self.params.height)
            or cell in self.blocked
            or (cell in self.body_set and cell != self.body[-1])
        ):
            self.dead = True
            return -1.0, True
        # Food is never on the body, so a growing snake never meets its own tail here.
        grow = cell == self.food
        if not grow:
            self.body_set.discard(self.body.pop())
        self.body.appendleft(cell)
        self.body_set.add(cell)
        if not grow:
            return 0.0, False
        self.eaten += 1
        if self.eaten >= self.params.target:
            return 1.0, True
        self._spawn_food()
        return 1.0, False

    def _legal(self) -> list[int]:
        return list(_LEGAL[self.heading])

    def _success(self) -> bool:
        return self.eaten >= self.params.target

    # -- oracle

    def _passable(self, cell: tuple[int, int]) -> bool:
        return 0 <= cell[0] < self.params.width and 0 <= cell[1] < self.params.height and cell not in self.blocked

    def _path(self, body: list[tuple[int, int]], goal: tuple[int, int]) -> list[tuple[int, int]] | None:
        """Shortest path (cells after the head) from ``body[0]`` to ``goal``; a body
        cell may be entered once the tail has moved off it, and never the neck first."""
        n = len(body)
        frees_at = {c: n - k for k, c in enumerate(body)}
        start = body[0]
        neck = body[1] if n > 1 else None
        parent: dict[tuple[int, int], tuple[int, int] | None] = {start: None}
        frontier = [start]
        depth = 0
        while frontier:
            depth += 1
            nxt = []
            for x, y in frontier:
                for dx, dy in _DIRS:
                    c = (x + dx, y + dy)
                    if c in parent or not self._passable(c):
                        continue
                    if depth == 1 and c == neck:
                        continue
                    # Not marked seen when blocked: a later, longer route may find it free.
                    if frees_at.get(c, 0) > depth:
                        continue
                    parent[c] = (x, y)
                    if c == goal:
                        path = [c]
                        while parent[path[-1]] != start:
                            path.append(parent[path[-1]])  # type: ignore[arg-type]
                        return path[::-1]
                    nxt.append(c)
            frontier = nxt
        return None

    def _area(self, body: list[tuple[int, int]]) -> int:
        """Cells reachable from the head with the body (its tail excepted) as walls."""
        walls = set(body[:-1])
        start = body[0]
        seen = {start}
        todo = [start]
        while todo:
            x, y = todo.pop()
            for dx, dy in _DIRS:
                c = (x + dx, y + dy)
                if c not in seen and c not in walls and self._passable(c):
                    seen.add(c)
                    todo.append(c)
        return len(seen)

    def _direction(self, frm: tuple[int, int], to: tuple[int, int]) -> int:
        return _DIRS.index((to[0] - frm[0], to[1] - frm[1]))

    def oracle_action(self) -> int:
        body = list(self.body)
        n = len(body)
        path = self._path(body, self.food)
        if path is not None:
            # Only take the food if the snake can still reach its tail afterwards.
            after = (path[::-1] + body)[: n + 1]
            if self.eaten + 1 >= self.params.target or self._path(after, after[-1]) is not None:
                return self._direction(body[0], path[0])
        best, best_score = _LEGAL[self.heading][0], None
        hx, hy = body[0]
        fx, fy = self.food
        for a in _LEGAL[self.heading]:
            dx, dy = _DIRS[a]
            c = (hx + dx, hy + dy)
            if not self._passable(c) or (c in self.body_set and c != body[-1]):
                continue
            grow = c == self.food
            after = [c] + (body if grow else body[:-1])
            safe = self._path(after, after[-1]) is not None
            score = (safe, self._area(after), -abs(c[0] - fx) - abs(c[1] - fy))
            if best_score is None or score > best_score:
                best, best_score = a, score
        return best

    # -- text

    def _static_text(self) -> None:
        p, names = self.params, self.action_names
        w, h = p.width, p.height
        self._directions = (
            f"Directions: {names[0]!r} moves toward the top, {names[1]!r} toward the bottom, "
            f"{names[2]!r} to the left, {names[3]!r} to the right; reversing into your neck is not allowed."
        )
        if p.text_style == "grid":
            self._stride = w + 3
            row = "#" + "." * w + "#\n"
            base = bytearray(("#" * (w + 2) + "\n" + row * h + "#" * (w + 2)).encode())
            for x, y in self.blocked:
                base[(y + 1) * self._stride + x + 1] = ord("#")
            self._grid = bytes(base)
            self._legend = "Legend: # wall, @ your head, o your body, * food, . empty."
        elif p.text_style == "coords":
            obs = " ".join(f"({x},{y})" for x, y in sorted(self.blocked)) or "none"
            self._header = (
                f"Board {w} wide, {h} tall (x from 0 at the left, y from 0 at the top); "
                f"everything outside it is wall.\nObstacles: {obs}."
            )

    def _status(self) -> str:
        state = " You crashed." if self.dead else ""
        return (
            f"Moving {self.action_names[self.heading]!r} ({_PLAIN[self.heading]}). Length {len(self.body)}. "
            f"Food eaten {self.eaten}/{self.params.target}.{state}\n{self._directions}"
        )

    def _text(self) -> str:
        style = self.params.text_style
        if style == "grid":
            g = bytearray(self._grid)
            s = self._stride
            for x, y in self.body:
                g[(y + 1) * s + x + 1] = 111  # "o"
            hx, hy = self.body[0]
            g[(hy + 1) * s + hx + 1] = 64  # "@"
            if self.eaten < self.params.target:
                fx, fy = self.food
                g[(fy + 1) * s + fx + 1] = 42  # "*"
            return f"{g.decode()}\n{self._legend}\n{self._status()}"
        hx, hy = self.body[0]
        food = self.eaten < self.params.target
        if style == "coords":
            body = " ".join(f"({x},{y})" for x, y in list(self.body)[1:]) or "none"
            food_s = f"Food at ({self.food[0]},{self.food[1]})." if food else "No food left."
            return f"{self._header}\nHead at ({hx},{hy}). Body from neck to tail: {body}.\n{food_s}\n{self._status()}"
        return self._relative_text(hx, hy, food)

    @staticmethod
    def _offset(dx: int, dy: int) -> str:
        parts = []
        if dy:
            parts.append(f"{abs(dy)} {'up' if dy < 0 else 'down'}")
        if dx:
            parts.append(f"{abs(dx)} {'left' if dx < 0 else 'right'}")
        return " ".join(parts) or "here"

    def _relative_text(self, hx: int, hy: int, food: bool) -> str:
        p = self.params
        free = []
        for name, (dx, dy) in zip(_PLAIN, _DIRS):
            k, x, y = 0, hx + dx, hy + dy
            while self._passable((x, y)) and ((x, y) not in self.body_set or (x, y) == self.body[-1]):
                k, x, y = k + 1, x + dx, y + dy
            what = "wall" if not (0 <= x < p.width and 0 <= y < p.height) else (
                "obstacle" if (x, y) in self.blocked else "your body")
            free.append(f"{name} {k} then {what}")
        body = "; ".join(self._offset(x - hx, y - hy) for x, y in list(self.body)[1:]) or "none"
        obstacles = "; ".join(self._offset(x - hx, y - hy) for x, y in sorted(self.blocked)) or "none"
        food_s = f"Food: {self._offset(self.food[0] - hx, self.food[1] - hy)} from your head." if food else "No food left."
        return (
            f"{food_s}\nFree cells before danger: {', '.join(free)}.\n"
            f"Walls: {hy} free rows above you, {p.height - 1 - hy} below, "
            f"{hx} free columns to the left, {p.width - 1 - hx} to the right.\n"
            f"Your body from neck to tail, relative to your head: {body}.\n"
            f"Obstacles relative to your head: {obstacles}.\n{self._status()}"
        )

    # -- pixels

    def _frame_size(self) -> tuple[int, int]:
        return (self.params.width + 2) * self.CELL, (self.params.height + 2) * self.CELL

    def _draw(self, surface: Any) -> None:
        c, pal = self.CELL, PALETTES[self.params.palette]
        if self._bg is None:
            # Walls and obstacles never change within an episode: draw them once.
            self._bg = surface.copy()
            self._bg.fill(pal["wall"])
            self._bg.fill(pal["bg"], (c, c, self.params.width * c, self.params.height * c))
            for x, y in self.blocked:
                self._bg.fill(pal["wall"], ((x + 1) * c, (y + 1) * c, c, c))
        surface.blit(self._bg, (0, 0))
        if self.eaten < self.params.target:
            fx, fy = self.food
            surface.fill(pal["item"], ((fx + 1) * c + 1, (fy + 1) * c + 1, c - 2, c - 2))
        body = iter(self.body)
        hx, hy = next(body)
        for x, y in body:
            surface.fill(pal["other"], ((x + 1) * c, (y + 1) * c, c, c))
        surface.fill(pal["agent"], ((hx + 1) * c, (hy + 1) * c, c, c))

    # -- RLlib

    def numeric_observation(self) -> np.ndarray:
        p, m = self.params, _MAX_SIDE
        planes = np.zeros((4, m, m), dtype=np.float32)
        planes[0] = 1.0
        planes[0, : p.height, : p.width] = 0.0
        for x, y in self.blocked:
            planes[0, y, x] = 1.0
        n = len(self.body)
        for k, (x, y) in enumerate(self.body):
            planes[1, y, x] = (n - k) / n
        hx, hy = self.body[0]
        planes[2, hy, hx] = 1.0
        if self.eaten < p.target:
            planes[3, self.food[1], self.food[0]] = 1.0
        extra = np.zeros(7, dtype=np.float32)
        extra[self.heading] = 1.0
        extra[4] = self.eaten / p.target
        extra[5] = (p.target - self.eaten) / 10
        extra[6] = min(n / 64, 1.0)
        return np.concatenate((planes.ravel(), extra))
