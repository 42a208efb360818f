"""The YAML config is built from the agents' dataclasses: every agents setting has a key (or is derived, and says from
what), setting the key sets that field of the TrainerConfig the loop runs, and train --help documents it."""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Iterator
from typing import Any, Literal

import pytest
import yaml

from multiverse.agents.config import EnvsConfig, TrainerConfig
from multiverse.agents.learner import LearnerConfig
from multiverse.agents.models import ModelConfig
from multiverse.agents.prompt import PromptConfig
from multiverse.launch.config import DERIVED, RunConfig, load_config
from multiverse.launch.schema import field_docs, settings

#: values for settings whose type alone does not give a valid other value
OTHER = {
    (ModelConfig, "name"): "tiny-test", (ModelConfig, "device"): "cpu", (ModelConfig, "dtype"): "float32", (ModelConfig, "lora_targets"): ("q_proj",),
    (PromptConfig, "system_prompt"): "Act now.", (LearnerConfig, "betas"): (0.8, 0.9),
    (EnvsConfig, "train"): {"games/Maze-v0": 2.0}, (EnvsConfig, "params"): {"games/Maze-v0": {"rooms": 2}},
    (EnvsConfig, "eval_params"): {"games/Maze-v0": {}}, (EnvsConfig, "heldout_ids"): ["games/Catch-v0"],
}


def agents_settings(cls: type = TrainerConfig, path: tuple[str, ...] = ()) -> Iterator[tuple[type, str, tuple[str, ...]]]:
    """(dataclass, field, attribute path from TrainerConfig) of every setting under TrainerConfig."""
    hints = typing.get_type_hints(cls, include_extras=True)
    for f in dataclasses.fields(cls):
        if dataclasses.is_dataclass(hints[f.name]):
            yield from agents_settings(hints[f.name], (*path, f.name))
        else:
            yield cls, f.name, (*path, f.name)


def section_of(cls: type, name: str) -> str:
    [key] = [section for section, field in RunConfig.model_fields.items()
             if cls in field.annotation.sources and name in field.annotation.model_fields]
    return key


def other_value(cls: type, name: str, annotation: Any, value: Any) -> Any:
    """A valid value of the setting that differs from ``value``."""
    if (cls, name) in OTHER:
        return OTHER[cls, name]
    base = typing.get_args(annotation)[0] if typing.get_origin(annotation) is typing.Annotated else annotation
    options = [a for a in typing.get_args(base) if a is not type(None)]
    literal = next((a for a in [base, *options] if typing.get_origin(a) is Literal), None)
    if literal is not None:
        return next(v for v in typing.get_args(literal) if v != value)
    if isinstance(value, bool) or bool in options:
        return not value
    if isinstance(value, float):
        return value / 2 if value else 0.5
    if isinstance(value, int) or (value is None and any(a is int or typing.get_origin(a) is typing.Annotated
                                                          for a in options)):
        return (value or 0) + 3
    raise AssertionError(f"no other value for {cls.__name__}.{name}: add one to OTHER")


def test_every_agents_setting_is_reachable_from_yaml_and_documented_in_train_help(capsys) -> None:
    from multiverse.launch.cli import main

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    default = RunConfig().trainer()
    seen = 0
    for cls, name, path in agents_settings():
        doc = " ".join(field_docs(cls)[name].split())
        if (cls, name) in DERIVED:
            assert f"{cls.__name__}.{name}: {DERIVED[cls, name]}" in help_text, (cls, name)
            continue
        key = f"{section_of(cls, name)}.{name}"
        assert f"{key} (" in help_text and doc[:60] in help_text, key
        annotation = {n: a for n, a, _ in settings(cls)}[name]
        current = default
        for part in path:
            current = getattr(current, part)
        value = other_value(cls, name, annotation, current)
        assert value != current, key
        raw = yaml.safe_dump(list(value) if isinstance(value, tuple) else value, default_flow_style=True)
        got = load_config(None, [f"{key}={raw.strip().removesuffix('...').strip()}"], check_envs=False).trainer()
        for part in path:
            got = getattr(got, part)
        assert got == value, (key, got, value)
        seen += 1
    # the three the old hand-written copy left out, and what the kernels helper adds, are among them
    names = {n for _, n, _ in agents_settings()}
    assert {"lora_targets", "lora_dropout", "rows_per_forward", "list_legal_actions", "betas"} <= names
    assert seen >= 60, seen


def test_a_new_dataclass_field_becomes_a_documented_key() -> None:
    from multiverse.launch.schema import section

    @dataclasses.dataclass(frozen=True)
    class Knobs:
        depth: typing.Annotated[int, __import__("annotated_types").Ge(1)] = 2
        """How deep."""

    Section = section("KnobsSection", "Knobs.", Knobs)
    assert Section.model_fields["depth"].description == "How deep."
    assert Section(depth=5).build(Knobs) == Knobs(depth=5)
    with pytest.raises(ValueError, match="greater than or equal to 1"):
        Section(depth=0)


@pytest.mark.parametrize("override, message", [
    ("model.lora_rank=0", "model.lora_rank: Input should be greater than or equal to 1"),
    ("model.lora_alpha=0", "model.lora_alpha: Input should be greater than 0"),
    ("model.lora_dropout=1.5", "model.lora_dropout: Input should be less than 1"),
    ("model.dtype=float8", "model.dtype: Input should be 'float32', 'bfloat16' or 'float16'"),
    ("model.temperature=0", "model.temperature: Input should be greater than 0"), ("model.max_text_tokens=0", "model.max_text_tokens: Input should be greater than or equal to 1"),
    ("model.rows_per_forward=0", "model.rows_per_forward: Input should be greater than or equal to 1"),
    ("model.max_prompt_tokens=8", "model.max_prompt_tokens: Input should be greater than or equal to 16"),
    ("algorithm.lr=0", "algorithm.lr: Input should be greater than 0"),
    ("algorithm.weight_decay=-1", "algorithm.weight_decay: Input should be greater than or equal to 0"),
    ("algorithm.grad_clip=0", "algorithm.grad_clip: Input should be greater than 0"),
    ("algorithm.micro_batch=0", "algorithm.micro_batch: Input should be greater than or equal to 1"),
    ("algorithm.clip_eps=0", "algorithm.clip_eps: Input should be greater than 0"),
    ("algorithm.entropy_coef=-0.1", "algorithm.entropy_coef: Input should be greater than or equal to 0"),
])
def test_the_bounds_of_agents_settings_hold_in_yaml(override: str, message: str) -> None:
    from multiverse.launch.config import ConfigError

    with pytest.raises(ConfigError) as err:
        load_config("smoke", [override], check_envs=False)
    assert message in str(err.value) and "\n" not in str(err.value)
