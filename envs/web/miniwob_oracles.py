"""Oracles for MiniWoB++ tasks: step-by-step expert policies (see :mod:`multiverse.envs.web.miniwob`).

Each oracle is ``fn(instance, obs) -> action`` and reads what the agent sees:
the utterance (``instance["utterance"]``, the mission) and the page listing
(``obs.find`` / ``obs.find_all``, element ids from there). It returns one
action per call, from the current observation; a few keep a note of what they
have already done in ``instance["memo"]`` where the page itself shows nothing
(as an agent with a history would). :data:`ORACLES` maps a task to
``(oracle, declared success rate)``; the rates are measured over seeds on both
splits (tests/envs/test_miniwob.py checks them).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from multiverse.envs.web.actions import Action, format_action
from multiverse.envs.web.task import Element, Observation

__all__ = ["ORACLES"]

Oracle = Callable[[dict[str, Any], Observation], str]
NOOP = "noop()"
ORDINALS = {"1st": 1, "2nd": 2, "3rd": 3, "4th": 4, "5th": 5, "6th": 6, "7th": 7, "8th": 8, "9th": 9, "10th": 10}


def click(e: Element | None) -> str:
    return f"click({e.id})" if e is not None else NOOP


def type_(e: Element, text: str) -> str:
    return format_action(Action("type", e.id, text))


def quoted(utterance: str) -> list[str]:
    """The double-quoted parts of an utterance, in order."""
    return re.findall(r'"([^"]*)"', utterance)


def page_elements(obs: Observation) -> list[Element]:
    """The elements below the query box (the utterance is the first text line)."""
    els = obs.elements
    return els[1:] if els and els[0].role == "text" else list(els)


def memo(instance: dict[str, Any]) -> dict[str, Any]:
    return instance.setdefault("memo", {})


# --------------------------------------------------------------------------- click a named thing


def click_test(instance: dict[str, Any], obs: Observation) -> str:
    return click(next(iter(obs.find_all("button")), None))


def click_named_button(instance: dict[str, Any], obs: Observation) -> str:
    """click-test-2 / -transfer ("Click button ONE."), click-button / unicode-test ('Click on the "Ok" button.')."""
    u = instance["utterance"]
    names = quoted(u) or re.findall(r"Click button (\S+?)\.", u)
    return click(obs.find("button", names[0])) if names else NOOP


def click_button_sequence(instance: dict[str, Any], obs: Observation) -> str:
    done = memo(instance).setdefault("clicked", [])
    for name in ("ONE", "TWO"):
        if name not in done:
            b = obs.find("button", name)
            if b is None:
                return NOOP
            done.append(name)
            return click(b)
    return NOOP


def click_dialog(instance: dict[str, Any], obs: Observation) -> str:
    return click(obs.find("button", "Close"))


def click_dialog_2(instance: dict[str, Any], obs: Observation) -> str:
    (label,) = quoted(instance["utterance"])[:1] or ("",)
    return click(obs.find("button", "Close" if label == "x" else label))


def click_tab(instance: dict[str, Any], obs: Observation) -> str:
    m = re.search(r"Tab #(\d+)", instance["utterance"])
    return click(obs.find("tab", f"Tab #{m.group(1)}")) if m else NOOP


def click_widget(instance: dict[str, Any], obs: Observation) -> str:
    kind = (quoted(instance["utterance"]) or [""])[0]
    for e in page_elements(obs):
        if (
            (kind == "radio" and e.role == "radio")
            or (kind == "checkbox" and e.role == "checkbox")
            or (kind == "button" and e.role == "button")
            or (kind == "text" and e.role == "input" and e.input_type == "input")
            or (kind == "textarea" and e.role == "textbox" and e.tag == "textarea")
        ):
            return click(e)
    return NOOP


def click_link(instance: dict[str, Any], obs: Observation) -> str:
    (name,) = quoted(instance["utterance"])[:1] or ("",)
    return click(obs.find("link", name))


# --------------------------------------------------------------------------- text entry


def _fill_then(fields: list[tuple[Element | None, str]], submit: Element | None) -> str:
    for box, text in fields:
        if box is None:
            return NOOP
        if box.value != text:
            return type_(box, text)
    return click(submit)


def _submit(obs: Observation, name: str = "Submit") -> Element | None:
    low = name.lower()
    return next((b for b in obs.find_all("button") if b.name.lower() == low), None)


def enter_text(instance: dict[str, Any], obs: Observation) -> str:
    (text,) = quoted(instance["utterance"])[:1] or ("",)
    if "upper case" in instance["utterance"]:
        text = text.upper()
    elif "lower case" in instance["utterance"]:
        text = text.lower()
    boxes = list(obs.find_all("textbox"))
    return _fill_then([(boxes[0] if boxes else None, text)], _submit(obs))


def enter_password(instance: dict[str, Any], obs: Observation) -> str:
    (text,) = quoted(instance["utterance"])[:1] or ("",)
    boxes = [e for e in obs.find_all("textbox") if e.input_type == "password"]
    if len(boxes) < 2:
        return NOOP
    return _fill_then([(boxes[0], text), (boxes[1], text)], _submit(obs))


def login_user(instance: dict[str, Any], obs: Observation) -> str:
    user, password = (quoted(instance["utterance"]) + ["", ""])[:2]
    boxes = obs.find_all("textbox")
    name_box = next((b for b in boxes if b.input_type is None), None)
    pass_box = next((b for b in boxes if b.input_type == "password"), None)
    return _fill_then([(name_box, user), (pass_box, password)], _submit(obs, "Login"))


def focus_text(instance: dict[str, Any], obs: Observation) -> str:
    boxes = obs.find_all("textbox")
    m = re.search(r"(\d+(?:st|nd|rd|th))", instance["utterance"])
    n = ORDINALS.get(m.group(1), 1) if m else 1
    return click(boxes[n - 1]) if len(boxes) >= n else NOOP


# --------------------------------------------------------------------------- choices


def click_checkboxes(instance: dict[str, Any], obs: Observation) -> str:
    m = re.match(r"Select (.*) and click Submit\.", instance["utterance"])
    if not m:
        return NOOP
    wanted = set() if m.group(1) == "nothing" else {w.strip() for w in m.group(1).split(",")}
    for box in obs.find_all("checkbox"):
        if bool(box.checked) != (box.name in wanted):
            return click(box)
    return click(_submit(obs))


def click_option(instance: dict[str, Any], obs: Observation) -> str:
    m = re.match(r"Select (.*) and click Submit\.", instance["utterance"])
    if not m:
        return NOOP
    radio = obs.find("radio", m.group(1).strip())
    if radio is None:
        return NOOP
    return click(radio) if not radio.checked else click(_submit(obs))


def choose_list(instance: dict[str, Any], obs: Observation) -> str:
    m = re.match(r"Select (.*) from the list and click Submit\.", instance["utterance"])
    box = next(iter(obs.find_all("combobox")), None)
    if not m or box is None:
        return NOOP
    want = m.group(1).strip()
    if box.value != want:
        return format_action(Action("select", box.id, want))
    return click(_submit(obs))


ORACLES: dict[str, tuple[Oracle, float]] = {
    "click-test": (click_test, 1.0),
    "click-test-2": (click_named_button, 1.0),
    "click-test-transfer": (click_named_button, 1.0),
    "click-button": (click_named_button, 1.0),
    "unicode-test": (click_named_button, 1.0),
    "click-button-sequence": (click_button_sequence, 1.0),
    "click-dialog": (click_dialog, 1.0),
    "click-dialog-2": (click_dialog_2, 1.0),
    "click-tab": (click_tab, 1.0),
    "click-widget": (click_widget, 1.0),
    "click-link": (click_link, 1.0),
    "enter-text": (enter_text, 1.0),
    "enter-text-2": (enter_text, 1.0),
    "enter-text-dynamic": (enter_text, 1.0),
    "enter-password": (enter_password, 1.0),
    "login-user": (login_user, 1.0),
    "focus-text": (focus_text, 1.0),
    "focus-text-2": (focus_text, 1.0),
    "click-checkboxes": (click_checkboxes, 1.0),
    "click-checkboxes-transfer": (click_checkboxes, 1.0),
    "click-checkboxes-large": (click_checkboxes, 1.0),
    "click-option": (click_option, 1.0),
    "choose-list": (choose_list, 1.0),
}


# --------------------------------------------------------------------------- find, then act


def _find_link_in_panels(role: str, wait: int) -> Oracle:
    """click-tab-2*, click-collapsible-2*: click the link when it is in view, else open the next tab/section.

    ``wait`` steps after opening one let its animation finish before anything is clicked.
    """

    def act(instance: dict[str, Any], obs: Observation) -> str:
        (name,) = quoted(instance["utterance"])[:1] or ("",)
        m = memo(instance)
        if m.get("waiting", 0) > 0:
            m["waiting"] -= 1
            return NOOP
        link = obs.find("link", name)
        if link is not None:
            return click(link)
        opened = m.setdefault("opened", [])
        for panel in obs.find_all(role):
            if panel.name not in opened and not panel.checked:
                opened.append(panel.name)
                m["waiting"] = wait
                return click(panel)
        return NOOP

    return act


def click_collapsible(wait: int) -> Oracle:
    def act(instance: dict[str, Any], obs: Observation) -> str:
        m = memo(instance)
        if m.get("waiting", 0) > 0:
            m["waiting"] -= 1
            return NOOP
        section = next((t for t in obs.find_all("tab") if t.name.startswith("Section")), None)
        if section is not None and not section.checked:
            m["waiting"] = wait
            return click(section)
        return click(_submit(obs))

    return act


def login_user_popup(instance: dict[str, Any], obs: Observation) -> str:
    if any(e.role == "text" and "Exit to home page?" in e.name for e in obs.elements):
        return click(obs.find("button", "Cancel"))  # a session popup: dismiss it and carry on
    user, password = (quoted(instance["utterance"]) + ["", ""])[:2]
    boxes = obs.find_all("textbox")
    name_box = next((b for b in boxes if b.input_type is None), None)
    pass_box = next((b for b in boxes if b.input_type == "password"), None)
    return _fill_then([(name_box, user), (pass_box, password)], _submit(obs, "OK"))


def use_autocomplete(instance: dict[str, Any], obs: Observation) -> str:
    parts = quoted(instance["utterance"])
    start, end = (parts + ["", ""])[:2]
    box = next(iter(obs.find_all("textbox")), None)
    if box is None:
        return NOOP
    if box.value and box.value.startswith(start) and box.value.endswith(end) and len(box.value) > len(start):
        return click(_submit(obs))
    after = obs.elements[obs.elements.index(box) + 1 :]
    item = next(
        (e for e in after if e.role in ("text", "menuitem") and e.name.startswith(start) and e.name.endswith(end)), None
    )
    if item is not None:
        return click(item)
    if box.value != start:
        return type_(box, start)
    return NOOP  # the suggestions are on their way


def _answer(obs: Observation, text: str) -> str:
    box = next(iter(obs.find_all("textbox")), None) if text else None
    return _fill_then([(box, text)], _submit(obs))


def simple_arithmetic(instance: dict[str, Any], obs: Observation) -> str:
    for e in obs.find_all("text"):
        m = re.fullmatch(r"(-?\d+) ([-+x]) (-?\d+) =", e.name)
        if m:
            a, op, b = int(m.group(1)), m.group(2), int(m.group(3))
            return _answer(obs, str(a + b if op == "+" else a - b if op == "-" else a * b))
    return NOOP


def simple_algebra(instance: dict[str, Any], obs: Observation) -> str:
    for e in obs.find_all("text"):
        m = re.fullmatch(r"x ([-+]) (\d+) = (-?\d+)", e.name)
        if m:
            d, total = int(m.group(2)), int(m.group(3))
            return _answer(obs, str(total - d if m.group(1) == "+" else total + d))
        m = re.fullmatch(r"(\d+) ([-+]) x = (-?\d+)", e.name)
        if m:
            d, total = int(m.group(1)), int(m.group(3))
            return _answer(obs, str(total - d if m.group(2) == "+" else d - total))
    return NOOP


def find_word(instance: dict[str, Any], obs: Observation) -> str:
    m = re.search(r"the (\d+)(?:st|nd|rd|th) word", instance["utterance"])
    paragraph = next((e for e in page_elements(obs) if e.role == "text"), None)
    if not m or paragraph is None:
        return NOOP
    words = paragraph.name.split()
    n = int(m.group(1))
    return _answer(obs, re.sub(r"[^A-Za-z]", "", words[n - 1])) if len(words) >= n else NOOP


def scroll_text(instance: dict[str, Any], obs: Observation) -> str:
    area = next((b for b in obs.find_all("textbox") if b.tag == "textarea"), None)
    box = next((b for b in obs.find_all("textbox") if b.tag == "input"), None)
    if area is None or box is None or not area.value:
        return NOOP
    last = re.sub(r"[^A-Za-z0-9]", "", area.value.split()[-1])
    return _fill_then([(box, last)], _submit(obs))


def _table(obs: Observation) -> dict[str, str]:
    """read-table: the table's cells come as label, value, label, value ... text lines."""
    cells = [e.name for e in page_elements(obs) if e.role == "text"]
    return dict(zip(cells[0::2], cells[1::2]))


