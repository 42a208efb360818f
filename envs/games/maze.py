"""Maze: find the goal in a procedurally generated maze, fetching keys to open locked doors."""

from __future__ import annotations

import dataclasses
from collections import deque
from typing import Any, ClassVar

import numpy as np
from gymnasium import spaces

from multiverse.envs.core import GameEnv
from multiverse.envs.games.common import DIRECTION_WORDS, DIRECTION_WORDS_PARAM, PALETTE_PARAM, PALETTES, describe_moves
from multiverse.envs.randomization import Choice, IntRange, Param, ParamSpace, Uniform
from multiverse.envs.wrappers import NumericObservable


@dataclasses.dataclass(frozen=True)
class Params:
    rooms: int = 4
    doors: int = 1
    loopiness: float = 0.05
    palette: str = "classic"
    text_style: str = "grid"
    action_words: str = "arrows"


#: key/door colours: the name used in the text and the RGB drawn in pixels
KEY_COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (230, 50, 50),
    "blue": (50, 110, 240),
    "green": (40, 190, 70),
    "yellow": (240, 210, 30),
    "purple": (170, 70, 220),
}
_COLOUR_NAMES = tuple(KEY_COLOURS)
MAX_ROOMS = 7
MAX_SIDE = 2 * MAX_ROOMS + 1
MAX_DOORS = 2
_WALL, _FLOOR = 1, 0
_CHANNELS = 4 + 2 * MAX_DOORS  # floor, wall, agent, goal, key per pair, locked door per pair


