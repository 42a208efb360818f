"""What ``multiverse train`` checks before Ray or a model starts: a run that cannot work stops in seconds, with one
line naming the field (or variable) and what to do, and leaves no run dir.

* Ray: the address to join answers (a TCP probe: ``ray.init`` would retry it for minutes), or an embedded Ray's
  ``ray.num_cpus`` holds what the workers ask for (else they are never scheduled and the run waits forever);
* an embedded Ray's ``model.device`` is on this machine (CUDA asked for where torch sees none; a cluster's
  learner may hold a GPU this driver lacks, so there :func:`~multiverse.launch.workers.place_learner` checks it
  against the cluster's GPUs after joining);
* the GPUs asked for fit (:func:`check_gpus`): ``rollout.workers x rollout.worker_gpus`` (and a GPU learner
  actor's ``ray.learner_gpus``) on the GPUs torch sees here for an embedded Ray (on the cluster's after joining),
  else the workers that do not fit wait forever; and ``rollout.worker_gpus`` is not spent on replicas that
  ``model.device: cpu`` keeps on the CPU;
* the model name resolves (:func:`~multiverse.agents.models.check_model_name`: a near miss of a built-in name, or a
  Hub id that is neither cached nor reachable, fails at once instead of after a minute of retries);
* ``MULTIVERSE_TIMEOUT_SCALE`` parses (the workers' browsers read it);
* the prompt fits ``model.max_prompt_tokens``, measured with the model's tokenizer alone: the fixed part (system
  prompt, chat template) for every env, and each game's first observation on both randomization splits. A web
  page's text needs Chromium, so a web env whose prompt is too long stops the run at its first step instead
  (:class:`~multiverse.agents.prompt.PromptTooLongError`, one line too).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

from multiverse.launch.config import ConfigError, RunConfig

__all__ = ["check_gpus", "check_start", "gpus_needed", "learner_placement"]


def check_start(config: RunConfig) -> None:
    """Every check of the module docstring; ConfigError on the first that fails."""
    from multiverse.launch.cluster import check_address, check_cpus, resolve_address

    address, what = resolve_address(config.ray.address)
    needed, cpus_for = config.cpu_demand()
    if address:
        check_address(address, what)
    else:
        check_cpus(config.ray.num_cpus, needed, cpus_for)
        _check_device(config.model.device)
    _check_worker_device(config.model.device, config.rollout.worker_gpus)
    if not address:
        _check_local_gpus(config)
    _check_timeout_scale()
    _check_prompts(config, _tokenizer(config.model.name))


def _check_device(device: str) -> None:
    from multiverse.agents.kernels import resolve_device

    try:
        resolve_device(device)
    except ValueError as error:
        raise ConfigError(str(error)) from None


def learner_placement(placement: str, gpus: float, have_gpus: float) -> str:
    """``ray.learner`` resolved for a cluster of ``have_gpus`` GPUs: ``auto`` is an actor holding ``gpus`` GPUs where
    the cluster has them (and ``gpus`` > 0), else the driver."""
    if placement != "auto":
        return placement
    return "actor" if gpus > 0 and have_gpus >= gpus else "driver"


def gpus_needed(shares: Sequence[float]) -> int:
    """The fewest GPUs that hold actors asking for ``shares`` as Ray places them: a fraction on one GPU, a whole
    number on that many free ones (first fit, largest first)."""
    room: list[float] = []  # what is left of each GPU in use
    for share in sorted((s for s in shares if s > 0), reverse=True):
        if share >= 1:
            room += [0.0] * math.ceil(share - 1e-9)
            continue
        for i, left in enumerate(room):
            if left >= share - 1e-9:
                room[i] = left - share
                break
        else:
            room.append(1.0 - share)
    return len(room)


def check_gpus(have: float, *, workers: int, worker_gpus: float, learner_gpus: float, where: str) -> None:
    """ConfigError, one line saying what to change, when ``workers`` rollout workers of ``worker_gpus`` each (beside a
    learner actor holding ``learner_gpus``, 0 for none) do not fit on ``have`` GPUs: those that do not fit would
    never start, and the run would wait for them forever. ``where`` names the GPUs' place in the message."""
    if worker_gpus <= 0:
        return  # the learner's own GPUs are checked where it is made (make_learner)
    need = gpus_needed([learner_gpus] + [worker_gpus] * workers)
    if need <= have + 1e-9:
        return
    learner = f" beside ray.learner_gpus={learner_gpus:g} for the learner actor" if learner_gpus > 0 else ""
    fits = [k for k in range(2, workers + 1) if gpus_needed([learner_gpus] + [1 / k] * workers) <= have + 1e-9]
    # Ray counts resources in steps of 1e-4: rounded down, k shares of 1/k still fit on one GPU
    share = f"rollout.worker_gpus={math.floor(1e4 / fits[0]) / 1e4:g} ({fits[0]} replicas share a GPU), " if fits else ""
    raise ConfigError(f"rollout.workers={workers} x rollout.worker_gpus={worker_gpus:g}{learner} need {need} "
                      f"GPU{'s' if need > 1 else ''} but "
                      f"{where} has {have:g}: the workers that do not fit would never start; set {share}fewer "
                      f"rollout.workers, or rollout.worker_gpus=0 (replicas on the CPUs)")