def read_table(instance: dict[str, Any], obs: Observation) -> str:
    m = re.match(r"Enter the value of (.*) into the text field", instance["utterance"])
    value = _table(obs).get(m.group(1).strip()) if m else None
    return _answer(obs, value) if value else NOOP


def read_table_2(instance: dict[str, Any], obs: Observation) -> str:
    table, fields, label = _table(obs), [], None
    for e in obs.elements:
        if e.role == "label":
            label = e.name.rstrip(":").strip()
        elif e.role == "textbox" and label is not None:
            fields.append((e, table.get(label, "")))
            label = None
    if not fields or any(not v for _, v in fields):
        return NOOP
    return _fill_then(fields, _submit(obs))


ORACLES.update(
    {
        "click-tab-2": (_find_link_in_panels("tab", 0), 1.0),
        "click-tab-2-easy": (_find_link_in_panels("tab", 0), 1.0),
        "click-tab-2-medium": (_find_link_in_panels("tab", 0), 1.0),
        "click-tab-2-hard": (_find_link_in_panels("tab", 0), 1.0),
        "click-collapsible-2": (_find_link_in_panels("tab", 6), 1.0),
        "click-collapsible-2-nodelay": (_find_link_in_panels("tab", 0), 1.0),
        "click-collapsible": (click_collapsible(6), 1.0),
        "click-collapsible-nodelay": (click_collapsible(0), 1.0),
        "login-user-popup": (login_user_popup, 1.0),
        "use-autocomplete": (use_autocomplete, 1.0),
        "use-autocomplete-nodelay": (use_autocomplete, 1.0),
        "simple-arithmetic": (simple_arithmetic, 1.0),
        "simple-algebra": (simple_algebra, 1.0),
        "find-word": (find_word, 1.0),
        "scroll-text": (scroll_text, 1.0),
        "read-table": (read_table, 1.0),
        "read-table-2": (read_table_2, 1.0),
    }
)


