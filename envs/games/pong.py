"""Pong: return the ball past a scripted opponent with a paddle on the left."""

from __future__ import annotations

import collections
import dataclasses
import math
from typing import Any, ClassVar

import numpy as np
from gymnasium import spaces

from multiverse.envs.core import GameEnv
from multiverse.envs.games.common import PALETTE_PARAM, PALETTES, describe_moves
from multiverse.envs.randomization import Choice, IntRange, Param, ParamSpace, Uniform
from multiverse.envs.wrappers import NumericObservable


@dataclasses.dataclass(frozen=True)
class Params:
    ball_speed: float = 1.9
    paddle_size: float = 6.0
    opp_speed: float = 0.5
    opp_lag: int = 3
    points_to_win: int = 2
    palette: str = "classic"
    text_style: str = "court"
    action_words: str = "updown"


def _fold(y: float, low: float, span: float) -> tuple[float, bool]:
    """Unfold-and-refold a height into [low, low + span]: the ball's position after
    any number of wall bounces, and whether its vertical direction ended flipped."""
    m = (y - low) % (2.0 * span)
    if m <= span:
        return low + m, False
    return low + 2.0 * span - m, True


class PongEnv(GameEnv, NumericObservable):
    """Pong against a scripted opponent.

    ## Description
    A ``40`` x ``30`` court (x from the left, y from the top, floats). The
    agent's paddle moves up and down the line ``x = 2``; the opponent's paddle
    guards ``x = 38``. The ball bounces off the top and bottom walls and off
    the paddles: the further from a paddle's centre it hits, the steeper it
    leaves (up to 50 degrees); the ball keeps its speed. A ball that crosses
    a paddle line without touching the paddle is a point for the other side,
    and the ball is served again from the middle in a random direction. The
    opponent follows the height the ball had ``opp_lag`` steps ago (plus a
    small aim offset it picks for each return) at no more than ``opp_speed``
    times the ball speed per step, so steep returns that arrive far from it
    win points.

    ## Action Space
    ``Discrete(3)``: 0 up, 1 stay, 2 down (the words vary, see Randomization).
    The paddle moves 2 per step and stops at the walls.

    ## Observation Space
    ``text``: the mission, then the court as a coarse ASCII picture (``Y`` your
    paddle, ``X`` the opponent's, ``o`` the ball) with the ball's heading, or
    as numbers (positions, the ball's velocity per step, paddle half-height),
    or as a relative description; then the score. ``image``
    (``pixels=True``): the court at 4 px per unit with score pips, scaled to
    ``image_size``. ``numeric_observation()``: ball x, y, velocity, both
    paddles' heights, paddle half-height, opponent speed and lag, scores and
    points to win, each scaled to about [-1, 1].

    ## Rewards
    +1 when the agent scores a point, -1 when the opponent does, 0 otherwise.

    ## Starting State
    Both paddles centred; the ball served from near the centre at
    ``ball_speed`` toward a random side, up to 30 degrees off horizontal.

    ## Episode End
    Terminates when either side has ``points_to_win`` points. Success: the
    agent got there first. Truncated at the registered step limit.

    ## Arguments
    ``pixels``, ``image_size``, ``render_mode`` (``"rgb_array"``), as for every env.

    ## Randomization
    | parameter | nominal | train | held-out |
    |---|---|---|---|
    | ball_speed (units per step) | 1.9 | [1.6, 2.2] | [2.3, 2.5] |
    | paddle_size (full height, both paddles) | 6 | [5, 7] | [4, 4.8] |
    | opp_speed (opponent's top speed / ball speed) | 0.5 | [0.4, 0.6] | [0.64, 0.72] |
    | opp_lag (steps the opponent reacts late) | 3 | 2..5 | 6..8 |
    | points_to_win | 2 | 1..3 | 4..5 |
    | palette | classic | classic, pastel, night | mono, desert |
    | text_style | court | court (ASCII), coords (numbers) | relative (prose) |
    | action_words | updown | updown (up/stay/down), moves (move up/wait/move down) | compass (north/hold/south) |

    ## Version History
    * v0: initial version.
    """

    ACTIONS: ClassVar[tuple[str, ...]] = ("up", "stay", "down")
    ACTION_WORDS: ClassVar[dict[str, tuple[str, ...]]] = {
        "updown": ("up", "stay", "down"),
        "moves": ("move up", "wait", "move down"),
        "compass": ("north", "hold", "south"),
    }
    ACTION_DESCRIPTIONS = describe_moves(ACTION_WORDS, "your paddle goes {dir}", "your paddle {verb}")
    PARAM_SPACE = ParamSpace(
        Params,
        ball_speed=Param(Uniform(1.6, 2.2), Uniform(2.3, 2.5), "ball speed per step"),
        paddle_size=Param(Uniform(5.0, 7.0), Uniform(4.0, 4.8), "paddle height (both paddles)"),
        opp_speed=Param(Uniform(0.4, 0.6), Uniform(0.64, 0.72), "opponent paddle's top speed, as a fraction of the ball speed"),
        opp_lag=Param(IntRange(2, 5), IntRange(6, 8), "steps by which the opponent's tracking lags the ball"),
        points_to_win=Param(IntRange(1, 3), IntRange(4, 5), "points that win the match"),
        palette=PALETTE_PARAM,
        text_style=Param(Choice(("court", "coords")), Choice(("relative",)), "how the court is written"),
        action_words=Param(Choice(("updown", "moves")), Choice(("compass",)), "words for the actions"),
    )
    oracle_success_rate = 1.0  # 500/500 seeds on train and on held-out
    # gym.make hides the registered limit from the unwrapped env; keep the two in step
    default_max_episode_steps = 1000

    WIDTH, HEIGHT = 40.0, 30.0
    AGENT_X, OPP_X = 2.0, 38.0
    BALL_R = 0.5
    PADDLE_SPEED = 2.0
    MAX_ANGLE = math.radians(50.0)
    SERVE_ANGLE = math.radians(30.0)
    COLS, ROWS = 32, 12
    PX = 4

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.numeric_space = spaces.Box(-1.0, 1.0, (12,), np.float32)

    @property
    def mission(self) -> str:
        n = self.params.points_to_win
        return f"Win a game of Pong: be first to {n} point{'s' * (n != 1)} against the opponent on the right."

    # -- simulation

    def _new_episode(self) -> None:
        half = self.params.paddle_size / 2
        self.half = half
        self.opp_max = self.params.opp_speed * self.params.ball_speed
        self.agent_y = self.HEIGHT / 2
        self.opp_y = self.HEIGHT / 2
        self.score = [0, 0]
        self._serve()

    def _serve(self) -> None:
        rng, s = self.np_random, self.params.ball_speed
        angle = float(rng.uniform(-self.SERVE_ANGLE, self.SERVE_ANGLE))
        direction = 1.0 if rng.random() < 0.5 else -1.0
        self.bx = self.WIDTH / 2
        self.by = self.HEIGHT / 2 + float(rng.uniform(-5.0, 5.0))
        self.vx = direction * s * math.cos(angle)
        self.vy = s * math.sin(angle)
        self.aim = float(rng.uniform(-0.6, 0.6)) * self.half
        # The opponent reacts to where the ball was opp_lag steps ago.
        self.hist: collections.deque[float] = collections.deque([self.by] * (self.params.opp_lag + 1),
                                                                maxlen=self.params.opp_lag + 1)

    def _bounce(self, offset: float, direction: float) -> None:
        angle = max(-1.0, min(1.0, offset)) * self.MAX_ANGLE
        s = self.params.ball_speed
        self.vx = direction * s * math.cos(angle)
        self.vy = s * math.sin(angle)

    def _advance(self, action: int | None) -> tuple[float, bool]:
        p, half = self.params, self.half
        lo, hi = half, self.HEIGHT - half
        if action is not None and action != 1:
            self.agent_y = min(max(self.agent_y + (action - 1) * self.PADDLE_SPEED, lo), hi)
        d = self.hist[0] + self.aim - self.opp_y
        sp = self.opp_max
        self.opp_y = min(max(self.opp_y + max(-sp, min(sp, d)), lo), hi)

        r = self.BALL_R
        span = self.HEIGHT - 2 * r
        bx, by, vx, vy = self.bx, self.by, self.vx, self.vy
        nx = bx + vx
        scorer = -1
        if vx < 0 and nx < self.AGENT_X <= bx:
            f = (bx - self.AGENT_X) / -vx
            yc = _fold(by + f * vy, r, span)[0]
            if abs(yc - self.agent_y) <= half + r:
                self._bounce((yc - self.agent_y) / half, 1.0)
                self.aim = float(self.np_random.uniform(-0.6, 0.6)) * half
                rest = 1.0 - f
                self.bx = self.AGENT_X + rest * self.vx
                self.by, flip = _fold(yc + rest * self.vy, r, span)
                if flip:
                    self.vy = -self.vy
            else:
                scorer = 1
        elif vx > 0 and bx <= self.OPP_X < nx:
            f = (self.OPP_X - bx) / vx
            yc = _fold(by + f * vy, r, span)[0]
            if abs(yc - self.opp_y) <= half + r:
                self._bounce((yc - self.opp_y) / half, -1.0)
                rest = 1.0 - f
                self.bx = self.OPP_X + rest * self.vx
                self.by, flip = _fold(yc + rest * self.vy, r, span)
                if flip:
                    self.vy = -self.vy
            else:
                scorer = 0
        else:
            self.bx = nx
            self.by, flip = _fold(by + vy, r, span)
            if flip:
                self.vy = -vy
        if scorer < 0:
            self.hist.append(self.by)
            return 0.0, False
        self.score[scorer] += 1
        over = self.score[scorer] >= p.points_to_win
        if not over:
            self._serve()
        return (1.0 if scorer == 0 else -1.0), over

    def _success(self) -> bool:
        return self.score[0] >= self.params.points_to_win

    # -- the scripted expert

    def oracle_action(self) -> int:
        """Predict where the ball crosses the paddle line (wall bounces unfolded),
        then among the paddle positions reachable in time that still hit it,
        pick the one whose return lands furthest from where the simulated
        opponent will be. With the ball going away, drift back to the middle."""
        ps, half, r = self.PADDLE_SPEED, self.half, self.BALL_R
        span = self.HEIGHT - 2 * r
        lo, hi = half, self.HEIGHT - half
        if self.vx >= 0:
            d = self.HEIGHT / 2 - self.agent_y
            return 1 if abs(d) <= ps / 2 else (2 if d > 0 else 0)
        t = (self.bx - self.AGENT_X) / -self.vx
        n = int(math.floor(t)) + 1  # paddle moves before the ball, so n moves are left
        yc = _fold(self.by + t * self.vy, r, span)[0]
        # the opponent's path until the hit is the same for every candidate
        pre = list(self.hist) + [_fold(self.by + i * self.vy, r, span)[0] for i in range(1, n)]
        best, best_k = -math.inf, None
        seen: set[float] = set()
        for k in range(-n, n + 1):
            y = min(max(self.agent_y + k * ps, lo), hi)
            if y in seen or abs(yc - y) > half + r:
                continue
            seen.add(y)
            margin = self._return_margin(yc, (yc - y) / half, t, n, pre)
            # prefer the shorter move among equally good returns: fewer ways to be late
            if margin > best + 1e-9 or (abs(margin - best) <= 1e-9 and best_k is not None and abs(k) < abs(best_k)):
                best, best_k = margin, k
        if best_k is None:  # out of reach: get as close as possible
            d = yc - self.agent_y
            return 1 if abs(d) <= ps / 2 else (2 if d > 0 else 0)
        return 1 if best_k == 0 else (2 if best_k > 0 else 0)

    def _return_margin(self, yc: float, offset: float, t: float, n: int, pre: list[float]) -> float:
        """How far (beyond its reach) the return after a hit at ``offset`` arrives
        from the opponent, simulating its lagged tracking with no aim offset."""
        p, half, r = self.params, self.half, self.BALL_R
        span = self.HEIGHT - 2 * r
        angle = max(-1.0, min(1.0, offset)) * self.MAX_ANGLE
        vx, vy = p.ball_speed * math.cos(angle), p.ball_speed * math.sin(angle)
        tau = (self.OPP_X - self.AGENT_X) / vx
        arrive = int(math.floor(t + tau)) + 1
        seq = pre + [_fold(yc + (i - t) * vy, r, span)[0] for i in range(n, arrive)]
        oy, sp = self.opp_y, self.opp_max
        for j in range(arrive):
            oy = min(max(oy + max(-sp, min(sp, seq[j] - oy)), half), self.HEIGHT - half)
        return abs(_fold(yc + tau * vy, r, span)[0] - oy) - (half + r)

    # -- observations

    def _heading(self) -> str:
        side = "left, toward you" if self.vx < 0 else "right, toward the opponent"
        vert = "up" if self.vy < -0.05 else ("down" if self.vy > 0.05 else "level")
        return f"Ball moving {side}, {vert}."

    def _score_line(self) -> str:
        return f"Score: you {self.score[0]}, opponent {self.score[1]} (first to {self.params.points_to_win} wins)."

    def _text(self) -> str:
        p, half = self.params, self.half
        style = p.text_style
        if style == "court":
            cols, nrows = self.COLS, self.ROWS
            cw, ch = self.WIDTH / cols, self.HEIGHT / nrows
            empty = "|" + "." * cols + "|"
            rows = [empty] * nrows
            for col, y, mark in ((int(self.AGENT_X / cw) + 1, self.agent_y, "Y"), (int(self.OPP_X / cw) + 1, self.opp_y, "X")):
                for row in range(max(int((y - half) / ch), 0), min(int((y + half) / ch), nrows - 1) + 1):
                    r = rows[row]
                    rows[row] = r[:col] + mark + r[col + 1:]
            bc, br = min(max(int(self.bx / cw), 0), cols - 1) + 1, min(max(int(self.by / ch), 0), nrows - 1)
            r = rows[br]
            rows[br] = r[:bc] + "o" + r[bc + 1:]
            border = "+" + "-" * cols + "+"
            body = "\n".join(rows)
            return (f"Court (Y your paddle, X opponent, o ball; top is up):\n{border}\n{body}\n{border}\n"
                    f"{self._heading()}\n{self._score_line()}")
        if style == "coords":
            return (
                f"Court {self.WIDTH:g} wide, {self.HEIGHT:g} tall (x from the left, y from the top; up lowers y).\n"
                f"Ball at x={self.bx:.1f}, y={self.by:.1f}, velocity per step ({self.vx:+.2f}, {self.vy:+.2f}).\n"
                f"Your paddle: x={self.AGENT_X:g}, centre y={self.agent_y:.1f}, reaches {half:.1f} up and down; "
                f"moves {self.PADDLE_SPEED:g} per step.\n"
                f"Opponent paddle: x={self.OPP_X:g}, centre y={self.opp_y:.1f}.\n{self._score_line()}"
            )
        dy = self.by - self.agent_y
        if abs(dy) <= half:
            where = "level with your paddle"
        else:
            where = f"{abs(dy):.1f} {'below' if dy > 0 else 'above'} your paddle's centre"
        toward = "moving toward you" if self.vx < 0 else "moving away from you"
        vert = "rising" if self.vy < -0.05 else ("falling" if self.vy > 0.05 else "flying level")
        od = self.by - self.opp_y
        return (
            f"The ball is {where}, {self.bx - self.AGENT_X:.1f} in front of you, {toward} and {vert}. "
            f"Your paddle is {self.agent_y:.1f} from the top wall and {self.HEIGHT - self.agent_y:.1f} from the bottom "
            f"(it covers {half:.1f} each way). The opponent's paddle is {abs(od):.1f} "
            f"{'above' if od > 0 else 'below'} the ball. {self._score_line()}"
        )

    def _frame_size(self) -> tuple[int, int]:
        return int(self.WIDTH * self.PX), int(self.HEIGHT * self.PX)

    def _draw(self, surface: Any) -> None:
        k, pal, half = self.PX, PALETTES[self.params.palette], self.half
        w, h = self._frame_size()
        surface.fill(pal["bg"])
        for y in range(0, h, 4 * k):
            surface.fill(pal["wall"], (w // 2 - 1, y, 2, 2 * k))
        pw = k
        surface.fill(pal["agent"], (int(self.AGENT_X * k) - pw, int((self.agent_y - half) * k), pw, int(2 * half * k)))
        surface.fill(pal["other"], (int(self.OPP_X * k), int((self.opp_y - half) * k), pw, int(2 * half * k)))
        r = 0.75 * k  # drawn a little larger than it is, so it survives scaling to 84 px
        surface.fill(pal["item"], (int(self.bx * k - r), int(self.by * k - r), int(2 * r), int(2 * r)))
        for i in range(self.score[0]):
            surface.fill(pal["agent"], (w // 2 - (i + 1) * 3 * k, k, 2 * k, 2 * k))
        for i in range(self.score[1]):
            surface.fill(pal["other"], (w // 2 + i * 3 * k + k, k, 2 * k, 2 * k))

    def numeric_observation(self) -> np.ndarray:
        p, w, h = self.params, self.WIDTH, self.HEIGHT
        return np.array(
            [
                self.bx / w, self.by / h, self.vx / 3.0, self.vy / 3.0,
                self.agent_y / h, self.opp_y / h, self.half / h,
                p.opp_speed / 2.0, p.opp_lag / 8.0,
                self.score[0] / 8.0, self.score[1] / 8.0, p.points_to_win / 8.0,
            ],
            dtype=np.float32,
        )
