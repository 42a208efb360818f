"""DatePicker: pick the asked date in a calendar widget and submit."""

from __future__ import annotations

import dataclasses
import datetime
import json
import re
from typing import Any

import numpy as np

from multiverse.envs.randomization import Choice, IntRange, Param, ParamSpace, Union
from multiverse.envs.web.task import Observation, Outcome, TaskPage, WebParams, WebTask, common_params, page

MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")
#: navigation button labels: (previous, next)
NAV = {"words": ("Previous month", "Next month"), "short": ("Prev", "Next")}
FORMATS = {
    "long": lambda d: f"{MONTHS[d.month - 1]} {d.day}, {d.year}",
    "iso": lambda d: d.isoformat(),
    "weekday": lambda d: f"{d.strftime('%A')}, {d.day} {MONTHS[d.month - 1]} {d.year}",
}
MISSIONS = {
    "long": "Pick {date} in the calendar and press Submit.",
    "iso": "Set the appointment date to {date} (YYYY-MM-DD) using the calendar, then press Submit.",
    "weekday": "Book the appointment for {date}: choose it in the date picker and submit.",
}

SCRIPT = """
const D = __DATA__;
const M = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];
const $ = (id) => document.getElementById(id);
let y = D.year, m = D.month;  // the shown month (0-based), from the task's setup
const pad = (n) => (n < 10 ? '0' : '') + n;
function dow(yy, mm, dd) {  // 0 = Sunday; Sakamoto's method, no Date object
  const t = [0, 3, 2, 5, 0, 3, 5, 1, 4, 6, 2, 4];
  if (mm < 3) yy -= 1;
  return (yy + Math.floor(yy / 4) - Math.floor(yy / 100) + Math.floor(yy / 400) + t[mm - 1] + dd) % 7;
}
function days(yy, mm) { return [31, (yy % 4 === 0 && (yy % 100 !== 0 || yy % 400 === 0)) ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][mm]; }
function render() {
  $('month').textContent = M[m] + ' ' + y;
  const grid = $('grid'); grid.innerHTML = '';
  const head = document.createElement('tr');
  const names = D.monday ? ['Mo', 'Tu', 'We', 'Th', 'Fr', 'Sa', 'Su'] : ['Su', 'Mo', 'Tu', 'We', 'Th', 'Fr', 'Sa'];
  for (const n of names) { const th = document.createElement('th'); th.textContent = n; head.append(th); }
  grid.append(head);
  let tr = document.createElement('tr');
  const lead = (dow(y, m + 1, 1) + (D.monday ? 6 : 0)) % 7;
  for (let i = 0; i < lead; i++) tr.append(document.createElement('td'));
  for (let d = 1; d <= days(y, m); d++) {
    if (tr.children.length === 7) { grid.append(tr); tr = document.createElement('tr'); }
    const b = document.createElement('button');
    const iso = y + '-' + pad(m + 1) + '-' + pad(d);
    b.className = 'day' + ($('date').value === iso ? ' chosen' : '');
    b.dataset.day = d;
    b.setAttribute('aria-label', M[m] + ' ' + d + ', ' + y);
    b.onclick = () => pick(iso);
    const td = document.createElement('td'); td.append(b); tr.append(td);
  }
  grid.append(tr);
}
function shift(k) { m += k; if (m < 0) { m = 11; y -= 1; } if (m > 11) { m = 0; y += 1; } render(); }
function pick(iso) { $('date').value = iso; mv.set('picked', iso); if (D.mode !== 'inline') close(); else render(); }
function open() { $('cal').classList.remove('hidden'); $('backdrop').classList.toggle('hidden', D.mode !== 'dialog'); render(); }
function close() { $('cal').classList.add('hidden'); $('backdrop').classList.add('hidden'); }
$('prev').onclick = () => shift(-1);
$('next').onclick = () => shift(1);
$('toggle').onclick = open;
$('backdrop').onclick = close;
$('submit').onclick = () => mv.submit($('date').value);
if (D.mode === 'inline') open();
"""
# Day numbers are drawn by CSS so each day button's accessible name is its aria-label ("March 14, 2024").
CSS = """
button.day::before { content: attr(data-day); }
button.day { min-width: 2.4em; } button.day.chosen { font-weight: bold; outline: 2px solid; }
#cal { display: inline-block; margin: 8px 0; } #cal.hidden { display: none; } #cal th { font-weight: normal; }
#cal .nav { display: flex; align-items: center; gap: 8px; } #cal h2 { font-size: 1.1em; margin: 0 8px; }
.dialog #cal { position: fixed; top: 40px; left: 50%; transform: translateX(-50%); z-index: 2; box-shadow: 0 0 12px #0008; }
#backdrop { position: fixed; inset: 0; background: #0006; z-index: 1; }
"""


@dataclasses.dataclass(frozen=True)
class Params(WebParams):
    month_offset: int = 1
    date_format: str = "long"
    mode: str = "popup"
    nav: str = "words"
    week_start: str = "sunday"


