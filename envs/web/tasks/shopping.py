"""Shopping: put the asked items (and quantities) in the cart and check out."""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

import numpy as np

from multiverse.envs.randomization import Choice, IntRange, Param, ParamSpace
from multiverse.envs.web.task import Observation, Outcome, TaskPage, WebParams, WebTask, common_params, page

PRODUCTS = {
    "train": ("Apples", "Bananas", "Bread", "Milk", "Eggs", "Cheese", "Coffee", "Tea", "Rice", "Pasta"),
    "heldout": ("Olive oil", "Yogurt", "Honey", "Oatmeal", "Butter", "Orange juice", "Chocolate", "Almonds",
                "Tomatoes", "Carrots", "Lentils", "Cereal"),
}
#: labels: (add, remove, checkout); "{p}" is the product name
LABELS = {
    "plain": ("Add to cart", "Remove", "Checkout"),
    "named": ("Add {p} to cart", "Remove {p}", "Checkout"),
    "symbols": ("+", "\u2212", "Place order"),
}
MISSIONS = {
    "plain": "Buy {items}, then check out.",
    "cart": "Add {items} to the cart and check out.",
    "need": "You need {items}: put exactly that in your cart and complete the order.",
}

SCRIPT = """
const D = __DATA__;
const cart = {};
const $ = (id) => document.getElementById(id);
const money = (c) => '$' + (c / 100).toFixed(2);
function el(tag, text, cls) { const x = document.createElement(tag); if (text != null) x.textContent = text; if (cls) x.className = cls; return x; }
const counts = {};
function render() {
  for (const p of D.products) counts[p.name].textContent = 'In cart: ' + (cart[p.name] || 0);
  const lines = $('lines'); lines.innerHTML = '';
  let total = 0;
  for (const p of D.products) {
    const q = cart[p.name] || 0; if (!q) continue;
    total += q * p.cents;
    lines.append(el('div', q + ' \u00d7 ' + p.name + ' \u2014 ' + money(q * p.cents), 'line'));
  }
  if (!lines.children.length) lines.append(el('div', 'Your cart is empty.'));
  $('total').textContent = 'Total: ' + money(total);
  mv.set('cart', Object.assign({}, cart));
}
const box = $('products');
const table = D.layout === 'table';
if (table) { const hr = el('tr'); for (const h of ['Product', 'Price', 'Quantity', '']) hr.append(el('th', h)); box.append(hr); }
for (const p of D.products) {
  const row = el(table ? 'tr' : 'div', null, D.layout === 'cards' ? 'panel card' : 'item');
  const add = el('button', D.add.replace('{p}', p.name)); add.onclick = () => { cart[p.name] = (cart[p.name] || 0) + 1; render(); };
  const rm = el('button', D.remove.replace('{p}', p.name)); rm.onclick = () => { if (cart[p.name]) { cart[p.name] -= 1; if (!cart[p.name]) delete cart[p.name]; } render(); };
  counts[p.name] = el(table ? 'td' : 'span', '', 'count');
  const cells = [el(table ? 'td' : 'span', p.name, 'name'), el(table ? 'td' : 'span', money(p.cents), 'price'), counts[p.name]];
  if (table) { const td = el('td'); td.append(add, rm); cells.push(td); } else cells.push(add, rm);
  row.append(...cells); box.append(row);
}
$('checkout').onclick = () => mv.submit(Object.assign({}, cart));
render();
"""
CSS = """
#shop { margin-right: 33%; }
#cart { position: fixed; top: 8px; right: 8px; width: 29%; }
.item { margin: 4px 0; } .item span, .card span { margin-right: 14px; } .name { font-weight: bold; }
.card { display: flex; align-items: center; gap: 10px; max-width: 560px; } .card .count { margin-left: auto; }
table#products td, table#products th { padding: 3px 10px; text-align: left; }
"""


@dataclasses.dataclass(frozen=True)
class Params(WebParams):
    products: int = 6
    items: int = 2
    vocabulary: str = "train"
    labels: str = "plain"
    layout: str = "list"
    wording: str = "plain"


