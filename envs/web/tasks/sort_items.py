"""SortItems: put a short list in the asked order with move up / move down buttons, then press Done."""

from __future__ import annotations

import dataclasses
import itertools
import json
from typing import Any

import numpy as np

from multiverse.envs.randomization import Choice, IntRange, Param, ParamSpace
from multiverse.envs.web.task import Observation, Outcome, TaskPage, WebParams, WebTask, common_params, page

ITEMS = {
    "train": ("Apple", "Banana", "Cherry", "Grape", "Lemon", "Mango", "Peach", "Plum", "Kiwi", "Melon"),
    "heldout": ("Oslo", "Lima", "Cairo", "Delhi", "Perth", "Quito", "Seoul", "Tunis", "Vienna", "Zagreb"),
}
#: button accessible names: (up, down); "{x}" is the item
LABELS = {
    "move": ("Move {x} up", "Move {x} down"),
    "shift": ("Shift {x} earlier", "Shift {x} later"),
}
MISSIONS = {
    "alpha": "Sort the list alphabetically (A to Z), then press Done.",
    "score_asc": "Order the items by score, smallest first, then press Done.",
    "given": "Put the items in this order: {order}. Then press Done.",
    "alpha_desc": "Sort the list in reverse alphabetical order (Z to A), then press Done.",
    "score_desc": "Order the items by score, largest first, then press Done.",
}

SCRIPT = """
const D = __DATA__;
const box = document.getElementById('items');
const rows = {};
function el(tag, text, cls) { const x = document.createElement(tag); if (text != null) x.textContent = text; if (cls) x.className = cls; return x; }
function order() { return Array.from(box.children).filter((r) => r.dataset.item).map((r) => r.dataset.item); }
function refresh() {
  const o = order();
  o.forEach((name, i) => {
    rows[name].up.style.visibility = i === 0 ? 'hidden' : 'visible';
    rows[name].down.style.visibility = i === o.length - 1 ? 'hidden' : 'visible';
  });
  mv.set('order', o);
}
function move(name, dir) {
  const r = rows[name].row;
  if (dir < 0 && r.previousElementSibling && r.previousElementSibling.dataset.item) box.insertBefore(r, r.previousElementSibling);
  if (dir > 0 && r.nextElementSibling) box.insertBefore(r.nextElementSibling, r);
  refresh();
}
const table = D.layout === 'table';
if (table) { const hr = el('tr'); for (const h of ['Item', 'Score', 'Move']) hr.append(el('th', h)); box.append(hr); }
for (const it of D.items) {
  const row = el(table ? 'tr' : (D.layout === 'list' ? 'li' : 'div'), null, D.layout === 'cards' ? 'panel card' : '');
  row.dataset.item = it.name;
  const up = el('button', null, 'up'); up.setAttribute('aria-label', D.up.replace('{x}', it.name)); up.onclick = () => move(it.name, -1);
  const down = el('button', null, 'down'); down.setAttribute('aria-label', D.down.replace('{x}', it.name)); down.onclick = () => move(it.name, 1);
  if (table) {
    const td = el('td'); td.append(up, down);
    row.append(el('td', it.name), el('td', String(it.score)), td);
  } else {
    row.append(el('span', it.name + ' (score ' + it.score + ')', 'label'), up, down);
  }
  rows[it.name] = {row, up, down}; box.append(row);
}
document.getElementById('done').onclick = () => mv.submit(order());
refresh();
"""
# Arrows drawn by CSS so that each button's accessible name is its aria-label ("Move Kiwi up").
CSS = """
button.up::before { content: "\\25B2"; } button.down::before { content: "\\25BC"; }
#items .label { display: inline-block; min-width: 11em; }
#items td, #items th { padding: 3px 12px; text-align: left; }
.card { max-width: 360px; }
"""


@dataclasses.dataclass(frozen=True)
class Params(WebParams):
    items: int = 4
    vocabulary: str = "train"
    order: str = "alpha"
    labels: str = "move"
    layout: str = "list"


