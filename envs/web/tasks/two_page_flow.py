"""TwoPageFlow: make a choice on one page, continue to a second document, fill it in and finish."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import numpy as np

from multiverse.envs.randomization import Choice, Param, ParamSpace
from multiverse.envs.web.task import Observation, Outcome, TaskPage, WebParams, WebTask, common_params, esc, page

PEOPLE = ("Ana Costa", "Ben Okafor", "Chen Wei", "Dara Singh", "Eva Novak", "Farid Haddad", "Grace Lim", "Leo Rossi")
COMPANIES = ("Acme Corp", "Blue Harbor Ltd", "Pinecone Labs", "Sunrise Co", "Nordlicht GmbH", "Redwood Studio")
# flow: (title, choice label, choices, second field label, its values, finish label)
FLOWS = {
    "delivery": ("Checkout", "Delivery option", ("Standard", "Express", "Overnight", "Pickup", "Economy"),
                 "Recipient name", PEOPLE, "Place order"),
    "subscription": ("Subscribe", "Plan", ("Free", "Basic", "Pro", "Team", "Enterprise"),
                     "Company name", COMPANIES, "Finish"),
    "travel": ("Book a flight", "Seat class", ("Economy", "Premium economy", "Business", "First", "Flexible"),
               "Passenger name", PEOPLE, "Confirm booking"),
}
CONFIRM = "I confirm these details"
# The GET form navigates through location.assign: Chromium starts a native form submission
# asynchronously, after the click returns, so a step could observe page 1 once more and the next
# step's script then dies with the navigation; location.assign starts it (beforeunload) at once.
PAGE1_SCRIPT = """
const form = document.querySelector('form[action]');
if (form) form.addEventListener('submit', (ev) => {
  ev.preventDefault();
  location.assign(form.getAttribute('action') + '?' + new URLSearchParams(new FormData(form)));
});
for (const r of document.querySelectorAll('input[name=choice]'))
  r.addEventListener('change', () => { sessionStorage.setItem('choice', r.value); mv.set('choice', r.value); });
"""
PAGE2_SCRIPT = """
const q = new URLSearchParams(location.search).get('choice');
const choice = q || sessionStorage.getItem('choice') || '';
const NEEDS_CONFIRM = %s;
document.getElementById('chosen').textContent = choice || '(none chosen: go back)';
mv.set('choice', choice);
document.getElementById('f').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const v = document.getElementById('second').value.trim(), c = document.getElementById('confirm');
  const err = !choice ? 'Go back and choose an option first.' : !v ? 'Please fill in the field.'
    : (NEEDS_CONFIRM && !c.checked) ? 'Please tick the confirmation box.' : '';
  document.getElementById('err').textContent = err;
  if (err) { mv.set('error', err); return; }
  mv.submit({choice, value: v, confirmed: !!(c && c.checked)});
});
"""


@dataclasses.dataclass(frozen=True)
class Params(WebParams):
    flow: str = "delivery"
    page1: str = "form_radio"


class TwoPageFlow(WebTask):
    """Choose an option on page 1, continue to page 2, fill in a field there and finish.

    ## Description
    Page 1 (``/task``) asks for one choice among 5 (``Delivery option``) and
    has a Continue control; page 2 is a separate document (``/step2``) that
    shows the choice carried over (``Delivery option: Express``), a text field
    (``Recipient name``), in half the episodes a required confirmation checkbox,
    and a finish button. ``page1`` decides how the choice travels: a GET form
    (radio group or dropdown, ``/step2?choice=Express``; the page's submit
    handler navigates with ``location.assign`` to the URL the form would load,
    see ``PAGE1_SCRIPT``) or radios plus a plain ``Continue`` link, with the
    choice kept in ``sessionStorage``. Page 2 has a
    Back link to page 1. Finishing with an empty field, no choice, or the
    confirmation unticked only shows an error.

    ## Actions
    ``click(id)`` on radios, checkbox, links and buttons, ``select(id, "option")``
    on the dropdown, ``type(id, "text")`` into the field.

    ## Observation
    The mission, the page title and path (``Page: Checkout - step 2 (/step2?choice=Express)``),
    then the page's elements.

    ## Rewards
    On finishing (which ends the episode): +1 when the carried choice and the
    field value (trimmed) are the mission's, else -1. 0 before.

    ## Randomization
    | parameter | nominal | train | held-out |
    |---|---|---|---|
    | flow (choice, field, labels) | delivery | delivery, subscription | travel |
    | page1 (choice widget, how it travels) | form_radio | form_radio, form_select (GET form) | link (radios + link, sessionStorage) |
    | theme, font, font_size, viewport | see :func:`common_params` | | |

    The option order, target option, field value and whether confirmation is
    required are drawn per episode.

    ## Version History
    * v0: initial version.
    """

    PARAM_SPACE = ParamSpace(
        Params,
        **common_params(),
        flow=Param(Choice(("delivery", "subscription")), Choice(("travel",)), "what is chosen and filled in"),
        page1=Param(Choice(("form_radio", "form_select")), Choice(("link",)), "page 1's choice widget and Continue control"),
    )

    def setup(self, rng: np.random.Generator, params: Params) -> TaskPage:
        title, what, choices, field, values, finish = FLOWS[params.flow]
        opts = [str(choices[int(i)]) for i in rng.permutation(len(choices))]
        target, value = opts[int(rng.integers(len(opts)))], str(rng.choice(values))
        confirm = bool(rng.random() < 0.5)
        radios = "".join(
            f'<div><input type="radio" name="choice" id="c{i}" value="{esc(o)}"><label for="c{i}">{esc(o)}</label></div>'
            for i, o in enumerate(opts)
        )
        if params.page1 == "form_select":
            options = "".join(f'<option value="{esc(o)}">{esc(o)}</option>' for o in opts)
            widget = f'<label for="choice">{esc(what)}</label> <select id="choice" name="choice"><option value="">Choose...</option>{options}</select>'
        else:
            widget = f"<fieldset><legend>{esc(what)}</legend>{radios}</fieldset>"
        if params.page1 == "link":
            inner = f'<div class="panel">{widget}<p><a href="/step2">Continue</a></p></div>'
        else:
            inner = f'<form method="get" action="/step2" class="panel">{widget}<p><button type="submit">Continue</button></p></form>'
        html = page(params, f"<h1>{esc(title)}</h1><p>Step 1 of 2</p>{inner}", script=PAGE1_SCRIPT, title=f"{title} - step 1")
        tick = f'<div class="row"><input type="checkbox" id="confirm"><label for="confirm">{CONFIRM}</label></div>' if confirm else ""
        body2 = f"""<h1>{esc(title)}</h1><p>Step 2 of 2</p><p>{esc(what)}: <span id="chosen"></span></p>
