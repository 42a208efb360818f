"""Draw a recorded episode: an animated GIF, or one self-contained HTML viewer.

Images come from the recording when it stored them (``--pixels``); otherwise
the episode is replayed with pixels on (verified on the way) and its frames are
rendered anew. The HTML viewer of a web task shows full-size page screenshots
(the task's viewport; the 84 x 84 observation images are unreadable): the
episode is replayed with ``render_mode="rgb_array"``. The HTML file inlines
everything (images as ``data:`` URIs, the script and the style), so it opens
offline and makes no request: a step slider, a play/pause button, the
observation text, the image, the legal actions with the chosen one
highlighted, the reward and the return so far.

A GIF holds exactly one frame per position: the reset's observation, then one
per step (length + 1 frames), each captioned with its step, action and reward.
The caption also keeps equal frames apart: GIF writers (Pillow's included)
merge a frame identical to the one before into it, which dropped the steps of
a game that did not change the picture.
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
#: height of the caption strip under each GIF frame
CAPTION_PX = 16


def episode_images(rec: RecordedEpisode, *, full_size: bool = False) -> tuple[list[bytes], bool]:
    """PNG bytes of every observation (reset, then one per action) and whether they had to be re-rendered.
    ``full_size``: the env's full-size frames (a web task's page screenshots), always by a replay."""
    ep = rec.episode
    stored = [s.image for s in ep.steps] + [ep.final_image]
    if not full_size and all(img is not None for img in stored):
        return [bytes(img) for img in stored], False
    observations, div = replay_observations(rec, pixels=True, full_size=full_size)
    if div is not None:
        raise ReplayRefused(f"cannot re-render the images: the replay diverged ({div.describe()})")
    if full_size and any(frame is None for frame in observations):
        raise ReplayRefused(f"cannot render full-size frames of {ep.env_id}: its env returned no frame")
    return [encode_png(obs if full_size else obs["image"]) for obs in observations], True


def _captions(rec: RecordedEpisode) -> list[str]:
    ep = rec.episode
    out = [f"reset  seed {ep.seed}"]
    for t, step in enumerate(ep.steps, start=1):
        action = step.action if len(step.action) <= 40 else step.action[:39] + "…"
        out.append(f"step {t}/{ep.length}  {action}  reward {step.reward:+g}")
    return out


def render_gif(rec: RecordedEpisode, out: str | Path, *, frame_ms: int = 200) -> tuple[Path, bool]:
    """An animated GIF of the episode, one captioned frame per position; returns (path, re-rendered)."""
    from PIL import Image, ImageDraw

    pngs, rerendered = episode_images(rec)
    frames = [Image.fromarray(decode_png(p)) for p in pngs]
    w, h = frames[0].size
    scale = max(1, -(-GIF_MIN_SIDE // min(w, h)))
    captioned = []
    for frame, caption in zip(frames, _captions(rec)):
        if scale > 1:
            frame = frame.resize((w * scale, h * scale), Image.NEAREST)
        canvas = Image.new("RGB", (frame.width, frame.height + CAPTION_PX), "white")
        canvas.paste(frame, (0, 0))
        ImageDraw.Draw(canvas).text((3, frame.height + 2), caption, fill="black")
        captioned.append(canvas)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    captioned[0].save(out, save_all=True, append_images=captioned[1:], duration=frame_ms, loop=0, optimize=False)
    return out, rerendered


def _viewer_data(rec: RecordedEpisode, pngs: list[bytes], frame_ms: int) -> dict[str, Any]:
    ep = rec.episode
    positions, total = [], 0.0
    for step in ep.steps:
        total += step.reward
        positions.append({"observation": step.observation, "legal": list(step.legal_actions), "action": step.action,
                          "reward": step.reward, "return": total, "error": step.action_error,
                          "flags": ("terminated" if step.terminated else "") + ("truncated" if step.truncated else "")})
    positions.append({"observation": ep.final_observation, "legal": [], "action": None, "reward": None,
                      "return": total, "error": None, "flags": "end"})
    for p, png in zip(positions, pngs):
        p["image"] = "data:image/png;base64," + base64.b64encode(png).decode() if png else None
    return {"env_id": ep.env_id, "seed": ep.seed, "options": ep.options, "randomization": ep.randomization,
            "agent": rec.meta.agent, "success": ep.success, "episode": rec.index, "positions": positions,
            "frame_ms": frame_ms}


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
#img.full {{ image-rendering: auto; width: auto; max-width: 60vw; }}
#play {{ min-width: 4.5em; }}
pre {{ background: #f6f6f6; padding: .6em; white-space: pre-wrap; max-width: 70ch; margin: 0; }}
#actions li.chosen {{ background: #ffe08a; font-weight: bold; }}
.meta {{ color: #555; }}
</style></head><body>
<h2>{title}</h2>
<div class="meta">{meta}</div>
<div id="bar"><button id="play" title="play / pause (space)">play</button><button id="prev">&larr;</button>
<input type="range" id="step" min="0" max="{last}" value="0"><button id="next">&rarr;</button>
<span>step <b id="t">0</b> / {last}</span></div>
<div id="main"><div><img id="img" class="{img_class}" alt="observation image"></div>
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
// play: one step every frame_ms from where the slider is (from the start when at the end), pausing at the end
const play = document.getElementById("play");
let timer = null;
function pause() {{ clearInterval(timer); timer = null; play.textContent = "play"; }}
play.onclick = () => {{
  if (timer !== null) {{ pause(); return; }}
  if (Number(slider.value) >= {last}) {{ slider.value = 0; show(0); }}
  play.textContent = "pause";
  timer = setInterval(() => {{ document.getElementById("next").click(); if (Number(slider.value) >= {last}) pause(); }}, data.frame_ms);
}};
document.addEventListener("keydown", (e) => {{
  if (e.key === "ArrowLeft") document.getElementById("prev").click();
  if (e.key === "ArrowRight") document.getElementById("next").click();
  if (e.key === " " && e.target === document.body) {{ e.preventDefault(); play.click(); }}
}});
show(0);
</script></body></html>
"""


