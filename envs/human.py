"""Human play: a person plays any registered env (``multiverse play ID --agent human``).

* A game opens a pygame window where a display is there: the frame scaled up,
  and beside it the mission, the return so far and the keys of the legal
  actions (arrows or WASD for directions, space for ``flap``/``stay``, digits 1-9
  for action 1-9 of any game). A game with an idle action (``stay``, ``wait``)
  runs in real time at the env's ``render_fps`` and takes the idle action when
  no key is pressed; the others step once per key. q or Esc quits.
* A web task shows its page in a visible (headed) Chromium window where an X
  display is there; the actions are typed in the terminal, in the env's own
  action language.
* Without a display (or with ``--terminal``) everything is played in the
  terminal: the text observation and the numbered legal actions are printed,
  and a line is read: an action, its number, or q to quit.

The person is an agent for :func:`~multiverse.envs.play.play_episode`, so an
episode is the same as any other agent's; quitting ends it unfinished.
"""

from __future__ import annotations

import dataclasses
import os
import textwrap
from typing import Any

import gymnasium as gym

from multiverse.envs.core import GameEnv
from multiverse.envs.play import EpisodeStats, Quit, play_episode
from multiverse.envs.registry import lookup, make
from multiverse.envs.web.actions import TEXT_TEMPLATE, format_action, parse

__all__ = ["IDLE_ACTIONS", "KEYS", "GameWindow", "TerminalPlayer", "play_human", "window_possible"]

#: keys (pygame key names) for the games' nominal action names (``ACTIONS``); digits 1-9 pick action 1-9 in any game
KEYS: dict[str, tuple[str, ...]] = {
    "up": ("up", "w"),
    "down": ("down", "s"),
    "left": ("left", "a"),
    "right": ("right", "d"),
    "flap": ("space", "up"),
    "stay": ("space", "down"),
}
#: a game with one of these actions runs in real time: it is taken at each tick without a key
IDLE_ACTIONS = ("stay", "wait", "noop")
QUIT_WORDS = ("q", "quit", "exit")


def window_possible() -> bool:
    """A display is there for a pygame window (SDL's dummy and offscreen drivers draw nowhere)."""
    has_display = bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return has_display and os.environ.get("SDL_VIDEODRIVER", "") not in ("dummy", "offscreen")


def _say(text: str) -> None:
    print(text, flush=True)


# --------------------------------------------------------------------------- terminal


class TerminalPlayer:
    """The person at the terminal: prints each observation and legal actions, reads one line per step."""

    def __init__(self, env: gym.Env) -> None:
        self.is_game = isinstance(env.unwrapped, GameEnv)
        self.total = 0.0

    def _read(self, prompt: str) -> str:
        try:
            line = input(prompt)
        except EOFError:  # stdin closed: the same as q
            raise Quit from None
        if line.strip().lower() in QUIT_WORDS:
            raise Quit
        return line.strip()

    def agent(self, env: gym.Env, obs: Any, info: dict[str, Any]) -> Any:
        _say(f"\n{obs['text']}")
        legal = list(info["legal_actions"])
        _say("actions: " + "   ".join(f"[{i}] {a}" for i, a in enumerate(legal)))
        hint = "" if self.is_game else ", or any action such as click(3)"
        while True:
            line = self._read(f"action (a name, its number{hint}; q quits)> ")
            if not line:
                continue
            if line.isdigit():
                if int(line) >= len(legal):
                    _say(f"there is no action [{line}]; use 0..{len(legal) - 1}")
                    continue
                action = legal[int(line)]
                if TEXT_TEMPLATE in action:
                    return self._fill(action)
                return action
            if self.is_game and line not in legal:
                _say(f"{line[:40]!r} is not an action now; legal: {', '.join(legal)}")
                continue
            return line  # a web action: the env parses it and says what is wrong, if anything

    def _fill(self, template: str) -> str:
        """``type(2, <text>)`` -> ``type(2, "what the person typed")``, quoted the action language's way."""
        blank = parse(template.replace(TEXT_TEMPLATE, '""'))
        assert not isinstance(blank, str), blank  # the env's own templates always parse
        return format_action(dataclasses.replace(blank, text=self._read(f"text for {template}> ")))

    def on_step(self, obs: Any, reward: float, terminated: bool, truncated: bool, info: dict[str, Any]) -> None:
        self.total += float(reward)
        line = f"reward {float(reward):+.2f}   return {self.total:+.2f}"
        for key in ("action_error", "infra_error"):
            if key in info:
                line += f"   {key}: {info[key]}"
        _say(line)

    def start_episode(self, k: int, seed: int) -> None:
        self.total = 0.0
        _say(f"\n=== episode {k + 1}, seed {seed} ===")

    def end_episode(self, stats: EpisodeStats, last: bool) -> None:
        _say(f"episode over: {'success' if stats.success else 'failure'}, return {stats.total_return:+.2f} "
             f"in {stats.steps} steps")


