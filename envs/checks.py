"""The environment author's checks (``multiverse envs check``).

For one env id: Gymnasium's env checker, the info contract, malformed and
illegal actions, same-seed determinism, randomization (sampled values inside
the split's declared support, train and held-out disjoint, bad pins refused),
oracle solvability (success over N seeds at least the rate the env declares)
and the pixel observation. Each check returns a :class:`CheckResult`; none
raises.
"""

from __future__ import annotations

import dataclasses
import json
import time
import traceback
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from multiverse.envs.play import oracle_agent, play_episode, random_agent
from multiverse.envs.randomization import RandomizationError, disjoint
from multiverse.envs.registry import lookup, make

__all__ = ["CHECKS", "CheckResult", "check_env_id"]


@dataclasses.dataclass
class CheckResult:
    env_id: str
    check: str
    ok: bool
    detail: str
    seconds: float = 0.0


class CheckFailed(AssertionError):
    pass


def _require(cond: bool, msg: str) -> None:
    if not cond:
        raise CheckFailed(msg)


def check_gymnasium(env_id: str, seeds: int) -> str:
    from gymnasium.utils.env_checker import check_env

    env = make(env_id, render_mode="rgb_array")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            check_env(env.unwrapped, skip_render_check=False)
    finally:
        env.close()
    ours = [str(w.message).split("\n")[0] for w in caught if "gymnasium" in (w.filename or "")]
    _require(not ours, "Gymnasium's checker warned: " + "; ".join(ours[:3]))
    return "gymnasium.utils.env_checker.check_env passed"


def _check_info(info: dict[str, Any], where: str, final: bool) -> None:
    for key, typ in (("mission", str), ("legal_actions", list), ("randomization", dict)):
        _require(isinstance(info.get(key), typ), f"{where}: info[{key!r}] missing or not a {typ.__name__}")
    _require(all(isinstance(a, str) for a in info["legal_actions"]), f"{where}: legal_actions must be strings")
    if "action_descriptions" in info:  # optional; when given, one str per legal action, in the same order
        descriptions, n = info["action_descriptions"], len(info["legal_actions"])
        fix = "give one per legal action, in the order of info['legal_actions'], or leave the key out"
        _require(isinstance(descriptions, list) and all(isinstance(d, str) for d in descriptions),
                 f"{where}: info['action_descriptions'] must be a list of str; {fix}")
        _require(len(descriptions) == n,
                 f"{where}: info['action_descriptions'] has {len(descriptions)} entries for {n} legal actions; {fix}")
    json.dumps(info["randomization"])
    if final:
        _require(isinstance(info.get("success"), bool), f"{where}: the last step's info has no bool 'success'")


def check_info(env_id: str, seeds: int) -> str:
    env = make(env_id)
    steps = 0
    try:
        for seed, agent in ((0, oracle_agent()), (1, random_agent(1))):
            obs, info = env.reset(seed=seed)
            _check_info(info, f"{env_id} reset(seed={seed})", final=False)
            _require(bool(info["legal_actions"]), f"reset(seed={seed}): no legal actions")
            _require(obs["text"].startswith(info["mission"]), "the observation text must start with the mission")
            done = False
            while not done:
                obs, _, term, trunc, info = env.step(agent(env, obs, info))
                done = term or trunc
                steps += 1
                _check_info(info, f"{env_id} seed {seed} step {steps}", final=done)
                _require(env.observation_space.contains(obs), f"seed {seed} step {steps}: obs outside observation_space")
    finally:
        env.close()
    return f"{steps} steps, oracle and random: mission, legal_actions, randomization, success present (and aligned action_descriptions where given)"


