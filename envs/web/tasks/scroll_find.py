"""ScrollFind: scroll down a long page to the named button and click it."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from multiverse.envs.randomization import Choice, IntRange, Param, ParamSpace
from multiverse.envs.web.task import Observation, Outcome, TaskPage, WebParams, WebTask, common_params, esc, page

LABELS = {
    "train": ("Subscribe", "Download report", "Contact us", "Load more", "Accept terms", "Read reviews",
              "Join waitlist", "Claim offer", "Leave feedback", "Book a demo"),
    "heldout": ("Request quote", "Start trial", "Watch video", "Get directions", "Follow us", "Rate this article",
                "Report a problem", "Print page", "Renew plan", "Share article", "Send message", "View map"),
}
TITLES = (
    "Getting started", "Our history", "How it works", "Pricing", "Customer stories", "Security", "Integrations",
    "Support", "Careers", "Press", "Sustainability", "Community", "Roadmap", "Partners", "Events", "Research",
    "Accessibility", "Privacy", "Open source", "Awards", "Locations", "Newsletter",
)
SENTENCES = (
    "This section gives a short overview of the topic.",
    "Many teams use these tools every day to get work done.",
    "We keep improving the product based on your feedback.",
    "Read on to learn more about the details.",
    "The numbers below are updated every quarter.",
    "Questions are welcome at any time.",
    "Everything here is available in several languages.",
    "You can change these settings later.",
    "Our staff is happy to help with any request.",
    "Nothing on this page requires an account.",
)
MISSIONS = {
    "plain": 'Scroll down to find the "{label}" button and click it.',
    "below": 'The "{label}" button is further down the page: click it.',
    "find": 'Somewhere on this page is a button labelled "{label}". Click it.',
}
CSS = """
.block { min-height: 32vh; box-sizing: border-box; }
.feed .block { border: 1px solid; border-radius: 6px; padding: 8px; margin: 8px 0; }
ul.list { padding-left: 24px; } ul.list li { padding: 4px 0; }
"""


@dataclasses.dataclass(frozen=True)
class Params(WebParams):
    sections: int = 10
    distractors: int = 5
    vocabulary: str = "train"
    layout: str = "article"
    wording: str = "plain"


class ScrollFind(WebTask):
    """Scroll down a long page to the button with the named label and click it.

    ## Description
    The page has ``sections`` blocks of text, each at least a third of the
    viewport tall; ``distractors`` buttons with other labels sit in random
    blocks (some near the top), and the target button sits in a block in the
    second half of the page (next to two of them), so it is out of view at the start. Only elements
    inside the viewport are listed, so the agent has to scroll down until the
    target appears, then click it.

    ## Actions
    ``scroll(down)`` / ``scroll(up)`` (80% of the viewport per step) and ``click(id)``.

    ## Observation
    The visible headings, paragraphs and buttons (``[31] button "Load more"``), with
    ``(more below: scroll(down))`` while the page goes on below.

    ## Rewards
    +1 for clicking the target button, -1 for clicking another button; the
    episode ends at the first button clicked.

    ## Randomization
    | parameter | nominal | train | held-out |
    |---|---|---|---|
    | sections | 10 | 8..14 | 16..20 |
    | distractors (other buttons) | 5 | 4..7 | 8..11 |
    | vocabulary (button labels) | train | train | heldout (unseen) |
    | layout | article | article (headings + paragraphs), feed (bordered cards) | list (one long bulleted list) |
    | wording (mission phrasing) | plain | plain, below | find |
    | theme, font, font_size, viewport | see :func:`common_params` | | |

    Texts, the target's block (second half of the page) and the distractors'
    blocks come from the seed.

    ## Version History
    * v0: initial version.
    """

    PARAM_SPACE = ParamSpace(
        Params,
        **common_params(),
        sections=Param(IntRange(8, 14), IntRange(16, 20), "blocks of text on the page"),
        distractors=Param(IntRange(4, 7), IntRange(8, 11), "buttons with other labels"),
        vocabulary=Param(Choice(("train",)), Choice(("heldout",)), "button label words"),
        layout=Param(Choice(("article", "feed")), Choice(("list",)), "how the page is laid out"),
        wording=Param(Choice(("plain", "below")), Choice(("find",)), "how the mission is phrased"),
    )

    def setup(self, rng: np.random.Generator, params: Params) -> TaskPage:
        n = params.sections
        words = LABELS[params.vocabulary]
        labels = [str(w) for w in rng.choice(words, size=min(params.distractors + 1, len(words)), replace=False)]
        target = labels[0]
        # the target's block holds it and two distractors (in random order); the others go to random blocks
        where: dict[int, list[int]] = {int(rng.integers(n // 2, n)): [0, 1, 2]}
        for i in range(3, len(labels)):
            free = [b for b in range(n) if b not in where]
            where.setdefault(free[int(rng.integers(len(free)))], []).append(i)
        where = {b: [int(i) for i in rng.permutation(ix)] for b, ix in where.items()}
        titles = [str(t) for t in rng.choice(TITLES, size=n, replace=False)]
        blocks = []
        for b in range(n):
            text = " ".join(str(s) for s in rng.choice(SENTENCES, size=2, replace=False))
            buttons = "".join(f'<button onclick="mv.submit({i})">{esc(labels[i])}</button>' for i in where.get(b, []))
            button = f"<p>{buttons}</p>" if buttons else ""
            if params.layout == "list":
                blocks.append(f'<li class="block"><b>{esc(titles[b])}.</b> {esc(text)}{button}</li>')
            else:
                blocks.append(f'<section class="block"><h2>{esc(titles[b])}</h2><p>{esc(text)}</p>{button}</section>')
        inner = "".join(blocks)
        body = {
            "article": f"<h1>Welcome</h1><article>{inner}</article>",
            "feed": f'<h1>Updates</h1><div class="feed">{inner}</div>',
            "list": f'<h1>Notes</h1><ul class="list">{inner}</ul>',
        }[params.layout]
        html = page(params, body, title="Long page", css=CSS)
        return TaskPage(html, MISSIONS[params.wording].format(label=target), {"labels": labels, "target": target})

    def validate(self, instance: dict[str, Any], state: Any) -> Outcome:
        if not state or "submitted" not in state:
            return Outcome()
        ok = instance["labels"][int(state["submitted"])] == instance["target"]
        return Outcome(reward=1.0 if ok else -1.0, success=ok, done=True)

    def oracle(self, instance: dict[str, Any], obs: Observation) -> str:
        button = obs.find("button", instance["target"])
        if button is not None:
            after = obs.elements[obs.elements.index(button) + 1 :]
            if obs.scroll_down and all(e.role == "button" for e in after):  # its row may be cut at the bottom edge
                return "scroll(down)"
            return f"click({button.id})"
        return obs.scroll_or_wait()