class SortItems(WebTask):
    """Put a short list in the asked order with move up / move down buttons, then press Done.

    ## Description
    A list of ``items`` items, each with a score and two arrow buttons whose
    accessible names say what they do (``Move Kiwi up``, ``Move Kiwi down``; the
    first item has no up button, the last no down button). The mission asks for
    an order (alphabetical, by score, or an explicit sequence); pressing Done
    with the list in that order succeeds.

    ## Actions
    ``click(id)`` on the move buttons and Done.

    ## Observation
    Per item: ``text "Kiwi (score 42)"`` (or table cells ``text "Kiwi"``,
    ``text "42"``), ``button "Move Kiwi up"``, ``button "Move Kiwi down"``; then
    ``button "Done"``. Items are listed in their current order.

    ## Rewards
    +1 for Done with the asked order, -1 for Done with any other order; the
    episode ends at Done.

    ## Randomization
    | parameter | nominal | train | held-out |
    |---|---|---|---|
    | items | 4 | 4..5 | 6 |
    | vocabulary (item names) | train | train (fruits) | heldout (cities) |
    | order (asked ordering) | alpha | alpha, score_asc, given | alpha_desc, score_desc |
    | labels (button names) | move | move (Move X up/down) | shift (Shift X earlier/later) |
    | layout | list | list, table | cards |
    | theme, font, font_size, viewport | see :func:`common_params` | | |

    Item names, scores, the starting order (never already sorted) and, for
    ``given``, the asked sequence come from the seed.

    ## Version History
    * v0: initial version.
    """

    PARAM_SPACE = ParamSpace(
        Params,
        **common_params(),
        items=Param(IntRange(4, 5), IntRange(6, 6), "items in the list"),
        vocabulary=Param(Choice(("train",)), Choice(("heldout",)), "item names"),
        order=Param(Choice(("alpha", "score_asc", "given")), Choice(("alpha_desc", "score_desc")), "the ordering asked for"),
        labels=Param(Choice(("move",)), Choice(("shift",)), "move button names"),
        layout=Param(Choice(("list", "table")), Choice(("cards",)), "how the list is laid out"),
    )

    def setup(self, rng: np.random.Generator, params: Params) -> TaskPage:
        n = params.items
        names = [str(s) for s in rng.choice(ITEMS[params.vocabulary], size=n, replace=False)]
        scores = {name: int(s) for name, s in zip(names, rng.choice(np.arange(1, 100), size=n, replace=False))}
        target = {
            "alpha": sorted(names),
            "alpha_desc": sorted(names, reverse=True),
            "score_asc": sorted(names, key=scores.__getitem__),
            "score_desc": sorted(names, key=scores.__getitem__, reverse=True),
            "given": [str(s) for s in rng.permutation(names)],
        }[params.order]
        start = list(names)
        while start == target:
            start = [str(s) for s in rng.permutation(names)]
        up, down = LABELS[params.labels]
        tag = {"list": "ul", "table": "table", "cards": "div"}[params.layout]
        body = f'<h1>Arrange the list</h1><{tag} id="items"></{tag}><button id="done">Done</button>'
        data = {"items": [{"name": x, "score": scores[x]} for x in start], "layout": params.layout, "up": up, "down": down}
        script = SCRIPT.replace("__DATA__", json.dumps(data).replace("</", "<\\/"))
        html = page(params, body, script=script, title="Sort", css=CSS)
        mission = MISSIONS[params.order].format(order=", ".join(target))
        return TaskPage(html, mission, {"target": target, "start": start, "up": up, "down": down})

    def validate(self, instance: dict[str, Any], state: Any) -> Outcome:
        if not state or "submitted" not in state:
            return Outcome()
        ok = list(state["submitted"] or []) == instance["target"]
        return Outcome(reward=1.0 if ok else -1.0, success=ok, done=True)

    def oracle(self, instance: dict[str, Any], obs: Observation) -> str:
        target = instance["target"]
        # The current order, read off the move buttons (listed in page order); one bubble-sort swap per step.
        owner = {instance[k].replace("{x}", x): x for x in target for k in ("up", "down")}
        current: list[str] = []
        for e in obs.elements:
            if e.role == "button" and e.name in owner and owner[e.name] not in current:
                current.append(owner[e.name])
        done = obs.find("button", "Done")
        if len(current) < len(target) or done is None:  # part of the list is out of view
            return obs.scroll_or_wait()
        for a, b in itertools.pairwise(current):
            if target.index(a) > target.index(b):
                button = obs.find("button", instance["up"].replace("{x}", b))
                return f"click({button.id})" if button else "noop()"
        return f"click({done.id})"
