"""The game suite: one file per game, registered here, one line per versioned id."""

from multiverse.envs.registry import register

register("games/Catch-v0", "multiverse.envs.games.catch:CatchEnv", kind="game", max_episode_steps=200, tags=["arcade", "grid"])
register("games/Maze-v0", "multiverse.envs.games.maze:MazeEnv", kind="game", max_episode_steps=300, tags=["navigation", "grid", "procedural"])
register("games/Snake-v0", "multiverse.envs.games.snake:SnakeEnv", kind="game", max_episode_steps=500, tags=["arcade", "grid"])
register("games/Pong-v0", "multiverse.envs.games.pong:PongEnv", kind="game", max_episode_steps=1000, tags=["arcade", "physics", "opponent"])
register("games/Sokoban-v0", "multiverse.envs.games.sokoban:SokobanEnv", kind="game", max_episode_steps=200, tags=["puzzle", "grid", "procedural"])
register("games/Flappy-v0", "multiverse.envs.games.flappy:FlappyEnv", kind="game", max_episode_steps=1000, tags=["arcade", "physics"])
register("games/2048-v0", "multiverse.envs.games.game2048:Game2048Env", kind="game", max_episode_steps=2000, tags=["logic", "grid"])
