"""multiverse.envs: the environment registry, randomization as data, games and web tasks.

    import multiverse.envs as menvs
    env = menvs.make("games/Catch-v0", pixels=True)
    obs, info = env.reset(seed=0, options={"split": "heldout"})
    info["mission"], info["legal_actions"], info["randomization"]
"""

from multiverse.envs.core import GameEnv, MultiverseEnv, PrintableText
from multiverse.envs.randomization import (
    ADR,
    Choice,
    IntRange,
    LogUniform,
    Param,
    ParamSpace,
    RandomizationError,
    Uniform,
    Union,
)
from multiverse.envs.registry import (
    EnvSpec,
    RegistryError,
    list_envs,
    load_plugins,
    lookup,
    make,
    randomization_space,
    register,
    spec,
)

# isort: split
from multiverse.envs import games, web  # noqa: F401  (registers the built-in games and web tasks, after the names above)

# Plugins register on import, so gymnasium.make("multiverse.envs:plugin/Id-v0") (which only imports this
# module) finds their ids; a broken plugin only warns. Scanning the entry points costs a few milliseconds.
load_plugins()

__all__ = [
    "ADR",
    "Choice",
    "EnvSpec",
    "GameEnv",
    "IntRange",
    "LogUniform",
    "MultiverseEnv",
    "Param",
    "ParamSpace",
    "PrintableText",
    "RandomizationError",
    "RegistryError",
    "Uniform",
    "Union",
    "list_envs",
    "load_plugins",
    "lookup",
    "make",
    "randomization_space",
    "register",
    "spec",
]
