"""Flappy: flap a falling bird through the gaps of pipes that scroll toward it."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import numpy as np
from gymnasium import spaces

from multiverse.envs.core import GameEnv
from multiverse.envs.games.common import PALETTE_PARAM, PALETTES, describe_moves
from multiverse.envs.randomization import Choice, IntRange, Param, ParamSpace, Uniform
from multiverse.envs.wrappers import NumericObservable


@dataclasses.dataclass(frozen=True)
class Params:
    gravity: float = 0.5
    flap: float = 3.0
    gap: float = 34.0
    spacing: float = 60.0
    speed: float = 1.5
    pipes: int = 4
    palette: str = "classic"
    text_style: str = "view"
    action_words: str = "flap"


class FlappyEnv(GameEnv, NumericObservable):
    """Fly a bird through the gaps between pipes.

    ## Description
    The world is ``100`` units tall (height measured up from the floor). The
    bird stays at ``x = 30`` and is a box reaching 3 units each way. Every
    step gravity lowers its vertical speed by ``gravity`` (down to a terminal
    speed of 8) unless it flaps, which sets the vertical speed to ``+flap``;
    then it moves by its speed. Pipes 12 wide, ``spacing`` apart, scroll
    left ``speed`` per step; each has one gap ``gap`` tall, its centre a
    random walk from pipe to pipe. Touching a pipe, the floor or the ceiling
    is a crash. A pipe is passed once the bird is wholly past it.

    ## Action Space
    ``Discrete(2)``: 0 flap, 1 wait (the words vary, see Randomization).
    A no-op is a wait.

    ## Observation Space
    ``text``: the mission, then a coarse ASCII view (``B`` bird, ``#`` pipe,
    6.4 units wide and 6.25 tall a cell) with the bird's vertical speed, or numbers (height,
    vertical speed, the next two gaps' bottom, top and distance, the physics),
    or a relative description; then pipes passed. ``image``
    (``pixels=True``): 160 x 100 units of the world at 1 px a unit, scaled to
    ``image_size``. ``numeric_observation()``: height, vertical speed, the
    next two pipes' distance and gap bottom and top, gravity, flap, speed and
    pipes left, each scaled to about [-1, 1].

    ## Rewards
    +1 for each pipe passed, -1 for crashing, and +0.01 for every step the
    bird is still flying (a small survival bonus, about 0.3 to 0.6 per pipe).

    ## Starting State
    The bird at a random height in [40, 60] with no vertical speed; the first
    pipe 60 units ahead of it.

    ## Episode End
    Terminates on a crash (failure) or when ``pipes`` pipes are passed
    (success). Truncated at the registered step limit.

    ## Arguments
    ``pixels``, ``image_size``, ``render_mode`` (``"rgb_array"``), as for every env.

    ## Randomization
    | parameter | nominal | train | held-out |
    |---|---|---|---|
    | gravity (per step squared) | 0.5 | [0.4, 0.6] | [0.62, 0.75] |
    | flap (upward speed a flap sets) | 3 | [2.6, 3.4] | [3.5, 3.8] |
    | gap (gap height) | 34 | [30, 40] | [26, 29] |
    | spacing (pipe to pipe) | 60 | [50, 70] | [72, 80] |
    | speed (scroll per step) | 1.5 | [1.2, 1.8] | [1.9, 2.2] |
    | pipes (to pass) | 4 | 3..6 | 8..10 |
    | palette | classic | classic, pastel, night | mono, desert |
    | text_style | view | view (ASCII), numbers | prose |
    | action_words | flap | flap (flap/wait), jump (jump/glide) | updown (up/fall) |

    ## Version History
    * v0: initial version.
    """

    ACTIONS: ClassVar[tuple[str, ...]] = ("flap", "wait")
    ACTION_WORDS: ClassVar[dict[str, tuple[str, ...]]] = {
        "flap": ("flap", "wait"),
        "jump": ("jump", "glide"),
        "updown": ("up", "fall"),
    }
    ACTION_DESCRIPTIONS = describe_moves(ACTION_WORDS, "the bird goes {dir}", "the bird {verb}")
    PARAM_SPACE = ParamSpace(
        Params,
        gravity=Param(Uniform(0.4, 0.6), Uniform(0.62, 0.75), "downward acceleration per step"),
        flap=Param(Uniform(2.6, 3.4), Uniform(3.5, 3.8), "upward speed a flap sets"),
        gap=Param(Uniform(30.0, 40.0), Uniform(26.0, 29.0), "height of each pipe's gap"),
        spacing=Param(Uniform(50.0, 70.0), Uniform(72.0, 80.0), "distance from one pipe to the next"),
        speed=Param(Uniform(1.2, 1.8), Uniform(1.9, 2.2), "distance the pipes scroll per step"),
        pipes=Param(IntRange(3, 6), IntRange(8, 10), "pipes to pass"),
        palette=PALETTE_PARAM,
        text_style=Param(Choice(("view", "numbers")), Choice(("prose",)), "how the world is written"),
        action_words=Param(Choice(("flap", "jump")), Choice(("updown",)), "words for the actions"),
    )
    oracle_success_rate = 1.0
    # gym.make hides the registered limit from the unwrapped env; keep the two in step
    default_max_episode_steps = 1000

    HEIGHT = 100.0
    VIEW = 160.0  # 320 px wide frames: pygame fills some widths (300, 150) many times slower
    BIRD_X = 30.0
    BIRD_R = 3.0
    PIPE_W = 12.0
    FIRST_PIPE = 60.0
    MAX_FALL = 8.0
    MAX_SHIFT = 35.0
    MARGIN = 8.0
    SURVIVAL = 0.01
    LOOKAHEAD = 60
    COLS, ROWS = 25, 16
    # the height at the middle of each text row, top row first
    _MIDS: ClassVar[tuple[float, ...]] = tuple(map(lambda row, h=HEIGHT, n=ROWS: h - (row + 0.5) * h / n, range(ROWS)))
    PX = 1

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.numeric_space = spaces.Box(-1.0, 1.0, (14,), np.float32)

    @property
    def mission(self) -> str:
        n = self.params.pipes
        return f"Fly the bird through the gaps of {n} pipes without touching a pipe, the floor or the ceiling."

    # -- simulation

    def _new_episode(self) -> None:
        p, rng = self.params, self.np_random
        self.y = float(rng.uniform(40.0, 60.0))
        self.vy = 0.0
        half = p.gap / 2
        lo, hi = half + self.MARGIN, self.HEIGHT - half - self.MARGIN
        c = float(rng.uniform(lo, hi))
        # each pipe: [left edge x, gap bottom, gap top]
        self.pipe_list: list[list[float]] = []
        for i in range(p.pipes):
            if i:
                c = min(max(c + float(rng.uniform(-self.MAX_SHIFT, self.MAX_SHIFT)), lo), hi)
            self.pipe_list.append([self.BIRD_X + self.FIRST_PIPE + i * p.spacing, c - half, c + half])
        self.passed = 0
        self.crashed = False
        # height a flap gains before the bird starts falling again
        self._rise, v = 0.0, p.flap
        while v > 0:
            self._rise += v
            v -= p.gravity

    def _advance(self, action: int | None) -> tuple[float, bool]:
        p, r = self.params, self.BIRD_R
        if action == 0:
            self.vy = p.flap
        else:
            self.vy = max(self.vy - p.gravity, -self.MAX_FALL)
        self.y += self.vy
        for pipe in self.pipe_list:
            pipe[0] -= p.speed
        reward = 0.0
        # only the first unpassed pipe can touch the bird: spacing > pipe width + bird
        pipe = self.pipe_list[self.passed]
        if self.y - r <= 0.0 or self.y + r >= self.HEIGHT or (
            pipe[0] - r < self.BIRD_X < pipe[0] + self.PIPE_W + r and not (pipe[1] < self.y - r and self.y + r < pipe[2])
        ):
            self.crashed = True
            return -1.0, True
        if pipe[0] + self.PIPE_W < self.BIRD_X - r:
            self.passed += 1
            reward += 1.0
        return reward + self.SURVIVAL, self.passed == p.pipes

    def _success(self) -> bool:
        return self.passed == self.params.pipes and not self.crashed

    # -- the scripted expert

    def oracle_action(self) -> int:
        """Look one decision ahead: try waiting, then flapping, each followed by
        the base rule (flap when the next step would sink below the bottom of
        an arc centred in the next gap), simulated with the game's physics for
        up to ``LOOKAHEAD`` steps; take the first choice that does not crash,
        or the one that survives longest."""
        best, best_steps = 1, -1
        first = self._rule(self.y, self.vy, self.passed)
        for action in (first, 1 - first):
            steps = self._rollout(action)
            if steps >= self.LOOKAHEAD:
                return action
            if steps > best_steps:
                best, best_steps = action, steps
        return best

    def _rule(self, y: float, vy: float, passed: int) -> int:
        p = self.params
        _, bottom, top = self.pipe_list[min(passed, p.pipes - 1)]
        low = max(bottom + self.BIRD_R + 1.0, (bottom + top - self._rise - p.flap) / 2)
        return 0 if y + max(vy - p.gravity, -self.MAX_FALL) < low else 1

    def _rollout(self, action: int) -> int:
        """Steps survived doing ``action`` and then following ``_rule``."""
        p, r, h = self.params, self.BIRD_R, self.HEIGHT
        y, vy, passed, shift = self.y, self.vy, self.passed, 0.0
        for step in range(self.LOOKAHEAD):
            if step:
                action = self._rule(y, vy, passed)
            vy = p.flap if action == 0 else max(vy - p.gravity, -self.MAX_FALL)
            y += vy
            shift += p.speed
            left, bottom, top = self.pipe_list[passed]
            left -= shift
            if y - r <= 0.0 or y + r >= h or (
                left - r < self.BIRD_X < left + self.PIPE_W + r and not (bottom < y - r and y + r < top)
            ):
                return step
            if left + self.PIPE_W < self.BIRD_X - r:
                passed += 1
                if passed == p.pipes:
                    return self.LOOKAHEAD
        return self.LOOKAHEAD

    # -- observations

    def _upcoming(self) -> list[list[float]]:
        return self.pipe_list[self.passed:self.passed + 2]

    def _text(self) -> str:
        p, style = self.params, self.params.text_style
        done = f"Pipes passed: {self.passed} of {p.pipes}."
        nxt = self._upcoming()
        if style == "view":
            cols, rows, cw = self.COLS, self.ROWS, self.VIEW / self.COLS
            stride = cols + 3  # "|" + cells + "|" + newline
            grid = bytearray((("|" + "." * cols + "|\n") * rows).encode())
            for left, bottom, top in self.pipe_list[self.passed:self.passed + 4]:
                c0, c1 = int(left / cw), int((left + self.PIPE_W) / cw)
                if c1 < 0 or c0 >= cols:
                    continue
                c0, c1 = max(c0, 0) + 1, min(c1, cols - 1) + 2
                solid = b"#" * (c1 - c0)
                for row, mid in enumerate(self._MIDS):
                    if not bottom < mid < top:
                        grid[row * stride + c0:row * stride + c1] = solid
            row = min(max(int((self.HEIGHT - self.y) / self.HEIGHT * rows), 0), rows - 1)
            grid[row * stride + int(self.BIRD_X / cw) + 1] = ord("B")
            body = grid[:-1].decode()
            edge = "+" + "-" * cols + "+"
            motion = "rising" if self.vy > 0 else ("falling" if self.vy < 0 else "level")
            return (f"View (B bird, # pipe; top row is the ceiling, bottom row the floor; pipes come from the right):\n"
                    f"{edge}\n{body}\n{edge}\nBird {motion}, vertical speed {self.vy:+.1f} per step. {done}")
        if style == "numbers":
            parts = [
                (f"Bird: height {self.y:.1f} (floor 0, ceiling {self.HEIGHT:g}, bird reaches {self.BIRD_R:g} each way), "
                 f"vertical speed {self.vy:+.2f} per step (up is +).")
            ]
            for name, (left, bottom, top) in zip(("Next gap", "Then"), nxt):
                parts.append(f"{name}: from {bottom:.1f} to {top:.1f}, its pipe starts {left - self.BIRD_X:.1f} ahead "
                             f"({self.PIPE_W:g} wide).")
            parts.append(f"Physics: gravity {p.gravity:.2f} per step, a flap sets vertical speed to +{p.flap:.2f}, "
                         f"pipes approach {p.speed:.2f} per step.")
            parts.append(done)
            return "\n".join(parts)
        if not nxt:
            return f"You are {self.y:.1f} above the floor and every pipe is behind you. {done}"
        left, bottom, top = nxt[0]
        d = self.y - (bottom + top) / 2
        where = f"{abs(d):.1f} {'above' if d > 0 else 'below'} the middle of the next gap"
        motion = "rising" if self.vy > 0 else "falling"
        ahead = left - self.BIRD_X
        pipe = f"its pipe is {ahead:.1f} ahead" if ahead > 0 else "you are between its walls now"
        return (
            f"You are {where} (the gap is {top - bottom:.1f} tall), {motion} at {abs(self.vy):.1f} per step; {pipe}. "
            f"The floor is {self.y:.1f} below you and the ceiling {self.HEIGHT - self.y:.1f} above. "
            f"Each step you fall {p.gravity:.2f} faster; flapping sends you up at {p.flap:.2f}. {done}"
        )

    def _frame_size(self) -> tuple[int, int]:
        return int(self.VIEW * self.PX), int(self.HEIGHT * self.PX)

    def _draw(self, surface: Any) -> None:
        k, pal, h = self.PX, PALETTES[self.params.palette], self.HEIGHT
        w_px, h_px = self._frame_size()
        surface.fill(pal["bg"])
        pw = int(self.PIPE_W * k)
        for left, bottom, top in self.pipe_list[self.passed:self.passed + 4]:
            x = int(left * k)
            if x >= w_px:
                continue
            surface.fill(pal["wall"], (x, 0, pw, int((h - top) * k)))
            surface.fill(pal["wall"], (x, int((h - bottom) * k), pw, h_px))
        surface.fill(pal["wall"], (0, h_px - k, w_px, k))
        surface.fill(pal["wall"], (0, 0, w_px, k))
        r = self.BIRD_R * k
        surface.fill(pal["agent"], (int(self.BIRD_X * k - r), int((h - self.y) * k - r), int(2 * r), int(2 * r)))
        for i in range(self.passed):
            surface.fill(pal["goal"], (w_px - (i + 1) * 4 * k, 3 * k, 3 * k, 3 * k))

    def numeric_observation(self) -> np.ndarray:
        p, h = self.params, self.HEIGHT
        out = [min(max(self.y / h, -1.0), 1.0), self.vy / self.MAX_FALL]
        nxt = self._upcoming()
        for i in range(2):
            if i < len(nxt):
                left, bottom, top = nxt[i]
                out += [(left - self.BIRD_X) / self.VIEW, bottom / h, top / h, 1.0]
            else:  # no such pipe: a wide-open gap far away
                out += [1.0, 0.0, 1.0, 0.0]
        out += [p.gravity, p.flap / 5.0, p.speed / 3.0, (p.pipes - self.passed) / 10.0]
        return np.array(out, dtype=np.float32)
