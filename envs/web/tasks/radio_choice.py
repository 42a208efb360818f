"""RadioChoice: answer a question by choosing one option of a radio group, then submit."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from multiverse.envs.randomization import Choice, IntRange, Param, ParamSpace
from multiverse.envs.web.task import Observation, Outcome, TaskPage, WebParams, WebTask, common_params, esc, page

PEOPLE = ("Sam", "Maria", "Omar", "Lena", "Kenji", "Priya", "Tom", "Ada", "Felix", "Nora")
# topic: (fact template, question template, options, lower-case the option inside the fact)
TOPICS = {
    "train": {
        "colour": ("{p}'s favourite colour is {x}.", "What is {p}'s favourite colour?",
                   ("Red", "Blue", "Green", "Yellow", "Purple", "Orange", "Black", "White"), True),
        "pet": ("{p} has a pet {x}.", "What kind of pet does {p} have?",
                ("Dog", "Cat", "Rabbit", "Parrot", "Hamster", "Turtle", "Goldfish", "Horse"), True),
        "city": ("{p} lives in {x}.", "Which city does {p} live in?",
                 ("Paris", "Tokyo", "Lima", "Cairo", "Oslo", "Delhi", "Berlin", "Sydney"), False),
    },
    "heldout": {
        "fruit": ("{p}'s favourite fruit is the {x}.", "Which fruit does {p} like best?",
                  ("Mango", "Pear", "Plum", "Kiwi", "Cherry", "Lemon", "Banana", "Peach"), True),
        "instrument": ("{p} plays the {x}.", "Which instrument does {p} play?",
                       ("Violin", "Piano", "Flute", "Drums", "Cello", "Guitar", "Trumpet", "Harp"), True),
    },
}
BUTTONS = {"train": ("Submit", "Done", "Send"), "heldout": ("Save answer", "Confirm")}
SKIP = {"train": "Skip", "heldout": "Pass"}
MISSIONS = {
    "select": 'Select "{x}" and click {button}.',
    "fact_page": "Answer the question using the fact shown on the page, then click {button}.",
    "choose": "Mark the option {x} as your answer and submit it with the {button} button.",
    "fact_mission": "{fact} Answer the question on the page accordingly and click {button}.",
}
LAYOUTS = {
    "column": ".opts { display: flex; flex-direction: column; gap: 4px; }",
    "row": ".opts { display: flex; flex-wrap: wrap; gap: 14px; }",
    "grid": ".opts { display: grid; grid-template-columns: repeat(3, 170px); gap: 6px; }",
}


@dataclasses.dataclass(frozen=True)
class Params(WebParams):
    options: int = 4
    vocabulary: str = "train"
    wording: str = "select"
    layout: str = "column"


class RadioChoice(WebTask):
    """Choose the right option of a radio group and submit.

    ## Description
    The page asks a question about a person (``What is Sam's favourite
    colour?``) above a radio group of ``options`` answers (each ``<input
    type=radio>`` tied to its ``<label for>``) and one submit button. The
    mission either names the option to pick or states a fact (in the mission
    or on the page) that answers the question. Submitting with nothing chosen
    only shows "Please choose an option."; submitting a choice, or the
    ``Skip`` (held-out: ``Pass``) button, ends the episode.

    ## Actions
    ``click(id)`` on a radio button or a button.

    ## Observation
    The mission, the question as text, one line per option
    (``[4] radio "Blue" unchecked``), maybe a ``Fact: ...`` line, and the two buttons.

    ## Rewards
    +1 for submitting the right option, -1 for a wrong one or skipping; 0 otherwise.

    ## Randomization
    | parameter | nominal | train | held-out |
    |---|---|---|---|
    | options | 4 | 3..6 | 7..8 |
    | vocabulary (topics, option words, button label) | train | train (colour, pet, city) | heldout (fruit, instrument) |
    | wording | select | select (option named), fact_page (fact on the page) | choose (option named), fact_mission (fact in the mission) |
    | layout | column | column, row | grid |
    | theme, font, font_size, viewport | see :func:`common_params` | | |

    The person, topic, option order and (in a third of episodes) a wrongly
    pre-checked option are drawn per episode.

    ## Version History
    * v0: initial version.
    """

    PARAM_SPACE = ParamSpace(
        Params,
        **common_params(),
        options=Param(IntRange(3, 6), IntRange(7, 8), "radio options in the group"),
        vocabulary=Param(Choice(("train",)), Choice(("heldout",)), "topics, option words and button labels"),
        wording=Param(Choice(("select", "fact_page")), Choice(("choose", "fact_mission")), "how the answer is given"),
        layout=Param(Choice(("column", "row")), Choice(("grid",)), "how the options are laid out"),
    )

    def setup(self, rng: np.random.Generator, params: Params) -> TaskPage:
        topics = TOPICS[params.vocabulary]
        fact_t, question_t, words, lower = topics[sorted(topics)[int(rng.integers(len(topics)))]]
        person = str(rng.choice(PEOPLE))
        labels = [str(w) for w in rng.choice(words, size=params.options, replace=False)]
        target = labels[int(rng.integers(len(labels)))]
        button = str(rng.choice(BUTTONS[params.vocabulary]))
        prechecked = labels.index(str(rng.choice([w for w in labels if w != target]))) if rng.random() < 1 / 3 else -1
        fact = fact_t.format(p=person, x=target.lower() if lower else target)
        question = question_t.format(p=person)
        opts = "".join(
            f'<div class="opt"><input type="radio" name="answer" id="o{i}" value="{esc(w)}"{" checked" if i == prechecked else ""}>'
            f'<label for="o{i}">{esc(w)}</label></div>'
            for i, w in enumerate(labels)
        )
        fact_html = f'<p class="fact">Fact: {esc(fact)}</p>' if params.wording == "fact_page" else ""
        body = f"""<h1>Quick question</h1>{fact_html}
<form id="f" class="panel"><fieldset><legend>{esc(question)}</legend><div class="opts">{opts}</div></fieldset>
<p id="err" class="hidden">Please choose an option.</p><button type="submit">{esc(button)}</button>
<button type="button" id="skip">{SKIP[params.vocabulary]}</button></form>"""
        script = """
document.getElementById('f').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const c = document.querySelector('input[name=answer]:checked');
  if (!c) { document.getElementById('err').classList.remove('hidden'); mv.set('error', 'nothing chosen'); return; }
  mv.submit(c.value);
});
document.getElementById('skip').addEventListener('click', () => mv.submit(null));"""
        css = LAYOUTS[params.layout] + " fieldset { border: none; padding: 0; } legend { font-weight: bold; margin-bottom: 6px; }"
        html = page(params, body, script=script, title="Question", css=css)
        mission = MISSIONS[params.wording].format(x=target, button=button, fact=fact)
        instance = {"labels": labels, "target": target, "button": button, "question": question, "fact": fact}
        return TaskPage(html, mission, instance)

    def validate(self, instance: dict[str, Any], state: Any) -> Outcome:
        if not state or "submitted" not in state:
            return Outcome()
        ok = state["submitted"] == instance["target"]
        return Outcome(reward=1.0 if ok else -1.0, success=ok, done=True)

    def oracle(self, instance: dict[str, Any], obs: Observation) -> str:
        radio = obs.find("radio", instance["target"])
        if radio is None:
            return "scroll(down)" if obs.scroll_down else "noop()"
        if not radio.checked:
            return f"click({radio.id})"
        button = obs.find("button", instance["button"])
        return f"click({button.id})" if button else "scroll(down)"
