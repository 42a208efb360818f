"""What ``multiverse train`` checks before Ray or a model starts: a run that cannot work stops in seconds, with one
line naming the field (or variable) and what to do, and leaves no run dir.

* Ray: the address to join answers (a TCP probe: ``ray.init`` would retry it for minutes), or an embedded Ray's
  ``ray.num_cpus`` holds what the workers ask for (else they are never scheduled and the run waits forever);
* an embedded Ray's ``model.device`` is on this machine (CUDA asked for where torch sees none; a cluster's
  learner may hold a GPU this driver lacks, so there the learner's build says so);
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
from typing import Any

from multiverse.launch.config import ConfigError, RunConfig

__all__ = ["check_start"]


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
    _check_timeout_scale()
    _check_prompts(config, _tokenizer(config.model.name))


def _check_device(device: str) -> None:
    from multiverse.agents.kernels import resolve_device

    try:
        resolve_device(device)
    except ValueError as error:
        raise ConfigError(str(error)) from None


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
