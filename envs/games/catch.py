"""Catch: move a paddle along the bottom row to catch falling balls."""

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
    width: int = 7
    height: int = 8
    balls: int = 2
    drift: float = 0.0
    palette: str = "classic"
    text_style: str = "grid"
    action_words: str = "arrows"


class CatchEnv(GameEnv, NumericObservable):
    """Catch falling balls with a paddle.

    ## Description
    A ball appears in a random column of the top row of a ``width`` x
    ``height`` grid and falls one row per step, sometimes drifting sideways
    (never in its last two rows).
    The agent moves a one-cell paddle along the bottom row. When a ball
    reaches the bottom row it is caught (paddle under it) or missed, and the
    next ball appears; the episode has ``balls`` balls.

    ## Action Space
    ``Discrete(3)``: 0 left, 1 stay, 2 right (the words vary, see
    Randomization). Moving into a wall is legal and leaves the paddle in place.

    ## Observation Space
    ``text``: the mission, then the board as a grid (``o`` ball, ``=`` paddle,
    ``.`` empty) or as coordinates (x from the left, y from the top), and the
    balls left. ``image`` (``pixels=True``): the board, 8 px per cell, scaled
    to ``image_size``. ``numeric_observation()``: ball x, ball y, paddle x,
    width, height (each divided by 16) and balls left / 8.

    ## Rewards
    +1 for each ball caught, -1 for each ball missed, 0 otherwise.

    ## Starting State
    Paddle in the middle of the bottom row, first ball in a random column of
    the top row.

    ## Episode End
    Terminates after the last ball lands. Success: every ball caught.
    Truncated at the registered step limit.

    ## Arguments
    ``pixels``, ``image_size``, ``render_mode`` (``"rgb_array"``), as for every env.

    ## Randomization
    | parameter | nominal | train | held-out |
    |---|---|---|---|
    | width | 7 | 5..9 | 10..12 |
    | height | 8 | 6..10 | 11..13 |
    | balls | 2 | 1..3 | 4..5 |
    | drift (chance per step a ball moves sideways, never in its last two rows) | 0 | [0, 0.15] | [0.2, 0.3] |
    | palette | classic | classic, pastel, night | mono, desert |
    | text_style | grid | grid, coords | prose |
    | action_words | arrows | arrows (left/stay/right), moves (move left/wait/move right) | compass (west/hold/east) |

    ## Version History
    * v0: initial version.
    """

    ACTIONS: ClassVar[tuple[str, ...]] = ("left", "stay", "right")
    ACTION_WORDS: ClassVar[dict[str, tuple[str, ...]]] = {
        "arrows": ("left", "stay", "right"),
        "moves": ("move left", "wait", "move right"),
        "compass": ("west", "hold", "east"),
    }
    ACTION_DESCRIPTIONS = describe_moves(ACTION_WORDS, "the paddle goes one column {dir}", "the paddle {verb}")
    PARAM_SPACE = ParamSpace(
        Params,
        width=Param(IntRange(5, 9), IntRange(10, 12), "board columns"),
        height=Param(IntRange(6, 10), IntRange(11, 13), "board rows"),
        balls=Param(IntRange(1, 3), IntRange(4, 5), "balls per episode"),
        drift=Param(Uniform(0.0, 0.15), Uniform(0.2, 0.3), "chance per step that a falling ball moves one column"),
        palette=PALETTE_PARAM,
        text_style=Param(Choice(("grid", "coords")), Choice(("prose",)), "how the board is written"),
        action_words=Param(Choice(("arrows", "moves")), Choice(("compass",)), "words for the actions"),
    )
    oracle_success_rate = 0.9  # drift can keep a far ball out of reach
    CELL = 8

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.numeric_space = spaces.Box(0.0, 1.0, (6,), np.float32)

    @property
    def mission(self) -> str:
        n = self.params.balls
        return f"Catch {'the falling ball' if n == 1 else f'all {n} falling balls'} with your paddle."

    def _new_episode(self) -> None:
        p = self.params
        self.paddle = p.width // 2
        self.balls_left = p.balls
        self.caught = 0
        self._spawn()

    def _spawn(self) -> None:
        self.ball = [int(self.np_random.integers(self.params.width)), 0]

    def _advance(self, action: int | None) -> tuple[float, bool]:
        p = self.params
        if action is not None:
            self.paddle = min(max(self.paddle + action - 1, 0), p.width - 1)
        # Drift never acts on the last fall step, so a player who tracks the ball can always react.
        if self.ball[1] < p.height - 3 and self.np_random.random() < p.drift:
            self.ball[0] = min(max(self.ball[0] + (1 if self.np_random.random() < 0.5 else -1), 0), p.width - 1)
        self.ball[1] += 1
        if self.ball[1] < p.height - 1:
            return 0.0, False
        hit = self.ball[0] == self.paddle
        self.caught += hit
        self.balls_left -= 1
        if self.balls_left > 0:
            self._spawn()
        return (1.0 if hit else -1.0), self.balls_left == 0

    def _success(self) -> bool:
        return self.balls_left == 0 and self.caught == self.params.balls

    def oracle_action(self) -> int:
        return int(np.sign(self.ball[0] - self.paddle)) + 1

    def _text(self) -> str:
        p, (bx, by) = self.params, self.ball
        left = f"Balls left: {self.balls_left} (caught {self.caught})."
        if p.text_style == "grid":
            rows = [["."] * p.width for _ in range(p.height)]
            rows[-1][self.paddle] = "="
            if self.balls_left:
                rows[by][bx] = "o"
            return "\n".join("".join(r) for r in rows) + "\n" + left
        if p.text_style == "coords":
            return (
                f"Board {p.width} wide, {p.height} tall (x from 0 at the left, y from 0 at the top).\n"
                f"Ball at x={bx}, y={by}. Paddle at x={self.paddle}, y={p.height - 1}.\n{left}"
            )
        dx = bx - self.paddle
        side = "directly above" if dx == 0 else f"{abs(dx)} column{'s' * (abs(dx) != 1)} to the {'right' if dx > 0 else 'left'} of"
        return f"The ball is {p.height - 1 - by} rows up and {side} your paddle. {left}"

    def _frame_size(self) -> tuple[int, int]:
        return self.params.width * self.CELL, self.params.height * self.CELL

    def _draw(self, surface: Any) -> None:

        c, pal = self.CELL, PALETTES[self.params.palette]
        surface.fill(pal["bg"])
        surface.fill(pal["agent"], (self.paddle * c, (self.params.height - 1) * c + c // 2, c, c // 2))
        if self.balls_left:
            surface.fill(pal["item"], (self.ball[0] * c + 1, self.ball[1] * c + 1, c - 2, c - 2))

    def numeric_observation(self) -> np.ndarray:
        p = self.params
        return np.array(
            [self.ball[0] / 16, self.ball[1] / 16, self.paddle / 16, p.width / 16, p.height / 16, self.balls_left / 8],
            dtype=np.float32,
        )
