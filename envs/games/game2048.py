"""2048: slide and merge numbered tiles until one reaches the target value."""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any, ClassVar

import numpy as np
from gymnasium import spaces

from multiverse.envs.core import GameEnv
from multiverse.envs.games.common import PALETTE_PARAM, PALETTES, describe_moves
from multiverse.envs.randomization import Choice, IntRange, Param, ParamSpace, Uniform
from multiverse.envs.wrappers import NumericObservable

# A board is a tuple of row tuples of exponents (0 empty, e for the tile 2**e).
Board = tuple[tuple[int, ...], ...]

#: line -> (slid towards index 0, merged value, slid towards the end, merged value,
#: whether sliding towards 0 changes it, whether sliding towards the end does);
#: shared by every instance, since lines repeat across boards, episodes and the oracle's search
_LINES: dict[tuple[int, ...], tuple[tuple[int, ...], int, tuple[int, ...], int, bool, bool]] = {}
#: line -> the oracle's heuristic value of that line
_LINE_SCORES: dict[tuple[int, ...], float] = {}
#: bound on each cache (a few tens of MB at most); clearing is cheap and refills fast
_CACHE_LIMIT = 100_000

MAX_SIZE = 5  # largest board over train and held-out: numeric_observation pads to it
MAX_EXP = 10  # the largest tile is the target, at most 512 = 2**9


def _slide(line: tuple[int, ...]) -> tuple[tuple[int, ...], int]:
    """Slide a line towards index 0, merging equal neighbours once each."""
    out: list[int] = []
    merged = 0
    pending = 0
    for v in line:
        if not v:
            continue
        if v == pending:
            out.append(v + 1)
            merged += 1 << (v + 1)
            pending = 0
        else:
            if pending:
                out.append(pending)
            pending = v
    if pending:
        out.append(pending)
    out.extend([0] * (len(line) - len(out)))
    return tuple(out), merged


def _line(line: tuple[int, ...]) -> tuple[tuple[int, ...], int, tuple[int, ...], int, bool, bool]:
    entry = _LINES.get(line)
    if entry is None:
        if len(_LINES) >= _CACHE_LIMIT:
            _LINES.clear()
        lo, lo_score = _slide(line)
        hi, hi_score = _slide(line[::-1])
        hi = hi[::-1]
        entry = _LINES[line] = (lo, lo_score, hi, hi_score, lo != line, hi != line)
    return entry


def _all_moves(rows: Board) -> list[tuple[Board, int]]:
    """(board after the move, merged value) for up, down, left, right."""
    er = [_LINES.get(r) or _line(r) for r in rows]
    ec = [_LINES.get(c) or _line(c) for c in zip(*rows)]
    return [
        (tuple(zip(*[e[0] for e in ec])), sum(e[1] for e in ec)),
        (tuple(zip(*[e[2] for e in ec])), sum(e[3] for e in ec)),
        (tuple([e[0] for e in er]), sum(e[1] for e in er)),
        (tuple([e[2] for e in er]), sum(e[3] for e in er)),
    ]


def _line_score(line: tuple[int, ...]) -> float:
    """Heuristic value of one row or column: empty cells, merge chances and
    monotone order are good, large scattered tiles are bad (the weights of the
    well-known nneonneo 2048 expectimax player)."""
    s = _LINE_SCORES.get(line)
    if s is not None:
        return s
    if len(_LINE_SCORES) >= _CACHE_LIMIT:
        _LINE_SCORES.clear()
    empty = line.count(0)
    merges = 0
    prev = 0
    counter = 0
    total = 0.0
    for v in line:
        total += v**3.5
        if not v:
            continue
        if prev == v:
            counter += 1
        elif counter > 0:
            merges += 1 + counter
            counter = 0
        prev = v
    if counter > 0:
        merges += 1 + counter
    mono_l = mono_r = 0.0
    for a, b in itertools.pairwise(line):
        if a > b:
            mono_l += a**4 - b**4
        else:
            mono_r += b**4 - a**4
    s = 200_000.0 + 270.0 * empty + 700.0 * merges - 47.0 * min(mono_l, mono_r) - 11.0 * total
    _LINE_SCORES[line] = s
    return s


def _board_score(rows: Board) -> float:
    ls = _LINE_SCORES
    s = 0.0
    for r in rows:
        v = ls.get(r)
        s += _line_score(r) if v is None else v
    for c in zip(*rows):
        v = ls.get(c)
        s += _line_score(c) if v is None else v
    return s


