"""Human play (``multiverse play ID --agent human``): the terminal through the real CLI, the pygame window with
key events posted into pygame's queue, and a real window and a headed Chromium on an X display (Xvfb)."""

from __future__ import annotations

import io
import os
import shutil
import signal
import struct
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import pygame
import pytest

import multiverse.envs as menvs
from multiverse.envs.core import GameEnv
from multiverse.envs.games.catch import CatchEnv
from multiverse.envs.human import GameWindow, play_human
from multiverse.envs.play import Quit, play_episode
from multiverse.envs.web.browser import timeout_scale

from conftest import cli_path

NO_DISPLAY = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}


def play(args: list[str], stdin: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([cli_path(), "play", *args, "--agent", "human"], input=stdin, capture_output=True,
                          text=True, env=env or NO_DISPLAY, timeout=120 * timeout_scale())


# --------------------------------------------------------------------------- the terminal


def test_terminal_play_of_a_game_through_the_cli() -> None:
    # Catch's episode lasts as long as its balls fall (16 steps at seed 0), whatever the paddle does
    typed = ["right", "5", "bogus", "0"] + ["stay"] * 14 + ["0", "q"]  # seed 1 words its actions "move left", ...
    out = play(["games/Catch-v0", "--seed", "0", "--episodes", "3"], "\n".join(typed) + "\n")
    assert out.returncode == 0, out.stderr[-2000:]
    assert "Catch all" in out.stdout and "[0] left   [1] stay   [2] right" in out.stdout
    assert "there is no action [5]; use 0..2" in out.stdout
    assert "'bogus' is not an action now; legal: left, stay, right" in out.stdout
    assert "episode over: failure, return -2.00 in 16 steps" in out.stdout
    assert "seed 0: failure  return -2.00  steps 16  terminated" in out.stdout
    assert "seed 1: failure  return +0.00  steps 1  quit" in out.stdout  # q ended the second episode
    assert "seed 2" not in out.stdout and "Traceback" not in out.stderr


def test_terminal_play_of_a_web_task_through_the_cli() -> None:
    # web/LoginForm-v0 seed 0: [2] is the username field, [3] the password, [4] the button
    typed = ["0", "tom815", 'type(3, "5EK8SMGH6")', "click(99)", "click(4)", "q"]
    out = play(["web/LoginForm-v0", "--seed", "0", "--episodes", "2"], "\n".join(typed) + "\n")
    assert out.returncode == 0, out.stderr[-2000:]
    assert "text for type(2, <text>)>" in out.stdout and '[2] textbox "Username" value="tom815"' in out.stdout
    assert "action_error: no element [99] is visible now" in out.stdout
    assert "episode over: success, return +1.00 in 4 steps" in out.stdout
    assert "seed 0: success  return +1.00  steps 4  terminated" in out.stdout
    assert "seed 1:" not in out.stdout  # quit before its first step: not an episode played
    assert "success 100%" in out.stdout and "Traceback" not in out.stderr


# --------------------------------------------------------------------------- the pygame window (SDL's dummy driver)


def post_keys(*keys: int) -> None:
    for key in keys:
        pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=key, mod=0, unicode="", scancode=0))