# --------------------------------------------------------------------------- the email inbox


_EMAIL_TASKS = (
    (r"Find the email by (.+?) and reply to them with the text \"(.*)\"\.$", "reply"),
    (r"Find the email by (.+?) and forward that email to (.+?)\.$", "forward"),
    (r"Find the email by (.+?) and click the trash icon to delete it\.$", "delete"),
    (r"Find the email by (.+?) and click the star icon to mark it as important\.$", "star"),
)


def email_inbox(instance: dict[str, Any], obs: Observation) -> str:
    """Open the sender's email from the list (scrolling to it), then reply / forward / delete / star."""
    for pattern, task in _EMAIL_TASKS:  # noqa: B007 (task is the one matched: used after the break)
        m = re.match(pattern, instance["utterance"])
        if m:
            break
    else:
        return NOOP
    sender, arg = m.group(1), (m.group(2) if m.lastindex and m.lastindex > 1 else "")
    send = obs.find("button", "Send")
    if send is not None:  # composing
        if task == "reply":
            box = next((b for b in obs.find_all("textbox") if b.tag == "textarea"), None)
        else:
            box = next((b for b in obs.find_all("textbox") if b.tag == "input"), None)
        return _fill_then([(box, arg)], send)
    if obs.find("button", "Reply") is not None:  # an open email
        name = {"reply": "Reply", "forward": "Forward", "delete": "Delete", "star": "Star"}[task]
        return click(obs.find("button", name))
    els = obs.elements
    at = next((i for i, e in enumerate(els) if e.role == "text" and e.name == sender and i > 0), None)
    if at is None:
        return "scroll(down)" if obs.scroll_down else NOOP
    if task in ("delete", "star"):
        name = "Delete" if task == "delete" else "Star"
        button = next((e for e in els[at:] if e.role == "button" and e.name == name), None)
        if button is None:  # its icons are still below the box's edge
            return "scroll(down)" if obs.scroll_down else click(els[at])
        return click(button)
    return click(els[at])