def _check_local_gpus(config: RunConfig) -> None:
    """An embedded Ray's GPUs are this machine's: the ones torch sees here."""
    import torch

    have = torch.cuda.device_count() if torch.cuda.is_available() else 0
    placement = learner_placement(config.ray.learner, config.ray.learner_gpus, have)
    where = "this machine" if have else f"this machine (torch {torch.__version__} sees no CUDA device)"
    check_gpus(have, workers=config.rollout.workers, worker_gpus=config.rollout.worker_gpus,
               learner_gpus=config.ray.learner_gpus if placement == "actor" else 0.0, where=where)


def _check_worker_device(device: str, worker_gpus: float) -> None:
    if worker_gpus > 0 and device == "cpu":
        raise ConfigError(f"rollout.worker_gpus={worker_gpus:g} reserves GPUs for rollout replicas that model.device=cpu "
                          f"keeps on the CPU; set model.device=auto (replicas on their GPU share) or "
                          f"rollout.worker_gpus=0")


def _check_timeout_scale() -> None:
    from multiverse.envs.web.browser import timeout_scale

    try:
        timeout_scale()
    except ValueError as error:
        raise ConfigError(str(error)) from None


def _tokenizer(name: str) -> Any:
    from multiverse.agents.models import ModelNotFoundError, load_tokenizer

    try:
        return load_tokenizer(name)
    except (ModelNotFoundError, ValueError) as error:
        raise ConfigError(f"model.name: {error}") from None


def _check_prompts(config: RunConfig, tokenizer: Any) -> None:
    import multiverse.envs as menvs
    from multiverse.agents.prompt import PromptTooLongError, Turn, build_prompt
    from multiverse.launch.train import learner_config

    prompt_config = learner_config(config).policy.prompt
    budget = config.model.max_prompt_tokens

    def fits(env_id: str, turn: Turn, what: str) -> None:
        try:
            build_prompt(tokenizer, turn, prompt_config)
        except PromptTooLongError:
            wide = dataclasses.replace(prompt_config, max_prompt_tokens=2**31, history_steps=0)
            needs = len(build_prompt(tokenizer, turn, wide).ids)
            raise ConfigError(f"model.max_prompt_tokens={budget} is too small: {env_id}'s {what} needs {needs} tokens "
                              f"without any history; raise model.max_prompt_tokens (or shorten model.system_prompt)"
                              ) from None

    for env_id in config.eval_ids():
        if menvs.lookup(env_id).kind != "game":  # a page's text needs Chromium: checked at its first step
            fits(env_id, Turn(mission="", observation="", legal_actions=["noop"]), "prompt around an empty page")
            continue
        env = menvs.make(env_id)
        try:
            for split in ("train", "heldout"):
                options: dict[str, Any] = {"split": split}
                if config.envs.params.get(env_id):
                    options["params"] = dict(config.envs.params[env_id])
                obs, info = env.reset(seed=0, options=options)
                fits(env_id, Turn.from_env(obs, info), f"first prompt ({split} split)")
        finally:
            env.close()
