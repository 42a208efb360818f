"""Recording and replay costs on one core, for a game and a web task; optionally, SFT's effect on success.

What it measures (one process pinned to one CPU; Chromium, started by this process, inherits the pin):

* env steps/s with a random agent (uniform over ``info["legal_actions"]``, ``<text>`` templates get a
  random word; resets inside the timed window), four ways: text only and with 84x84 pixels, each
  without recording and through :class:`~multiverse.agents.episodes.RecordEpisodes` writing Parquet
  (the writer's final flush and fsync are inside the window). ``overhead`` = 1 - recorded / plain;
  ``recorder_us_per_step`` = the time per step spent outside the env (agent + recorder) when recording
  minus the same without: the recorder's own cost, which a web task's noisy step times would hide;
* ``replay --verify`` steps/s on the text-only recording (re-make, reset, re-apply every action,
  compare every observation hash, legal-action list, reward and flag);
* dataset bytes per 1000 steps (the Parquet files, zstd), text only and with pixels (PNG per step).

Every figure is the best of ``--repeats`` windows of ``--seconds`` (the median is stored too).

``--sft`` adds the warm-start experiment (CPU-heavy: the default model, minutes): greedy held-out
success of the packaged default model zero-shot, then after behaviour cloning (LoRA) on recorded
oracle episodes of the training split, on the same held-out seeds.

    python bench/record_replay.py [--seconds S] [--web-seconds S] [--repeats N] [--game ID] [--web ID] [--cpu N]
    python bench/record_replay.py --sft [--sft-env ID] [--sft-episodes N] [--eval-episodes N] [--epochs N]

Writes ``bench/results/record_replay.json`` (``--sft``: its ``sft`` entry is added to the file) and prints a table.
"""

from __future__ import annotations

import os

os.environ["OMP_NUM_THREADS"] = "1"  # before numpy and torch are imported
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _common
from _common import pin_to_one_cpu

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_OUT = BENCH_DIR / "results" / "record_replay.json"
DISTS = ("multiverse-rl", "gymnasium", "numpy", "pygame", "playwright", "pyarrow", "pillow", "torch", "transformers")


def _timed(env: Any) -> Any:
    """``env`` in a wrapper that adds the seconds spent inside its reset/step to ``.env_seconds``."""
    import gymnasium as gym

    class Timed(gym.Wrapper):
        env_seconds = 0.0

        def reset(self, **kw: Any) -> Any:
            t = time.perf_counter()
            try:
                return self.env.reset(**kw)
            finally:
                self.env_seconds += time.perf_counter() - t

        def step(self, action: Any) -> Any:
            t = time.perf_counter()
            try:
                return self.env.step(action)
            finally:
                self.env_seconds += time.perf_counter() - t

    return Timed(env)


def _steps_window(env_id: str, seconds: float, pixels: bool, record_to: Path | None, seed: int) -> dict[str, Any]:
    """Random-agent steps for ``seconds`` (whole episodes), optionally recorded; steps/s over the window, and the
    time per step spent outside the env itself (the agent, and the recorder when recording)."""
    import multiverse.envs as menvs
    from multiverse.agents.episodes import EpisodeMeta, EpisodeWriter, RecordEpisodes
    from multiverse.envs.play import random_agent

    timed = env = _timed(menvs.make(env_id, pixels=pixels))
    env.reset(seed=seed)  # warm: the first reset launches Chromium / builds fonts
    timed.env_seconds = 0.0
    writer = EpisodeWriter(record_to) if record_to is not None else None
    if writer is not None:
        env = RecordEpisodes(env, writer, EpisodeMeta(agent="random"))
    agent = random_agent(seed)
    steps = episodes = 0
    start = time.perf_counter()
    try:
        while time.perf_counter() - start < seconds:
            obs, info = env.reset(seed=seed + episodes)
            done = False
            while not done:
                obs, _, terminated, truncated, info = env.step(agent(env, obs, info))
                done = terminated or truncated
                steps += 1
            episodes += 1
        if writer is not None:
            writer.close()
        elapsed = time.perf_counter() - start
    finally:
        env.close()
    return {"steps": steps, "episodes": episodes, "seconds": elapsed, "steps_per_s": steps / elapsed,
            "outside_env_us_per_step": 1e6 * (elapsed - timed.env_seconds) / max(steps, 1)}