def check_illegal_actions(env_id: str, seeds: int) -> str:
    env = make(env_id)
    try:
        env.reset(seed=0)
        bad: list[Any] = [None, 1.5, "definitely not an action(", {"a": 1}, -1]
        n = getattr(env.action_space, "n", None)
        if n is not None:
            bad.append(int(n))
        for action in bad:
            try:
                _, _, term, trunc, info = env.step(action)
            except Exception as exc:
                raise CheckFailed(f"step({action!r}) raised {type(exc).__name__}: {exc}") from exc
            _require(isinstance(info.get("action_error"), str) and info["action_error"], f"step({action!r}): no info['action_error']")
            if term or trunc:
                env.reset(seed=0)
    finally:
        env.close()
    return f"{len(bad)} malformed/illegal actions: each a no-op with action_error"


def _trace(env_id: str, seed: int, options: dict[str, Any], pixels: bool) -> list[tuple[Any, ...]]:
    env = make(env_id, pixels=pixels)
    out: list[tuple[Any, ...]] = []

    def on_step(obs: Any, reward: float, term: bool, trunc: bool, info: dict[str, Any]) -> None:
        image = obs["image"].tobytes() if pixels else b""
        out.append((obs["text"], image, float(reward), term, trunc, tuple(info["legal_actions"])))

    try:
        play_episode(env, oracle_agent(), seed=seed, options=options, on_step=on_step)
    finally:
        env.close()
    return out


def _same_twice(env_id: str, runs: tuple[tuple[int, dict[str, Any], bool], ...]) -> None:
    for seed, options, pixels in runs:
        a, b = _trace(env_id, seed, options, pixels), _trace(env_id, seed, options, pixels)
        _require(len(a) == len(b), f"seed {seed} {options}: episode lengths differ ({len(a)} vs {len(b)})")
        for i, (x, y) in enumerate(zip(a, b)):
            for name, u, v in zip(("text", "image", "reward", "terminated", "truncated", "legal_actions"), x, y):
                _require(u == v, f"seed {seed} {options} step {i + 1}: {name} differs between two runs:\n{u!r}\n{v!r}")


def check_determinism(env_id: str, seeds: int) -> str:
    _same_twice(env_id, ((0, {}, False), (1, {"split": "heldout"}, False)))
    return "same seed + params -> identical texts, rewards, flags, legal actions (train and held-out split)"


def check_determinism_pixels(env_id: str, seeds: int) -> str:
    _same_twice(env_id, ((2, {}, True),))
    return "same seed + params -> identical images too (pixels on)"


def check_randomization(env_id: str, seeds: int) -> str:
    env = make(env_id)
    try:
        space = env.unwrapped.randomization_space(**(env.unwrapped.spec.kwargs if env.unwrapped.spec else {}))
        for name, p in space.params.items():
            _require(disjoint(p.train, p.heldout), f"{name}: held-out overlaps train")
        rng = np.random.default_rng(0)
        for split in ("train", "heldout"):
            for _ in range(200):  # the declared space itself: cheap, so many draws
                for name, value in space.sample(rng, split).items():
                    _require(space.params[name].dist(split).contains(value), f"{split}: sampled {name}={value!r} outside its range")
        # the env reports what it played with: a few real resets per split (browser resets are costly)
        n = 3 if lookup(env_id).kind == "web" else max(seeds, 10)
        first: dict[str, list[tuple[str, str]]] = {}  # split -> (first observation text, randomization) per seed
        for split in ("train", "heldout"):
            for seed in range(n):
                obs, info = env.reset(seed=seed, options={"split": split})
                values = info["randomization"]
                first.setdefault(split, []).append((obs["text"], json.dumps(values, sort_keys=True, default=str)))
                _require(set(values) == set(space.params), f"info['randomization'] keys {sorted(values)} != declared {sorted(space.params)}")
                for name, value in values.items():
                    dist = space.params[name].dist(split)
                    _require(dist.contains(value), f"{split} seed {seed}: {name}={value!r} outside {dist.describe()}")
        for split, seen in first.items():
            _require(len({text for text, _ in seen}) > 1, f"{split}: seeds 0..{n - 1} gave one and the same first "
                     "observation; the seed must change the episode")
        if space.params:
            _require(first["train"][0][1] != first["heldout"][0][1], "seed 0 gave the same parameters on the train "
                     "and the held-out split")
        _, info = env.reset(seed=0, options={"randomize": False})
        _require(info["randomization"] == space.nominal_values(), "randomize=False did not give the nominal values")
        if space.params:
            name = next(iter(space.params))
            nominal = space.nominal_values()[name]
            _, info = env.reset(seed=3, options={"params": {name: nominal}})
            _require(info["randomization"][name] == nominal, f"pinning {name} did not take")
            for bad in ({"params": {"no_such_parameter": 1}}, {"params": {name: object()}}, {"split": "test"}):
                try:
                    env.reset(seed=0, options=bad)
                except RandomizationError:
                    continue
                raise CheckFailed(f"reset(options={bad!r}) was accepted; it must raise RandomizationError")
    finally:
        env.close()
    return f"{len(space.params)} parameters; 200 draws and {n} resets per split inside their ranges; pins and bad options handled"


