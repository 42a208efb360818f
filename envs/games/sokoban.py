"""Sokoban: push every box onto a target in a procedurally generated, solvable room."""

from __future__ import annotations

import dataclasses
import heapq
import itertools
from typing import Any, ClassVar

import numpy as np
from gymnasium import spaces

from multiverse.envs.core import GameEnv
from multiverse.envs.games.common import DIRECTION_WORDS, DIRECTION_WORDS_PARAM, PALETTE_PARAM, PALETTES, describe_moves
from multiverse.envs.randomization import Choice, IntRange, Param, ParamSpace, Uniform
from multiverse.envs.wrappers import NumericObservable


@dataclasses.dataclass(frozen=True)
class Params:
    width: int = 7
    height: int = 7
    boxes: int = 2
    pulls: int = 8
    openness: float = 1.7
    palette: str = "classic"
    text_style: str = "grid"
    action_words: str = "arrows"


# Carving stamps of the gym-sokoban room generator, as (dx, dy) offsets around the walker;
# every stamp covers its centre, so the carved floor is always connected.
_MASKS = (
    ((-1, 0), (0, 0), (1, 0)),
    ((0, -1), (0, 0), (0, 1)),
    ((-1, 0), (0, 0), (0, 1)),
    ((-1, 0), (0, 0), (-1, 1), (0, 1)),
    ((0, 0), (1, 0), (0, 1)),
)
_WALK_TURN = 0.35  # chance per step that the carving walker changes direction (gym-sokoban's value)
_AWAY = 0.75  # chance that reverse play picks a pull that takes a box farther from the targets
_RUN = 3  # longest straight run of one box pulled in one go during reverse play
_ATTEMPTS = 4  # reverse plays tried per room
_KEEP = 2  # acceptable reverse plays to compare; the one leaving boxes farthest from targets wins
_MAX_REVERSE = 180  # cap on the reverse play's moves, so its reversal fits the step limit
_GREED = 3.0  # heuristic weight of the oracle's A*
_BUDGET = 30_000  # solver expansions before the oracle gives up on a re-plan
_FAR = 1 << 20  # push distance of a cell from which no target can be reached
_MAX = 10  # largest room side over train and held-out: numeric observations pad to it
_OPPOSITE = (1, 0, 3, 2)
_STEPS = ((0, -1), (0, 1), (-1, 0), (1, 0))  # (dx, dy) of up, down, left, right