# --------------------------------------------------------------------------- pygame window


class GameWindow:
    """A game in a pygame window; key presses become the game's actions (see the module docstring)."""

    PANEL = 360  # width of the text panel beside the frame, in pixels
    FRAME = 480  # the frame is scaled up by an integer factor to about this size

    def __init__(self, env: gym.Env, env_id: str) -> None:
        os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
        import pygame

        self.pygame = pygame
        self.env, self.game = env, env.unwrapped
        pygame.display.init()  # before the games' drawing code is imported, which defaults SDL to no window
        pygame.font.init()
        self.screen = pygame.display.set_mode((self.FRAME + self.PANEL, self.FRAME))  # resized to each episode's frame
        pygame.display.set_caption(f"{env_id}: arrows/WASD, space, 1-9; q quits")
        pygame.key.set_repeat(250, 120)  # a held key repeats
        self.font = pygame.font.Font(None, 22)
        self.keymap: dict[int, int] = {}  # pygame key -> action index
        for i, name in enumerate(self.game.ACTIONS):
            for key in KEYS.get(name, ()):
                self.keymap.setdefault(pygame.key.key_code(key), i)
        for i in range(min(9, len(self.game.ACTIONS))):
            self.keymap.setdefault(pygame.key.key_code(str(i + 1)), i)
        idle = [i for i, name in enumerate(self.game.ACTIONS) if name in IDLE_ACTIONS]
        self.idle: int | None = idle[0] if idle else None
        self.fps = int(env.metadata.get("render_fps", 10)) if self.idle is not None else 30
        self.clock = pygame.time.Clock()
        self.total, self.note = 0.0, ""

    def _keys_of(self, index: int) -> str:
        names = [self.pygame.key.name(k) for k, i in self.keymap.items() if i == index]
        return "/".join(n.upper() if len(n) == 1 else n for n in names)

    def _draw(self, lines: list[str]) -> None:
        pg = self.pygame
        frame = self.env.render()  # (H, W, 3) at the game's native size, which a randomized layout may change
        h, w = frame.shape[:2]
        scale = max(1, self.FRAME // max(h, w))
        size = (w * scale + self.PANEL, max(h * scale, 400))
        if self.screen.get_size() != size:
            self.screen = pg.display.set_mode(size)
        self.screen.fill((24, 24, 28))
        surf = pg.surfarray.make_surface(frame.swapaxes(0, 1))
        self.screen.blit(pg.transform.scale(surf, (w * scale, h * scale)), (0, 0))
        y = 10
        for line in lines:
            for part in textwrap.wrap(line, 36) or [""]:
                self.screen.blit(self.font.render(part, True, (230, 230, 230)), (w * scale + 12, y))
                y += 20
        pg.display.flip()

    def _panel(self, info: dict[str, Any]) -> list[str]:
        legal = set(info["legal_actions"])
        keys = [f"{self._keys_of(i)}: {name}" for i, name in enumerate(self.game.action_names) if name in legal]
        idle = f" (no key: {self.game.action_names[self.idle]})" if self.idle is not None else ""
        return [info["mission"], "", f"step {self.game.t}   return {self.total:+.2f}", self.note, "",
                "keys" + idle + ":", *keys, "q / Esc: quit"]

    def _next_key(self, block_ms: int) -> int | None:
        """The next key press (KEYDOWN's key) or None when none came; a closed window or q/Esc raises Quit."""
        pg = self.pygame
        event = pg.event.poll() if block_ms == 0 else pg.event.wait(block_ms)
        while event.type != pg.NOEVENT:
            if event.type == pg.QUIT or (event.type == pg.KEYDOWN and event.key in (pg.K_q, pg.K_ESCAPE)):
                raise Quit
            if event.type == pg.KEYDOWN:
                return event.key
            event = pg.event.poll()
        return None

    def agent(self, env: gym.Env, obs: Any, info: dict[str, Any]) -> Any:
        self._draw(self._panel(info))
        while True:
            if self.idle is not None:
                self.clock.tick(self.fps)  # real time: one step per tick, the idle action without a key
            key = self._next_key(0 if self.idle is not None else 100)
            index = self.keymap.get(key) if key is not None else None
            if index is not None and self.game.action_names[index] in info["legal_actions"]:
                return index
            if index is not None:
                self.note = f"{self.game.action_names[index]} is not legal now"
            if self.idle is not None:
                return self.idle

    def on_step(self, obs: Any, reward: float, terminated: bool, truncated: bool, info: dict[str, Any]) -> None:
        self.total += float(reward)
        self.note = f"reward {float(reward):+.2f}" + (f"  ({info['action_error']})" if "action_error" in info else "")

    def start_episode(self, k: int, seed: int) -> None:
        self.total, self.note = 0.0, f"episode {k + 1}, seed {seed}"

    def end_episode(self, stats: EpisodeStats, last: bool) -> None:
        """Show the outcome and wait for Enter (not any key: a held arrow would skip the screen) or q."""
        outcome = "success" if stats.success else "failure"
        _say(f"episode over: {outcome}, return {stats.total_return:+.2f} in {stats.steps} steps")
        then = "Enter or q: close" if last else "Enter: next episode, q: quit"
        self._draw([f"episode over: {outcome}", f"return {stats.total_return:+.2f} in {stats.steps} steps", "", then])
        while self._next_key(200) not in (self.pygame.K_RETURN, self.pygame.K_KP_ENTER):
            pass

    def close(self) -> None:
        self.pygame.display.quit()


# --------------------------------------------------------------------------- the driver


def play_human(
    env_id: str, *, episodes: int, seed: int, options: dict[str, Any], terminal: bool = False,
) -> list[EpisodeStats]:
    """A person plays up to ``episodes`` episodes (seeds ``seed``, ``seed + 1``, ...); q stops early.

    Returns the episodes played (maybe none), the last one unfinished (``quit``) when the person quit in it."""
    kind = lookup(env_id).kind
    window = kind == "game" and not terminal and window_possible()
    headed = kind == "web" and not terminal and bool(os.environ.get("DISPLAY"))
    if headed:
        from multiverse.envs.web.browser import BrowserHost

        BrowserHost.get().headless = False
        _say(f"{env_id}: the page is in a Chromium window; type the actions here (q quits)")
    env = None
    if window:
        try:
            env = make(env_id, render_mode="rgb_array")
        except NotImplementedError as exc:  # a game that does not draw (no _frame_size/_draw) is played as text
            _say(f"no window ({str(exc)[:120]}): playing in the terminal")
            window = False
    env = env or make(env_id)
    player: Any = None
    try:
        if window:
            try:
                player = GameWindow(env, env_id)
                pace = f"{player.fps} steps/s" if player.idle is not None else "one step per key"
                _say(f"{env_id}: playing in a window ({pace}); q or Esc quits")
            except Exception as exc:  # pygame.error: a display that does not open a window
                _say(f"no window ({str(exc).splitlines()[0][:80]}): playing in the terminal")
                player = None
        if player is None:
            player = TerminalPlayer(env)
        stats: list[EpisodeStats] = []
        for k in range(episodes):
            player.start_episode(k, seed + k)
            s = play_episode(env, player.agent, seed=seed + k, options=options, on_step=player.on_step)
            if s.quit:
                if s.steps:  # an episode quit before its first step was not played
                    stats.append(s)
                break
            stats.append(s)
            try:
                player.end_episode(s, last=k == episodes - 1)
            except Quit:
                break
        return stats
    finally:
        if isinstance(player, GameWindow):
            player.close()
        env.close()
