"""Browser tasks: one shared browser env (:class:`WebEnv`) runs any task class.

Own tasks are registered here, one line per versioned id; MiniWoB++ tasks are
registered from the ``miniwob`` wheel's pages by :mod:`multiverse.envs.web.miniwob`.
"""

from multiverse.envs.registry import register

_ENV = "multiverse.envs.web.env:WebEnv"


def _task(id: str, task: str, steps: int, tags: list[str]) -> None:
    register(id, _ENV, kind="web", max_episode_steps=steps, tags=["web", *tags], kwargs={"task": f"multiverse.envs.web.tasks.{task}"})


_task("web/ClickButton-v0", "click_button:ClickButton", 10, ["click"])
_task("web/ClickLink-v0", "click_link:ClickLink", 10, ["click", "navigation"])
_task("web/EnterText-v0", "enter_text:EnterText", 10, ["type"])
_task("web/LoginForm-v0", "login_form:LoginForm", 15, ["type", "form"])
_task("web/Dropdown-v0", "dropdown:Dropdown", 10, ["select", "form"])
_task("web/Checkboxes-v0", "checkboxes:Checkboxes", 20, ["click", "form"])
_task("web/RadioChoice-v0", "radio_choice:RadioChoice", 10, ["click", "form"])
_task("web/SearchResults-v0", "search_results:SearchResults", 15, ["type", "search"])
_task("web/Tabs-v0", "tabs:Tabs", 15, ["click", "navigation"])
_task("web/MultiFieldForm-v0", "multi_field_form:MultiFieldForm", 25, ["type", "select", "form"])
_task("web/TwoPageFlow-v0", "two_page_flow:TwoPageFlow", 20, ["navigation", "form"])
_task("web/EmailInbox-v0", "email_inbox:EmailInbox", 20, ["app", "type"])
_task("web/Shopping-v0", "shopping:Shopping", 30, ["app", "click"])
_task("web/ScrollFind-v0", "scroll_find:ScrollFind", 20, ["scroll", "click"])
_task("web/SortItems-v0", "sort_items:SortItems", 40, ["click", "order"])
_task("web/DatePicker-v0", "date_picker:DatePicker", 30, ["click", "widget"])

# MiniWoB++ tasks from the miniwob wheel's HTML (installed by launch/setup.sh); none when it is missing
from multiverse.envs.web.miniwob import register_miniwob  # noqa: E402

register_miniwob()
