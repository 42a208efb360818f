"""MultiFieldForm: fill a form of several kinds of fields with the values the mission gives, then submit."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from multiverse.envs.randomization import Choice, IntRange, Param, ParamSpace
from multiverse.envs.web.task import Observation, Outcome, TaskPage, WebParams, WebTask, common_params, esc, page

# key: (kind, train label, held-out label); name and email are always on the form
FIELDS = {
    "name": ("text", "Full name", "Your name"),
    "email": ("email", "Email", "E-mail address"),
    "phone": ("tel", "Phone", "Telephone number"),
    "city": ("text", "City", "Town"),
    "country": ("select", "Country", "Country of residence"),
    "plan": ("select", "Plan", "Subscription tier"),
    "newsletter": ("checkbox", "Subscribe to the newsletter", "Send me news by email"),
    "terms": ("checkbox", "I accept the terms", "I agree to the conditions"),
    "message": ("textarea", "Message", "Comments"),
}
OPTIONS = {"country": ("Canada", "Chile", "Egypt", "France", "India", "Japan", "Kenya", "Norway"),
           "plan": ("Free", "Basic", "Pro", "Team", "Enterprise")}
FIRST = ("Ana", "Ben", "Chen", "Dara", "Eva", "Farid", "Grace", "Hugo", "Iris", "Jonas", "Kira", "Leo")
LAST = ("Costa", "Okafor", "Wei", "Singh", "Novak", "Haddad", "Lim", "Martin", "Berg", "Weber", "Sato", "Rossi")
DOMAINS = ("example.com", "mail.test", "post.example.org")
CITIES = ("Porto", "Lyon", "Quito", "Osaka", "Mombasa", "Bergen", "Pune", "Halifax", "Tartu")
MESSAGES = ("Please call me after 5 pm.", "I would like a demo next week.", "Ship to my office address.",
            "Looking forward to it!", "Is there a student discount?", "Invoice my company, please.")
SUBMIT = {"train": ("Submit", "Register", "Send"), "heldout": ("Save details", "Create account")}
LAYOUTS = {
    "stacked": ".field { margin: 6px 0; } .field > label:first-child { display: block; }",
    "table": ".field { display: grid; grid-template-columns: 200px 1fr; align-items: center; margin: 4px 0; }",
    "two_column": "#fields { display: grid; grid-template-columns: 1fr 1fr; gap: 4px 18px; } .field > label:first-child { display: block; }",
}
SCRIPT = """
document.getElementById('f').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const v = {};
  for (const el of document.querySelectorAll('#f [name]')) {
    v[el.name] = el.type === 'checkbox' ? el.checked : el.tagName === 'SELECT' ? el.options[el.selectedIndex].text : el.value;
  }
  mv.submit(v);
});
"""


@dataclasses.dataclass(frozen=True)
class Params(WebParams):
    fields: int = 5
    vocabulary: str = "train"
    layout: str = "stacked"


class MultiFieldForm(WebTask):
    """Fill every field of a form with the given values and submit it.

    ## Description
    A form of ``fields`` fields (always full name and email, then a random
    choice of phone, city, country and plan dropdowns, newsletter and terms
    checkboxes, and a message textarea), each with a ``<label for>``, in random
    order, and a submit button. The mission gives the value of every field
    (``Country "Chile"``, ``Subscribe to the newsletter: no``), in page order.
    Checkboxes start randomly ticked or not; dropdowns start at "Choose...".

    ## Actions
    ``type(id, "text")`` into text fields, ``select(id, "option")`` on
    dropdowns, ``click(id)`` on checkboxes and the submit button,
    ``scroll(up|down)`` on small viewports.

    ## Observation
    The mission, then per field a line such as ``[3] textbox "Email" (email) value=""``,
    ``[5] combobox "Country" selected="Choose..." options=[...]`` or
    ``[6] checkbox "I accept the terms" unchecked``, and the submit button.

    ## Rewards
    On submit (which ends the episode): +1 when every field holds exactly its
    value (text compared after trimming spaces), else -1.

    ## Randomization
    | parameter | nominal | train | held-out |
    |---|---|---|---|
    | fields | 5 | 4..6 | 7..9 |
    | vocabulary (field labels, submit label) | train | train | heldout (synonyms: "Your name", "Town", ...) |
    | layout | stacked | stacked, table | two_column |
    | theme, font, font_size, viewport | see :func:`common_params` | | |

    Which optional fields appear, their order, the values and the checkboxes'
    starting states are drawn per episode.

    ## Version History
    * v0: initial version.
    """

    PARAM_SPACE = ParamSpace(
        Params,
        **common_params(),
        fields=Param(IntRange(4, 6), IntRange(7, 9), "fields on the form"),
        vocabulary=Param(Choice(("train",)), Choice(("heldout",)), "field labels and submit label"),
        layout=Param(Choice(("stacked", "table")), Choice(("two_column",)), "how labels and fields are arranged"),
    )

    def setup(self, rng: np.random.Generator, params: Params) -> TaskPage:
        col = 1 if params.vocabulary == "train" else 2
        optional = [k for k in FIELDS if k not in ("name", "email")]
        keys = ["name", "email", *[str(k) for k in rng.choice(optional, size=params.fields - 2, replace=False)]]
        keys = [keys[int(i)] for i in rng.permutation(len(keys))]
        first, last = str(rng.choice(FIRST)), str(rng.choice(LAST))
        values: dict[str, Any] = {
            "name": f"{first} {last}",
            "email": f"{first.lower()}.{last.lower()}@{rng.choice(DOMAINS)}",
            "phone": f"555-{int(rng.integers(10000)):04d}",
            "city": str(rng.choice(CITIES)),
            "country": str(rng.choice(OPTIONS["country"])),
            "plan": str(rng.choice(OPTIONS["plan"])),
            "newsletter": bool(rng.random() < 0.5),
            "terms": True,
            "message": str(rng.choice(MESSAGES)),
        }
        start = {"newsletter": bool(rng.random() < 0.5), "terms": False}
        rows, fields, said = [], [], []
        for k in keys:
            kind, label = FIELDS[k][0], FIELDS[k][col]
            lab = f'<label for="{k}">{esc(label)}</label>'
            if kind == "checkbox":
                tick = " checked" if start[k] else ""
                rows.append(f'<div class="field"><span></span><span><input type="checkbox" id="{k}" name="{k}"{tick}> {lab}</span></div>')
                said.append(f"{label}: {'yes' if values[k] else 'no'}")
            elif kind == "select":
                opts = "".join(f"<option>{esc(o)}</option>" for o in OPTIONS[k])
                rows.append(f'<div class="field">{lab}<select id="{k}" name="{k}"><option value="">Choose...</option>{opts}</select></div>')
                said.append(f'{label} "{values[k]}"')
            elif kind == "textarea":
                rows.append(f'<div class="field">{lab}<textarea id="{k}" name="{k}" rows="2" cols="32"></textarea></div>')
                said.append(f'{label} "{values[k]}"')
            else:
                rows.append(f'<div class="field">{lab}<input type="{kind}" id="{k}" name="{k}" autocomplete="off"></div>')
                said.append(f'{label} "{values[k]}"')
            fields.append({"key": k, "kind": kind, "label": label, "value": values[k]})
        submit = str(rng.choice(SUBMIT[params.vocabulary]))
        body = f"""<h1>Sign-up form</h1><form id="f" class="panel" novalidate><div id="fields">{''.join(rows)}</div>
