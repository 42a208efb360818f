"""EmailInbox: open the named email and reply to it, delete it or star it."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import numpy as np

from multiverse.envs.randomization import Choice, IntRange, Param, ParamSpace
from multiverse.envs.web.task import Observation, Outcome, TaskPage, WebParams, WebTask, common_params, page

SENDERS = {
    "train": ("Alice Moreno", "Ben Carter", "Chloe Nguyen", "David Okafor", "Emma Lindqvist", "Farid Haddad",
              "Grace Kim", "Hugo Martin", "Isla Brennan", "Jonas Weber"),
    "heldout": ("Kofi Mensah", "Lena Petrova", "Mateo Rossi", "Nadia Rahman", "Oscar Dubois", "Priya Iyer",
                "Quentin Blake", "Rosa Jimenez", "Sven Olsen", "Tara Walsh"),
}
SUBJECTS = {
    "train": ("Lunch on Friday", "Quarterly report", "Team offsite", "Invoice 4821", "Password reset",
              "Project kickoff", "Vacation request", "Weekly sync notes", "Conference tickets", "Budget review"),
    "heldout": ("Server maintenance", "Birthday party", "Contract renewal", "Client feedback", "Hiring update",
                "Library books", "Parking permit", "Flight itinerary", "Gym membership", "Book club"),
}
REPLIES = {
    "train": ("Sounds good, thanks!", "I will be there.", "Please send me the details.", "Got it, will review today.",
              "Thanks, see you then."),
    "heldout": ("Count me in.", "Can we move it to Monday?", "Received, thank you.", "Let me check and get back to you."),
}
BODIES = (
    "Hi, just a quick note about this. Let me know what you think.",
    "Hello! Please have a look when you get a chance.",
    "Following up on our conversation from earlier this week.",
    "As discussed, here are the main points. Reply when you can.",
    "Hope you are well. I wanted to check in about this.",
)
OPS = ("reply", "delete", "star")
#: buttons shown next to the asked operations (never asked: doing one ends the episode with -1)
OTHER_OPS = ("archive", "unread")
#: button labels per label set: op -> label
LABELS = {
    "short": {"reply": "Reply", "delete": "Delete", "star": "Star", "archive": "Archive", "unread": "Mark unread"},
    "long": {"reply": "Reply to sender", "delete": "Move to trash", "star": "Add star", "archive": "Move to archive",
             "unread": "Mark as unread"},
}
MISSIONS = {
    "plain": {
        "reply": 'Reply to the email from {sender} with subject "{subject}" with the text "{text}".',
        "delete": 'Delete the email from {sender} with subject "{subject}".',
        "star": 'Star the email from {sender} with subject "{subject}".',
    },
    "open": {
        "reply": 'Open the email "{subject}" from {sender} and reply "{text}".',
        "delete": 'Open the email "{subject}" from {sender} and delete it.',
        "star": 'Open the email "{subject}" from {sender} and star it.',
    },
    "casual": {
        "reply": '{sender} wrote to you about "{subject}": answer with "{text}".',
        "delete": '{sender}\'s email about "{subject}" is no longer needed: delete it.',
        "star": '{sender}\'s email about "{subject}" is important: star it.',
    },
}

SCRIPT = """
const D = __DATA__;
const emails = D.emails.map((e, i) => Object.assign({i, gone: false}, e));
const $ = (id) => document.getElementById(id);
let current = null;
function el(tag, text, attrs) {
  const x = document.createElement(tag);
  if (text !== undefined && text !== null) x.textContent = text;
  Object.assign(x, attrs || {});
  return x;
}
function renderInbox() {
  const box = $('list'); box.innerHTML = '';
  const live = emails.filter((e) => !e.gone);
  $('inbox-title').textContent = 'Inbox (' + live.length + ')';
  if (D.layout === 'table') {
    const t = el('table'); const hr = el('tr');
    hr.append(el('th', 'From'), el('th', 'Subject')); t.append(hr);
    for (const e of live) {
      const tr = el('tr'); const a = el('a', e.subject, {href: '#'});
      a.onclick = (ev) => { ev.preventDefault(); openEmail(e.i); };
      const td = el('td'); td.append(a); tr.append(el('td', e.sender), td); t.append(tr);
    }
    box.append(t);
  } else {
    for (const e of live) {
      if (D.layout === 'list') {
        const b = el('button', e.sender + ' \u2014 ' + e.subject, {className: 'mail'});
        b.onclick = () => openEmail(e.i); box.append(b);
      } else {
        const c = el('div', null, {className: 'panel card'});
        const b = el('button', 'Open'); b.onclick = () => openEmail(e.i);
        c.append(el('div', 'From: ' + e.sender), el('div', 'Subject: ' + e.subject), b); box.append(c);
      }
    }
  }
}
function show(view) { $('inbox').classList.toggle('hidden', view !== 'inbox'); $('view').classList.toggle('hidden', view !== 'view'); }
function openEmail(i) {
  current = emails[i];
  $('subject').textContent = current.subject;
  $('from').textContent = 'From: ' + current.sender;
  $('body').textContent = current.body;
  $('replybox').classList.add('hidden'); $('reply-text').value = '';
  mv.set('opened', i); show('view');
}
function act(op) {
  if (op === 'reply') { $('replybox').classList.remove('hidden'); return; }
  if (op === 'delete' || op === 'archive') { current.gone = true; renderInbox(); show('inbox'); }
  if (op === 'star') { $('star').textContent = '\u2605 ' + $('star').textContent; }
  mv.submit({op, email: current.i, text: null});
}
function send() { mv.submit({op: 'reply', email: current.i, text: $('reply-text').value}); $('replybox').classList.add('hidden'); }
$('back').onclick = () => { renderInbox(); show('inbox'); };
$('send').onclick = send;
for (const op of D.ops) $(op).onclick = () => act(op);
renderInbox();
"""
CSS = """
#list .mail { display: block; margin: 4px 0; text-align: left; min-width: 60%; }
#list table { border-collapse: collapse; } #list td, #list th { padding: 4px 12px; text-align: left; }
#list .card { display: inline-block; width: 240px; vertical-align: top; margin: 4px; }
#replybox textarea { display: block; width: 80%; height: 4em; }
"""


@dataclasses.dataclass(frozen=True)
class Params(WebParams):
    emails: int = 4
    vocabulary: str = "train"
    labels: str = "short"
    layout: str = "list"
    wording: str = "plain"


class EmailInbox(WebTask):
    """Open the named email and reply to it, delete it or star it.

    ## Description
    An inbox lists ``emails`` emails (sender and subject). The mission names one
    email (sender and subject) and an operation: reply with a given text, delete
    it, or star it. Opening an email shows its subject, sender and body with
    buttons for the three operations and "Back to inbox"; the reply button opens
    a textarea ("Your reply") and a "Send" button. The episode ends at the first
    operation done (delete, star, or a reply sent).

    ## Actions
    ``click(id)`` on emails and buttons, ``type(id, "text")`` into the reply box.

    ## Observation
    The mission, the inbox (``[4] button "Grace Kim — Team offsite"``, a table of
    sender text and subject links, or cards with "Open" buttons), then the open
    email: ``heading "Team offsite"``, ``text "From: Grace Kim"``, the buttons.

    ## Rewards
    +1 when the right operation is done on the right email (for a reply: the
    sent text equals the asked text, ignoring surrounding spaces); -1 for any
    other operation, email or reply text. The episode ends at the first operation.

    ## Randomization
    | parameter | nominal | train | held-out |
    |---|---|---|---|
    | emails | 4 | 3..6 | 8..10 |
    | vocabulary (senders, subjects, replies) | train | train | heldout (unseen) |
    | labels (operation buttons) | short | short (Reply/Delete/Star) | long (Reply to sender/Move to trash/Add star) |
    | layout | list | list, table | cards |
    | wording (mission phrasing) | plain | plain, open | casual |
    | theme, font, font_size, viewport | see :func:`common_params` | | |

    The operation, target email, reply text and inbox order come from the seed.

    ## Version History
    * v0: initial version.
    """

    PARAM_SPACE = ParamSpace(
        Params,
        **common_params(),
        emails=Param(IntRange(3, 6), IntRange(8, 10), "emails in the inbox"),
        vocabulary=Param(Choice(("train",)), Choice(("heldout",)), "senders, subjects and reply texts"),
        labels=Param(Choice(("short",)), Choice(("long",)), "operation button labels"),
        layout=Param(Choice(("list", "table")), Choice(("cards",)), "how the inbox is shown"),
        wording=Param(Choice(("plain", "open")), Choice(("casual",)), "how the mission is phrased"),
    )

    def setup(self, rng: np.random.Generator, params: Params) -> TaskPage:
        n = params.emails
        senders = [str(s) for s in rng.choice(SENDERS[params.vocabulary], size=n, replace=False)]
        subjects = [str(s) for s in rng.choice(SUBJECTS[params.vocabulary], size=n, replace=False)]
        emails = [{"sender": a, "subject": s, "body": BODIES[int(rng.integers(len(BODIES)))]} for a, s in zip(senders, subjects)]
        target = int(rng.integers(n))
        op = OPS[int(rng.integers(len(OPS)))]
        replies = REPLIES[params.vocabulary]
        text = replies[int(rng.integers(len(replies)))] if op == "reply" else None
        labels = LABELS[params.labels]
        buttons = "".join(f'<button id="{o}">{labels[o]}</button>' for o in OPS + OTHER_OPS)
        body = f"""
