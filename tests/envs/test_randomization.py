"""Unit tests of randomization as data: distributions, spaces, options, ADR."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

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


@dataclasses.dataclass(frozen=True)
class P:
    speed: float = 1.0
    size: int = 5
    colour: str = "red"
    scale: float = 1.0
    fixed: int = 3


def space() -> ParamSpace:
    return ParamSpace(
        P,
        speed=Param(Uniform(0.8, 1.2), Union((Uniform(0.5, 0.7), Uniform(1.3, 1.5)))),
        size=Param(IntRange(4, 8), IntRange(10, 12)),
        colour=Param(Choice(("red", "green")), Choice(("blue",))),
        scale=Param(LogUniform(0.5, 2.0), LogUniform(3.0, 4.0)),
    )


def test_samples_stay_inside_their_split() -> None:
    s, rng = space(), np.random.default_rng(0)
    for _ in range(300):
        tr, ho = s.sample(rng, "train"), s.sample(rng, "heldout")
        assert 0.8 <= tr["speed"] <= 1.2 and (0.5 <= ho["speed"] <= 0.7 or 1.3 <= ho["speed"] <= 1.5)
        assert tr["size"] in range(4, 9) and ho["size"] in range(10, 13)
        assert isinstance(tr["size"], int) and tr["colour"] in ("red", "green") and ho["colour"] == "blue"
        assert 0.5 <= tr["scale"] <= 2.0 and 3.0 <= ho["scale"] <= 4.0
        json.dumps([tr, ho])


def test_union_heldout_reaches_both_sides() -> None:
    s, rng = space(), np.random.default_rng(1)
    speeds = [s.sample(rng, "heldout")["speed"] for _ in range(200)]
    assert min(speeds) < 0.7 and max(speeds) > 1.3


def test_log_uniform_is_uniform_in_log_space() -> None:
    rng = np.random.default_rng(2)
    xs = np.array([LogUniform(0.01, 100.0).sample(rng) for _ in range(4000)])
    # median of a log-uniform on [0.01, 100] is 1; a plain uniform's would be ~50
    assert 0.7 < float(np.median(xs)) < 1.4


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"speed": Param(Uniform(0.8, 1.2), Uniform(1.1, 1.5))}, "overlaps train"),
        ({"size": Param(IntRange(6, 8), IntRange(9, 10))}, "nominal value 5 is outside"),
        ({"colour": Param(Choice(("red",)), Choice(("red", "blue")))}, "overlaps train"),
        ({"nope": Param(Uniform(0, 1), Uniform(2, 3))}, "has no field 'nope'"),
    ],
)
def test_bad_declarations_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(RandomizationError, match=message):
        ParamSpace(P, **kwargs)


def test_bad_distributions_are_refused() -> None:
    with pytest.raises(RandomizationError):
        Uniform(2.0, 1.0)
    with pytest.raises(RandomizationError):
        LogUniform(0.0, 1.0)
    with pytest.raises(RandomizationError):
        Choice(())
    with pytest.raises(RandomizationError):
        IntRange(0.5, 3)


def test_resolve_options() -> None:
    s, rng = space(), np.random.default_rng(3)
    params, values = s.resolve(rng, {"randomize": False})
    assert params == P() and values == {"speed": 1.0, "size": 5, "colour": "red", "scale": 1.0}
    params, values = s.resolve(rng, {"split": "heldout", "params": {"size": 6}})
    assert params.size == 6 and values["size"] == 6 and values["colour"] == "blue"
    params, _ = s.resolve(rng, {"params": {"speed": 1.4}})  # a held-out value may be pinned explicitly
    assert params.speed == 1.4 and params.fixed == 3


@pytest.mark.parametrize(
    "options, message",
    [
        ({"params": {"sped": 1.0}}, "unknown parameter 'sped'; did you mean 'speed'"),
        ({"params": {"speed": 9.0}}, "parameter 'speed'=9.0 is outside its space"),
        ({"params": {"size": 5.5}}, "parameter 'size'=5.5"),
        ({"params": {"colour": "purple"}}, "parameter 'colour'='purple'"),
        ({"params": {"fixed": 4}}, "unknown parameter 'fixed'"),
        ({"split": "test"}, "unknown split 'test'"),
        ({"randomise": False}, "unknown reset option"),
        ({"randomize": "no"}, "must be True or False"),
        ({"params": [1, 2]}, "must be a dict"),
    ],
)
def test_bad_options_name_what_is_wrong(options: dict, message: str) -> None:
    with pytest.raises(RandomizationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        space().resolve(np.random.default_rng(0), options)


def test_pinning_does_not_change_the_other_values() -> None:
    a = space().resolve(np.random.default_rng(7), {})[1]
    b = space().resolve(np.random.default_rng(7), {"params": {"colour": "green"}})[1]
    assert {k: v for k, v in a.items() if k != "colour"} == {k: v for k, v in b.items() if k != "colour"}


def test_space_to_json() -> None:
    j = space().to_json()
    json.dumps(j)
    assert j["speed"]["train"] == {"kind": "uniform", "low": 0.8, "high": 1.2}
    assert j["speed"]["heldout"]["kind"] == "union" and len(j["speed"]["heldout"]["parts"]) == 2
    assert j["colour"]["heldout"] == {"kind": "choice", "options": ["blue"]}


# --------------------------------------------------------------------------- ADR


def run_adr(success_fn, episodes: int, seed: int = 0, **kwargs) -> ADR:
    adr, rng = ADR(space(), **kwargs), np.random.default_rng(seed)
    for _ in range(episodes):
        values, boundary = adr.sample(rng)
        adr.update(boundary, float(success_fn(values)))
    return adr


def test_adr_starts_at_nominal_and_samples_within_train() -> None:
    adr, rng = ADR(space()), np.random.default_rng(0)
    assert adr.ranges == {"speed": [1.0, 1.0], "size": [5.0, 5.0], "scale": [1.0, 1.0]}
    for _ in range(50):
        values, _ = adr.sample(rng)
        assert values["speed"] == 1.0 and values["size"] == 5 and values["colour"] in ("red", "green")


def test_adr_widens_where_the_agent_succeeds_and_not_where_it_fails() -> None:
    # the agent succeeds for speed <= 1.1 and fails beyond; size and scale never matter
    adr = run_adr(lambda v: v["speed"] <= 1.1, 6000, buffer_size=8)
    lo, hi = adr.ranges["speed"]
    assert lo == pytest.approx(0.8)  # grew all the way down to the train limit
    assert 1.05 <= hi <= 1.15  # grew up to where success stops, not beyond
    assert adr.ranges["size"] == [4.0, 8.0] and adr.ranges["scale"] == [0.5, 2.0]


def test_adr_shrinks_a_range_the_agent_fails_on() -> None:
    adr = run_adr(lambda v: True, 3000, buffer_size=8)
    assert adr.ranges["speed"] == pytest.approx([0.8, 1.2])
    # now the agent fails whenever speed differs from nominal: ranges narrow back toward 1.0
    rng = np.random.default_rng(5)
    for _ in range(6000):
        values, boundary = adr.sample(rng)
        adr.update(boundary, float(abs(values["speed"] - 1.0) < 0.05))
    lo, hi = adr.ranges["speed"]
    assert 0.9 <= lo <= 1.0 <= hi <= 1.1


def test_adr_never_leaves_the_train_support() -> None:
    adr = run_adr(lambda v: True, 5000, buffer_size=4, step=0.5)
    assert adr.ranges["speed"] == [0.8, 1.2] and adr.ranges["size"] == [4.0, 8.0]


def test_adr_state_round_trips_through_json() -> None:
    adr = run_adr(lambda v: v["size"] <= 6, 500, buffer_size=8)
    state = json.loads(json.dumps(adr.state_dict()))
    again = ADR.from_state(space(), state)
    assert again.state_dict() == adr.state_dict()
    r1, r2 = np.random.default_rng(9), np.random.default_rng(9)
    assert [adr.sample(r1) for _ in range(20)] == [again.sample(r2) for _ in range(20)]


def test_adr_bad_state_and_boundary() -> None:
    adr = ADR(space())
    with pytest.raises(RandomizationError, match="unknown ADR boundary"):
        adr.update("speed:middle", 1.0)
    state = adr.state_dict()
    del state["ranges"]["size"]
    with pytest.raises(RandomizationError, match="ADR state names parameters"):
        ADR.from_state(space(), state)
