"""Draw a recorded episode: an animated GIF, or one self-contained HTML viewer.

Images come from the recording when it stored them (``--pixels``); otherwise
the episode is replayed with pixels on (verified on the way) and its frames are
rendered anew. The HTML file inlines everything (images as ``data:`` URIs, the
script and the style), so it opens offline and makes no request: a step slider,
the observation text, the image, the legal actions with the chosen one
highlighted, the reward and the return so far.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

from multiverse.agents.episodes import RecordedEpisode, decode_png, encode_png
from multiverse.agents.replay import ReplayRefused, replay_observations

__all__ = ["episode_images", "render", "render_gif", "render_html"]

#: GIFs of small frames (84 x 84) are scaled up to at least this many pixels on their short side
GIF_MIN_SIDE = 252


def episode_images(rec: RecordedEpisode) -> tuple[list[bytes], bool]:
    """PNG bytes of every observation (reset, then one per action) and whether they had to be re-rendered."""
    ep = rec.episode
    stored = [s.image for s in ep.steps] + [ep.final_image]
    if all(img is not None for img in stored):
        return [bytes(img) for img in stored], False
    observations, div = replay_observations(rec, pixels=True)
    if div is not None:
        raise ReplayRefused(f"cannot re-render the images: the replay diverged ({div.describe()})")
    return [encode_png(obs["image"]) for obs in observations], True


def render_gif(rec: RecordedEpisode, out: str | Path, *, frame_ms: int = 200) -> tuple[Path, bool]:
    """An animated GIF of the episode's frames; returns (path, re-rendered)."""
    from PIL import Image

    pngs, rerendered = episode_images(rec)
    frames = [Image.fromarray(decode_png(p)) for p in pngs]
    w, h = frames[0].size
    scale = max(1, -(-GIF_MIN_SIDE // min(w, h)))
    if scale > 1:
        frames = [f.resize((w * scale, h * scale), Image.NEAREST) for f in frames]
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    frames[0].save(out, save_all=True, append_images=frames[1:], duration=frame_ms, loop=0, optimize=False)
    return out, rerendered


def _viewer_data(rec: RecordedEpisode, pngs: list[bytes]) -> dict[str, Any]:
    ep = rec.episode
    positions, total = [], 0.0
    for t, step in enumerate(ep.steps):
        total += step.reward
        positions.append({"observation": step.observation, "legal": list(step.legal_actions), "action": step.action,
                          "reward": step.reward, "return": total, "error": step.action_error,
                          "flags": ("terminated" if step.terminated else "") + ("truncated" if step.truncated else "")})
    positions.append({"observation": ep.final_observation, "legal": [], "action": None, "reward": None,
                      "return": total, "error": None, "flags": "end"})
    for p, png in zip(positions, pngs):
        p["image"] = "data:image/png;base64," + base64.b64encode(png).decode() if png else None
    return {"env_id": ep.env_id, "seed": ep.seed, "options": ep.options, "randomization": ep.randomization,
            "agent": rec.meta.agent, "success": ep.success, "episode": rec.index, "positions": positions}


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<title>{title}</title>
<style>
body {{ font: 14px system-ui, sans-serif; margin: 1em; color: #222; }}
#bar {{ display: flex; gap: .6em; align-items: center; margin: .6em 0; }}
#step {{ flex: 1; }}
#main {{ display: flex; gap: 1.2em; align-items: flex-start; }}
#img {{ image-rendering: pixelated; width: 336px; border: 1px solid #ccc; }}
pre {{ background: #f6f6f6; padding: .6em; white-space: pre-wrap; max-width: 70ch; margin: 0; }}
#actions li.chosen {{ background: #ffe08a; font-weight: bold; }}
.meta {{ color: #555; }}
</style></head><body>
<h2>{title}</h2>
<div class="meta">{meta}</div>
<div id="bar"><button id="prev">&larr;</button>
<input type="range" id="step" min="0" max="{last}" value="0"><button id="next">&rarr;</button>
<span>step <b id="t">0</b> / {last}</span></div>
<div id="main"><div><img id="img" alt="observation image"></div>
<div><pre id="obs"></pre>
<p>reward <b id="reward"></b> &middot; return so far <b id="return"></b> <span id="flags" class="meta"></span></p>
<p id="error" class="meta"></p>
<ol id="actions" start="0"></ol></div></div>
<script type="application/json" id="data">{data}</script>
<script>
const data = JSON.parse(document.getElementById("data").textContent);
const slider = document.getElementById("step");
const fmt = (x) => (x === null || x === undefined) ? "-" : (Math.round(x * 1000) / 1000).toString();
function show(t) {{
  const p = data.positions[t];
  document.getElementById("t").textContent = t;
  document.getElementById("obs").textContent = p.observation;
  document.getElementById("reward").textContent = fmt(p.reward);
  document.getElementById("return").textContent = fmt(p["return"]);
  document.getElementById("flags").textContent = p.flags === "end" ? "episode over (" + (data.success ? "success" : "no success") + ")" : p.flags;
  document.getElementById("error").textContent = p.error ? "action error: " + p.error : "";
  const img = document.getElementById("img");
  if (p.image) {{ img.src = p.image; img.style.display = ""; }} else {{ img.style.display = "none"; }}
  const list = document.getElementById("actions");
  list.replaceChildren();
  let chosenListed = false;
  for (const a of p.legal) {{
    const li = document.createElement("li");
    li.textContent = a;
    const chosen = a === p.action || (a.includes("<text>") && p.action !== null && p.action.startsWith(a.split("<text>")[0]));
    if (chosen && !chosenListed) {{ li.className = "chosen"; li.textContent = a === p.action ? a : a + "  ->  " + p.action; chosenListed = true; }}
    list.appendChild(li);
  }}
  if (p.action !== null && !chosenListed) {{
    const li = document.createElement("li");
    li.className = "chosen"; li.textContent = p.action + "  (not a legal action)";
    list.appendChild(li);
  }}
}}
slider.addEventListener("input", () => show(Number(slider.value)));
document.getElementById("prev").onclick = () => {{ slider.value = Math.max(0, Number(slider.value) - 1); show(Number(slider.value)); }};
document.getElementById("next").onclick = () => {{ slider.value = Math.min({last}, Number(slider.value) + 1); show(Number(slider.value)); }};
document.addEventListener("keydown", (e) => {{ if (e.key === "ArrowLeft") document.getElementById("prev").click(); if (e.key === "ArrowRight") document.getElementById("next").click(); }});
show(0);
</script></body></html>
"""


def render_html(rec: RecordedEpisode, out: str | Path, *, images: bool = True) -> tuple[Path, bool]:
    """One self-contained HTML viewer of the episode; returns (path, images re-rendered)."""
    pngs, rerendered = episode_images(rec) if images else ([], False)
    data = _viewer_data(rec, pngs or [b""] * (rec.episode.length + 1))
    ep = rec.episode
    title = f"{ep.env_id} seed {ep.seed} (episode {rec.index})"
    meta = (f"agent {rec.meta.agent} &middot; {ep.length} steps &middot; return {ep.total_return:g} &middot; "
            f"{'success' if ep.success else 'no success'} &middot; parameters {html.escape(json.dumps(ep.randomization))}")
    payload = json.dumps(data).replace("</", "<\\/")  # no "</script>" can end the data block early
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(_PAGE.format(title=html.escape(title), meta=meta, last=ep.length, data=payload), encoding="utf-8")
    return out, rerendered


def render(rec: RecordedEpisode, out: str | Path) -> tuple[Path, str]:
    """GIF or HTML by the file's suffix; returns (path, a note for the user)."""
    suffix = Path(out).suffix.lower()
    if suffix == ".gif":
        path, rerendered = render_gif(rec, out)
    elif suffix in (".html", ".htm"):
        path, rerendered = render_html(rec, out)
    else:
        raise ValueError(f"--render writes .gif or .html, got {str(out)!r}")
    return path, " (images re-rendered by replaying the episode with pixels on)" if rerendered else ""
