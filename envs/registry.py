"""The environment registry: ids, specs, Gymnasium registration and plugins.

``register`` records an env under a versioned id (``games/Snake-v0``) and also
registers it with Gymnasium, so ``gymnasium.make("multiverse.envs:games/Snake-v0")``
works as well as :func:`make`. Third-party distributions add envs through the
entry-point group ``multiverse.envs``: each entry point names a callable that
calls :func:`register`; they run when ``multiverse.envs`` is imported (so
Gymnasium's ``module:id`` form finds plugin ids too). A plugin that fails to
load gives a warning naming it; the other envs still load.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import importlib.metadata
import re
import warnings
from collections.abc import Callable
from typing import Any

import gymnasium as gym

__all__ = [
    "EnvSpec",
    "RegistryError",
    "entry_point_class",
    "list_envs",
    "load_plugins",
    "lookup",
    "make",
    "randomization_space",
    "register",
    "spec",
]

ENTRY_POINT_GROUP = "multiverse.envs"
KINDS = ("game", "web")
_ID_RE = re.compile(r"^[a-z][a-z0-9_]*/[A-Za-z0-9][\w.-]*-v\d+$")


class RegistryError(ValueError):
    """An unknown, malformed or duplicate env id, or a bad registration."""


@dataclasses.dataclass(frozen=True)
class EnvSpec:
    id: str
    entry_point: str | Callable[..., gym.Env]
    kind: str
    max_episode_steps: int
    tags: tuple[str, ...] = ()
    kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    #: the distribution that registered it ("multiverse-rl" for the built-ins)
    source: str = "multiverse-rl"

    @property
    def family(self) -> str:
        return self.id.split("/", 1)[0]

    @property
    def version(self) -> int:
        return int(self.id.rsplit("-v", 1)[1])


_REGISTRY: dict[str, EnvSpec] = {}
_plugins_loaded = False
_plugin_source: str | None = None


def register(
    id: str,
    entry_point: str | Callable[..., gym.Env],
    *,
    kind: str,
    max_episode_steps: int,
    tags: tuple[str, ...] | list[str] = (),
    kwargs: dict[str, Any] | None = None,
    replace: bool = False,
) -> EnvSpec:
    """Register an env under ``id`` (``family/Name-vN``) here and with Gymnasium.

    ``entry_point`` is ``"module:Class"`` or a callable returning the env;
    ``kwargs`` are passed to it (and can be overridden at :func:`make`).
    Registering an existing id is an error unless ``replace=True``.
    """
    if not isinstance(id, str) or not _ID_RE.match(id):
        raise RegistryError(
            f"env id {id!r} is malformed: use 'family/Name-vN', e.g. 'games/Snake-v0' "
            "(lower-case family, a version suffix that is bumped when behaviour or reward changes)"
        )
    if kind not in KINDS:
        raise RegistryError(f"{id}: kind must be one of {list(KINDS)}, got {kind!r}")
    if not isinstance(max_episode_steps, int) or max_episode_steps < 1:
        raise RegistryError(f"{id}: max_episode_steps must be a positive int, got {max_episode_steps!r}")
    if isinstance(tags, str):
        raise RegistryError(f"{id}: tags must be a list of strings, not one string {tags!r}")
    if id in _REGISTRY and not replace:
        raise RegistryError(
            f"env id {id!r} is already registered (by {_REGISTRY[id].source}); "
            "pass replace=True to override it, or bump its version"
        )
    if not (callable(entry_point) or (isinstance(entry_point, str) and ":" in entry_point)):
        raise RegistryError(f"{id}: entry_point must be 'module:Class' or a callable, got {entry_point!r}")
    env_spec = EnvSpec(
        id=id,
        entry_point=entry_point,
        kind=kind,
        max_episode_steps=max_episode_steps,
        tags=tuple(tags),
        kwargs=dict(kwargs or {}),
        source=_plugin_source or "multiverse-rl",
    )
    _REGISTRY[id] = env_spec
    gym.envs.registration.registry.pop(id, None)  # replacing is explicit here; no Gymnasium warning
    gym.register(
        id=id,
        entry_point=entry_point,
        max_episode_steps=max_episode_steps,
        kwargs={"step_limit": max_episode_steps, **(kwargs or {})},
    )
    return env_spec


def load_plugins() -> None:
    """Run every ``multiverse.envs`` entry point once (idempotent)."""
    global _plugins_loaded, _plugin_source
    if _plugins_loaded:
        return
    _plugins_loaded = True
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = ep.dist.name if ep.dist is not None else "an unknown distribution"
        _plugin_source = dist
        try:
            ep.load()()
        except Exception as exc:  # a broken plugin must not take the registry down
            warnings.warn(
                f"multiverse env plugin {ep.name!r} ({ep.value}, from {dist}) failed to load: "
                f"{type(exc).__name__}: {exc}. Its envs are unavailable; the others load. "
                f"Fix or uninstall {dist}.",
                RuntimeWarning,
                stacklevel=2,
            )
        finally:
            _plugin_source = None


def lookup(id: str) -> EnvSpec:
    """The spec registered under ``id``; an unknown id raises with the nearest ids."""
    load_plugins()
    try:
        return _REGISTRY[id]
    except KeyError:
        pass
    scored = sorted(((difflib.SequenceMatcher(None, id, i).ratio(), i) for i in _REGISTRY), reverse=True)
    close = [i for r, i in scored[:3] if r >= 0.6 and r >= scored[0][0] - 0.05]
    if not close:  # a wrong family or case: match on the name part alone
        name = id.rsplit("/", 1)[-1].lower()
        close = [i for i in _REGISTRY if name and name.split("-v")[0] in i.lower()][:3]
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    if id.startswith("miniwob/") and not any(i.startswith("miniwob/") for i in _REGISTRY):
        hint = "; the MiniWoB++ tasks need the miniwob wheel: pip install --no-deps miniwob==1.1.0"
    raise RegistryError(f"unknown env {id!r}{hint} (multiverse envs list)")


def list_envs(kind: str | None = None) -> list[EnvSpec]:
    """All registered envs (plugins included), sorted by id, optionally of one kind."""
    load_plugins()
    if kind is not None and kind not in KINDS:
        raise RegistryError(f"unknown kind {kind!r}; use one of {list(KINDS)}")
    return [s for i, s in sorted(_REGISTRY.items()) if kind is None or s.kind == kind]


def entry_point_class(env_spec: EnvSpec) -> Any:
    """The class (or callable) behind a spec, imported but not instantiated."""
    ep = env_spec.entry_point
    if callable(ep):
        return ep
    module, _, attr = ep.partition(":")
    return getattr(importlib.import_module(module), attr)


def randomization_space(id: str) -> Any:
    """The :class:`~multiverse.envs.randomization.ParamSpace` of a registered env."""
    s = lookup(id)
    return entry_point_class(s).randomization_space(**s.kwargs)


def make(id: str, *, max_episode_steps: int | None = None, **kwargs: Any) -> gym.Env:
    """Make a registered env (Gymnasium's wrappers included; ``.unwrapped`` is the env).

    ``max_episode_steps`` overrides the registered step limit for the env and
    Gymnasium's TimeLimit alike; other kwargs go to the env's constructor.
    """
    lookup(id)
    if max_episode_steps is not None:
        kwargs.update(max_episode_steps=max_episode_steps, step_limit=max_episode_steps)
    return gym.make(id, **kwargs)


def spec(id: str) -> dict[str, Any]:
    """Everything about an env as JSON: id, kind, tags, limits, actions, randomization space."""
    s = lookup(id)
    cls = entry_point_class(s)
    out: dict[str, Any] = {
        "id": s.id,
        "kind": s.kind,
        "family": s.family,
        "version": s.version,
        "max_episode_steps": s.max_episode_steps,
        "tags": list(s.tags),
        "entry_point": s.entry_point if isinstance(s.entry_point, str) else f"{cls.__module__}:{cls.__qualname__}",
        "kwargs": s.kwargs,
        "source": s.source,
        "summary": (cls.__doc__ or "").strip().split("\n\n")[0].replace("\n", " "),
    }
    if hasattr(cls, "randomization_space"):
        out["randomization"] = randomization_space(id).to_json()
        out["oracle_success_rate"] = cls.declared_oracle_success_rate(**s.kwargs)
    if hasattr(cls, "ACTIONS"):
        out["actions"] = list(cls.ACTIONS)
    return out