<form id="f" class="panel"><div class="row"><label for="second">{esc(field)}</label> <input type="text" id="second" autocomplete="off"></div>
{tick}<p id="err" role="alert"></p><button type="submit">{esc(finish)}</button></form><p><a href="/task">Back</a></p>"""
        html2 = page(params, body2, script=PAGE2_SCRIPT % json.dumps(confirm), title=f"{title} - step 2")
        confirm_say = f', tick "{CONFIRM}"' if confirm else ""
        mission = (f'Choose "{target}" as the {what.lower()} and continue. On the next page enter "{value}" as the '
                   f"{field.lower()}{confirm_say}, then click {finish}.")
        instance = {"target": target, "what": what, "field": field, "value": value, "finish": finish, "confirm": confirm}
        return TaskPage(html, mission, instance, files={"/step2": ("text/html; charset=utf-8", html2.encode())})

    def validate(self, instance: dict[str, Any], state: Any) -> Outcome:
        if not state or "submitted" not in state:
            return Outcome()
        sub = state["submitted"] or {}
        ok = sub.get("choice") == instance["target"] and str(sub.get("value", "")).strip() == instance["value"]
        return Outcome(reward=1.0 if ok else -1.0, success=ok, done=True)

    def oracle(self, instance: dict[str, Any], obs: Observation) -> str:
        target = instance["target"]
        if obs.url.startswith("/step2"):
            carried = any(e.role == "text" and e.name == f"{instance['what']}: {target}" for e in obs.elements)
            if not carried:
                back = obs.find("link", "Back")
                return f"click({back.id})" if back else "scroll(down)"
            box = obs.find("textbox", instance["field"])
            if box is not None and (box.value or "").strip() != instance["value"]:
                return f'type({box.id}, "{instance["value"]}")'
            tick = obs.find("checkbox", CONFIRM)
            if tick is not None and not tick.checked:
                return f"click({tick.id})"
            button = obs.find("button", instance["finish"])
            return f"click({button.id})" if button else "scroll(down)"
        radio, combo = obs.find("radio", target), obs.find("combobox", instance["what"])
        if radio is not None and not radio.checked:
            return f"click({radio.id})"
        if combo is not None and combo.value != target:
            return f'select({combo.id}, "{target}")'
        go = obs.find("button", "Continue") or obs.find("link", "Continue")
        return f"click({go.id})" if go else "scroll(down)"
