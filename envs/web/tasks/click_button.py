"""ClickButton: click the button with the named label among distractors."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from multiverse.envs.randomization import Choice, IntRange, Param, ParamSpace
from multiverse.envs.web.task import Observation, Outcome, TaskPage, WebParams, WebTask, common_params, esc, page

WORDS = {
    "train": ("Submit", "Cancel", "Next", "Back", "Save", "Delete", "Open", "Close", "Print", "Share", "Reload", "Help"),
    "heldout": ("Confirm", "Dismiss", "Proceed", "Return", "Archive", "Export", "Import", "Rename"),
}
MISSIONS = {
    "plain": "Click the button labelled \"{label}\".",
    "press": "Press the \"{label}\" button.",
    "find": "Find the button that says {label} and click it.",
}


@dataclasses.dataclass(frozen=True)
class Params(WebParams):
    buttons: int = 4
    vocabulary: str = "train"
    wording: str = "plain"
    layout: str = "row"


class ClickButton(WebTask):
    """Click the button with the named label.

    ## Description
    The page shows ``buttons`` buttons with different labels in random order;
    the mission names one. Clicking it succeeds; clicking another fails.

    ## Actions
    ``click(id)`` on a button (the language's other actions are no-ops here).

    ## Observation
    The mission, then one line per button: ``[3] button "Save"``.

    ## Rewards
    +1 for the right button, -1 for a wrong one; the episode ends at the first button clicked.

    ## Randomization
    | parameter | nominal | train | held-out |
    |---|---|---|---|
    | buttons | 4 | 2..6 | 8..10 |
    | vocabulary (label words) | train | train | heldout (unseen words) |
    | wording (mission phrasing) | plain | plain, press | find |
    | layout | row | row, column | grid |
    | theme, font, font_size, viewport | see :func:`common_params` | | |

    ## Version History
    * v0: initial version.
    """

    PARAM_SPACE = ParamSpace(
        Params,
        **common_params(),
        buttons=Param(IntRange(2, 6), IntRange(8, 10), "buttons on the page"),
        vocabulary=Param(Choice(("train",)), Choice(("heldout",)), "which label words are used"),
        wording=Param(Choice(("plain", "press")), Choice(("find",)), "how the mission is phrased"),
        layout=Param(Choice(("row", "column")), Choice(("grid",)), "how the buttons are laid out"),
    )

    def setup(self, rng: np.random.Generator, params: Params) -> TaskPage:
        words = WORDS[params.vocabulary]
        labels = [str(w) for w in rng.choice(words, size=min(params.buttons, len(words)), replace=False)]
        target = labels[int(rng.integers(len(labels)))]
        buttons = "".join(f'<button onclick="mv.submit({i})">{esc(w)}</button>' for i, w in enumerate(labels))
        css = {
            "row": "#buttons { display: flex; flex-wrap: wrap; gap: 8px; }",
            "column": "#buttons { display: flex; flex-direction: column; align-items: flex-start; gap: 6px; }",
            "grid": "#buttons { display: grid; grid-template-columns: repeat(3, 140px); gap: 6px; }",
        }[params.layout]
        html = page(params, f'<div id="buttons" class="panel">{buttons}</div>', title="Buttons", css=css)
        return TaskPage(html, MISSIONS[params.wording].format(label=target), {"labels": labels, "target": target})

    def validate(self, instance: dict[str, Any], state: Any) -> Outcome:
        if not state or "submitted" not in state:
            return Outcome()
        ok = instance["labels"][int(state["submitted"])] == instance["target"]
        return Outcome(reward=1.0 if ok else -1.0, success=ok, done=True)

    def oracle(self, instance: dict[str, Any], obs: Observation) -> str:
        button = obs.find("button", instance["target"])
        return f"click({button.id})" if button else "noop()"
