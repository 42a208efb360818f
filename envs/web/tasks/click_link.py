"""ClickLink: click the link the mission names (or describes) among other links in text."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from multiverse.envs.randomization import Choice, IntRange, Param, ParamSpace
from multiverse.envs.web.task import Observation, Outcome, TaskPage, WebParams, WebTask, common_params, esc, page

# (link text, what the linked page is, as a mission can describe it)
LINKS = {
    "train": (
        ("Home", "home"), ("About us", "about"), ("Contact", "contact"), ("Help", "help"),
        ("Pricing", "pricing"), ("Blog", "blog"), ("Careers", "careers"), ("Privacy policy", "privacy policy"),
        ("Terms of service", "terms of service"), ("Sign up", "sign-up"), ("FAQ", "frequently asked questions"),
        ("Downloads", "downloads"),
    ),
    "heldout": (
        ("Support", "support"), ("Documentation", "documentation"), ("Press kit", "press kit"),
        ("Partners", "partners"), ("Events", "events"), ("Newsletter", "newsletter"), ("Store", "store"),
        ("Community forum", "community forum"), ("Accessibility", "accessibility statement"), ("Sitemap", "site map"),
    ),
}
MISSIONS = {
    "plain": "Click the link \"{text}\".",
    "follow": "Follow the \"{text}\" link.",
    "describe": "Open the link that leads to the {desc} page.",
}
# sentence openings that lead into one link each in the paragraph layout (the link ends the phrase)
SENTENCES = (
    "You can always check", "Many readers start with", "If you are curious, see", "The details are on",
    "We keep it all up to date in", "Take a look when you have a minute at", "Some of you asked last week about",
    "There is more to read in", "Nothing beats",
)

# nowrap: a link broken over two lines has a bounding-box centre outside it, where a click misses
CSS = "a { white-space: nowrap; } .prose span::after { content: '.'; } nav, footer { display: flex; flex-wrap: wrap; gap: 14px; }"


@dataclasses.dataclass(frozen=True)
class Params(WebParams):
    links: int = 4
    vocabulary: str = "train"
    wording: str = "plain"
    layout: str = "paragraph"


def _slug(text: str) -> str:
    return "/" + "-".join(text.lower().split())


class ClickLink(WebTask):
    """Click the link the mission names or describes.

    ## Description
    The page shows ``links`` links, set inside a paragraph of sentences, a
    bulleted list or a navigation bar plus footer, in random order. The mission
    names one link by its text (or, in the held-out wording, by the page it
    leads to: "the link that leads to the support page" for "Support").
    Clicking it succeeds; clicking another link fails. Links do not navigate
    away; the page records which was clicked.

    ## Actions
    ``click(id)`` on a link; other actions are accepted and change nothing.

    ## Observation
    The mission, then the page: the surrounding text and one line per link,
    ``[5] link "Pricing"``.

    ## Rewards
    +1 for the right link, -1 for a wrong one; the episode ends at the first link clicked.

    ## Randomization
    | parameter | nominal | train | held-out |
    |---|---|---|---|
    | links | 4 | 3..6 | 7..9 |
    | vocabulary (link texts) | train | train | heldout (unseen texts) |
    | wording (mission phrasing) | plain | plain, follow | describe (by destination) |
    | layout | paragraph | paragraph, list | nav (nav bar + footer) |
    | theme, font, font_size, viewport | see :func:`common_params` | | |

    ## Version History
    * v0: initial version.
    """

    PARAM_SPACE = ParamSpace(
        Params,
        **common_params(),
        links=Param(IntRange(3, 6), IntRange(7, 9), "links on the page"),
        vocabulary=Param(Choice(("train",)), Choice(("heldout",)), "which link texts are used"),
        wording=Param(Choice(("plain", "follow")), Choice(("describe",)), "how the mission names the link"),
        layout=Param(Choice(("paragraph", "list")), Choice(("nav",)), "how the links are set on the page"),
    )

    def setup(self, rng: np.random.Generator, params: Params) -> TaskPage:
        vocab = LINKS[params.vocabulary]
        picks = [vocab[int(i)] for i in rng.choice(len(vocab), size=min(params.links, len(vocab)), replace=False)]
        texts = [t for t, _ in picks]
        target = int(rng.integers(len(picks)))
        anchors = [f'<a href="{_slug(t)}" data-i="{i}">{esc(t)}</a>' for i, t in enumerate(texts)]
        if params.layout == "paragraph":
            order = rng.permutation(len(SENTENCES))
            body = " ".join(f"<span>{SENTENCES[int(order[i % len(SENTENCES)])]} {a}</span>" for i, a in enumerate(anchors))
            body = f'<h2>Welcome back</h2><p class="panel prose">{body}</p>'
        elif params.layout == "list":
            items = "".join(f"<li>{a}</li>" for a in anchors)
            body = f'<h2>Useful pages</h2><p>Pick a page from the list below.</p><ul class="panel">{items}</ul>'
        else:
            cut = max(1, len(anchors) // 2)
            body = (
                f'<nav class="panel" aria-label="Main">{"".join(anchors[:cut])}</nav>'
                "<h2>Our company</h2><p>We build tools for people who like tidy pages.</p>"
                f'<footer class="panel">{"".join(anchors[cut:])}</footer>'
            )
        script = """
document.querySelectorAll('a[data-i]').forEach((a) => a.addEventListener('click', (e) => {
  e.preventDefault();
  if (!('submitted' in window.__mvState)) mv.submit(Number(a.dataset.i));
}));"""
        mission = MISSIONS[params.wording].format(text=texts[target], desc=picks[target][1])
        html = page(params, body, script=script, title="Links", css=CSS)
        return TaskPage(html, mission, {"texts": texts, "target": texts[target]})

    def validate(self, instance: dict[str, Any], state: Any) -> Outcome:
        if not state or "submitted" not in state:
            return Outcome()
        ok = instance["texts"][int(state["submitted"])] == instance["target"]
        return Outcome(reward=1.0 if ok else -1.0, success=ok, done=True)

    def oracle(self, instance: dict[str, Any], obs: Observation) -> str:
        link = obs.find("link", instance["target"])
        return f"click({link.id})" if link else obs.scroll_or_wait()
