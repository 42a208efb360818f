"""Dropdown: choose the named option in the named <select> and submit."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from multiverse.envs.randomization import Choice, IntRange, Param, ParamSpace
from multiverse.envs.web.task import Observation, Outcome, TaskPage, WebParams, WebTask, common_params, esc, page

# category: (labels a dropdown of it may carry, its options)
CATEGORIES = {
    "train": {
        "colour": (("Favourite colour", "Paint colour"), "Red Blue Green Yellow Purple Orange Black White Pink Brown Grey"),
        "fruit": (("Fruit", "Dessert fruit"), "Apple Banana Cherry Grape Lemon Mango Peach Pear Plum Kiwi Melon"),
        "country": (("Country", "Destination"), "France Spain Italy Japan Brazil Canada Kenya India Mexico Egypt Norway"),
        "month": (("Month", "Start month"), "January February March April May June July August September October November December"),
        "pet": (("Pet", "Favourite animal"), "Dog Cat Rabbit Hamster Parrot Goldfish Turtle Horse Ferret Snake Lizard"),
    },
    "heldout": {
        "planet": (("Planet", "Destination planet"), "Mercury Venus Earth Mars Jupiter Saturn Uranus Neptune Pluto Ceres"),
        "instrument": (("Instrument", "Second instrument"), "Piano Violin Guitar Drums Flute Cello Trumpet Harp Clarinet Oboe Banjo"),
        "language": (("Language", "Subtitle language"), "English French German Spanish Italian Dutch Polish Greek Turkish Hindi Korean"),
        "city": (("City", "Home city"), "Lisbon Vienna Prague Dublin Seoul Lima Cairo Quito Hanoi Oslo Perth"),
    },
}
BUTTONS = {"train": ("Submit", "Save"), "heldout": ("Apply", "Confirm")}
PLACEHOLDER = "-- Choose one --"
MISSIONS = {
    "plain": 'Choose "{option}" from the "{label}" dropdown and click {button}.',
    "select": "Select {option} as the {label}, then press {button}.",
    "set": "Set {label} to {option} and submit the form.",
}


@dataclasses.dataclass(frozen=True)
class Params(WebParams):
    options: int = 5
    distractors: int = 0
    vocabulary: str = "train"
    wording: str = "plain"
    start: str = "placeholder"


class Dropdown(WebTask):
    """Pick the named option from the named dropdown, then submit.

    ## Description
    A form holds one or more ``<select>`` dropdowns, each tied to its label
    with ``<label for>``, and a submit button. The mission names the dropdown
    (by its label) and the option. Submitting ends the episode; it succeeds
    when the named dropdown shows that option and every other dropdown still
    shows its starting choice.

    ## Actions
    ``select(id, "option")`` on a dropdown, ``click(id)`` on the button.

    ## Observation
    The mission, then ``[2] combobox "Fruit" selected="-- Choose one --"
    options=["-- Choose one --", "Apple", ...]`` per dropdown and the button.

    ## Rewards
    +1 for a correct submission, -1 for a wrong one; the episode ends at the first submission.

    ## Randomization
    | parameter | nominal | train | held-out |
    |---|---|---|---|
    | options (per dropdown) | 5 | 4..7 | 8..10 |
    | distractors (other dropdowns) | 0 | 0..1 | 2..3 |
    | vocabulary (categories, labels, button) | train | train | heldout (unseen) |
    | wording (mission phrasing) | plain | plain, select | set |
    | start (initial choice) | placeholder | placeholder | preset (a wrong real option) |
    | theme, font, font_size, viewport | see :func:`common_params` | | |

    ## Version History
    * v0: initial version.
    """

    PARAM_SPACE = ParamSpace(
        Params,
        **common_params(),
        options=Param(IntRange(4, 7), IntRange(8, 10), "options per dropdown"),
        distractors=Param(IntRange(0, 1), IntRange(2, 3), "other dropdowns in the form"),
        vocabulary=Param(Choice(("train",)), Choice(("heldout",)), "which categories, labels and button names are used"),
        wording=Param(Choice(("plain", "select")), Choice(("set",)), "how the mission is phrased"),
        start=Param(Choice(("placeholder",)), Choice(("preset",)), "what each dropdown shows at start"),
    )

    def setup(self, rng: np.random.Generator, params: Params) -> TaskPage:
        cats = CATEGORIES[params.vocabulary]
        names = [str(c) for c in rng.choice(sorted(cats), size=1 + params.distractors, replace=False)]
        selects, rows = [], []
        for k, name in enumerate(names):
            labels, opts = cats[name]
            label = str(labels[int(rng.integers(len(labels)))])
            pool = opts.split()
            options = [pool[int(i)] for i in rng.choice(len(pool), size=params.options, replace=False)]
            target = options[int(rng.integers(len(options)))] if k == 0 else None
            if params.start == "preset":
                start = next(o for o in options if o != target)
                shown = options
            else:
                start, shown = PLACEHOLDER, [PLACEHOLDER, *options]
            selects.append({"label": label, "options": options, "start": start, "target": target})
            opts_html = "".join(f'<option{" selected" if o == start else ""}>{esc(o)}</option>' for o in shown)
            rows.append(f'<div class="row"><label for="s{k}">{esc(label)}</label> <select id="s{k}">{opts_html}</select></div>')
        order = [int(i) for i in rng.permutation(len(rows))]
        button = str(BUTTONS[params.vocabulary][int(rng.integers(len(BUTTONS[params.vocabulary])))])
        body = (
            '<h2>Preferences</h2><form id="form" class="panel">' + "".join(rows[i] for i in order)
            + f'<div class="row"><button type="submit">{esc(button)}</button></div></form>'
        )
        script = f"""
document.getElementById('form').addEventListener('submit', (e) => {{
  e.preventDefault();
  if ('submitted' in window.__mvState) return;
  const vals = [];
  for (let k = 0; k < {len(rows)}; k++) {{ const s = document.getElementById('s' + k); vals.push(s.options[s.selectedIndex].text); }}
  mv.submit(vals);
}});"""
        t = selects[0]
        mission = MISSIONS[params.wording].format(option=t["target"], label=t["label"], button=button)
        html = page(params, body, script=script, title="Preferences", css=".row label { display: inline-block; min-width: 150px; }")
        return TaskPage(html, mission, {"selects": selects, "button": button})

    def validate(self, instance: dict[str, Any], state: Any) -> Outcome:
        if not state or "submitted" not in state:
            return Outcome()
        want = [s["target"] if s["target"] is not None else s["start"] for s in instance["selects"]]
        ok = list(state["submitted"]) == want
        return Outcome(reward=1.0 if ok else -1.0, success=ok, done=True)

    def oracle(self, instance: dict[str, Any], obs: Observation) -> str:
        t = instance["selects"][0]
        box = obs.find("combobox", t["label"])
        if box is None:
            return obs.scroll_or_wait()
        if box.value != t["target"]:
            return f'select({box.id}, "{t["target"]}")'
        button = obs.find("button", instance["button"])
        return f"click({button.id})" if button else obs.scroll_or_wait()
