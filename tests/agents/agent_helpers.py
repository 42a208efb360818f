"""Shared pieces of the agents tests: the tiny model's policies and small turns.

Not a conftest.py: the tests import these by name, and a second ``conftest`` module would shadow
tests/conftest.py when the whole suite is collected. (Torch runs one thread: tests/conftest.py sets
OMP_NUM_THREADS=1 before torch is imported.)"""

from __future__ import annotations

import dataclasses

import torch

from multiverse.agents.models import LoadedModel, ModelConfig, build_model
from multiverse.agents.policy import Policy, PolicyConfig
from multiverse.agents.prompt import PromptConfig, Turn

#: exact arithmetic for comparisons; short prompts keep the byte-level tiny model fast. The models here are on the
#: CPU on any machine: the tests compare CPU arithmetic bit for bit and check the fused CPU kernels (auto there)
FP32 = PolicyConfig(compute_dtype="float32", prompt=PromptConfig(system_prompt="Act.", history_steps=2))
#: FP32 scoring the bare action strings: tests that need a spread distribution on a game (the tiny random model's
#: summed scores of described actions follow the descriptions' lengths, and one action gets all the mass)
BARE = dataclasses.replace(FP32, prompt=dataclasses.replace(FP32.prompt, action_text="action"))


def tiny_policy(*, lora: bool = False, seed: int = 0, config: PolicyConfig = FP32, value_head: bool = False) -> Policy:
    loaded = build_model(ModelConfig(name="tiny-test", lora=lora, seed=seed, value_head=value_head, device="cpu"))
    return Policy(loaded.model, loaded.tokenizer, config, value_head=value_head)


def tiny_lora(dtype: str = "float32", seed: int = 0) -> LoadedModel:
    """tiny-test with LoRA whose adapters are nonzero (B starts at zero; given values so that they matter)."""
    loaded = build_model(ModelConfig(name="tiny-test", lora=True, dtype=dtype, seed=seed, device="cpu"))
    with torch.no_grad():
        for n, p in loaded.model.named_parameters():
            if p.requires_grad:
                p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(len(n))) * 0.1)
    return loaded


def catch_turn(history: tuple[tuple[str, str], ...] = ()) -> Turn:
    obs = "Catch the falling ball with your paddle.\n..o..\n.....\n..=..\nBalls left: 1 (caught 0)."
    return Turn("Catch the falling ball with your paddle.", obs, ["left", "stay", "right"], history)


def web_turn() -> Turn:
    obs = "Log in as alice.\n[1] textbox 'Username'\n[2] button 'Sign in'"
    return Turn("Log in as alice.", obs, ["click(1)", "click(2)", "type(1, <text>)", 'press("Enter")'])


def _turns_for_learner() -> list[Turn]:
    """Eight turns of varied shape (history, a template, one action) for learner tests."""
    one = Turn("Wait.", "Wait.\nNothing happens.", ["noop()"])
    return [catch_turn(), web_turn(), one, catch_turn((("old", "left"),))] * 2