@dataclasses.dataclass(frozen=True)
class Params:
    size: int = 4
    target: int = 256
    p4: float = 0.1
    start_tiles: int = 2
    palette: str = "classic"
    text_style: str = "grid"
    action_words: str = "arrows"


class Game2048Env(GameEnv, NumericObservable):
    """Slide numbered tiles on a square board and merge equal ones into a target tile.

    ## Description
    A ``size`` x ``size`` board holds tiles valued in powers of two. A move
    slides every tile as far as it goes in one direction; two equal tiles that
    meet merge into one of twice the value (each tile merges at most once per
    move, the pair nearest the wall first). After every move a new tile appears
    in a random empty cell: a 4 with probability ``p4``, else a 2.

    ## Action Space
    ``Discrete(4)``: 0 up, 1 down, 2 left, 3 right (the words vary, see
    Randomization). A move that would not change the board is illegal: it is
    left out of ``legal_actions`` and, if taken, is a no-op with
    ``info["action_error"]``. When no move changes the board the game is lost
    and over; ``legal_actions`` then lists all four so that it is never empty.

    ## Observation Space
    ``text``: the mission, then the board size, score and target, the board
    as a grid of numbers (``.`` empty), as a list of ``row r col c: value``
    lines (rows and columns from 1 at the top left), or as one sentence per
    row, and the moves that change the board. ``image`` (``pixels=True``): the
    board with tiles coloured by value and their numbers written on them,
    scaled to ``image_size``. ``numeric_observation()`` (56 floats in [0, 1]):
    each cell's log2 value / 10 on a 5x5 grid padded with zeros (row major),
    a 5x5 mask of the cells on the board, log2(target) / 10, ``p4``, and the
    four moves' legality (1 legal).

    ## Rewards
    The sum of the values of the tiles made by merging in this move, divided
    by ``target`` (merging two 8s into a 16 gives 16 / target). The move that
    makes the target tile thus earns at least 1. Illegal moves and no-ops: 0.

    ## Starting State
    ``start_tiles`` tiles (each a 2, or a 4 with probability ``p4``) in random
    cells of an empty board.

    ## Episode End
    Terminates when a tile of value ``target`` appears (success) or when no
    move changes the board (failure). Truncated at the registered step limit.

    ## Arguments
    ``pixels``, ``image_size``, ``render_mode`` (``"rgb_array"``), as for every env.

    ## Randomization
    | parameter | nominal | train | held-out |
    |---|---|---|---|
    | size (board side) | 4 | 4 | 5 |
    | target (tile to make) | 256 | 64, 128, 256 | 512 |
    | p4 (chance a new tile is a 4) | 0.1 | [0.05, 0.15] | [0.2, 0.3] |
    | start_tiles | 2 | 2..3 | 4..5 |
    | palette | classic | classic, pastel, night | mono, desert |
    | text_style | grid | grid, list | prose |
    | action_words | arrows | arrows (up/down/left/right), slide (slide up/...) | compass (north/south/west/east) |

    ## Version History
    * v0: initial version.
    """

    ACTIONS: ClassVar[tuple[str, ...]] = ("up", "down", "left", "right")
    ACTION_WORDS: ClassVar[dict[str, tuple[str, ...]]] = {
        "arrows": ("up", "down", "left", "right"),
        "slide": ("slide up", "slide down", "slide left", "slide right"),
        "compass": ("north", "south", "west", "east"),
    }
    ACTION_DESCRIPTIONS = describe_moves(ACTION_WORDS, "every tile goes {dir}; equal neighbours merge", "{verb}")
    PARAM_SPACE = ParamSpace(
        Params,
        size=Param(IntRange(4, 4), IntRange(5, 5), "board side in cells"),
        target=Param(Choice((64, 128, 256)), Choice((512,)), "tile value that wins"),
        p4=Param(Uniform(0.05, 0.15), Uniform(0.2, 0.3), "chance that a new tile is a 4 rather than a 2"),
        start_tiles=Param(IntRange(2, 3), IntRange(4, 5), "tiles on the board at the start"),
        palette=PALETTE_PARAM,
        text_style=Param(Choice(("grid", "list")), Choice(("prose",)), "how the board is written"),
        action_words=Param(Choice(("arrows", "slide")), Choice(("compass",)), "words for the actions"),
    )
    oracle_success_rate = 0.95  # expectimax on 4x4 rarely (about 1 in 300 at 256) runs out of room
    # gym.make leaves the unwrapped spec without the registered limit, so the
    # base class would otherwise cut episodes at its 200-step default
    default_max_episode_steps = 2000
    CELL = 18
    GAP = 2
    #: the oracle looks two moves ahead only when fewer cells than this are empty;
    #: with more room one move ahead is safe and much cheaper
    DEEP_BELOW = 5

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        n = MAX_SIZE * MAX_SIZE
        self.numeric_space = spaces.Box(0.0, 1.0, (2 * n + 6,), np.float32)
        self.board: Board = ()
        self.score = 0
        self.max_exp = 0
        self._rows: list[Any] = []
        self._cols: list[Any] = []
        self._legal_moves: list[int] = []

    @property
    def mission(self) -> str:
        return f"Slide and merge the tiles to make a {self.params.target} tile."

    # -- simulation

    def _new_episode(self) -> None:
        p = self.params
        self.target_exp = p.target.bit_length() - 1
        self.board = tuple((0,) * p.size for _ in range(p.size))
        self.score = 0
        self.max_exp = 0
        for _ in range(p.start_tiles):
            self._spawn()
        self._refresh()

    def _spawn(self) -> None:
        rows = self.board
        counts = [row.count(0) for row in rows]
        # random() is several times cheaper than integers() and as uniform for boards this small
        rng = self.np_random
        total = sum(counts)
        k = min(int(rng.random() * total), total - 1)
        e = 2 if rng.random() < self.params.p4 else 1
        i = 0
        while k >= counts[i]:
            k -= counts[i]
            i += 1
        row = rows[i]
        j = row.index(0)
        for _ in range(k):
            j = row.index(0, j + 1)
        self.board = rows[:i] + (row[:j] + (e,) + row[j + 1 :],) + rows[i + 1 :]
        if e > self.max_exp:
            self.max_exp = e

    def _refresh(self) -> None:
        """Look up every row's and column's slides once per state: legality and
        the next move both read them, and only the move taken builds a board."""
        rows = self.board
        lines = _LINES
        er = self._rows = [lines.get(r) or _line(r) for r in rows]
        ec = self._cols = [lines.get(c) or _line(c) for c in zip(*rows)]
        # any([...]), not any(...): a list beats a generator over four lines, and this runs every step
        self._legal_moves = [
            a
            for a, ok in enumerate(
                (any([e[4] for e in ec]), any([e[5] for e in ec]), any([e[4] for e in er]), any([e[5] for e in er]))  # noqa: C419
            )
            if ok
        ]

    def _advance(self, action: int | None) -> tuple[float, bool]:
        if action is None or action not in self._legal_moves:
            return 0.0, False
        k = 0 if action in (0, 2) else 2
        lines = self._cols if action < 2 else self._rows
        new = [e[k] for e in lines]
        merged = sum([e[k + 1] for e in lines])
        self.board = tuple(zip(*new)) if action < 2 else tuple(new)
        if merged:
            self.max_exp = max(self.max_exp, max(map(max, self.board)))
        self.score += merged
        self._spawn()
        self._refresh()
        return merged / self.params.target, self._success() or not self._legal_moves

    def _legal(self) -> list[int]:
        return self._legal_moves or [0, 1, 2, 3]

    def _success(self) -> bool:
        return self.max_exp >= self.target_exp

    # -- oracle: expectimax, one or two moves deep, over a line-table heuristic

    def oracle_action(self) -> int:
        if not self._legal_moves:
            return 0
        board = self.board
        empties = sum(row.count(0) for row in board)
        deep = empties < self.DEEP_BELOW
        p4 = self.params.p4
        moves = _all_moves(board)
        best_a, best_v = self._legal_moves[0], -1.0
        for a in self._legal_moves:
            nb, _ = moves[a]
            if max(map(max, nb)) >= self.target_exp:
                return a
            v = self._chance(nb, p4) if deep else _board_score(nb)
            if v > best_v:
                best_a, best_v = a, v
        return best_a

    @staticmethod
    def _chance(rows: Board, p4: float) -> float:
        """Expected value over the tile that spawns next, then the best reply's heuristic."""
        total = 0.0
        count = 0
        for i, row in enumerate(rows):
            for j, v in enumerate(row):
                if v:
                    continue
                count += 1
                head, tail = rows[:i], rows[i + 1 :]
                for e, w in ((1, 1.0 - p4), (2, p4)):
                    b = head + (row[:j] + (e,) + row[j + 1 :],) + tail
                    best = 0.0
                    for nb, _ in _all_moves(b):
                        if nb != b:
                            s = _board_score(nb)
                            if s > best:
                                best = s
                    total += w * best
        return total / count if count else 0.0

    # -- text

    _CELL_TEXT: ClassVar[list[str]] = ["   ."] + [f"{1 << e:>4}" for e in range(1, 17)]
    _VALUE_TEXT: ClassVar[list[str]] = ["empty"] + [str(1 << e) for e in range(1, 17)]

    def _text(self) -> str:
        p, rows = self.params, self.board
        head = f"Board {p.size}x{p.size}. Score {self.score}. Target tile {p.target}."
        if p.text_style == "grid":
            ct = self._CELL_TEXT
            body = "\n".join("".join([ct[v] for v in row]) for row in rows)
        elif p.text_style == "list":
            vt = self._VALUE_TEXT
            tiles = [f"row {i} col {j}: {vt[v]}" for i, row in enumerate(rows, 1) for j, v in enumerate(row, 1) if v]
            empty = p.size * p.size - len(tiles)
            body = "Tiles (row and col from 1 at the top left):\n" + "\n".join(tiles) + f"\nEmpty cells: {empty}."
        else:
            vt = self._VALUE_TEXT
            body = "\n".join(
                [
                    f"Row {i} from the top, left to right: {', '.join([vt[v] for v in row])}."
                    for i, row in enumerate(rows, 1)
                ]
            )
        if self._legal_moves:
            moves = "Moves that change the board: " + ", ".join([self.action_names[a] for a in self._legal_moves]) + "."
        else:
            moves = "No move changes the board: the game is over."
        return f"{head}\n{body}\n{moves}"

    # -- pixels

    def _frame_size(self) -> tuple[int, int]:
        side = self.params.size * (self.CELL + self.GAP) + self.GAP
        return side, side

    def _draw(self, surface: Any) -> None:
        from multiverse.envs import render

        pal = PALETTES[self.params.palette]
        colours = _tile_colours(self.params.palette)
        c, g = self.CELL, self.GAP
        surface.fill(pal["bg"])
        for i, row in enumerate(self.board):
            for j, v in enumerate(row):
                x, y = g + j * (c + g), g + i * (c + g)
                surface.fill(colours[v], (x, y, c, c))
                if v:
                    label = _label(render, v, colours[v])
                    surface.blit(label, (x + (c - label.get_width()) // 2, y + (c - label.get_height()) // 2))

    # -- RLlib

    def numeric_observation(self) -> np.ndarray:
        out = np.zeros(self.numeric_space.shape, np.float32)
        n = self.params.size
        grid = np.asarray(self.board, np.float32) / MAX_EXP
        cells = MAX_SIZE * MAX_SIZE
        view = out[:cells].reshape(MAX_SIZE, MAX_SIZE)
        view[:n, :n] = np.minimum(grid, 1.0)
        out[cells : 2 * cells].reshape(MAX_SIZE, MAX_SIZE)[:n, :n] = 1.0
        out[2 * cells] = self.target_exp / MAX_EXP
        out[2 * cells + 1] = self.params.p4
        for a in self._legal_moves:
            out[2 * cells + 2 + a] = 1.0
        return out


_COLOURS: dict[str, list[tuple[int, int, int]]] = {}
_LABELS: dict[tuple[int, tuple[int, int, int]], Any] = {}


def _tile_colours(palette: str) -> list[tuple[int, int, int]]:
    """Colour per exponent (0 = empty cell): a ramp through the palette's roles,
    the same for a value whatever the target, so a tile's colour means its value."""
    if palette not in _COLOURS:
        pal = PALETTES[palette]
        stops = [np.array(pal[k], float) for k in ("wall", "other", "goal", "agent", "item")]
        empty = tuple(int(x) for x in 0.75 * np.array(pal["bg"], float) + 0.25 * np.array(pal["wall"], float))
        out = [empty]
        for e in range(1, 17):
            t = min((e - 1) / (MAX_EXP - 1), 1.0) * (len(stops) - 1)
            k = min(int(t), len(stops) - 2)
            f = t - k
            out.append(tuple(int(round(x)) for x in (1 - f) * stops[k] + f * stops[k + 1]))
        _COLOURS[palette] = out
    return _COLOURS[palette]


def _label(render: Any, exp: int, colour: tuple[int, int, int]) -> Any:
    key = (exp, colour)
    if key not in _LABELS:
        ink = (0, 0, 0) if 0.299 * colour[0] + 0.587 * colour[1] + 0.114 * colour[2] > 140 else (255, 255, 255)
        text = str(1 << exp)
        _LABELS[key] = render.font(16 if len(text) < 3 else 13).render(text, True, ink)
    return _LABELS[key]
