"""``multiverse experiment generalization``: does a pretrained LM policy, trained jointly on randomized envs,
transfer to variants and envs it never saw? One command runs every arm and writes a report computed from the
recorded evaluation episodes.

Protocol (Procgen-style): training uses each env's TRAIN randomization range; the test is each training env's
HELD-OUT range, plus whole envs held out of training. Arms, each with the same env-step budget and seeds:

* ``zero_shot``: the model before any update. Its numbers are the evaluation at iteration 0 of the
  ``multiverse`` arm (the same model, seeds and episodes); without that arm it is a 0-iteration run.
* ``multiverse``: ``multiverse train`` with randomization on.
* ``no_randomization``: the same, training on each env's nominal parameters only.
* ``ppo_value``: the ``multiverse`` arm with ``algorithm.name=ppo``: GAE on a value head instead of GRPO's group
  mean. Its runs log the advantage-variance ratio of the two on the same episodes; the report's "Value head"
  section is computed from those (any LM arm with a value head logs them).
* ``rllib_ppo``: RLlib PPO from scratch, one policy per training game, on the game's numeric observation
  (the Universe-2016 baseline; it has no policy for web tasks or held-out envs).

Every arm's evaluation episodes are greedy, on fixed seeds, and recorded in Multiverse's episode schema under
``OUT/arms/<arm>/seed<k>/`` (``multiverse replay --verify`` re-checks them). An (arm, seed) that finished has a
``result.json``; a rerun skips it and resumes a training run from its last checkpoint. ``report.md``,
``report.json`` and ``plots/`` are computed from the episodes at the end of every run.

Modules: ``config`` (the experiment YAML, overrides, ``--budget``), ``runner`` (the arms, resuming),
``stats`` (the two-level bootstrap and the table, pure functions), ``report`` (report.json, report.md, plots;
no Ray, no model). Their public names are importable from here too.
"""

from __future__ import annotations

import importlib
from typing import Any

# the report and the statistics are light; the config (the agents' settings) and the runner load on first use
from multiverse.launch.experiment.report import report
from multiverse.launch.experiment.stats import CATEGORIES

_EXPORTS = {
    "ARMS": "config",
    "Experiment": "config",
    "ExperimentConfig": "config",
    "load_experiment": "config",
    "load_recorded": "config",
    "run_generalization": "runner",
}
__all__ = ["ARMS", "CATEGORIES", "Experiment", "ExperimentConfig", "load_experiment", "load_recorded", "report",
           "run_generalization"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
