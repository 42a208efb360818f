"""Checkboxes: tick exactly the listed items (untick the rest) and submit."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from multiverse.envs.randomization import Choice, IntRange, Param, ParamSpace
from multiverse.envs.web.task import Observation, Outcome, TaskPage, WebParams, WebTask, common_params, esc, page

# group heading: its items
GROUPS = {
    "train": {
        "Pizza toppings": ("Cheese", "Ham", "Mushrooms", "Olives", "Onions", "Peppers", "Pineapple", "Tomato", "Basil", "Salami"),
        "Interests": ("Reading", "Cooking", "Hiking", "Music", "Chess", "Gardening", "Painting", "Cycling", "Photography", "Dancing"),
        "Packing list": ("Passport", "Charger", "Sunscreen", "Umbrella", "Towel", "Camera", "Snacks", "Map", "Jacket", "Tickets"),
    },
    "heldout": {
        "Newsletter topics": ("Science", "Travel", "Finance", "Sports", "Health", "Movies", "Fashion", "Gaming", "Politics", "Cars"),
        "Room amenities": ("Wi-Fi", "Parking", "Breakfast", "Pool", "Gym", "Sauna", "Balcony", "Kitchen", "Pet friendly", "Air conditioning"),
    },
}
BUTTONS = {"train": ("Submit", "Save"), "heldout": ("Update", "Done")}
MISSIONS = {
    "plain": "Check exactly these boxes: {quoted}. Leave all the others unchecked, then click {button}.",
    "select": "Select {items} and nothing else, then press {button}.",
    "want": "When you submit the form, only {items} should be ticked.",
}
CSS = {
    "list": "#boxes .row { display: block; }",
    "grid": "#boxes { display: grid; grid-template-columns: repeat(3, minmax(120px, 1fr)); }",
    "inline": "#boxes { display: flex; flex-wrap: wrap; gap: 4px 18px; }",
}


@dataclasses.dataclass(frozen=True)
class Params(WebParams):
    boxes: int = 5
    vocabulary: str = "train"
    wording: str = "plain"
    layout: str = "list"


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


class Checkboxes(WebTask):
    """Tick exactly the items the mission lists, untick the others, and submit.

    ## Description
    A form shows ``boxes`` labelled checkboxes under a group heading, some
    already ticked, and a submit button. The mission lists the items that
    must be ticked; every other box must end up unticked (the starting ticks
    never already match). Submitting ends the episode; it succeeds when the
    ticked set equals the listed set.

    ## Actions
    ``click(id)`` on a checkbox toggles it; ``click(id)`` on the button submits.

    ## Observation
    The mission, then ``[3] checkbox "Olives" checked`` / ``unchecked`` per
    item and the button.

    ## Rewards
    +1 for a correct submission, -1 for a wrong one; the episode ends at the first submission.

    ## Randomization
    | parameter | nominal | train | held-out |
    |---|---|---|---|
    | boxes | 5 | 3..6 | 7..9 |
    | vocabulary (groups, items, button) | train | train | heldout (unseen) |
    | wording (mission phrasing) | plain | plain, select | want |
    | layout | list | list, grid | inline (wrapping row) |
    | theme, font, font_size, viewport | see :func:`common_params` | | |
    The number of items to tick (1..boxes-1) and the starting ticks are drawn per episode.

    ## Version History
    * v0: initial version.
    """

    PARAM_SPACE = ParamSpace(
        Params,
        **common_params(),
        boxes=Param(IntRange(3, 6), IntRange(7, 9), "checkboxes in the form"),
        vocabulary=Param(Choice(("train",)), Choice(("heldout",)), "which groups, items and button names are used"),
        wording=Param(Choice(("plain", "select")), Choice(("want",)), "how the mission is phrased"),
        layout=Param(Choice(("list", "grid")), Choice(("inline",)), "how the checkboxes are laid out"),
    )

    def setup(self, rng: np.random.Generator, params: Params) -> TaskPage:
        groups = GROUPS[params.vocabulary]
        heading = sorted(groups)[int(rng.integers(len(groups)))]
        pool = groups[heading]
        items = [str(pool[int(i)]) for i in rng.choice(len(pool), size=params.boxes, replace=False)]
        want = sorted(int(i) for i in rng.choice(len(items), size=int(rng.integers(1, len(items))), replace=False))
        while True:
            start = [int(i) for i in np.flatnonzero(rng.random(len(items)) < 0.4)]
            if start != want:
                break
        button = str(BUTTONS[params.vocabulary][int(rng.integers(len(BUTTONS[params.vocabulary])))])
        rows = "".join(
            f'<div class="row"><input type="checkbox" id="c{i}"{" checked" if i in start else ""}>'
            f'<label for="c{i}">{esc(t)}</label></div>'
            for i, t in enumerate(items)
        )
        body = (
            f'<form id="form" class="panel"><h2>{esc(heading)}</h2><div id="boxes">{rows}</div>'
            f'<div class="row"><button type="submit">{esc(button)}</button></div></form>'
        )
        script = f"""
document.getElementById('form').addEventListener('submit', (e) => {{
  e.preventDefault();
  if ('submitted' in window.__mvState) return;
  const on = [];
  for (let i = 0; i < {len(items)}; i++) if (document.getElementById('c' + i).checked) on.push(i);
  mv.submit(on);
}});"""
        names = [items[i] for i in want]
        order = [names[int(i)] for i in rng.permutation(len(names))]  # the mission lists them in its own order
        mission = MISSIONS[params.wording].format(
            quoted=", ".join(f'"{t}"' for t in order), items=_and(order), button=button
        )
        html = page(params, body, script=script, title=heading, css=CSS[params.layout])
        return TaskPage(html, mission, {"items": items, "want": want, "start": start, "button": button})

    def validate(self, instance: dict[str, Any], state: Any) -> Outcome:
        if not state or "submitted" not in state:
            return Outcome()
        ok = sorted(int(i) for i in state["submitted"]) == instance["want"]
        return Outcome(reward=1.0 if ok else -1.0, success=ok, done=True)

    def oracle(self, instance: dict[str, Any], obs: Observation) -> str:
        wanted = {instance["items"][i] for i in instance["want"]}
        for box in obs.find_all("checkbox"):
            if box.name in instance["items"] and bool(box.checked) != (box.name in wanted):
                return f"click({box.id})"
        seen = {b.name for b in obs.find_all("checkbox")}
        button = obs.find("button", instance["button"])
        if button is not None and (seen >= set(instance["items"]) or not obs.scroll_down):
            return f"click({button.id})"  # boxes above were fixed before scrolling down to here
        return obs.scroll_or_wait()