ORACLES.update(dict.fromkeys(
    ("email-inbox", "email-inbox-delete", "email-inbox-forward", "email-inbox-important", "email-inbox-reply",
     "email-inbox-star-reply", "email-inbox-noscroll"),
    (email_inbox, 1.0),
))


# --------------------------------------------------------------------------- the social media feed

_SOCIAL_BUTTONS = ("Reply", "Retweet", "Like", "Share", "More")


def _posts(instance: dict[str, Any], obs: Observation) -> list[tuple[str | None, Element]]:
    """(author, element) for the feed's buttons and menu items in view, in order.

    A post's buttons sit below its @username. Scrolling can hide the username of the post whose
    buttons are at the top of the view, so authors are remembered per element id (ids are stable),
    and a post cut at the bottom of the last view continues at the top of the next.
    """
    m = memo(instance)
    owners: dict[str, str | None] = m.setdefault("owners", {})
    user, out = m.get("pending"), []
    for e in page_elements(obs):
        if e.role == "text" and e.name.startswith("@") and " " not in e.name:
            user = e.name
        elif e.role in ("button", "text"):
            user = owners.setdefault(str(e.id), user)
            out.append((user, e))
    m["pending"] = user
    return out


def _scroll(instance: dict[str, Any], obs: Observation) -> str:
    return "scroll(down)" if obs.scroll_down else NOOP