class MazeEnv(GameEnv, NumericObservable):
    """Reach the goal of a maze, fetching coloured keys to open the doors in the way.

    ## Description
    The maze is a square grid of ``2 * rooms + 1`` cells: rooms on the odd
    coordinates, joined by corridors carved by a randomized depth-first search
    (a perfect maze), then a ``loopiness`` fraction of the remaining inner
    walls knocked out to make loops. ``doors`` locked doors sit on corridors
    of the path from the start to the goal, each with a distinct colour; the
    key of each door lies somewhere the agent can reach before that door.
    Extra openings are only made inside the regions the doors separate, so
    every door stays a chokepoint: the goal cannot be reached without opening
    all of them.

    ## Action Space
    ``Discrete(4)``: 0 up, 1 down, 2 left, 3 right (the words vary, see
    Randomization). Every action is always legal: walking into a wall, or into
    a locked door without its key, leaves the agent in place. Stepping onto a
    key picks it up (keys are kept). Walking into a locked door while holding
    its key unlocks it and moves the agent into the doorway in the same step;
    an opened door stays open.

    ## Observation Space
    ``text``: the mission, then one of three views (x from 0 at the left, y
    from 0 at the top, up is toward y=0): ``grid``, an ASCII map (``#`` wall,
    ``.`` floor, ``@`` you, ``*`` goal, a lowercase colour initial for a key
    and the uppercase initial for its locked door, with a legend);
    ``coords``, the wall x positions of every row plus the positions of you,
    the goal, the keys and the doors; ``local`` (held out), what lies in each
    direction from you (how far the corridor runs, where side passages branch
    off and what stops it) plus the positions of the goal, keys and doors,
    which is only partially observable
    (the layout must be remembered while exploring). Every view says which
    keys you hold and which word is which direction. ``image``
    (``pixels=True``): the maze, 8 px per cell, scaled to ``image_size``.
    ``numeric_observation()``: a 15x15 map padded at the bottom/right with 8
    one-hot channels (floor, wall, agent, goal, key of door 1, key of door 2,
    locked door 1, locked door 2; padding is all zeros), flattened
    channel-major, then 2 flags for the keys held.

    ## Rewards
    +1 on reaching the goal, 0 otherwise (no step penalty, no key shaping).

    ## Starting State
    The agent on a random room; the goal on a room at least two thirds of the
    farthest tree distance away; doors on distinct corridors of the start-goal
    path; each key on a random room (not the start or the goal) on the start
    side of its door. Door colours are drawn from red, blue, green, yellow
    and purple.

    ## Episode End
    Terminates when the agent steps onto the goal (success). Truncated at the
    registered step limit (300); the oracle needs under 100 steps even on
    the largest held-out mazes.

    ## Arguments
    ``pixels``, ``image_size``, ``render_mode`` (``"rgb_array"``), as for every env.

    ## Randomization
    | parameter | nominal | train | held-out |
    |---|---|---|---|
    | rooms (per side; the grid is 2 * rooms + 1) | 4 (9x9) | 3..5 (7x7..11x11) | 6..7 (13x13..15x15) |
    | doors (key/door pairs) | 1 | 0..1 | 2 |
    | loopiness (fraction of remaining inner walls opened) | 0.05 | [0, 0.1] | [0.15, 0.3] |
    | palette | classic | classic, pastel, night | mono, desert |
    | text_style | grid | grid, coords | local |
    | action_words | arrows | arrows (up/down/left/right), moves (move up/move down/move left/move right) | compass (north/south/west/east) |

    ## Version History
    * v0: initial version.
    """

    ACTIONS: ClassVar[tuple[str, ...]] = ("up", "down", "left", "right")
    ACTION_WORDS = DIRECTION_WORDS
    ACTION_DESCRIPTIONS = describe_moves(DIRECTION_WORDS, "you step one cell {dir}", "{verb}")
    PARAM_SPACE = ParamSpace(
        Params,
        rooms=Param(IntRange(3, 5), IntRange(6, 7), "rooms per side; the grid is 2 * rooms + 1 cells"),
        doors=Param(IntRange(0, 1), IntRange(2, 2), "locked doors (each with its key) between start and goal"),
        loopiness=Param(
            Uniform(0.0, 0.1), Uniform(0.15, 0.3), "fraction of remaining inner walls opened to make loops"
        ),
        palette=PALETTE_PARAM,
        text_style=Param(Choice(("grid", "coords")), Choice(("local",)), "how the maze is written"),
        action_words=DIRECTION_WORDS_PARAM,
    )
    oracle_success_rate = 1.0
    CELL = 8

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.numeric_space = spaces.Box(0.0, 1.0, (_CHANNELS * MAX_SIDE * MAX_SIDE + MAX_DOORS,), np.float32)
        self._mission = "Reach the goal of the maze."
        self._bg: Any = None

    @property
    def mission(self) -> str:
        return self._mission

    # -- generation

    def _new_episode(self) -> None:
        p = self.params
        self.side = 2 * p.rooms + 1
        while not self._generate(p.rooms, p.doors, p.loopiness):
            pass
        self.held = [False] * p.doors
        names = [self.colours[j] for j in range(p.doors)]
        if p.doors == 0:
            self._mission = "Find your way through the maze to the goal."
        elif p.doors == 1:
            self._mission = (
                f"Reach the goal: it lies behind a locked {names[0]} door, so fetch the {names[0]} key first."
            )
        else:
            self._mission = (
                f"Reach the goal: it lies behind locked {' and '.join(names)} doors; "
                "fetch each door's key (same colour) to open it."
            )
        self._static_text()
        self._dirty = True
        self._bg = None

    def _generate(self, n: int, k: int, loopiness: float) -> bool:
        """One attempt at a maze with ``k`` doors; False when the doors or keys did not fit."""
        rng, s = self.np_random, 2 * n + 1
        walls = bytearray([_WALL]) * (s * s)
        rooms = n * n
        adj: list[list[int]] = [[] for _ in range(rooms)]

        def cell(r: int) -> int:
            return (2 * (r // n) + 1) * s + 2 * (r % n) + 1

        def between(a: int, b: int) -> int:
            return (cell(a) + cell(b)) // 2

        # Randomized DFS; drawing all the random numbers at once keeps reset cheap.
        draws = rng.random(rooms).tolist()
        start_room = int(rng.integers(rooms))
        seen = [False] * rooms
        seen[start_room] = True
        walls[cell(start_room)] = _FLOOR
        stack, d = [start_room], 0
        while stack:
            r = stack[-1]
            y, x = divmod(r, n)
            options = ((r - n, y > 0), (r + n, y < n - 1), (r - 1, x > 0), (r + 1, x < n - 1))
            nbrs = [q for q, ok in options if ok and not seen[q]]
            if not nbrs:
                stack.pop()
                continue
            q = nbrs[int(draws[d] * len(nbrs))]
            d += 1
            seen[q] = True
            walls[cell(q)] = _FLOOR
            walls[between(r, q)] = _FLOOR
            adj[r].append(q)
            adj[q].append(r)
            stack.append(q)

        # Tree distances from the start pick a far goal and the path the doors go on.
        parent = [-1] * rooms
        dist = [-1] * rooms
        dist[start_room] = 0
        order = [start_room]
        for r in order:
            for q in adj[r]:
                if dist[q] < 0:
                    dist[q], parent[q] = dist[r] + 1, r
                    order.append(q)
        far = max(dist)
        if far < max(k, 1):
            return False
        goals = [r for r in range(rooms) if dist[r] * 3 >= far * 2 and dist[r] > 0]
        goal_room = goals[int(rng.integers(len(goals)))]
        path = [goal_room]
        while path[-1] != start_room:
            path.append(parent[path[-1]])
        path.reverse()

        # Doors cut path edges; the tree falls into k + 1 regions ordered along the path.
        if len(path) - 1 < k:
            return False
        cuts = sorted(rng.choice(len(path) - 1, size=k, replace=False).tolist()) if k else []
        cut_edges = {(path[i], path[i + 1]) for i in cuts} | {(path[i + 1], path[i]) for i in cuts}
        region = [-1] * rooms
        seeds = [path[0]] + [path[i + 1] for i in cuts]
        for j, seed in enumerate(seeds):
            region[seed] = j
            todo = [seed]
            while todo:
                r = todo.pop()
                for q in adj[r]:
                    if region[q] < 0 and (r, q) not in cut_edges:
                        region[q] = j
                        todo.append(q)
        keys: dict[int, int] = {}
        for j in range(k):
            cands = [
                r for r in range(rooms)
                if region[r] <= j and r not in (start_room, goal_room) and cell(r) not in keys
            ]
            if not cands:
                return False
            keys[cell(cands[int(rng.integers(len(cands)))])] = j

        # Loops only inside a region, so a door can never be walked around.
        inner = [(r, r + 1) for r in range(rooms) if r % n < n - 1] + [(r, r + n) for r in range(rooms - n)]
        draws = rng.random(len(inner)).tolist()
        for (a, b), u in zip(inner, draws):
            if u < loopiness and region[a] == region[b]:
                walls[between(a, b)] = _FLOOR

        colours = rng.permutation(len(_COLOUR_NAMES))[:k].tolist()
        self.colours = [_COLOUR_NAMES[c] for c in colours]
        self.walls = walls
        self.pos = cell(start_room)
        self.goal = cell(goal_room)
        self.keys = keys
        self.key_home = {j: c for c, j in keys.items()}
        self.doors = {between(path[i], path[i + 1]): j for j, i in enumerate(cuts)}
        self.door_home = {j: c for c, j in self.doors.items()}
        self._moves = (-s, s, -1, 1)
        return True

    # -- dynamics

    def _advance(self, action: int | None) -> tuple[float, bool]:
        if action is None:
            return 0.0, False
        nxt = self.pos + self._moves[action]
        # The outer ring is all wall, so a move never leaves the grid.
        if self.walls[nxt]:
            return 0.0, False
        door = self.doors.get(nxt)
        if door is not None:
            if not self.held[door]:
                return 0.0, False
            del self.doors[nxt]
            self._dirty = True
        self.pos = nxt
        key = self.keys.pop(nxt, None)
        if key is not None:
            self.held[key] = True
            self._dirty = True
        if nxt == self.goal:
            return 1.0, True
        return 0.0, False

    def _success(self) -> bool:
        return self.pos == self.goal

    def _passable(self, c: int) -> bool:
        if self.walls[c]:
            return False
        door = self.doors.get(c)
        return door is None or self.held[door]

    def oracle_action(self) -> int:
        """BFS through everything passable now (locked doors count when their key is held):
        head for the goal when it is reachable, else for the nearest key not yet held."""
        start, moves = self.pos, self._moves
        prev = {start: -1}
        queue = deque([start])
        target = None
        while queue:
            c = queue.popleft()
            if c == self.goal:
                target = c
                break
            if target is None and c in self.keys:
                target = c  # keep searching: the goal beats any key
            for m in moves:
                q = c + m
                if q not in prev and self._passable(q):
                    prev[q] = c
                    queue.append(q)
        if target is None or target == start:
            return 0
        while prev[target] != start:
            target = prev[target]
        return moves.index(target - start)

    # -- text

    def _xy(self, c: int) -> str:
        y, x = divmod(c, self.side)
        return f"(x={x}, y={y})"

    def _static_text(self) -> None:
        p, s, w = self.params, self.side, self.action_names
        if p.action_words == "arrows":
            self._moves_line = "Actions: up (toward y=0), down, left (toward x=0), right."
        else:
            self._moves_line = (
                f"Actions: {w[0]} = up (toward y=0), {w[1]} = down, {w[2]} = left (toward x=0), {w[3]} = right."
            )
        legend = "Legend: # wall, . floor, @ you, * goal"
        for name in self.colours:
            legend += f", {name[0]} {name} key, {name[0].upper()} locked {name} door"
        self._legend = legend + "."
        self._header = f"Maze {s}x{s} (x from 0 at the left, y from 0 at the top)."
        rows = []
        for y in range(s):
            xs = [x for x in range(s) if self.walls[y * s + x]]
            rows.append(f"y={y}: " + ("all" if len(xs) == s else ",".join(map(str, xs))))
        self._wall_rows = "Walls (x positions) by row:\n" + "\n".join(rows)

    def _objects(self) -> str:
        parts = [f"Goal at {self._xy(self.goal)}."]
        for j, name in enumerate(self.colours):
            key = "held by you" if self.held[j] else f"at {self._xy(self.key_home[j])}"
            door = self.door_home[j]
            state = "locked" if door in self.doors else "open"
            parts.append(f"{name.capitalize()} key {key}; {name} door at {self._xy(door)} ({state}).")
        return " ".join(parts)

    def _holding(self) -> str:
        held = [f"{n} key" for n, h in zip(self.colours, self.held) if h]
        return "You hold: " + (", ".join(held) if held else "nothing") + "."

    def _rebuild(self) -> None:
        s = self.side
        chars = ["#" if w else "." for w in self.walls]
        chars[self.goal] = "*"
        for c, j in self.keys.items():
            chars[c] = self.colours[j][0]
        for c, j in self.doors.items():
            chars[c] = self.colours[j][0].upper()
        self._rows = ["".join(chars[y * s:(y + 1) * s]) for y in range(s)]
        self._objects_text = self._objects() + " " + self._holding()
        self._dirty = False

    def _look(self, m: int) -> str:
        """What walking straight in direction ``m`` meets, and where side passages branch off."""
        c, n, walls = self.pos, 0, self.walls
        sides = (1, -1) if m in (-self.side, self.side) else (self.side, -self.side)
        branches: list[str] = []
        end = ""
        while True:
            q = c + m
            if walls[q]:
                end = "wall" if n == 0 else f"open for {n} cell{'s' * (n != 1)}, then wall"
                break
            door = self.doors.get(q)
            if door is not None:
                end = f"the locked {self.colours[door]} door" + (
                    " right next to you" if n == 0 else f" after {n} open cell{'s' * (n != 1)}"
                )
                break
            c, n = q, n + 1
            if c == self.goal:
                end = f"the goal {n} cell{'s' * (n != 1)} away"
                break
            if not (walls[c + sides[0]] and walls[c + sides[1]]):
                branches.append(str(n))
        if branches:
            end += f" (side passages after {', '.join(branches)})"
        return end

    def _text(self) -> str:
        if self._dirty:
            self._rebuild()
        style = self.params.text_style
        where = f"You are at {self._xy(self.pos)}."
        if style == "grid":
            y, x = divmod(self.pos, self.side)
            rows = self._rows.copy()
            row = rows[y]
            rows[y] = row[:x] + "@" + row[x + 1:]
            return "\n".join(rows) + f"\n{self._legend}\n{where} {self._holding()}\n{self._moves_line}"
        if style == "coords":
            return f"{self._header}\n{self._wall_rows}\n{where}\n{self._objects_text}\n{self._moves_line}"
        around = "; ".join(f"{w}: {self._look(m)}" for w, m in zip(self.action_names, self._moves))
        return f"{self._header}\n{where}\nAround you: {around}.\n{self._objects_text}\n{self._moves_line}"

    # -- pixels

    def _frame_size(self) -> tuple[int, int]:
        return self.side * self.CELL, self.side * self.CELL

    def _draw(self, surface: Any) -> None:
        from multiverse.envs import render

        c, s, pal = self.CELL, self.side, PALETTES[self.params.palette]
        if self._bg is None:
            self._bg = render.surface(self._frame_size())
            cells = np.frombuffer(bytes(self.walls), dtype=np.uint8).reshape(s, s)
            render.draw_grid(self._bg, cells, {_WALL: pal["wall"]}, c, pal["bg"])
        surface.blit(self._bg, (0, 0))
        gy, gx = divmod(self.goal, s)
        surface.fill(pal["goal"], (gx * c + 1, gy * c + 1, c - 2, c - 2))
        for cell_, j in self.doors.items():
            y, x = divmod(cell_, s)
            surface.fill(KEY_COLOURS[self.colours[j]], (x * c, y * c, c, c))
            surface.fill(pal["bg"], (x * c + 3, y * c + 2, 2, 3))  # keyhole
        for cell_, j in self.keys.items():
            y, x = divmod(cell_, s)
            col = KEY_COLOURS[self.colours[j]]
            surface.fill(col, (x * c + 2, y * c + 1, 4, 3))  # bow
            surface.fill(col, (x * c + 3, y * c + 4, 2, 3))  # shaft
        y, x = divmod(self.pos, s)
        surface.fill(pal["agent"], (x * c + 1, y * c + 1, c - 2, c - 2))

    # -- RLlib

    def numeric_observation(self) -> np.ndarray:
        s, m = self.side, MAX_SIDE
        obs = np.zeros((_CHANNELS, m, m), dtype=np.float32)
        walls = np.frombuffer(bytes(self.walls), dtype=np.uint8).reshape(s, s)
        obs[1, :s, :s] = walls
        obs[0, :s, :s] = 1 - walls
        for c, j in self.doors.items():
            y, x = divmod(c, s)
            obs[0, y, x] = 0.0
            obs[4 + MAX_DOORS + j, y, x] = 1.0
        for c, j in self.keys.items():
            y, x = divmod(c, s)
            obs[4 + j, y, x] = 1.0
        y, x = divmod(self.pos, s)
        obs[2, y, x] = 1.0
        y, x = divmod(self.goal, s)
        obs[3, y, x] = 1.0
        held = np.zeros(MAX_DOORS, dtype=np.float32)
        held[: len(self.held)] = self.held
        return np.concatenate([obs.ravel(), held])