class DatePicker(WebTask):
    """Pick the asked date in a calendar widget and submit.

    ## Description
    A form with a read-only date field ("Appointment date"), a calendar showing
    one month (heading ``March 2024``, previous / next month buttons, a grid of
    day buttons named by their full date) and a Submit button. The mission asks
    for a date ``month_offset`` months away from the month shown at the start;
    clicking its day fills the field (``2024-03-14``); Submit with that date succeeds.

    ## Actions
    ``click(id)`` on "Choose date" (opens the calendar in popup and dialog
    modes), the month buttons, the day buttons and Submit.

    ## Observation
    ``textbox "Appointment date" value="2024-03-14"``, ``button "Choose date"``,
    ``heading "March 2024"``, ``button "Previous month"``, ``button "Next month"``,
    weekday headers (``text "Su"``), ``button "March 14, 2024"``, ..., ``button "Submit"``.

    ## Rewards
    +1 for Submit with the asked date in the field, -1 for Submit with any other
    (or no) date; the episode ends at Submit.

    ## Randomization
    | parameter | nominal | train | held-out |
    |---|---|---|---|
    | month_offset (target month minus shown month) | 1 | -3..3 | -6..-4, 4..6 |
    | date_format (mission) | long | long (March 14, 2024), iso (2024-03-14) | weekday (Thursday, 14 March 2024) |
    | mode (calendar) | popup | inline, popup (opens below the field) | dialog (modal over a backdrop) |
    | nav (month button labels) | words | words (Previous month/Next month) | short (Prev/Next) |
    | week_start | sunday | sunday | monday |
    | theme, font, font_size, viewport | see :func:`common_params` | | |

    The shown month (2020..2027) and the day come from the seed; the page's
    calendar arithmetic uses no clock.

    ## Version History
    * v0: initial version.
    """

    PARAM_SPACE = ParamSpace(
        Params,
        **common_params(),
        month_offset=Param(IntRange(-3, 3), Union((IntRange(-6, -4), IntRange(4, 6))), "target month minus shown month"),
        date_format=Param(Choice(("long", "iso")), Choice(("weekday",)), "how the mission writes the date"),
        mode=Param(Choice(("inline", "popup")), Choice(("dialog",)), "how the calendar is shown"),
        nav=Param(Choice(("words",)), Choice(("short",)), "month navigation button labels"),
        week_start=Param(Choice(("sunday",)), Choice(("monday",)), "first day of the week in the grid"),
    )

    def setup(self, rng: np.random.Generator, params: Params) -> TaskPage:
        year, month = int(rng.integers(2020, 2028)), int(rng.integers(12))
        k = year * 12 + month + params.month_offset
        ty, tm = divmod(k, 12)
        day = int(rng.integers(1, 29 if tm == 1 else 31 if tm in (3, 5, 8, 10) else 32))
        target = datetime.date(ty, tm + 1, day)
        prev, nxt = NAV[params.nav]
        body = f"""<h1>Book an appointment</h1>
<div class="row"><label for="date">Appointment date</label> <input id="date" type="text" readonly placeholder="YYYY-MM-DD">
<button id="toggle"{' class="hidden"' if params.mode == 'inline' else ''}>Choose date</button></div>
<div id="backdrop" class="hidden"></div>
<div id="cal" class="panel hidden"><div class="nav"><button id="prev">{prev}</button><h2 id="month"></h2>
<button id="next">{nxt}</button></div><table id="grid"></table></div>
<div class="row"><button id="submit">Submit</button></div>"""
        data = {"year": year, "month": month, "mode": params.mode, "monday": params.week_start == "monday"}
        script = SCRIPT.replace("__DATA__", json.dumps(data))
        html = page(params, f'<div class="{params.mode}">{body}</div>', script=script, title="Appointment", css=CSS)
        mission = MISSIONS[params.date_format].format(date=FORMATS[params.date_format](target))
        instance = {"target": target.isoformat(), "label": FORMATS["long"](target), "prev": prev, "next": nxt}
        return TaskPage(html, mission, instance)

    def validate(self, instance: dict[str, Any], state: Any) -> Outcome:
        if not state or "submitted" not in state:
            return Outcome()
        ok = state["submitted"] == instance["target"]
        return Outcome(reward=1.0 if ok else -1.0, success=ok, done=True)

    def oracle(self, instance: dict[str, Any], obs: Observation) -> str:
        field = obs.find("textbox", "Appointment date")
        shown = next((m for e in obs.find_all("heading") if (m := re.fullmatch(r"(\w+) (\d{4})", e.name)) and m.group(1) in MONTHS), None)
        if field is not None and field.value == instance["target"]:
            button = obs.find("button", "Submit")
        elif shown is None:
            button = obs.find("button", "Choose date")
        else:
            ty, tm = int(instance["target"][:4]), int(instance["target"][5:7]) - 1
            have = int(shown.group(2)) * 12 + MONTHS.index(shown.group(1))
            want = ty * 12 + tm
            name = instance["label"] if have == want else instance["next"] if have < want else instance["prev"]
            button = obs.find("button", name)
        if button is not None:
            return f"click({button.id})"
        return obs.scroll_or_wait()