def check_oracle(env_id: str, seeds: int) -> str:
    env = make(env_id)
    try:
        need = float(getattr(env.unwrapped, "oracle_success_rate", 1.0))
        if need <= 0:
            return "no scripted oracle for this env (it declares oracle_success_rate = 0)"
        stats = [play_episode(env, oracle_agent(), seed=s) for s in range(seeds)]
    finally:
        env.close()
    rate = float(np.mean([s.success for s in stats]))
    errors = sum(s.action_errors for s in stats)
    _require(errors == 0, f"the oracle made {errors} illegal actions")
    _require(rate >= need, f"oracle success {rate:.0%} over {seeds} seeds < declared {need:.0%}")
    return f"oracle success {rate:.0%} over {seeds} seeds (declared >= {need:.0%}), mean {np.mean([s.steps for s in stats]):.0f} steps"


def check_pixels(env_id: str, seeds: int) -> str:
    env = make(env_id, pixels=True, render_mode="rgb_array")
    try:
        shapes = set()
        for seed, split in ((0, "train"), (1, "heldout")):
            obs, info = env.reset(seed=seed, options={"split": split})
            for _ in range(3):
                image = obs["image"]
                _require(image.dtype == np.uint8 and image.shape == (*env.unwrapped.image_size, 3), f"image {image.dtype} {image.shape}")
                _require(env.observation_space.contains(obs), "pixel obs outside observation_space")
                _require(int(image.max()) != int(image.min()), "the image is one flat colour")
                shapes.add(image.shape)
                obs, _, term, trunc, info = env.step(info["legal_actions"][0])
                if term or trunc:
                    break
            frame = env.render()
            _require(frame is not None and frame.ndim == 3 and frame.shape[2] == 3 and frame.dtype == np.uint8, "render() gave no RGB frame")
    finally:
        env.close()
    return f"image {sorted(shapes)[0]} uint8 on train and held-out; render() {frame.shape}"


CHECKS: dict[str, Callable[[str, int], str]] = {
    "gymnasium": check_gymnasium,
    "info": check_info,
    "illegal-actions": check_illegal_actions,
    "determinism": check_determinism,
    "determinism-pixels": check_determinism_pixels,
    "randomization": check_randomization,
    "oracle": check_oracle,
    "pixels": check_pixels,
}


def check_env_id(env_id: str, *, seeds: int = 20, only: list[str] | None = None) -> list[CheckResult]:
    """Run the checks on one env; failures (and crashes) become failed results."""
    results = []
    for name, fn in CHECKS.items():
        if only and name not in only:
            continue
        start = time.perf_counter()
        try:
            detail, ok = fn(env_id, seeds), True
        except CheckFailed as exc:
            detail, ok = str(exc), False
        except Exception as exc:  # a crash in the env is a failed check, with where it happened
            tb = traceback.extract_tb(exc.__traceback__)[-1]
            detail, ok = f"{type(exc).__name__}: {exc} (at {tb.filename}:{tb.lineno})", False
        results.append(CheckResult(env_id, name, ok, detail, time.perf_counter() - start))
    return results