def _is_web(env_id: str) -> bool:
    from multiverse.envs.registry import RegistryError, lookup

    try:
        return lookup(env_id).kind == "web"
    except RegistryError:
        return False  # not installed here: only the stored images can be shown


def render_html(rec: RecordedEpisode, out: str | Path, *, images: bool = True, full_size: bool | None = None,
                frame_ms: int = 600) -> tuple[Path, bool]:
    """One self-contained HTML viewer of the episode; returns (path, images re-rendered).

    ``full_size``: full-size frames by a replay (None: for web tasks, whose observation images are thumbnails);
    ``frame_ms``: the play button's time per step."""
    full_size = _is_web(rec.episode.env_id) if full_size is None else full_size
    pngs, rerendered = episode_images(rec, full_size=full_size) if images else ([], False)
    data = _viewer_data(rec, pngs or [b""] * (rec.episode.length + 1), frame_ms)
    ep = rec.episode
    title = f"{ep.env_id} seed {ep.seed} (episode {rec.index})"
    meta = (f"agent {rec.meta.agent} &middot; {ep.length} steps &middot; return {ep.total_return:g} &middot; "
            f"{'success' if ep.success else 'no success'} &middot; parameters {html.escape(json.dumps(ep.randomization))}")
    payload = json.dumps(data).replace("</", "<\\/")  # no "</script>" can end the data block early
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(_PAGE.format(title=html.escape(title), meta=meta, last=ep.length, data=payload,
                                img_class="full" if full_size else ""), encoding="utf-8")
    return out, rerendered


def render(rec: RecordedEpisode, out: str | Path) -> tuple[Path, str]:
    """GIF or HTML by the file's suffix; returns (path, a note for the user)."""
    suffix = Path(out).suffix.lower()
    if suffix == ".gif":
        path, rerendered = render_gif(rec, out)
    elif suffix in (".html", ".htm"):
        full_size = _is_web(rec.episode.env_id)
        path, rerendered = render_html(rec, out, full_size=full_size)
        if full_size:
            return path, " (full-size page screenshots, taken by replaying the episode)"
    else:
        raise ValueError(f"--render writes .gif or .html, got {str(out)!r}")
    return path, " (images re-rendered by replaying the episode with pixels on)" if rerendered else ""
