"""LoginForm: fill in a username and a password and press the login button."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from multiverse.envs.randomization import Choice, IntRange, Param, ParamSpace
from multiverse.envs.web.task import Observation, Outcome, TaskPage, WebParams, WebTask, common_params, esc, page

VOCAB = {
    "train": {
        "names": ("maria", "tom", "alex", "priya", "jonas", "chen", "sofia", "omar", "lena", "david"),
        "user": ("Username", "User name", "Login"),
        "password": ("Password", "Passcode"),
        "button": ("Log in", "Sign in"),
        "symbols": "",
    },
    "heldout": {
        "names": ("ingrid", "kwame", "yuki", "mateo", "aisha", "bjorn", "noor", "felix"),
        "user": ("Account ID", "Member name"),
        "password": ("Secret word", "Access key"),
        "button": ("Enter", "Continue"),
        "symbols": "!#$%*-_?",
    },
}
ALNUM = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
EXTRAS = ("remember", "forgot", "signup", "search")
MISSIONS = {
    "plain": 'Log in with username "{user}" and password "{password}".',
    "sign": 'Sign in as "{user}" using the password "{password}".',
    "account": 'Your account is "{user}" and its password is "{password}"; use them to get in.',
}


@dataclasses.dataclass(frozen=True)
class Params(WebParams):
    extras: int = 0
    vocabulary: str = "train"
    wording: str = "plain"
    layout: str = "stacked"


class LoginForm(WebTask):
    """Log in with the credentials the mission gives.

    ## Description
    A login form with a username field, a password field (``type=password``,
    shown as dots) and a login button, plus optional extras: a "Remember me"
    checkbox and a site search box (harmless), and "Forgot your password?" /
    "Create an account" links (following one leaves the form: failure).
    Submitting the form (button or Enter) ends the episode; it succeeds when
    both fields hold exactly the given values.

    ## Actions
    ``type(id, "text")`` into the fields, ``click(id)`` the button (or a
    distractor), ``press("Enter")`` to submit from a field.

    ## Observation
    The mission, then the page: ``[3] textbox "Username" value=""``,
    ``[4] textbox "Password" (password) value="••••"``, ``[5] button "Log in"``.

    ## Rewards
    +1 for logging in with both values right, -1 for a wrong submission or a
    distractor link; the episode ends at either.

    ## Randomization
    | parameter | nominal | train | held-out |
    |---|---|---|---|
    | extras (distractor widgets) | 0 | 0..2 | 3..4 |
    | vocabulary (names, labels, button, password symbols) | train | train | heldout (unseen) |
    | wording (mission phrasing) | plain | plain, sign | account |
    | layout | stacked | stacked, inline | split (info column + form) |
    | theme, font, font_size, viewport | see :func:`common_params` | | |

    ## Version History
    * v0: initial version.
    """

    PARAM_SPACE = ParamSpace(
        Params,
        **common_params(),
        extras=Param(IntRange(0, 2), IntRange(3, 4), "distractor widgets next to the form"),
        vocabulary=Param(Choice(("train",)), Choice(("heldout",)), "user names, field labels, button, password alphabet"),
        wording=Param(Choice(("plain", "sign")), Choice(("account",)), "how the mission is phrased"),
        layout=Param(Choice(("stacked", "inline")), Choice(("split",)), "how the form is laid out"),
    )
    keys = ("Enter",)

    def setup(self, rng: np.random.Generator, params: Params) -> TaskPage:
        v = VOCAB[params.vocabulary]
        pick = lambda xs: str(xs[int(rng.integers(len(xs)))])
        user = f"{pick(v['names'])}{int(rng.integers(10, 1000))}"
        alphabet = ALNUM + v["symbols"]
        password = "".join(alphabet[int(i)] for i in rng.integers(len(alphabet), size=int(rng.integers(6, 11))))
        if v["symbols"] and not any(c in v["symbols"] for c in password):
            password += v["symbols"][int(rng.integers(len(v["symbols"])))]
        ulabel, plabel, button = pick(v["user"]), pick(v["password"]), pick(v["button"])
        extras = {EXTRAS[int(i)] for i in rng.choice(len(EXTRAS), size=params.extras, replace=False)}
        inline = params.layout == "inline"
        sep = " " if inline else "<br>"
        rows = [
            f'<div class="row"><label for="user">{esc(ulabel)}</label>{sep}<input type="text" id="user" autocomplete="off"></div>',
            f'<div class="row"><label for="pass">{esc(plabel)}</label>{sep}<input type="password" id="pass" autocomplete="off"></div>',
        ]
        if "remember" in extras:
            rows.append('<div class="row"><input type="checkbox" id="remember"><label for="remember">Remember me</label></div>')
        rows.append(f'<div class="row"><button type="submit">{esc(button)}</button></div>')
        links = [t for k, t in (("forgot", "Forgot your password?"), ("signup", "Create an account")) if k in extras]
        form = (
            '<form id="login" class="panel"><h2>Welcome back</h2>' + "".join(rows)
            + "".join(f'<div class="row"><a href="/account/{i}" class="away">{esc(t)}</a></div>' for i, t in enumerate(links))
            + "</form>"
        )
        search = (
            '<form id="search" class="row"><label for="q">Search the site</label> <input type="search" id="q">'
            " <button type=\"submit\">Search</button></form>"
            if "search" in extras else ""
        )
        if params.layout == "split":
            body = (
                f'{search}<div class="split"><div class="info"><h2>Members area</h2><p>News, files and '
                f"messages for our members. Log in on the right to continue.</p></div>{form}</div>"
            )
        else:
            body = f"{search}{form}"
        css = (
            ".split { display: flex; gap: 24px; align-items: flex-start; } .info { flex: 1; } .split form { flex: 1; }"
            " .row label { display: inline-block; min-width: 120px; }" if inline or params.layout == "split" else ""
        )
        script = """
document.getElementById('login').addEventListener('submit', (e) => {
  e.preventDefault();
  if (!('submitted' in window.__mvState)) mv.submit([document.getElementById('user').value, document.getElementById('pass').value]);
});
const s = document.getElementById('search');
if (s) s.addEventListener('submit', (e) => { e.preventDefault(); mv.push('searched', document.getElementById('q').value); });
document.querySelectorAll('a.away').forEach((a) => a.addEventListener('click', (e) => {
  e.preventDefault(); mv.set('left', a.textContent);
}));"""
        mission = MISSIONS[params.wording].format(user=user, password=password)
        html = page(params, body, script=script, title="Log in", css=css)
        instance = {"user": user, "password": password, "user_label": ulabel, "password_label": plabel, "button": button}
        return TaskPage(html, mission, instance)

    def validate(self, instance: dict[str, Any], state: Any) -> Outcome:
        if not state:
            return Outcome()
        if "left" in state:
            return Outcome(reward=-1.0, success=False, done=True)
        if "submitted" not in state:
            return Outcome()
        ok = list(state["submitted"]) == [instance["user"], instance["password"]]
        return Outcome(reward=1.0 if ok else -1.0, success=ok, done=True)

    def oracle(self, instance: dict[str, Any], obs: Observation) -> str:
        for label, want in ((instance["user_label"], instance["user"]), (instance["password_label"], instance["password"])):
            field = obs.find("textbox", label)
            if field is None:
                return obs.scroll_or_wait()
            if field.value != want:
                return f'type({field.id}, "{want}")'
        button = obs.find("button", instance["button"])
        return f"click({button.id})" if button else 'press("Enter")'
