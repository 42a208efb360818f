"""SearchResults: search a catalogue and open the result the mission describes."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import numpy as np

from multiverse.envs.randomization import Choice, IntRange, Param, ParamSpace
from multiverse.envs.web.task import Observation, Outcome, TaskPage, WebParams, WebTask, common_params, page

PEOPLE = ("Ana Costa", "Ben Okafor", "Chen Wei", "Dara Singh", "Eva Novak", "Farid Haddad", "Grace Lim",
          "Hugo Martin", "Iris Berg", "Jonas Weber", "Kira Sato", "Leo Rossi")
# catalogue: (what, query words, title patterns, makers, meta line, mission)
CATALOGS = {
    "books": ("books", ("Garden", "River", "Castle", "Winter", "Ocean", "Forest", "Desert", "Harbor"),
              ("The {k} Almanac", "Secrets of the {k}", "A {k} Journey", "{k} Tales", "Beyond the {k}",
               "The Last {k}", "{k} at Dawn", "Notes from the {k}"),
              PEOPLE, "by {m} · {year}", 'Search for "{q}" and open the result by {m}.'),
    "papers": ("papers", ("Graph", "Neural", "Quantum", "Sparse", "Robust", "Bayesian"),
               ("{k} Methods for Planning", "On {k} Estimation", "A Survey of {k} Models", "Scalable {k} Inference",
                "{k} Learning Revisited", "Towards {k} Search", "Efficient {k} Coding", "Rethinking {k} Priors"),
               PEOPLE, "{m} et al. · {year}", 'Search the papers for "{q}" and open the one written by {m}.'),
    "videos": ("videos", ("Pasta", "Guitar", "Yoga", "Chess", "Bread", "Camping"),
               ("{k} for Beginners", "10 {k} Tips", "Easy {k} at Home", "{k} Mistakes to Avoid", "My {k} Routine",
                "Advanced {k} Tricks", "{k} in 5 Minutes", "The Ultimate {k} Guide"),
               ("CookWithKai", "StringTheory", "FlowDaily", "KnightMoves", "CrumbLab", "TrailTalk", "HomeChef",
                "MoveBetter", "QuietHands", "DailyDough"),
               "channel {m} · {year}", 'Look up "{q}" videos and open the one from the channel {m}.'),
}
TRIGGERS = {"button": "Search", "go": "Go", "enter": None}

SCRIPT = """
const ITEMS = %s, META = %s;
const box = document.getElementById('q'), out = document.getElementById('results');
const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;'}[c]));
document.getElementById('f').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const q = box.value.trim(), ql = q.toLowerCase();
  mv.push('queries', q);
  if (!q) { out.innerHTML = '<p>Type something to search.</p>'; return; }
  const hits = ITEMS.map((it, i) => [it, i]).filter(([it]) => it.title.toLowerCase().includes(ql));
  let h = `<p class="count">${hits.length} result${hits.length === 1 ? '' : 's'} for "${esc(q)}"</p><ol>`;
  for (const [it, i] of hits) {
    h += `<li><a href="#" data-i="${i}">${esc(it.title)}</a><div class="meta">${esc(META.replace('{m}', it.maker).replace('{year}', it.year))}</div></li>`;
  }
  out.innerHTML = h + '</ol>';
});
out.addEventListener('click', (ev) => {
  const a = ev.target.closest('a[data-i]');
  if (!a) return;
  ev.preventDefault();
  mv.submit(Number(a.dataset.i));
});
"""


@dataclasses.dataclass(frozen=True)
class Params(WebParams):
    results: int = 3
    catalog: str = "books"
    trigger: str = "button"


class SearchResults(WebTask):
    """Search a catalogue, then open the result made by the named person.

    ## Description
    The page has a search box (``Search books`` ...) and, unless ``trigger``
    is ``enter``, a search button; the result list is empty until a search
    runs. Searching (the button, or Enter in the box) lists the catalogue
    entries whose title contains the query (case-insensitive), in a fixed
    order: each result is a title link followed by a line naming its maker
    (``by Ana Costa · 2014``). The mission names a query, which matches
    ``results`` entries by different makers, and the maker of the one to open.

    ## Actions
    ``type(id, "text")`` into the search box, ``click(id)`` on the search
    button or a result link, ``press("Enter")``, ``scroll(up|down)``.

    ## Observation
    The mission, the search box and button, then after a search
    ``3 results for "garden"`` and per result ``[9] link "The Garden Almanac"``
    and ``[10] text "by Ana Costa · 2014"``.

    ## Rewards
    +1 for opening the right result, -1 for any other result; the episode
    ends at the first result opened. Searching gives no reward.

    ## Randomization
    | parameter | nominal | train | held-out |
    |---|---|---|---|
    | results (entries matching the query) | 3 | 2..4 | 5..6 |
    | catalog (entries, names, mission phrasing) | books | books, papers | videos (channel names) |
    | trigger (how a search runs) | button | button ("Search"), go ("Go"); Enter works too | enter (no button) |
    | theme, font, font_size, viewport | see :func:`common_params` | | |

    The query word, titles, makers, years, 5..8 non-matching entries and the
    catalogue order are drawn per episode.

    ## Version History
    * v0: initial version.
    """

    PARAM_SPACE = ParamSpace(
        Params,
        **common_params(),
        results=Param(IntRange(2, 4), IntRange(5, 6), "catalogue entries matching the query"),
        catalog=Param(Choice(("books", "papers")), Choice(("videos",)), "what is searched (titles, makers, wording)"),
        trigger=Param(Choice(("button", "go")), Choice(("enter",)), "search button label, or none (Enter only)"),
    )
    keys = ("Enter",)

    def setup(self, rng: np.random.Generator, params: Params) -> TaskPage:
        what, words, patterns, makers, meta, mission_t = CATALOGS[params.catalog]
        q = str(rng.choice(words))
        others = [str(w) for w in words if w != q]
        n_other = int(rng.integers(5, 9))
        match_makers = [str(m) for m in rng.choice(makers, size=params.results, replace=False)]
        match_titles = [str(p).format(k=q) for p in rng.choice(patterns, size=params.results, replace=False)]
        items = [{"title": t, "maker": m} for t, m in zip(match_titles, match_makers)]
        seen = set(match_titles)
        while len(items) < params.results + n_other:
            t = str(rng.choice(patterns)).format(k=str(rng.choice(others)))
            if t not in seen:
                seen.add(t)
                items.append({"title": t, "maker": str(rng.choice(makers))})
        for it in items:
            it["year"] = int(rng.integers(1995, 2024))
        order = rng.permutation(len(items))
        items = [items[int(i)] for i in order]
        target_maker = match_makers[int(rng.integers(params.results))]
        target = next(i for i, it in enumerate(items) if it["maker"] == target_maker and q.lower() in it["title"].lower())
        label = TRIGGERS[params.trigger]
        button = f'<button type="submit">{label}</button>' if label else ""
        hint = "" if label else '<p class="hint">Press Enter to search.</p>'
        body = f"""<h1>Catalogue of {what}</h1>