@pytest.mark.parametrize("env_id, keys, actions", [
    # real time (an idle action): a key is one step, an unmapped key or none is a step of "stay"
    ("games/Catch-v0", (pygame.K_RIGHT, pygame.K_d, pygame.K_1, pygame.K_x), [2, 2, 0, 1]),
    # one step per key: the unmapped key steps nothing
    ("games/Maze-v0", (pygame.K_w, pygame.K_x, pygame.K_LEFT, pygame.K_4), [0, 2, 3]),
])
def test_window_turns_keys_into_actions(env_id: str, keys: tuple[int, ...], actions: list[int]) -> None:
    env = menvs.make(env_id, render_mode="rgb_array")
    window = GameWindow(env, env_id)
    try:
        taken: list[int] = []

        def agent(env, obs, info):  # the window's agent, with what it returns recorded
            taken.append(window.agent(env, obs, info))
            return taken[-1]

        pygame.event.clear()
        post_keys(*keys, pygame.K_q)
        stats = play_episode(env, agent, seed=0, on_step=window.on_step)
        assert taken == actions and stats.quit and stats.steps == len(actions)
        frame = env.render()
        scale = max(1, GameWindow.FRAME // max(frame.shape[:2]))
        shown = pygame.surfarray.array3d(window.screen).swapaxes(0, 1)
        assert shown.shape[1] == frame.shape[1] * scale + GameWindow.PANEL
        # the frame is drawn scaled up (the top-left pixel of each cell), beside the text panel
        assert np.array_equal(shown[: frame.shape[0] * scale : scale, : frame.shape[1] * scale : scale], frame)
        # the end screen waits for Enter (a held arrow must not skip it); q there quits
        post_keys(pygame.K_RIGHT, pygame.K_RETURN, pygame.K_q)
        window.end_episode(stats, last=False)
        with pytest.raises(Quit):
            window.end_episode(stats, last=True)
    finally:
        window.close()
        env.close()


class NoDrawingCatch(CatchEnv):
    """Catch without its drawing methods: a game that offers no pixels."""

    _frame_size = GameEnv._frame_size
    _draw = GameEnv._draw


def test_a_game_that_does_not_draw_is_played_in_the_terminal_where_a_window_could_open(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    menvs.register("testonly/NoDrawing-v0", NoDrawingCatch, kind="game", max_episode_steps=20, replace=True)
    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.setenv("SDL_VIDEODRIVER", "x11")  # as on a desktop: a window would open
    monkeypatch.setattr("sys.stdin", io.StringIO("1\nq\n"))
    stats = play_human("testonly/NoDrawing-v0", episodes=1, seed=0, options={})
    out = capsys.readouterr().out
    assert "no window (NoDrawingCatch was made with render_mode='rgb_array' but does not define" in out
    assert "actions: [0] left   [1] stay   [2] right" in out
    assert [(s.steps, s.quit) for s in stats] == [(1, True)]


# --------------------------------------------------------------------------- a real X display (Xvfb)


def screen_colours(fb: Path) -> int:
    """Distinct colours on Xvfb's screen 0, read from the XWD file that ``-fbdir`` keeps up to date."""
    raw = fb.read_bytes()
    header = struct.unpack(">25I", raw[:100])
    size, width, height, bytes_per_line, ncolors = header[0], header[4], header[5], header[12], header[19]
    start = size + 12 * ncolors
    pixels = np.frombuffer(raw[start:start + bytes_per_line * height], np.uint8).reshape(height, bytes_per_line)
    return len(np.unique(np.ascontiguousarray(pixels[:, : width * 4]).view(np.uint32)))


@pytest.fixture
def xvfb(tmp_path: Path):
    """An X display of its own; yields (env with DISPLAY set, the screen's XWD file)."""
    assert shutil.which("Xvfb"), "Xvfb is missing: launch/setup.sh installs it (apt-get install xvfb)"
    proc = subprocess.Popen(["Xvfb", "-displayfd", "1", "-screen", "0", "1024x768x24", "-nolisten", "tcp",
                             "-fbdir", str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    display = proc.stdout.readline().strip()
    assert display.isdigit(), "Xvfb did not start"
    env = dict(NO_DISPLAY, DISPLAY=f":{display}")
    env.pop("SDL_VIDEODRIVER", None)  # the tests' dummy driver would draw nowhere
    try:
        yield env, tmp_path / "Xvfb_screen0"
    finally:
        proc.kill()
        proc.wait()


def _cmdline(p: psutil.Process) -> list[str]:
    """A process's command line; none for one that exited (a zombie) while the children were listed."""
    try:
        return p.cmdline()
    except psutil.Error:
        return []


class Reader:
    """A process's stdout collected on a thread, so a test can wait for a prompt that ends without a newline."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.text = ""
        threading.Thread(target=self._run, args=(proc,), daemon=True).start()

    def _run(self, proc: subprocess.Popen) -> None:
        while ch := proc.stdout.read(1):
            self.text += ch

    def wait_for(self, needle: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout * timeout_scale()  # the test command's factor for a slow host
        while needle not in self.text:
            assert time.monotonic() < deadline, f"no {needle!r} in: {self.text[-1500:]}"
            time.sleep(0.05)


def test_a_game_opens_a_window_and_a_web_task_a_headed_chromium_on_a_display(xvfb) -> None:
    env, fb = xvfb
    assert screen_colours(fb) == 1  # nothing drawn yet
    # a game: a pygame window; Catch runs in real time, so with no key pressed its episode plays itself out
    # Ctrl-C as at a terminal: a suite started in the background (`bash .ci/run &`) ignores SIGINT, and a child
    # inherits that (Python then keeps it ignored), so the child gets the default disposition here
    proc = subprocess.Popen([cli_path(), "play", "games/Catch-v0", "--agent", "human", "--episodes", "1"], env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        out = Reader(proc)
        out.wait_for("episode over: failure, return -2.00 in 16 steps")
        assert "playing in a window (10 steps/s)" in out.text
        assert screen_colours(fb) > 20  # the frame and the panel's text
        proc.send_signal(signal.SIGINT)  # the end screen waits for Enter; Ctrl-C ends it too
        assert proc.wait(30 * timeout_scale()) in (0, 130), out.text
    finally:
        proc.kill()
    # a web task: the page in a visible Chromium, the actions typed in the terminal
    proc = subprocess.Popen([cli_path(), "play", "web/ClickButton-v0", "--agent", "human", "--seed", "0"], env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        out = Reader(proc)
        out.wait_for("action (a name")
        assert "the page is in a Chromium window" in out.text
        browsers = [c for c in map(_cmdline, psutil.Process(proc.pid).children(recursive=True))
                    if any(a.startswith("--multiverse-browser=") for a in c)]
        assert browsers and not any("--headless" in a for a in browsers[0]), browsers
        assert screen_colours(fb) > 20  # the page is on the screen
        proc.stdin.write("q\n")
        proc.stdin.flush()
        assert proc.wait(60 * timeout_scale()) == 0, out.text
        assert "no episode played" in out.text
    finally:
        proc.kill()