def social_media(instance: dict[str, Any], obs: Observation) -> str:
    mt = re.match(r'For the user (@\S+), click on the "(.+)" button\.', instance["utterance"])
    if not mt:
        return NOOP
    user, label = mt.group(1), mt.group(2)
    items = _posts(instance, obs)
    if label in _SOCIAL_BUTTONS:
        hit = next((e for u, e in items if u == user and e.role == "button" and e.name == label), None)
        return click(hit) if hit else _scroll(instance, obs)
    menu = next((e for u, e in items if u == user and e.role == "text" and e.name.startswith(label)), None)
    if menu is not None:
        return click(menu)
    m = memo(instance)
    more = next((e for u, e in items if u == user and e.role == "button" and e.name == "More"), None)
    if more is not None and more.id not in m.setdefault("opened", []):
        m["opened"].append(more.id)
        return click(more)
    return _scroll(instance, obs)


def social_media_many(instance: dict[str, Any], obs: Observation) -> str:
    mt = re.match(
        r'Click the "(.+)" button on (all posts|\d+ posts?) by (@\S+) and then click Submit\.', instance["utterance"]
    )
    if not mt:
        return NOOP
    label, how, user = mt.groups()
    want = None if how == "all posts" else int(how.split()[0])
    done = memo(instance).setdefault("clicked", [])
    if want is None or len(done) < want:
        hit = next(
            (
                e
                for u, e in _posts(instance, obs)
                if u == user and e.role == "button" and e.name == label and e.id not in done
            ),
            None,
        )
        if hit is not None:
            done.append(hit.id)
            return click(hit)
    submit = _submit(obs)
    if submit is not None and ((want is not None and len(done) >= want) or not obs.scroll_down):
        return click(submit)
    return _scroll(instance, obs)


ORACLES.update(
    {
        "social-media": (social_media, 1.0),
        "social-media-all": (social_media_many, 1.0),
        "social-media-some": (social_media_many, 1.0),
    }
)


# --------------------------------------------------------------------------- forms and widgets


def enter_date(instance: dict[str, Any], obs: Observation) -> str:
    m = re.search(r"Enter (\d\d)/(\d\d)/(\d{4})", instance["utterance"])
    box = next(iter(obs.find_all("textbox")), None)
    if not m or box is None:
        return NOOP
    month, day, year = m.groups()
    if box.value == f"{year}-{month}-{day}":
        return click(_submit(obs))
    return type_(box, f"{month}{day}{year}")  # the date field takes its segments as typed digits