<div id="inbox"><h1 id="inbox-title">Inbox</h1><div id="list"></div></div>
<div id="view" class="hidden">
  <button id="back">Back to inbox</button>
  <h2 id="subject"></h2><div id="from"></div><p id="body" class="panel"></p>
  <div class="row">{buttons}</div>
  <div id="replybox" class="hidden"><label for="reply-text">Your reply</label>
    <textarea id="reply-text"></textarea><button id="send">Send</button></div>
</div>"""
        data = {"emails": emails, "layout": params.layout, "ops": list(OPS + OTHER_OPS)}
        script = SCRIPT.replace("__DATA__", json.dumps(data).replace("</", "<\\/"))
        html = page(params, body, script=script, title="Mail", css=CSS)
        e = emails[target]
        mission = MISSIONS[params.wording][op].format(sender=e["sender"], subject=e["subject"], text=text)
        instance = {"emails": emails, "target": target, "op": op, "text": text, "labels": labels}
        return TaskPage(html, mission, instance)

    def validate(self, instance: dict[str, Any], state: Any) -> Outcome:
        if not state or not isinstance(state.get("submitted"), dict):
            return Outcome()
        done = state["submitted"]
        ok = done.get("op") == instance["op"] and done.get("email") == instance["target"]
        if ok and instance["op"] == "reply":
            ok = str(done.get("text") or "").strip() == instance["text"]
        return Outcome(reward=1.0 if ok else -1.0, success=ok, done=True)

    def oracle(self, instance: dict[str, Any], obs: Observation) -> str:
        email = instance["emails"][instance["target"]]
        labels = instance["labels"]
        back = obs.find("button", "Back to inbox")
        if obs.find("heading", email["subject"]):  # the right email is open
            if instance["op"] != "reply":
                button = obs.find("button", labels[instance["op"]])
                return f"click({button.id})" if button else "noop()"
            box = obs.find("textbox", "Your reply")
            if box is None:
                button = obs.find("button", labels["reply"])
                return f"click({button.id})" if button else "noop()"
            if box.value != instance["text"]:
                return f'type({box.id}, {json.dumps(instance["text"])})'
            send = obs.find("button", "Send")
            return f"click({send.id})" if send else "noop()"
        if back is not None:  # another email is open
            return f"click({back.id})"
        # the inbox: the subject's line, then the first button or link from there on opens it
        for i, e in enumerate(obs.elements):
            if email["subject"] in e.name:
                opener = next((x for x in obs.elements[i:] if x.role in ("button", "link")), None)
                if opener is not None:
                    return f"click({opener.id})"
                break
        return obs.scroll_or_wait()