class Shopping(WebTask):
    """Put the asked items (and quantities) in the cart and check out.

    ## Description
    A shop lists ``products`` products, each with its price, how many are in the
    cart, and add / remove buttons (one unit per click). A cart panel fixed at the
    top right lists each line (``2 × Milk — $3.10``), the total and a checkout button. The
    mission names ``items`` products with a quantity (1..3) each; checking out
    with exactly that cart succeeds.

    ## Actions
    ``click(id)`` on the add / remove / checkout buttons; ``scroll(down)`` when
    the page is taller than the viewport.

    ## Observation
    Per product: ``text "Milk"``, ``text "$1.55"``, ``text "In cart: 0"``, then its
    buttons (``button "Add to cart"``, ``button "Add Milk to cart"`` or ``button "+"``
    by label set); then the cart panel (always in view): ``heading "Cart"``, the
    cart lines, the total and the checkout button.

    ## Rewards
    +1 for checking out with exactly the asked products and quantities, -1 for
    checking out with any other cart; the episode ends at checkout.

    ## Randomization
    | parameter | nominal | train | held-out |
    |---|---|---|---|
    | products | 6 | 4..8 | 10..12 |
    | items (distinct products to buy) | 2 | 1..2 | 3 |
    | vocabulary (product names) | train | train | heldout (unseen) |
    | labels (buttons) | plain | plain (Add to cart/Remove/Checkout), named (Add Milk to cart/...) | symbols (+/−/Place order) |
    | layout | list | list, cards | table |
    | wording (mission phrasing) | plain | plain, cart | need |
    | theme, font, font_size, viewport | see :func:`common_params` | | |

    Product order, prices, the items asked and their quantities come from the seed.

    ## Version History
    * v0: initial version.
    """

    PARAM_SPACE = ParamSpace(
        Params,
        **common_params(),
        products=Param(IntRange(4, 8), IntRange(10, 12), "products in the shop"),
        items=Param(IntRange(1, 2), IntRange(3, 3), "distinct products the mission asks for"),
        vocabulary=Param(Choice(("train",)), Choice(("heldout",)), "product names"),
        labels=Param(Choice(("plain", "named")), Choice(("symbols",)), "button labels"),
        layout=Param(Choice(("list", "cards")), Choice(("table",)), "how the products are laid out"),
        wording=Param(Choice(("plain", "cart")), Choice(("need",)), "how the mission is phrased"),
    )

    def setup(self, rng: np.random.Generator, params: Params) -> TaskPage:
        names = [str(s) for s in rng.choice(PRODUCTS[params.vocabulary], size=params.products, replace=False)]
        products = [{"name": n, "cents": int(rng.integers(10, 300)) * 5} for n in names]
        picked = [int(i) for i in rng.choice(len(names), size=min(params.items, len(names)), replace=False)]
        wanted = {names[i]: int(rng.integers(1, 4)) for i in picked}
        add, remove, checkout = LABELS[params.labels]
        tag = "table" if params.layout == "table" else "div"
        body = f"""<div id="shop"><h1>Shop</h1><{tag} id="products"></{tag}></div>
<div class="panel" id="cart"><h2>Cart</h2><div id="lines"></div><div id="total"></div>
<button id="checkout">{checkout}</button></div>"""
        data = {"products": products, "layout": params.layout, "add": add, "remove": remove}
        script = SCRIPT.replace("__DATA__", json.dumps(data).replace("</", "<\\/"))
        html = page(params, body, script=script, title="Shop", css=CSS)
        parts = [f"{q} \u00d7 {n}" for n, q in wanted.items()]
        items = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
        instance = {"products": names, "wanted": wanted, "checkout": checkout}
        return TaskPage(html, MISSIONS[params.wording].format(items=items), instance)

    def validate(self, instance: dict[str, Any], state: Any) -> Outcome:
        if not state or not isinstance(state.get("submitted"), dict):
            return Outcome()
        ok = {k: int(v) for k, v in state["submitted"].items() if v} == instance["wanted"]
        return Outcome(reward=1.0 if ok else -1.0, success=ok, done=True)

    def oracle(self, instance: dict[str, Any], obs: Observation) -> str:
        names, wanted = instance["products"], instance["wanted"]
        # Read the visible product rows: a name, its "In cart: k", then its add and remove buttons.
        rows: dict[str, dict[str, Any]] = {}
        cur: dict[str, Any] | None = None
        cart_lines: dict[str, int] | None = None
        cart_at = len(obs.elements)
        for k, e in enumerate(obs.elements):
            if e.role == "heading" and e.name == "Cart":
                cur, cart_lines, cart_at = None, {}, k
            elif cart_lines is not None:
                m = re.match(r"^(\d+) \u00d7 (.+) \u2014 ", e.name)
                if m:
                    cart_lines[m.group(2)] = int(m.group(1))
            elif e.role == "text" and e.name in names:
                cur = rows[e.name] = {"count": None, "buttons": [], "end": k}
            elif cur is not None and e.role == "text" and e.name.startswith("In cart: "):
                cur["count"] = int(e.name.split(": ")[1])
            elif cur is not None and e.role == "button" and cur["count"] is not None and len(cur["buttons"]) < 2:
                cur["buttons"].append(e.id)
                cur["end"] = k
        checkout = obs.find("button", instance["checkout"])
        if cart_lines is None or checkout is None:  # the cart panel is fixed on screen: only before the page has loaded
            return "noop()"
        wrong = [n for n in names if cart_lines.get(n, 0) != wanted.get(n, 0)]
        if not wrong:
            return f"click({checkout.id})"
        row = rows.get(wrong[0])
        if row is not None and row["count"] is not None and len(row["buttons"]) == 2:
            if row["end"] == cart_at - 1 and obs.scroll_down:  # nothing listed below it: it may be cut at the bottom edge
                return "scroll(down)"
            return f"click({row['buttons'][0 if row['count'] < wanted.get(wrong[0], 0) else 1]})"
        seen = [names.index(n) for n in rows]
        if seen and names.index(wrong[0]) < min(seen) and obs.scroll_up:
            return "scroll(up)"
        return obs.scroll_or_wait()
