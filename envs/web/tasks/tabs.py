"""Tabs: switch to the right tab of a tab bar and click a button inside its panel."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from multiverse.envs.randomization import Choice, IntRange, Param, ParamSpace
from multiverse.envs.web.task import Observation, Outcome, TaskPage, WebParams, WebTask, common_params, esc, page

WORDS = {  # (tab names, button labels shared by the panels)
    "train": (("Profile", "Security", "Billing", "Notifications", "Privacy", "Devices", "Team", "Storage"),
              ("Save", "Reset", "Edit", "Export", "Delete")),
    "heldout": (("Overview", "Shipping", "Returns", "Payments", "Integrations", "Reports", "Support", "Archive"),
                ("Apply", "Revert", "Duplicate", "Download", "Remove")),
}
MISSIONS = {  # named: the mission names the tab; find/contains: it names a code shown only in that tab's panel
    "named": 'Open the "{tab}" tab and click its "{btn}" button.',
    "find": 'One tab shows the reference code {code}. Click the "{btn}" button in that tab.',
    "section": 'Under the "{tab}" section, press "{btn}".',
    "contains": 'Press "{btn}" in the tab whose panel lists the code {code}.',
}
LAYOUTS = {
    "top": "[role=tablist] { display: flex; gap: 4px; border-bottom: 2px solid currentColor; }",
    "left": "#w { display: flex; gap: 12px; } [role=tablist] { display: flex; flex-direction: column; gap: 4px; min-width: 140px; }",
    "bottom": "[role=tablist] { display: flex; gap: 4px; border-top: 2px solid currentColor; }",
}
TAB_CSS = """
[role=tab] { cursor: pointer; padding: 4px 10px; border: 1px solid currentColor; border-radius: 4px; }
[role=tab][aria-selected=true] { font-weight: bold; border-width: 3px; }
h2 { margin: 4px 0; }
"""
SCRIPT = """
const tabs = Array.from(document.querySelectorAll('[role=tab]'));
const pick = (t) => {
  for (const u of tabs) {
    const on = u === t;
    u.setAttribute('aria-selected', on ? 'true' : 'false');
    document.getElementById(u.getAttribute('aria-controls')).classList.toggle('hidden', !on);
  }
  mv.push('tabs', t.textContent);
};
for (const t of tabs) {
  t.addEventListener('click', () => pick(t));
  t.addEventListener('keydown', (ev) => { if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); pick(t); } });
}
for (const b of document.querySelectorAll('[role=tabpanel] button')) b.addEventListener('click', () => {
  mv.submit({tab: b.closest('[role=tabpanel]').dataset.tab, label: b.textContent});
});
"""


@dataclasses.dataclass(frozen=True)
class Params(WebParams):
    tabs: int = 4
    vocabulary: str = "train"
    wording: str = "named"
    layout: str = "top"


class Tabs(WebTask):
    """Open the right tab and click the named button in its panel.

    ## Description
    A tab bar (``role=tab`` buttons with ``aria-selected``) switches between
    ``tabs`` panels; only the selected panel is shown (the others are
    ``display:none``). Every panel has a heading, a reference code and 2..3
    buttons drawn from one small set of labels, so the target label also
    appears in other panels. The mission names the tab (``named``/``section``)
    or a code shown only in its panel (``find``/``contains``, which needs
    looking through the tabs), and the button to click. A tab other than the
    target is selected at the start.

    ## Actions
    ``click(id)`` on a tab or on a panel button.

    ## Observation
    The mission, the tabs (``[2] tab "Billing" checked`` for the selected one),
    then the visible panel's heading, ``Reference code: K-4821`` and buttons.

    ## Rewards
    +1 for the named button in the target tab's panel, -1 for any other panel
    button; switching tabs gives 0. The episode ends at the first panel button.

    ## Randomization
    | parameter | nominal | train | held-out |
    |---|---|---|---|
    | tabs | 4 | 3..5 | 6..7 |
    | vocabulary (tab names, button labels) | train | train | heldout (unseen words) |
    | wording | named | named, find | section, contains |
    | layout | top | top, left (vertical tabs) | bottom (tab bar after the panels) |
    | theme, font, font_size, viewport | see :func:`common_params` | | |

    Tab order, codes, each panel's buttons and the first selected tab are drawn per episode.

    ## Version History
    * v0: initial version.
    """

    PARAM_SPACE = ParamSpace(
        Params,
        **common_params(),
        tabs=Param(IntRange(3, 5), IntRange(6, 7), "tabs in the tab bar"),
        vocabulary=Param(Choice(("train",)), Choice(("heldout",)), "tab names and button labels"),
        wording=Param(Choice(("named", "find")), Choice(("section", "contains")), "how the target tab is given"),
        layout=Param(Choice(("top", "left")), Choice(("bottom",)), "where the tab bar is"),
    )

    def setup(self, rng: np.random.Generator, params: Params) -> TaskPage:
        tab_words, button_words = WORDS[params.vocabulary]
        names = [str(w) for w in rng.choice(tab_words, size=params.tabs, replace=False)]
        codes = [f"K-{int(c)}" for c in rng.choice(np.arange(1000, 10000), size=params.tabs, replace=False)]
        target = int(rng.integers(params.tabs))
        btn = str(rng.choice(button_words))
        panels_buttons = []
        for i in range(params.tabs):
            labels = [str(b) for b in rng.choice(button_words, size=int(rng.integers(2, 4)), replace=False)]
            if i == target and btn not in labels:
                labels[int(rng.integers(len(labels)))] = btn
            panels_buttons.append(labels)
        if not any(btn in labels for i, labels in enumerate(panels_buttons) if i != target):  # a decoy elsewhere
            other = int((target + 1 + rng.integers(params.tabs - 1)) % params.tabs)
            panels_buttons[other][0] = btn
        first = int((target + 1 + rng.integers(params.tabs - 1)) % params.tabs)
        tabs = "".join(
            f'<div role="tab" tabindex="0" id="t{i}" aria-controls="p{i}" aria-selected="{"true" if i == first else "false"}">{esc(n)}</div>'
            for i, n in enumerate(names)
        )
        panels = "".join(
            f'<div role="tabpanel" id="p{i}" aria-labelledby="t{i}" data-tab="{esc(n)}" class="panel{"" if i == first else " hidden"}">'
            f"<h2>{esc(n)}</h2><p>Reference code: {codes[i]}</p>"
            + "".join(f"<button>{esc(b)}</button>" for b in panels_buttons[i])
            + "</div>"
            for i, n in enumerate(names)
        )
        bar = f'<div role="tablist" aria-label="Settings">{tabs}</div>'
        inner = f"<div>{panels}</div>{bar}" if params.layout == "bottom" else f"{bar}<div>{panels}</div>"
        css = LAYOUTS[params.layout] + TAB_CSS
        html = page(params, f'<h1>Account settings</h1><div id="w">{inner}</div>', script=SCRIPT, title="Settings", css=css)
        mission = MISSIONS[params.wording].format(tab=names[target], btn=btn, code=codes[target])
        instance = {"names": names, "codes": codes, "target": names[target], "code": codes[target], "button": btn,
                    "by_code": params.wording in ("find", "contains")}
        return TaskPage(html, mission, instance)

    def validate(self, instance: dict[str, Any], state: Any) -> Outcome:
        if not state or "submitted" not in state:
            return Outcome()
        sub = state["submitted"] or {}
        ok = sub.get("tab") == instance["target"] and sub.get("label") == instance["button"]
        return Outcome(reward=1.0 if ok else -1.0, success=ok, done=True)

    def oracle(self, instance: dict[str, Any], obs: Observation) -> str:
        tabs = obs.find_all("tab")
        selected = next((i for i, t in enumerate(tabs) if t.checked), None)
        if instance["by_code"]:  # look through the tabs until the panel shows the code
            here = any(e.role == "text" and instance["code"] in e.name for e in obs.elements)
            if not here:
                nxt = tabs[(selected + 1) % len(tabs)] if selected is not None and tabs else (tabs[0] if tabs else None)
                return f"click({nxt.id})" if nxt else "noop()"
        elif selected is None or tabs[selected].name != instance["target"]:
            tab = obs.find("tab", instance["target"])
            return f"click({tab.id})" if tab else "noop()"
        button = obs.find("button", instance["button"])
        return f"click({button.id})" if button else "scroll(down)"