def _best(windows: list[dict[str, Any]]) -> dict[str, Any]:
    rates = [w["steps_per_s"] for w in windows]
    return {"steps_per_s": max(rates), "median_steps_per_s": statistics.median(rates), "windows": windows}


def bench_env(env_id: str, seconds: float, repeats: int, work: Path) -> dict[str, Any]:
    from multiverse.agents.episodes import read_episodes
    from multiverse.agents.replay import verify_dataset

    out: dict[str, Any] = {"env": env_id}
    for pixels in (False, True):
        key = "pixels" if pixels else "text"
        plain, recorded, sizes, verify = [], [], [], []
        for r in range(repeats):
            seed = 1000 * r
            plain.append(_steps_window(env_id, seconds, pixels, None, seed))
            folder = work / f"{env_id.replace('/', '_')}-{key}-{r}"
            w = _steps_window(env_id, seconds, pixels, folder, seed)
            recorded.append(w)
            size = sum(p.stat().st_size for p in folder.glob("*.parquet"))
            sizes.append({"bytes": size, "steps": w["steps"], "bytes_per_1k_steps": 1000 * size / max(w["steps"], 1)})
            if not pixels:
                report = verify_dataset(read_episodes(folder))
                if not report.ok:
                    raise RuntimeError(f"{env_id}: the recording did not replay: {report.divergences[0].describe()}")
                verify.append({"steps": report.steps, "episodes": report.episodes, "seconds": report.seconds,
                               "steps_per_s": report.steps / report.seconds})
            shutil.rmtree(folder)
        best_plain, best_rec = _best(plain), _best(recorded)
        outside = {name: min(w["outside_env_us_per_step"] for w in ws) for name, ws in (("plain", plain),
                                                                                    ("recorded", recorded))}
        out[key] = {
            "plain": best_plain,
            "recorded": best_rec,
            "overhead": 1 - best_rec["steps_per_s"] / best_plain["steps_per_s"],
            # the recorder's own cost, free of the env's noise: time outside the env per step, recorded - plain
            "recorder_us_per_step": outside["recorded"] - outside["plain"],
            "bytes_per_1k_steps": statistics.median(s["bytes_per_1k_steps"] for s in sizes),
            "sizes": sizes,
        }
        if verify:
            out["replay_verify"] = _best(verify)
    return out


# --------------------------------------------------------------------------- SFT warm start