class SokobanEnv(GameEnv, NumericObservable):
    """Push every box onto a target.

    ## Description
    A room of ``width`` x ``height`` cells (outer walls included) is carved by
    a random walk (the gym-sokoban / Boxoban topology generator) and
    ``boxes`` targets are placed on it. The level is then built by reverse
    play from the solved state: ``pulls`` times the player walks to a random
    box and pulls it one to three cells in a line, then strolls off to a
    random reachable cell. Every level is therefore solvable; a level that
    one push would solve is rejected. The player pushes boxes by walking into
    them; a box moves only if the cell beyond it is free floor. Boxes cannot
    be pulled.

    ## Action Space
    ``Discrete(4)``: 0 up, 1 down, 2 left, 3 right (the words vary, see
    Randomization). Walking into a wall, or pushing a box into a wall or
    another box, is legal and leaves everything in place.

    ## Observation Space
    ``text``: the mission, then the room as an ASCII grid (``#`` wall, ``@``
    you, ``$`` box, ``.`` target, ``*`` box on target, ``+`` you on a target,
    space floor), or as a list of floor runs and coordinates (x from 0 at the
    left, y from 0 at the top), or (held-out) a grid with row and column
    numbers and letter symbols; then the count of boxes on targets. ``image``
    (``pixels=True``): the room, 12 px per cell, scaled to ``image_size``.
    ``numeric_observation()``: four 10 x 10 planes (wall, target, box,
    player), flattened channel-major; rooms sit in the top-left corner and
    the padding counts as wall.

    ## Rewards
    As in gym-sokoban: -0.1 every step (no-ops and bumps included), +1 when a
    box is pushed onto a target, -1 when one is pushed off a target, and +10
    more when the last box lands on a target.

    ## Starting State
    The end of the reverse play: boxes where it left them, the player where
    its stroll ended. At least one box is off target and the boxes are at
    least two pushes from the targets.

    ## Episode End
    Terminates with success when every box is on a target. Terminates with
    failure on an obvious deadlock: a box pushed onto a cell from which no
    push sequence can reach any target (a corner, or along a wall with no
    target), or into a 2 x 2 block of walls and boxes that holds a box off
    target. Truncated at the registered step limit.

    ## Arguments
    ``pixels``, ``image_size``, ``render_mode`` (``"rgb_array"``), as for every env.

    ## Randomization
    | parameter | nominal | train | held-out |
    |---|---|---|---|
    | width (columns, outer walls included) | 7 | 6..8 | 9..10 |
    | height (rows, outer walls included) | 7 | 6..8 | 9..10 |
    | boxes | 2 | 1..2 | 3 |
    | pulls (box pulls in the reverse play: difficulty) | 8 | 3..12 | 14..24 |
    | openness (carving steps per unit of width + height) | 1.7 | [1.2, 2.0] | [2.2, 2.8] |
    | palette | classic | classic, pastel, night | mono, desert |
    | text_style | grid | grid, coords | labeled |
    | action_words | arrows | arrows (up/down/left/right), moves (move up/...) | compass (north/south/west/east) |

    ## Version History
    * v0: initial version.
    """

    ACTIONS: ClassVar[tuple[str, ...]] = ("up", "down", "left", "right")
    ACTION_WORDS = DIRECTION_WORDS
    ACTION_DESCRIPTIONS = describe_moves(DIRECTION_WORDS, "you step {dir}, pushing a box in the way", "{verb}")
    PARAM_SPACE = ParamSpace(
        Params,
        width=Param(IntRange(6, 8), IntRange(9, 10), "room columns, outer walls included"),
        height=Param(IntRange(6, 8), IntRange(9, 10), "room rows, outer walls included"),
        boxes=Param(IntRange(1, 2), IntRange(3, 3), "boxes (and targets)"),
        pulls=Param(IntRange(3, 12), IntRange(14, 24), "box pulls in the reverse play that scatters the boxes"),
        openness=Param(Uniform(1.2, 2.0), Uniform(2.2, 2.8), "carving walk steps per unit of width + height"),
        palette=PALETTE_PARAM,
        text_style=Param(Choice(("grid", "coords")), Choice(("labeled",)), "how the room is written"),
        action_words=DIRECTION_WORDS_PARAM,
    )
    oracle_success_rate = 1.0
    CELL = 12

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.numeric_space = spaces.Box(0.0, 1.0, (4 * _MAX * _MAX,), np.float32)
        self._static_obs: np.ndarray | None = None
        self._background: Any = None

    @property
    def mission(self) -> str:
        n = self.params.boxes
        return "Push the box onto the target." if n == 1 else f"Push all {n} boxes onto the targets."

    # -- level generation

    def _new_episode(self) -> None:
        p = self.params
        w, h = p.width, p.height
        self._w = w
        self._deltas = (-w, w, -1, 1)
        level = None
        for tries in range(200):
            # Unlucky target placements can leave nothing to pull; after many tries use an open room.
            floor = self._carve(w, h, open_room=tries >= 100)
            level = self._reverse_play(floor)
            if level is not None:
                break
        if level is None:  # pragma: no cover - open rooms of these sizes always yield a level
            raise RuntimeError("could not generate a Sokoban level")
        self._wall, self._target, self.boxes, self.player, self._solution = level
        self.n_boxes = p.boxes
        self.on_target = sum(self._target[b] for b in self.boxes)
        self.deadlocked = False
        self._plan: dict[tuple[int, tuple[int, ...]], int] = {}
        self._unsolvable: set[tuple[int, tuple[int, ...]]] = set()
        self._start_key = self._key()
        self._static_obs = None
        self._background = None
        self._static_text: str | None = None
        self._static_cells: list[str] = []

    def _carve(self, w: int, h: int, open_room: bool) -> list[bool]:
        """Floor cells (True) of a room carved by gym-sokoban's random walk."""
        floor = [False] * (w * h)
        if open_room:
            for y in range(1, h - 1):
                for x in range(1, w - 1):
                    floor[y * w + x] = True
            return floor
        steps = max(4, int(self.params.openness * (w + h)))
        # Walk on past ``steps`` until half the interior is floor: cramped rooms rarely make a puzzle.
        need, count, limit = (w - 2) * (h - 2) // 2, 0, 4 * steps
        u = self.np_random.random(3 * limit + 3).tolist()
        x, y = 1 + int(u[-1] * (w - 2)), 1 + int(u[-2] * (h - 2))
        dx, dy = _STEPS[int(u[-3] * 4)]
        for s in range(limit):
            if s >= steps and count >= need:
                break
            if u[3 * s] < _WALK_TURN:
                dx, dy = _STEPS[int(u[3 * s + 1] * 4)]
            x, y = min(max(x + dx, 1), w - 2), min(max(y + dy, 1), h - 2)
            for mx, my in _MASKS[int(u[3 * s + 2] * len(_MASKS))]:
                cx, cy = x + mx, y + my
                if 0 < cx < w - 1 and 0 < cy < h - 1 and not floor[cy * w + cx]:
                    floor[cy * w + cx] = True
                    count += 1
        return floor

    def _reverse_play(self, floor: list[bool]) -> tuple[list[bool], list[bool], set[int], int, list[int]] | None:
        """(walls, targets, boxes, player, forward solution) from reverse play in this room, or None."""
        p, rng, d4 = self.params, self.np_random, self._deltas
        cells = [i for i, f in enumerate(floor) if f]
        if len(cells) < p.boxes + 3:
            return None
        nbrs = [
            tuple((c + d, k) for k, d in enumerate(d4) if floor[c + d]) if floor[c] else () for c in range(len(floor))
        ]
        # Targets only where a box can be pulled off, so reverse play has something to do.
        pullable = [c for c in cells if any(floor[n + n - c] for n, _ in nbrs[c])]
        if len(pullable) < p.boxes:
            return None
        chosen = rng.choice(len(pullable), size=p.boxes, replace=False).tolist()
        targets = [pullable[i] for i in sorted(chosen)]
        wall = [not f for f in floor]
        target = [False] * len(floor)
        for t in targets:
            target[t] = True
        free = [c for c in cells if not target[c]]
        start = free[int(rng.integers(len(free)))]
        self._wall, self._target, self._nbrs = wall, target, nbrs
        self._push_dist = dist_t = self._push_distances(targets)
        best, best_score, kept = None, (0, 1), 0
        for _ in range(_ATTEMPTS):
            boxes, player, moves = self._pull_play(wall, list(targets), start)
            # One push from solved is too trivial to keep.
            score = (sum(not target[b] for b in boxes), sum(dist_t[b] for b in boxes))
            if score[0] and score[1] >= 2:
                kept += 1
                if score > best_score:
                    best_score = score
                    best = (set(boxes), player, [_OPPOSITE[k] for k in reversed(moves)])
                if kept == _KEEP:
                    break
        if best is None:
            return None
        return wall, target, best[0], best[1], best[2]

    def _pull_play(self, wall: list[bool], boxes: list[int], player: int) -> tuple[list[int], int, list[int]]:
        """Reverse play from the solved state: ``pulls`` times, walk to a random box and pull it up
        to _RUN cells in a line; then stroll to a random reachable cell. Returns (boxes, player,
        reverse moves as direction indices)."""
        budget = self.params.pulls
        u = self.np_random.random(3 * budget + 1).tolist()
        nbrs, dist, target = self._nbrs, self._push_dist, self._target
        moves: list[int] = []
        best = ((0, 0), list(boxes), player, 0)
        for r in range(budget):
            if budget <= 0:
                break
            back = self._reach(boxes, player)
            options = [
                (i, n, k)
                for i, b in enumerate(boxes)
                for n, k in nbrs[b]
                if n in back and not wall[n + n - b] and n + n - b not in boxes
            ]
            if not options:
                break
            # Mostly pull boxes away from the targets: an unbiased walk tends to undo itself.
            away = [o for o in options if dist[o[1]] > dist[boxes[o[0]]]]
            if away and u[3 * r + 2] < _AWAY:
                options = away
            i, n, k = options[int(u[3 * r] * len(options))]
            path = self._path(back, n)
            if len(moves) + len(path) + _RUN > _MAX_REVERSE:
                break
            moves.extend(path)
            d = n - boxes[i]
            player = n
            for _ in range(1 + int(u[3 * r + 1] * _RUN)):
                if budget <= 0 or wall[player + d] or player + d in boxes:
                    break
                boxes[i] = player
                player += d
                moves.append(k)
                budget -= 1
            score = (sum(not target[b] for b in boxes), sum(dist[b] for b in boxes))
            if score > best[0]:
                best = (score, list(boxes), player, len(moves))
        # Stop where the boxes were farthest from the targets: later pulls may have brought them back.
        _, boxes, player, n = best
        del moves[n:]
        # Leaving the player beside the last box it pulled would give the first push away.
        back = self._reach(boxes, player)
        cells = sorted(back)
        end = cells[int(u[-1] * len(cells))]
        path = self._path(back, end)
        if len(moves) + len(path) > _MAX_REVERSE:
            return boxes, player, moves
        return boxes, end, moves + path

    def _push_distances(self, targets: list[int]) -> list[int]:
        """Per cell, the fewest pushes that bring a box there onto one of ``targets``, other boxes
        ignored (_FAR where none can: with all targets, a dead square)."""
        wall, d4 = self._wall, self._deltas
        dist = [_FAR] * len(wall)
        frontier = list(targets)
        for t in frontier:
            dist[t] = 0
        while frontier:
            nxt = []
            for c in frontier:
                for d in d4:
                    # A box at c - d is pushed onto c by a player standing at c - 2d.
                    b = c - d
                    if dist[b] == _FAR and not wall[b] and 0 <= b - d < len(wall) and not wall[b - d]:
                        dist[b] = dist[c] + 1
                        nxt.append(b)
            frontier = nxt
        return dist

    # -- dynamics

    def _frozen(self, b: int, boxes: set[int] | frozenset[int]) -> bool:
        """Whether the box at b sits in a 2 x 2 block of walls and boxes holding a box off target."""
        w, wall, target = self._w, self._wall, self._target
        for a in (b, b - 1, b - w, b - w - 1):
            block = (a, a + 1, a + w, a + w + 1)
            if all(wall[c] or c in boxes for c in block) and any(c in boxes and not target[c] for c in block):
                return True
        return False

    def _advance(self, action: int | None) -> tuple[float, bool]:
        reward = -0.1
        if action is None:
            return reward, False
        d = self._deltas[action]
        nxt = self.player + d
        if self._wall[nxt]:
            return reward, False
        boxes = self.boxes
        if nxt in boxes:
            to = nxt + d
            if self._wall[to] or to in boxes:
                return reward, False
            boxes.discard(nxt)
            boxes.add(to)
            self.player = nxt
            change = self._target[to] - self._target[nxt]
            if change:
                self.on_target += change
                reward += change
                if self.on_target == self.n_boxes:
                    return reward + 10.0, True
            if self._push_dist[to] == _FAR or self._frozen(to, boxes):
                self.deadlocked = True
                return reward, True
            return reward, False
        self.player = nxt
        return reward, False

    def _success(self) -> bool:
        return self.on_target == self.n_boxes

    # -- oracle

    def _key(self) -> tuple[int, tuple[int, ...]]:
        return self.player, tuple(sorted(self.boxes))

    def oracle_action(self) -> int:
        key = self._key()
        if key not in self._plan and key not in self._unsolvable:
            plan = self._solve(self.player, self.boxes)
            if plan is None and key == self._start_key:
                plan = self._solution  # the reverse play, reversed, always solves the start
            if plan is None:
                self._unsolvable.add(key)
            else:
                self._plan = self._index_plan(plan)
        return self._plan.get(key, 0)

    def _index_plan(self, plan: list[int]) -> dict[tuple[int, tuple[int, ...]], int]:
        """Map each state along the plan to the action the plan takes there, so that the oracle
        follows it for free and re-plans only when the agent leaves it."""
        player, boxes = self.player, set(self.boxes)
        index: dict[tuple[int, tuple[int, ...]], int] = {}
        for k in plan:
            # The last visit wins: a reverse-play plan may pass a state twice, and following the
            # first visit's action would loop.
            index[player, tuple(sorted(boxes))] = k
            d = self._deltas[k]
            nxt = player + d
            if self._wall[nxt]:
                continue
            if nxt in boxes:
                if self._wall[nxt + d] or nxt + d in boxes:
                    continue
                boxes.discard(nxt)
                boxes.add(nxt + d)
            player = nxt
        return index

    def _solve(self, player: int, boxes: set[int]) -> list[int] | None:
        """A short solution by weighted A* over pushes (walks between pushes costed by BFS), or None
        past the budget. The heuristic is the cheapest matching of boxes to targets by push distance;
        weighting it by _GREED trades a few extra moves for a much smaller search."""
        target, dead, nbrs = self._target, self._push_dist, self._nbrs
        targets = [i for i, t in enumerate(target) if t]
        per_target = [self._push_distances([t]) for t in targets]
        memo: dict[tuple[int, ...], float] = {}

        def cost(bx: tuple[int, ...]) -> float:
            h = memo.get(bx)
            if h is None:
                h = min(sum(dt[b] for dt, b in zip(per_target, perm)) for perm in itertools.permutations(bx))
                h = memo[bx] = _GREED * h
            return h

        start = (player, tuple(sorted(boxes)))
        best = {start: 0}
        parent: dict[Any, Any] = {start: None}
        heap = [(cost(start[1]), 0, 0, start)]
        count = pops = 0
        while heap:
            _, neg_g, _, state = heapq.heappop(heap)
            g = -neg_g
            if g > best[state]:
                continue
            p, bx = state
            if all(target[b] for b in bx):
                return self._moves(parent, state)
            pops += 1
            if pops > _BUDGET:
                return None
            bset = set(bx)
            reach = {p: 0}
            frontier = [p]
            while frontier:
                nxt_frontier = []
                for c in frontier:
                    dc = reach[c] + 1
                    for n, _k in nbrs[c]:
                        if n not in reach and n not in bset:
                            reach[n] = dc
                            nxt_frontier.append(n)
                frontier = nxt_frontier
            for b in bx:
                for n, k in nbrs[b]:
                    d = n - b
                    stand = b - d
                    if n in bset or dead[n] == _FAR or stand not in reach:
                        continue
                    moved = frozenset(x for x in bset if x != b) | {n}
                    if self._frozen(n, moved):
                        continue
                    nb = tuple(sorted(moved))
                    ns = (b, nb)
                    ng = g + reach[stand] + 1
                    if ng < best.get(ns, _FAR):
                        h = cost(nb)
                        if h >= _FAR:  # no assignment of boxes to targets is reachable: a deadlock
                            continue
                        best[ns] = ng
                        parent[ns] = (state, stand, k)
                        count += 1
                        heapq.heappush(heap, (ng + h, -ng, count, ns))
        return None

    def _moves(self, parent: dict[Any, Any], state: Any) -> list[int]:
        """Expand a chain of pushes into single moves."""
        pushes = []
        while parent[state] is not None:
            prev, stand, k = parent[state]
            pushes.append((prev, stand, k))
            state = prev
        moves: list[int] = []
        for (p, bx), stand, k in reversed(pushes):
            moves.extend(self._path(self._reach(set(bx), p), stand))
            moves.append(k)
        return moves

    def _reach(self, boxes: Any, src: int) -> dict[int, tuple[int, int] | None]:
        """Cells the player reaches from src without pushing, each with (previous cell, move) back to src."""
        nbrs = self._nbrs
        back: dict[int, tuple[int, int] | None] = {src: None}
        frontier = [src]
        while frontier:
            nxt = []
            for c in frontier:
                for n, k in nbrs[c]:
                    if n not in back and n not in boxes:
                        back[n] = (c, k)
                        nxt.append(n)
            frontier = nxt
        return back

    @staticmethod
    def _path(back: dict[int, tuple[int, int] | None], dst: int) -> list[int]:
        path = []
        step = back[dst]
        while step is not None:
            dst, k = step
            path.append(k)
            step = back[dst]
        return path[::-1]

    # -- text

    def _text(self) -> str:
        if self._static_text is None:
            self._static_text = self._room_text()
        style, w, target = self.params.text_style, self._w, self._target
        status = f"Boxes on targets: {self.on_target} of {self.n_boxes}."
        if style == "coords":
            boxes = ", ".join(f"({b % w},{b // w})" + (" on a target" if target[b] else "") for b in sorted(self.boxes))
            you = f"({self.player % w},{self.player // w})"
            return f"{self._static_text}Boxes: {boxes}.\nYou: {you}.\n{status}"
        cells = list(self._static_cells)
        # Cell i sits at i + i // w: one newline per row (labeled rows lead with newline and number).
        shift, (box, box_on, you, you_on) = (1, "BXPQ") if style == "labeled" else (0, "$*@+")
        for b in self.boxes:
            cells[b + b // w + shift] = box_on if target[b] else box
        p = self.player
        cells[p + p // w + shift] = you_on if target[p] else you
        board = " ".join(cells)[1:].replace(" \n", "\n") if shift else "".join(cells)
        return f"{self._static_text}{board}\n{status}"

    def _room_text(self) -> str:
        """The part of the text that stays the same all episode; grid styles also fill _static_cells."""
        w, wall, target, style = self._w, self._wall, self._target, self.params.text_style
        h = len(wall) // w
        if style == "grid":
            cells = []
            for i, (wl, tg) in enumerate(zip(wall, target)):
                cells.append("#" if wl else ("." if tg else " "))
                if i % w == w - 1 and i < len(wall) - 1:
                    cells.append("\n")
            self._static_cells = cells
            return "Legend: # wall, @ you, $ box, . target, * box on target, + you on a target, space floor.\n"
        if style == "labeled":
            cells = []
            for i, (wl, tg) in enumerate(zip(wall, target)):
                if i % w == 0:
                    cells.append(f"\n{i // w:2d}")
                cells.append("W" if wl else ("T" if tg else "_"))
            self._static_cells = cells
            return (
                "Symbols: W wall, _ floor, P you, B box, T target, X box on target, Q you on a target; "
                "rows y, columns x.\n   " + " ".join(str(x % 10) for x in range(w)) + "\n"
            )
        runs = []
        for y in range(1, h - 1):
            parts, x = [], 1
            while x < w - 1:
                if wall[y * w + x]:
                    x += 1
                    continue
                x0 = x
                while x < w - 1 and not wall[y * w + x]:
                    x += 1
                parts.append(f"{x0}" if x - 1 == x0 else f"{x0}-{x - 1}")
            if parts:
                runs.append(f"y={y}: x={','.join(parts)}")
        targets = ", ".join(f"({i % w},{i // w})" for i, t in enumerate(target) if t)
        return (
            f"Room {w} wide, {h} tall; x from 0 at the left, y from 0 at the top; "
            f"cells not listed as floor are walls.\nFloor: {'; '.join(runs)}.\nTargets: {targets}.\n"
        )

    # -- pixels

    def _frame_size(self) -> tuple[int, int]:
        return self._w * self.CELL, (len(self._wall) // self._w) * self.CELL

    def _draw(self, surface: Any) -> None:
        c, w, pal = self.CELL, self._w, PALETTES[self.params.palette]
        if self._background is None:
            bg = surface.copy()
            bg.fill(pal["bg"])
            for i, (wl, tg) in enumerate(zip(self._wall, self._target)):
                x, y = (i % w) * c, (i // w) * c
                if wl:
                    bg.fill(pal["wall"], (x, y, c, c))
                elif tg:
                    bg.fill(pal["goal"], (x + 3, y + 3, c - 6, c - 6))
            self._background = bg
        surface.blit(self._background, (0, 0))
        for b in self.boxes:
            x, y = (b % w) * c, (b // w) * c
            if self._target[b]:
                surface.fill(pal["goal"], (x, y, c, c))
            surface.fill(pal["item"], (x + 2, y + 2, c - 4, c - 4))
        x, y = (self.player % w) * c, (self.player // w) * c
        surface.fill(pal["agent"], (x + 3, y + 1, c - 6, c - 2))
        surface.fill(pal["agent"], (x + 1, y + 3, c - 2, c - 6))

    # -- RLlib

    def numeric_observation(self) -> np.ndarray:
        w = self._w
        if self._static_obs is None:
            planes = np.zeros((4, _MAX, _MAX), np.float32)
            planes[0] = 1.0
            h = len(self._wall) // w
            planes[0, :h, :w] = np.asarray(self._wall, np.float32).reshape(h, w)
            planes[1, :h, :w] = np.asarray(self._target, np.float32).reshape(h, w)
            self._static_obs = planes
        planes = self._static_obs.copy()
        for b in self.boxes:
            planes[2, b // w, b % w] = 1.0
        planes[3, self.player // w, self.player % w] = 1.0
        return planes.reshape(-1)
