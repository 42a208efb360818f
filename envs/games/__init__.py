"""The game suite: one file per game, registered here, one line per versioned id."""

from multiverse.envs.registry import register

register("games/Catch-v0", "multiverse.envs.games.catch:CatchEnv", kind="game", max_episode_steps=200, tags=["arcade", "grid"])
