"""Pieces the games share that need no pygame: palettes and common parameters."""

from __future__ import annotations

from multiverse.envs.randomization import Choice, Param

#: colour palettes the games randomize over; each maps a role to an RGB triple
PALETTES: dict[str, dict[str, tuple[int, int, int]]] = {
    "classic": {"bg": (20, 20, 30), "wall": (110, 110, 130), "agent": (240, 200, 40), "goal": (60, 200, 90),
                "item": (220, 60, 60), "other": (80, 140, 240), "text": (240, 240, 240)},
    "pastel": {"bg": (245, 240, 230), "wall": (170, 150, 200), "agent": (240, 150, 120), "goal": (140, 210, 170),
               "item": (250, 190, 90), "other": (130, 180, 230), "text": (40, 40, 40)},
    "night": {"bg": (5, 5, 15), "wall": (40, 60, 120), "agent": (0, 230, 230), "goal": (230, 0, 200),
              "item": (250, 250, 90), "other": (150, 90, 250), "text": (200, 200, 255)},
    "mono": {"bg": (255, 255, 255), "wall": (0, 0, 0), "agent": (90, 90, 90), "goal": (170, 170, 170),
             "item": (40, 40, 40), "other": (130, 130, 130), "text": (0, 0, 0)},
    "desert": {"bg": (230, 200, 150), "wall": (150, 100, 50), "agent": (40, 90, 160), "goal": (30, 140, 60),
               "item": (190, 40, 30), "other": (100, 60, 30), "text": (30, 20, 10)},
}
TRAIN_PALETTES = ("classic", "pastel", "night")
HELDOUT_PALETTES = ("mono", "desert")

#: the colour parameter every game declares
PALETTE_PARAM = Param(Choice(TRAIN_PALETTES), Choice(HELDOUT_PALETTES), "colour palette")

#: words for the four moves of grid games (index order up, down, left, right); the compass words are
#: held out in every game, so an agent trained jointly never saw them in training
DIRECTION_WORDS: dict[str, tuple[str, ...]] = {
    "arrows": ("up", "down", "left", "right"),
    "moves": ("move up", "move down", "move left", "move right"),
    "compass": ("north", "south", "west", "east"),
}
DIRECTION_WORDS_PARAM = Param(Choice(("arrows", "moves")), Choice(("compass",)), "words for the actions")

#: direction words of every game's action-word sets (the last word of an action name: "move left" -> "left")
_DIRECTIONS = {"up", "down", "left", "right", "north", "south", "west", "east"}


def describe_moves(words: dict[str, tuple[str, ...]], goes: str, still: str) -> dict[str, tuple[str, ...]]:
    """``ACTION_DESCRIPTIONS`` for a game: per word set, each action described in that set's own words.

    A move ("left", "move left", "north") becomes ``goes`` with ``{dir}`` its direction word; any other
    action ("stay", "hold", "flap") becomes ``still`` with ``{verb}`` its word plus "s" ("holds"). The
    frames name only what the action moves (the paddle, the tiles, you); which way is always the
    episode's own word, so a held-out word set (compass words the agent never trained on) is never
    mapped back to a train word: "west" is described as "... west", not as "left"."""
    def one(word: str) -> str:
        last = word.split()[-1]
        return goes.format(dir=last) if last in _DIRECTIONS else still.format(verb=f"{word}s")

    return {key: tuple(one(w) for w in names) for key, names in words.items()}