def bench_sft(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Held-out greedy success of the default model, zero-shot and after BC on oracle episodes."""
    from multiverse.agents.episodes import EpisodeWriter, read_episodes
    from multiverse.agents.learner import Learner
    from multiverse.agents.replay import record_env
    from multiverse.agents.sft import action_probability, bc_samples, train_bc
    from multiverse.agents.train_local import evaluate
    from multiverse.launch.config import load_config
    from multiverse.launch.train import learner_config

    config = load_config("local", [f"envs.train={{{args.sft_env}: 1}}", "envs.heldout_ids=[]", "envs.params={}",
                                   f"algorithm.lr={args.sft_lr}", f"algorithm.minibatch={args.sft_minibatch}"],
                         check_envs=True)
    params = json.loads(args.sft_params)
    t0 = time.perf_counter()
    with EpisodeWriter(work / "oracle") as writer:
        record_env(args.sft_env, writer, episodes=args.sft_episodes, agent="oracle", seed=0, split="train",
                   params=params)
    learner = Learner(learner_config(config))
    samples, skipped = bc_samples(learner.policy, read_episodes(work / "oracle"))
    t_record = time.perf_counter() - t0

    def held_out() -> dict[str, float]:
        return evaluate(learner.policy, [args.sft_env], episodes=args.eval_episodes, split="heldout",
                        env_params={args.sft_env: params} if params else None, envs_per_id=8)[args.sft_env]

    t1 = time.perf_counter()
    zero = held_out()
    p_before = action_probability(learner.policy, samples)
    t_eval = time.perf_counter() - t1
    t2 = time.perf_counter()
    history = train_bc(learner, samples, epochs=args.epochs, minibatch=config.algorithm.minibatch, seed=0,
                       on_epoch=lambda r: print(f"  sft epoch {int(r['epoch'])}: bc_loss {r['bc_loss']:.4f} "
                                                f"p(action) {r['p_action']:.3f}", flush=True))
    t_train = time.perf_counter() - t2
    p_after = action_probability(learner.policy, samples)
    after = held_out()
    return {
        "env": args.sft_env, "pinned_params": params, "model": config.model.name, "lora": config.model.lora, "lr": args.sft_lr,
        "oracle_episodes": args.sft_episodes, "train_steps": len(samples), "skipped_steps": skipped,
        "epochs": args.epochs, "minibatch": config.algorithm.minibatch, "optimizer_steps": learner.step,
        "eval": {"split": "heldout", "episodes": args.eval_episodes, "seeds": "1000000..", "greedy": True},
        "zero_shot": zero, "after_sft": after,
        "p_oracle_action_train": {"before": p_before, "after": p_after},
        "bc_loss_by_epoch": [h["bc_loss"] for h in history],
        "seconds": {"record": t_record, "eval_each": t_eval, "train": t_train},
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=3.0, help="length of each timed window for the game (default 3)")
    p.add_argument("--web-seconds", type=float, default=10.0,
                   help="length of each timed window for the web task (default 10: a reset alone takes ~0.5 s here)")
    p.add_argument("--repeats", type=int, default=3, help="windows per figure; the best is reported (default 3)")
    p.add_argument("--game", default="games/Catch-v0")
    p.add_argument("--web", default="web/LoginForm-v0")
    p.add_argument("--cpu", type=int, default=None, help="CPU to pin to (default: the least busy)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument("--sft", action="store_true", help="run only the SFT warm-start experiment (minutes)")
    p.add_argument("--sft-env", default="games/Catch-v0")
    p.add_argument("--sft-params", default='{"balls": 1, "width": 5, "height": 6}',
                   help="JSON of pinned parameters (default: the small Catch board of bench/policy_learning.py)")
    p.add_argument("--sft-episodes", type=int, default=32, help="oracle episodes recorded for BC (train split)")
    p.add_argument("--eval-episodes", type=int, default=32, help="held-out greedy episodes, before and after")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--sft-lr", type=float, default=1e-3, help="AdamW lr of the LoRA adapters (default 1e-3)")
    p.add_argument("--sft-minibatch", type=int, default=16, help="recorded steps per optimizer step (default 16)")
    args = p.parse_args(argv)
    cpu = pin_to_one_cpu(args.cpu)
    work = Path(tempfile.mkdtemp(prefix="bench-record-replay-"))
    try:
        if args.sft:
            result = json.loads(args.out.read_text()) if args.out.is_file() else {}
            result["sft"] = {"machine": _common.machine_info(cpu, DISTS), **bench_sft(args, work)}
            s = result["sft"]
            print(f"{s['env']} held-out success (greedy, {args.eval_episodes} episodes): zero-shot "
                  f"{s['zero_shot']['success']:.3f} -> after SFT {s['after_sft']['success']:.3f}; "
                  f"p(oracle action) on the training steps {s['p_oracle_action_train']['before']:.3f} -> "
                  f"{s['p_oracle_action_train']['after']:.3f}")
        else:
            machine = _common.machine_info(cpu, DISTS)
            envs = [bench_env(args.game, args.seconds, args.repeats, work),
                    bench_env(args.web, args.web_seconds, args.repeats, work)]
            result = {"machine": machine, "seconds": {"game": args.seconds, "web": args.web_seconds},
                      "repeats": args.repeats, "agent": "random", "envs": envs,
                      "command": "python bench/record_replay.py " + " ".join(argv if argv is not None else sys.argv[1:])}
            if args.out.is_file():
                old = json.loads(args.out.read_text())
                if "sft" in old:
                    result["sft"] = old["sft"]
            print(f"{'env':22} {'mode':7} {'plain st/s':>11} {'recorded':>10} {'overhead':>9} {'rec us/st':>10} "
                  f"{'B/1k steps':>11} {'verify st/s':>12}")
            for e in envs:
                for key in ("text", "pixels"):
                    m = e[key]
                    verify = f"{e['replay_verify']['steps_per_s']:12.0f}" if key == "text" else ""
                    print(f"{e['env']:22} {key:7} {m['plain']['steps_per_s']:11.0f} {m['recorded']['steps_per_s']:10.0f} "
                          f"{m['overhead']:9.1%} {m['recorder_us_per_step']:10.0f} {m['bytes_per_1k_steps']:11.0f} {verify}")
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n")
        print(f"wrote {args.out}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
