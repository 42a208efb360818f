"""The env sampler (mixture weights + learning progress) and the ADR bank, against hand-worked values."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from multiverse.agents.sampler import ADRBank, EnvSampler


def test_mixture_weights_give_proportional_counts_every_iteration() -> None:
    s = EnvSampler({"a": 3.0, "b": 1.0}, curriculum="none")
    assert s.probabilities() == {"a": 0.75, "b": 0.25}
    rng = random.Random(0)
    for _ in range(20):
        groups = s.allocate(8, rng)
        assert sorted(groups) == ["a"] * 6 + ["b"] * 2  # exact shares: largest remainder, nothing to draw
    counts = [s.allocate(2, rng).count("b") for _ in range(400)]  # 2 * 0.25 = 0.5: the remainder is drawn
    assert set(counts) <= {0, 1} and 0.35 < np.mean(counts) < 0.65


def test_learning_progress_moves_groups_to_the_env_whose_success_changes() -> None:
    s = EnvSampler({"flat": 1.0, "rising": 1.0}, mix=0.5, fast=0.5, slow=0.1)
    assert s.probabilities() == {"flat": 0.5, "rising": 0.5}  # nothing seen: the mixture alone
    s.update("flat", 0.2)
    s.update("rising", 0.0)
    s.update("flat", 0.2)
    s.update("rising", 1.0)
    # rising: fast 0 + 0.5 * 1 = 0.5, slow 0 + 0.1 * 1 = 0.1, progress 0.4; flat: progress 0
    assert s.progress("rising") == pytest.approx(0.4) and s.progress("flat") == 0.0
    p = s.probabilities()
    assert p["rising"] == pytest.approx(0.5 * 0.5 + 0.5 * 1.0) and p["flat"] == pytest.approx(0.25)
    assert sorted(s.allocate(4, random.Random(0))) == ["flat", "rising", "rising", "rising"]


def test_unseen_envs_are_not_starved_and_state_round_trips() -> None:
    s = EnvSampler({"a": 1.0, "b": 1.0, "new": 1.0}, mix=1.0)
    s.update("a", 0.0)
    s.update("a", 1.0)
    s.update("b", 0.5)
    s.update("b", 0.5)
    p = s.probabilities()
    assert p["new"] == pytest.approx(p["a"]) and p["b"] == 0.0  # unseen counts as the most progress seen
    t = EnvSampler({"a": 1.0, "b": 1.0, "new": 1.0}, mix=1.0)
    t.load_state_dict(json.loads(json.dumps(s.state_dict())))
    assert t.probabilities() == p


def test_adr_bank_samples_groups_moves_boundaries_and_keeps_pins() -> None:
    bank = ADRBank(["games/Catch-v0", "web/ClickButton-v0"], {"games/Catch-v0": {"balls": 1}}, step=0.5, buffer=1)
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(50):
        values, boundary = bank.sample("games/Catch-v0", rng)
        assert values["balls"] == 1 and (boundary is None or not boundary.startswith("balls:"))
        if boundary:
            seen.add(boundary)
            bank.update("games/Catch-v0", boundary, 1.0)  # success at every boundary: ranges widen
    assert seen and bank.metrics()["adr/entropy/games/Catch-v0"] > np.log(1e-6)
    state = json.loads(json.dumps(bank.state_dict()))
    other = ADRBank(["games/Catch-v0", "web/ClickButton-v0"], {"games/Catch-v0": {"balls": 1}}, step=0.5, buffer=1)
    other.load_state_dict(state)
    assert other.state_dict() == bank.state_dict()