def enter_time(instance: dict[str, Any], obs: Observation) -> str:
    m = re.search(r"Enter (\d{1,2}):(\d\d) ([AP]M)", instance["utterance"])
    box = next(iter(obs.find_all("textbox")), None)
    if not m or box is None:
        return NOOP
    hour, minute, half = int(m.group(1)), m.group(2), m.group(3)
    h24 = hour % 12 + (12 if half == "PM" else 0)
    if box.value == f"{h24:02d}:{minute}":
        return click(_submit(obs))
    return type_(box, f"{hour:02d}{minute}{half}")


def form_sequence_2(instance: dict[str, Any], obs: Observation) -> str:
    m = re.match(
        r'Check the (\S+) radio button and enter the number "(-?\d+)" into the (\S+) textbox\.', instance["utterance"]
    )
    if not m:
        return NOOP
    radios, boxes = obs.find_all("radio"), obs.find_all("textbox")
    r, n, t = ORDINALS.get(m.group(1), 0), m.group(2), ORDINALS.get(m.group(3), 0)
    if not (0 < r <= len(radios) and 0 < t <= len(boxes)):
        return NOOP
    if not radios[r - 1].checked:
        return click(radios[r - 1])
    return _fill_then([(boxes[t - 1], n)], _submit(obs))


_MOVIE_FIELDS = {"genre": "genre", "director": "director", "year": "year", "released": "year"}


def multi_layouts(instance: dict[str, Any], obs: Observation) -> str:
    """multi-layouts / multi-orderings: the labels sit before or after their fields depending on the layout."""
    m = re.match(r"Search for (.+?) movies directed by (.+?) from year (\d+)\.", instance["utterance"])
    if not m:
        return NOOP
    want = {"genre": m.group(1), "director": m.group(2), "year": m.group(3)}
    els = page_elements(obs)

    def kind(e: Element) -> str | None:
        if e.role not in ("text", "label", "heading"):
            return None
        return next((k for word, k in _MOVIE_FIELDS.items() if word in e.name.lower()), None)

    labels = [i for i, e in enumerate(els) if kind(e)]
    boxes = [i for i, e in enumerate(els) if e.role == "textbox"]
    if len(labels) < 3 or len(boxes) < 3:
        return NOOP
    before = labels[0] < boxes[0]
    fields = []
    for b in boxes[:3]:
        near = [i for i in labels if (i < b if before else i > b)]
        label = max(near) if before else min(near)
        fields.append((els[b], want[kind(els[label]) or ""]))
    go = next(
        (e for e in els[boxes[-1] :] if e.role in ("button", "text") and e.name in ("Submit", "Search", "Go!")), None
    )
    return _fill_then(fields, go)


def search_engine(instance: dict[str, Any], obs: Observation) -> str:
    m = re.match(
        r'Use the textbox to enter "(.+?)" and press "Search", then find and click the (\d+)(?:st|nd|rd|th) search result\.',
        instance["utterance"],
    )
    box = next(iter(obs.find_all("textbox")), None)
    if not m or box is None:
        return NOOP
    term, n = m.group(1), int(m.group(2))
    pages = [e for e in obs.find_all("link") if e.name.isdigit() or e.name in ("<", ">")]
    results = [e for e in obs.find_all("link") if e not in pages]
    if box.value != term:
        return type_(box, term)
    if not results:
        return click(obs.find("button", "Search"))
    page, index = (n - 1) // 3 + 1, (n - 1) % 3
    current = memo(instance).get("page", 1)
    if current == page:
        return click(results[index]) if index < len(results) else NOOP
    target = obs.find("link", str(page))
    if target is None:
        return NOOP
    memo(instance)["page"] = page
    return click(target)


def phone_book(instance: dict[str, Any], obs: Observation) -> str:
    m = re.match(r"Find (.+?) in the contact book and click on their (phone|email|address)", instance["utterance"])
    if not m:
        return NOOP
    person, prop = m.group(1), {"phone": "Phone:", "email": "Email:", "address": "Address:"}[m.group(2)]
    if obs.find("heading", person) is not None:
        els = obs.elements
        at = next((i for i, e in enumerate(els) if e.name == prop), None)
        return click(els[at + 1]) if at is not None and at + 1 < len(els) else NOOP
    return click(obs.find("link", ">"))