<div class="row"><button type="submit">{esc(submit)}</button></div></form>"""
        html = page(params, body, script=SCRIPT, title="Sign up", css=LAYOUTS[params.layout])
        mission = "Fill in the form with " + "; ".join(said) + f". Then click {submit}."
        return TaskPage(html, mission, {"fields": fields, "submit": submit})

    def validate(self, instance: dict[str, Any], state: Any) -> Outcome:
        if not state or "submitted" not in state:
            return Outcome()
        got = state["submitted"] or {}
        ok = all(_same(f, got.get(f["key"])) for f in instance["fields"])
        return Outcome(reward=1.0 if ok else -1.0, success=ok, done=True)

    def oracle(self, instance: dict[str, Any], obs: Observation) -> str:
        role = {"checkbox": "checkbox", "select": "combobox"}
        missing = False
        for f in instance["fields"]:  # fix the first visible field that is wrong, top to bottom
            e = obs.find(role.get(f["kind"], "textbox"), f["label"])
            if e is None:
                missing = True
            elif f["kind"] == "checkbox":
                if e.checked != f["value"]:
                    return f"click({e.id})"
            elif f["kind"] == "select":
                if e.value != f["value"]:
                    return f'select({e.id}, "{f["value"]}")'
            elif (e.value or "").strip() != f["value"]:
                return f'type({e.id}, "{f["value"]}")'
        button = obs.find("button", instance["submit"])
        if button is not None:
            return f"click({button.id})"
        return "scroll(down)" if obs.scroll_down or not missing else "scroll(up)"


def _same(field: dict[str, Any], got: Any) -> bool:
    if field["kind"] == "checkbox":
        return bool(got) == field["value"]
    return isinstance(got, str) and got.strip() == field["value"]