<form id="f" role="search" class="panel"><label for="q">Search {what}</label>
<input type="search" id="q" autocomplete="off"> {button}{hint}</form>
<div id="results"></div>"""
        script = SCRIPT % (json.dumps(items), json.dumps(meta))
        css = ".meta { font-size: 85%; opacity: 0.85; margin-bottom: 6px; } ol { padding-left: 22px; }"
        html = page(params, body, script=script, title=f"Search {what}", css=css)
        mission = mission_t.format(q=q, m=target_maker)
        instance = {"query": q, "maker": target_maker, "target": target, "title": items[target]["title"],
                    "button": label, "items": items}
        return TaskPage(html, mission, instance)

    def validate(self, instance: dict[str, Any], state: Any) -> Outcome:
        if not state or "submitted" not in state:
            return Outcome()
        ok = int(state["submitted"]) == instance["target"]
        return Outcome(reward=1.0 if ok else -1.0, success=ok, done=True)

    def oracle(self, instance: dict[str, Any], obs: Observation) -> str:
        q, maker = instance["query"], instance["maker"]
        link = None
        for e in obs.elements:  # a result is its title link followed by its maker line
            if e.role == "link":
                link = e
            elif e.role == "text" and link is not None and maker in e.name.split(" · ")[0]:
                return f"click({link.id})"
        box = obs.find("textbox")
        if any(e.role == "text" and e.name.endswith(f'for "{q}"') for e in obs.elements):
            return "scroll(down)" if obs.scroll_down else "noop()"  # the results are listed below
        if box is None:
            return "scroll(up)"
        if (box.value or "").strip() != q:
            return f'type({box.id}, "{q}")'
        button = obs.find("button", instance["button"]) if instance["button"] else None
        if button is not None:
            return f"click({button.id})"
        return 'press("Enter")' if box.focused else f"click({box.id})"