def copy_paste(instance: dict[str, Any], obs: Observation) -> str:
    """copy-paste(-2): the text to copy is the text area's value; typing it is pasting it."""
    areas = [b for b in obs.find_all("textbox") if b.tag == "textarea"]
    box = next((b for b in obs.find_all("textbox") if b.tag == "input"), None)
    m = re.search(r"from the (\S+) text area", instance["utterance"])
    n = ORDINALS.get(m.group(1), 1) if m else 1
    if box is None or len(areas) < n:
        return NOOP
    return _fill_then([(box, areas[n - 1].value or "")], _submit(obs))


def identify_shape(instance: dict[str, Any], obs: Observation) -> str:
    for e in page_elements(obs):
        if e.role == "shape":
            answer = {"rect": "Rectangle", "circle": "Circle", "polygon": "Triangle"}.get(e.name.split()[0])
        elif e.role == "text" and len(e.name) == 1:
            answer = "Number" if e.name.isdigit() else "Letter"
        else:
            continue
        return click(obs.find("button", answer or ""))
    return NOOP


def odd_or_even(instance: dict[str, Any], obs: Observation) -> str:
    done = memo(instance).setdefault("marked", [])
    els = page_elements(obs)
    for i, e in enumerate(els):
        if e.role == "text" and re.fullmatch(r"-?\d+", e.name) and e.id not in done:
            pick = "Odd" if int(e.name) % 2 else "Even"
            row = [x for x in els[max(0, i - 1) : i + 2] if x.role == "button" and x.name == pick]
            if row:
                done.append(e.id)
                return click(row[0])
    return click(_submit(obs))


def guess_number(instance: dict[str, Any], obs: Observation) -> str:
    """Binary search on 0-9 from the page's higher/lower feedback."""
    m = memo(instance)
    low, high = m.get("low", 0), m.get("high", 9)
    for e in obs.find_all("text"):
        f = re.match(r"The number is (higher|lower) than (-?\d+)\.", e.name)
        if f:
            guess = int(f.group(2))
            if f.group(1) == "higher":
                low = max(low, guess + 1)
            else:
                high = min(high, guess - 1)
    m["low"], m["high"] = low, high
    box = next(iter(obs.find_all("textbox")), None)
    if box is None:
        return NOOP
    guess = str((low + high) // 2)
    if box.value != guess:
        return type_(box, guess)
    return click(_submit(obs))


ORACLES.update(
    {
        "enter-date": (enter_date, 1.0),
        "enter-time": (enter_time, 1.0),
        "form-sequence-2": (form_sequence_2, 1.0),
        "multi-layouts": (multi_layouts, 1.0),
        "multi-orderings": (multi_layouts, 1.0),
        "search-engine": (search_engine, 1.0),
        "phone-book": (phone_book, 1.0),
        "copy-paste": (copy_paste, 1.0),
        "copy-paste-2": (copy_paste, 1.0),
        "identify-shape": (identify_shape, 1.0),
        "odd-or-even": (odd_or_even, 1.0),
        "guess-number": (guess_number, 1.0),
    }
)


_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


def choose_date(instance: dict[str, Any], obs: Observation) -> str:
    """Open the date picker, page to the month with Prev / Next, click the day, submit."""
    m = re.search(r"Select (\d\d)/(\d\d)/(\d{4})", instance["utterance"])
    box = next(iter(obs.find_all("textbox")), None)
    if not m or box is None:
        return NOOP
    texts = [e.name for e in obs.find_all("text")]
    if box.value == m.group(0).split()[-1]:  # picked: wait for the picker to fade out, then submit
        return NOOP if any(t in _MONTHS for t in texts) else click(_submit(obs))
    month, day, year = int(m.group(1)), int(m.group(2)), int(m.group(3))
    shown_month = next((_MONTHS.index(t) + 1 for t in texts if t in _MONTHS), None)
    shown_year = next((int(t) for t in texts if re.fullmatch(r"\d{4}", t)), None)
    if shown_month is None or shown_year is None:
        return click(box)
    diff = (year * 12 + month) - (shown_year * 12 + shown_month)
    if diff:
        return click(next((e for e in obs.find_all("text") if e.name == ("Next" if diff > 0 else "Prev")), None))
    return click(obs.find("link", str(day)))


ORACLES.update(dict.fromkeys(("choose-date", "choose-date-easy", "choose-date-medium", "choose-date-nodelay"),
                             (choose_date, 1.0)))
