"""EnterText: type the given text into the named field and submit the form."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from multiverse.envs.randomization import Choice, IntRange, Param, ParamSpace
from multiverse.envs.web.task import Observation, Outcome, TaskPage, WebParams, WebTask, common_params, esc, page

WORDS = {
    "train": (
        "apple", "river", "mountain", "window", "purple", "garden", "silver", "rocket", "pencil", "orange juice",
        "blue sky", "quiet night", "Paris", "Tuesday", "hello world", "coffee", "Maple Street", "42 cats",
    ),
    "heldout": (
        "lantern", "velvet", "harbour", "tangerine", "Oslo", "cobalt", "evening tide", "paper boat",
        "Wednesday", "17 owls", "Willow Lane", "marble",
    ),
}
LABELS = {
    "train": ("Text", "Your answer", "Entry", "Message", "Word"),
    "heldout": ("Response", "Input value", "Note", "Phrase"),
}
# other fields the form may carry, to be left empty
DISTRACTORS = ("Comment (optional)", "Nickname (optional)", "Reference code (optional)")
BUTTONS = {"train": ("Submit", "Send", "OK"), "heldout": ("Go", "Done")}
MISSIONS = {
    "plain": 'Type "{text}" into the "{label}" field and click {button}.',
    "enter": 'Enter the text "{text}" in the box labelled "{label}", then submit it.',
    "casual": 'Fill in {label} with "{text}" and send the form.',
}


@dataclasses.dataclass(frozen=True)
class Params(WebParams):
    distractors: int = 0
    vocabulary: str = "train"
    wording: str = "plain"
    prefill: str = "empty"


class EnterText(WebTask):
    """Type the given word or phrase into the named text field and submit.

    ## Description
    A form holds one labelled text field for the answer, possibly other
    (optional) text fields, and a submit button. The mission gives the exact
    text and the field's label. Submitting by the button or by pressing Enter
    in a field ends the episode; it succeeds if the named field holds exactly
    the text (case and spaces count) and every other field is empty.

    ## Actions
    ``type(id, "text")`` replaces a field's text; ``click(id)`` the button;
    ``press("Enter")`` submits from a focused field.

    ## Observation
    The mission, then the form: ``[2] textbox "Your answer" value=""`` and
    ``[4] button "Send"``.

    ## Rewards
    +1 for a correct submission, -1 for a wrong one; the episode ends at the first submission.

    ## Randomization
    | parameter | nominal | train | held-out |
    |---|---|---|---|
    | distractors (other text fields) | 0 | 0..1 | 2..3 |
    | vocabulary (text, field label, button) | train | train | heldout (unseen words and labels) |
    | wording (mission phrasing) | plain | plain, enter | casual |
    | prefill (the field at start) | empty | empty, placeholder | filled (old text to replace) |
    | theme, font, font_size, viewport | see :func:`common_params` | | |

    ## Version History
    * v0: initial version.
    """

    PARAM_SPACE = ParamSpace(
        Params,
        **common_params(),
        distractors=Param(IntRange(0, 1), IntRange(2, 3), "other text fields in the form"),
        vocabulary=Param(Choice(("train",)), Choice(("heldout",)), "which texts, labels and button names are used"),
        wording=Param(Choice(("plain", "enter")), Choice(("casual",)), "how the mission is phrased"),
        prefill=Param(Choice(("empty", "placeholder")), Choice(("filled",)), "what the answer field holds at start"),
    )
    keys = ("Enter",)

    def setup(self, rng: np.random.Generator, params: Params) -> TaskPage:
        v = params.vocabulary
        words = WORDS[v]
        text = str(words[int(rng.integers(len(words)))])
        label = str(LABELS[v][int(rng.integers(len(LABELS[v])))])
        button = str(BUTTONS[v][int(rng.integers(len(BUTTONS[v])))])
        others = [str(DISTRACTORS[int(i)]) for i in rng.choice(len(DISTRACTORS), size=params.distractors, replace=False)]
        fields = [label, *others]
        order = [int(i) for i in rng.permutation(len(fields))]
        rows = []
        for k in order:
            attrs = ""
            if k == 0 and params.prefill == "placeholder":
                attrs = ' placeholder="Type here"'
            elif k == 0 and params.prefill == "filled":
                old = next(w for w in (str(words[int(i)]) for i in rng.permutation(len(words))) if w != text)
                attrs = f' value="{esc(old)}"'
            rows.append(
                f'<div class="row"><label for="f{k}">{esc(fields[k])}</label><br>'
                f'<input type="text" id="f{k}" name="f{k}" autocomplete="off"{attrs}></div>'
            )
        body = (
            '<h2>Quick entry</h2><form id="form" class="panel">'
            + "".join(rows)
            + f'<div class="row"><button type="submit">{esc(button)}</button></div></form>'
        )
        script = f"""
document.getElementById('form').addEventListener('submit', (e) => {{
  e.preventDefault();
  if ('submitted' in window.__mvState) return;
  const vals = [];
  for (let k = 0; k < {len(fields)}; k++) vals.push(document.getElementById('f' + k).value);
  mv.submit(vals);
}});"""
        mission = MISSIONS[params.wording].format(text=text, label=label, button=button)
        html = page(params, body, script=script, title="Entry form")
        return TaskPage(html, mission, {"text": text, "label": label, "button": button, "fields": fields})

    def validate(self, instance: dict[str, Any], state: Any) -> Outcome:
        if not state or "submitted" not in state:
            return Outcome()
        vals = list(state["submitted"])
        ok = vals[0] == instance["text"] and all(v == "" for v in vals[1:])
        return Outcome(reward=1.0 if ok else -1.0, success=ok, done=True)

    def oracle(self, instance: dict[str, Any], obs: Observation) -> str:
        field = obs.find("textbox", instance["label"])
        if field is None:
            return obs.scroll_or_wait()
        if field.value != instance["text"]:
            return f'type({field.id}, "{instance["text"]}")'
        button = obs.find("button", instance["button"])
        return f"click({button.id})" if button else 'press("Enter")'
