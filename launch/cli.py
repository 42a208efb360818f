"""The ``multiverse`` command.

    multiverse envs list [--kind game|web] [--json]
    multiverse envs show ID [--json]
    multiverse envs check ID [ID ...] | --all [--kind K] [--seeds N]
    multiverse play ID --agent random|oracle|human --episodes N --seed S [--split heldout] [--param NAME=VALUE]
    multiverse demo [--episodes N]
    multiverse train --config FILE [KEY=VALUE ...] | --resume RUN_DIR [--checkpoint iter_N] [KEY=VALUE ...]
    multiverse plot RUN_DIR
    multiverse submit --config FILE [KEY=VALUE ...] [--address URL] [--no-wait] [--pip REQ] [--py-modules PATH]
    multiverse record --env ID [--env ID ...] | --all  --agent random|oracle|checkpoint:PATH --episodes N --out DIR
    multiverse replay DIR [--episode K ...] [--verify] [--render OUT.gif|OUT.html]
    multiverse export minari DIR --out NAME
    multiverse sft --episodes DIR --config FILE [KEY=VALUE ...] --out CHECKPOINT
    multiverse experiment generalization --config FILE --out DIR [--budget X] [KEY=VALUE ...]

Bad input (an unknown env id, a bad parameter or option) ends with one line
naming what was wrong and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

# Wide enough that tables stay readable in CI logs and pipes (rich assumes 80 there).
console = Console(width=None if sys.stdout.isatty() else 160)


class UsageError(Exception):
    """Bad input from the user: printed as one line, exit status 2."""


# --------------------------------------------------------------------------- envs


def cmd_envs_list(args: argparse.Namespace) -> int:
    from multiverse import envs

    specs = envs.list_envs(kind=args.kind)
    if args.json:
        rows = [
            {"id": s.id, "kind": s.kind, "tags": list(s.tags), "max_episode_steps": s.max_episode_steps, "source": s.source}
            for s in specs
        ]
        print(json.dumps(rows, indent=2))
        return 0
    table = Table(title=f"{len(specs)} environments")
    for col in ("id", "kind", "steps", "tags", "from"):
        table.add_column(col)
    for s in specs:
        table.add_row(s.id, s.kind, str(s.max_episode_steps), ", ".join(s.tags), s.source)
    console.print(table)
    return 0


def cmd_envs_show(args: argparse.Namespace) -> int:
    import inspect

    from multiverse import envs
    from multiverse.envs.registry import entry_point_class

    spec = envs.spec(args.id)
    # the env's docstring is its spec (a browser task's: the task's); a plugin's factory function may have neither
    cls = entry_point_class(envs.lookup(args.id))
    spec_doc = getattr(cls, "spec_doc", None)
    spec["doc"] = spec_doc(**spec["kwargs"]) if spec_doc else inspect.getdoc(cls) or spec["summary"]
    if args.json:
        print(json.dumps(spec, indent=2))
        return 0
    console.print(f"[bold]{spec['id']}[/bold]  ({spec['kind']}, {spec['entry_point']}, from {spec['source']})")
    console.print(f"max_episode_steps: {spec['max_episode_steps']}   tags: {', '.join(spec['tags'])}")
    if "actions" in spec:
        console.print(f"actions: {', '.join(spec['actions'])}")
    if spec.get("oracle_success_rate") is not None:
        console.print(f"oracle success (declared): >= {spec['oracle_success_rate']:.0%}")
    console.print()
    console.print(spec["doc"], markup=False, highlight=False)
    table = Table(title="randomization")
    for col in ("parameter", "nominal", "train", "held-out", "doc"):
        table.add_column(col)
    space = envs.randomization_space(args.id)
    for name, p in space.params.items():
        table.add_row(name, repr(getattr(space.nominal, name)), p.train.describe(), p.heldout.describe(), p.doc)
    console.print(table)
    return 0


def cmd_envs_check(args: argparse.Namespace) -> int:
    from multiverse import envs
    from multiverse.envs.checks import check_env_id

    if args.all == bool(args.ids):
        raise UsageError("give env ids or --all (not both); see multiverse envs list")
    ids = [s.id for s in envs.list_envs(kind=args.kind)] if args.all else args.ids
    for env_id in ids:
        envs.lookup(env_id)  # unknown ids fail before anything runs
    table = Table(title="multiverse envs check")
    for col in ("env", "check", "result", "detail", "s"):
        table.add_column(col, overflow="fold")
    failed = 0
    for env_id in ids:
        for r in check_env_id(env_id, seeds=args.seeds, only=args.only):
            failed += not r.ok
            table.add_row(r.env_id, r.check, "[green]ok[/green]" if r.ok else "[red]FAIL[/red]", r.detail, f"{r.seconds:.1f}")
            if args.verbose:
                console.print(f"{r.env_id} {r.check}: {'ok' if r.ok else 'FAIL'} {r.detail}")
    console.print(table)
    console.print(f"{len(ids)} envs, {failed} failed checks" if failed else f"{len(ids)} envs: all checks passed")
    return 1 if failed else 0


# --------------------------------------------------------------------------- play and demo


def _parse_params(pairs: list[str] | None) -> dict[str, Any]:
    """``["width=9", "palette=mono"]`` -> ``{"width": 9, "palette": "mono"}`` (values as JSON, else strings)."""
    out: dict[str, Any] = {}
    for pair in pairs or []:
        name, sep, raw = pair.partition("=")
        if not sep or not name:
            raise UsageError(f"--param takes NAME=VALUE, got {pair!r}")
        try:
            out[name] = json.loads(raw)
        except json.JSONDecodeError:
            out[name] = raw
    return out


def _play(
    env_id: str, agent_name: str, episodes: int, seed: int, split: str, pixels: bool = False,
    params: dict[str, Any] | None = None,
) -> dict[str, Any]:
    from multiverse import envs
    from multiverse.envs.play import make_agent, play_episode

    env = envs.make(env_id, pixels=pixels)
    agent = make_agent(agent_name, seed)
    stats = []
    try:
        for k in range(episodes):
            stats.append(play_episode(env, agent, seed=seed + k, options={"split": split, "params": params or {}}))
    finally:
        env.close()
    return _summary(env_id, agent_name, split, stats)


def _summary(env_id: str, agent_name: str, split: str, stats: list[Any]) -> dict[str, Any]:
    steps = sum(s.steps for s in stats)
    seconds = sum(s.seconds for s in stats)
    return {
        "env": env_id,
        "agent": agent_name,
        "split": split,
        "episodes": stats,
        "success_rate": sum(s.success for s in stats) / len(stats),
        "mean_return": sum(s.total_return for s in stats) / len(stats),
        "steps_per_s": steps / seconds if seconds > 0 else float("inf"),
    }


def cmd_play(args: argparse.Namespace) -> int:
    if args.episodes < 1:
        raise UsageError(f"--episodes must be >= 1, got {args.episodes}")
    if args.agent == "human":  # a person at the keyboard: a pygame window or Chromium where a display is, else the terminal
        from multiverse.envs.human import play_human

        stats = play_human(args.id, episodes=args.episodes, seed=args.seed, terminal=args.terminal,
                           options={"split": args.split, "params": _parse_params(args.param)})
        if not stats:
            console.print(f"{args.id}: no episode played")
            return 0
        result = _summary(args.id, args.agent, args.split, stats)
    else:
        result = _play(args.id, args.agent, args.episodes, args.seed, args.split, args.pixels, _parse_params(args.param))
    for s in result["episodes"]:
        end = "quit" if s.quit else "terminated" if s.terminated else "truncated"
        console.print(
            f"seed {s.seed}: {'success' if s.success else 'failure'}  return {s.total_return:+.2f}  "
            f"steps {s.steps}  {end}  params {json.dumps(s.randomization)}"
        )
    rate = "" if args.agent == "human" else f", {result['steps_per_s']:.0f} steps/s"
    console.print(
        f"{args.id} {args.agent} ({args.split}): success {result['success_rate']:.0%}, "
        f"mean return {result['mean_return']:+.2f}{rate}"
    )
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Oracle and random episodes over every registered env: the main job until training exists."""
    from multiverse import envs

    table = Table(title=f"multiverse demo: {args.episodes} episodes per env and agent (train split)")
    for col in ("env", "agent", "success", "mean return", "steps/s"):
        table.add_column(col, justify="right" if col != "env" else "left")
    start = time.perf_counter()
    families = args.family or ["games", "web"]
    for spec in envs.list_envs(kind=args.kind):
        if spec.family not in families:
            continue
        for agent in ("oracle", "random"):
            r = _play(spec.id, agent, args.episodes, args.seed, "train")
            table.add_row(spec.id, agent, f"{r['success_rate']:.0%}", f"{r['mean_return']:+.2f}", f"{r['steps_per_s']:,.0f}")
    console.print(table)
    console.print(f"done in {time.perf_counter() - start:.1f} s")
    return 0


# --------------------------------------------------------------------------- train, plot, submit


def cmd_train(args: argparse.Namespace) -> int:
    from multiverse.agents.prompt import PromptTooLongError
    from multiverse.launch.config import ConfigError, load_config
    from multiverse.launch.train import train
    from multiverse.launch.workers import WorkerPoolError

    if (args.config is None) == (args.resume is None):
        raise UsageError("give --config FILE (a new run) or --resume RUN_DIR (continue one), not both")
    if args.checkpoint is not None and args.resume is None:
        raise UsageError("--checkpoint picks one of --resume RUN_DIR's checkpoints; give --resume RUN_DIR too")
    overrides = list(args.overrides) + ([f"ray.address={args.address}"] if args.address else [])
    try:
        if args.resume is not None:
            cfg_file = Path(args.resume) / "config.yaml"
            if not cfg_file.is_file():
                raise UsageError(f"{args.resume} is not a run dir (no config.yaml in it)")
            config = load_config(cfg_file, overrides)
        else:
            config = load_config(args.config, overrides)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    try:
        train(config, resume=args.resume, resume_checkpoint=args.checkpoint, config_name=args.config)
    except (FileExistsError, FileNotFoundError, ConfigError) as exc:
        raise UsageError(str(exc)) from None
    except (PromptTooLongError, WorkerPoolError) as exc:  # found in a worker, after the checks before the start
        cause = getattr(exc, "cause", None) or exc  # a worker's error comes wrapped in Ray's RayTaskError
        field = "model.max_prompt_tokens: " if isinstance(cause, PromptTooLongError) else ""
        raise UsageError(field + str(cause).splitlines()[0]) from None
    return 0


def cmd_experiment(args: argparse.Namespace) -> int:
    from multiverse.launch.config import ConfigError
    from multiverse.launch.experiment import load_experiment, run_generalization

    try:
        exp = load_experiment(args.config, args.overrides, budget=args.budget)
        result = run_generalization(exp, args.out, log=console.print)
    except (ConfigError, FileExistsError, FileNotFoundError) as exc:
        raise UsageError(str(exc)) from None
    gain = result["heldout_gain_vs_zero_shot_points"]
    console.print(f"report: {Path(args.out) / 'report.md'}  (held-out-variant gain vs zero-shot: "
                  f"{'n/a' if gain is None else f'{gain:+.1f} points'}; goal {'met' if result['goal_met'] else 'not met'})")
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from multiverse.launch.plot import plot_run

    try:
        paths = plot_run(args.run_dir)
    except FileNotFoundError as exc:
        raise UsageError(str(exc)) from None
    for p in paths:
        console.print(str(p))
    return 0


def cmd_submit(args: argparse.Namespace) -> int:
    from multiverse.launch.cluster import submit
    from multiverse.launch.config import ConfigError

    try:
        done = submit(args.config, args.overrides, address=args.address, working_dir=args.working_dir,
                      wait=not args.no_wait, submission_id=args.submission_id, pip=args.pip or (),
                      py_modules=args.py_modules or ())
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    if not done.submitted:
        why = done.why or f"ray job submit exited with status {done.code}; its output above says why"
        print(f"multiverse submit: no job was submitted: {why}", file=sys.stderr)
        return done.code or 1
    if args.no_wait:
        outcome = f"submitted; follow it with ray job logs --follow {done.job} (ray job status {done.job})"
    else:
        outcome = "succeeded" if done.code == 0 else f"failed (exit status {done.code}; ray job logs {done.job})"
    print(f"multiverse submit: job {done.job} {outcome}", file=sys.stderr)
    return done.code


# --------------------------------------------------------------------------- record, replay, export, sft


def _learner_folder(path: str) -> str:
    """A learner checkpoint from what a user has at hand: the learner folder itself, a run's checkpoint
    (``RUN_DIR/checkpoints/iter_N``, whose ``learner/`` it is) or a run dir (its newest complete checkpoint)."""
    from multiverse.launch.rundir import RunDir

    folder = Path(path).expanduser()
    if (folder / "learner.json").is_file() or not folder.is_dir():
        return path  # a learner folder, or nothing: read_meta names what is wrong
    if (folder / "learner" / "learner.json").is_file():
        return str(folder / "learner")
    if (folder / "checkpoints").is_dir() or (folder / "config.yaml").is_file():
        latest = RunDir(folder).latest_checkpoint()
        if latest is None:
            raise UsageError(f"run dir {path} has no complete checkpoint yet (under {folder / 'checkpoints'}); "
                             f"set run.checkpoint_every or wait for the run's first checkpoint")
        return str(latest / "learner")
    return path


def _policy_from_checkpoint(path: str) -> tuple[Any, dict[str, Any]]:
    from multiverse.agents.learner import CheckpointError, Learner

    path = _learner_folder(path)
    try:
        meta = Learner.read_meta(path)
        learner = Learner.from_checkpoint(path)
    except CheckpointError as exc:
        raise UsageError(str(exc)) from None
    identity = {"checkpoint": str(Path(path).resolve()), "step": meta["step"], "model": meta["config"]["model"]["name"],
                "weights_sha256": meta["files"]["weights.safetensors"]["sha256"]}
    return learner.policy, identity


def cmd_record(args: argparse.Namespace) -> int:
    from multiverse import envs
    from multiverse.agents.episodes import EpisodeWriter
    from multiverse.agents.replay import record_env

    if bool(args.all) == bool(args.env):
        raise UsageError("give --env ID (repeatable) or --all, not both; see multiverse envs list")
    if args.episodes < 1:
        raise UsageError(f"--episodes must be >= 1, got {args.episodes}")
    if not args.max_file_mb > 0:
        raise UsageError(f"--max-file-mb must be > 0, got {args.max_file_mb}")
    ids = [s.id for s in envs.list_envs(kind=args.kind)] if args.all else args.env
    for env_id in ids:
        envs.lookup(env_id)  # unknown ids fail before anything is recorded
    policy, identity, agent = None, None, args.agent
    if agent.startswith("checkpoint:"):
        policy, identity = _policy_from_checkpoint(agent.split(":", 1)[1])
        agent = "checkpoint"
    elif agent not in ("random", "oracle"):
        raise UsageError(f"--agent must be random, oracle or checkpoint:PATH, got {agent!r}")
    start = time.perf_counter()
    steps = 0
    with EpisodeWriter(args.out, max_file_bytes=max(1, int(args.max_file_mb * 2**20))) as writer:
        for env_id in ids:
            eps = record_env(env_id, writer, episodes=args.episodes, agent=agent, seed=args.seed, split=args.split,
                             pixels=args.pixels, params=_parse_params(args.param), policy=policy,
                             policy_identity=identity, greedy=args.greedy)
            steps += sum(e.length for e in eps)
            console.print(f"{env_id}: {len(eps)} episodes, success {sum(e.success for e in eps) / max(len(eps), 1):.0%}, "
                          f"{sum(e.length for e in eps)} steps")
    console.print(f"recorded {writer.episodes_written} episodes ({steps} steps) in {len(writer.files)} files under "
                  f"{args.out} in {time.perf_counter() - start:.1f} s")
    return 0


def _on_bad_file(args: argparse.Namespace) -> Any:
    """With --skip-bad: a bad file goes to args.bad_files (file -> why) instead of ending the command."""
    return vars(args).setdefault("bad_files", {}).setdefault if getattr(args, "skip_bad", False) else None


def _read(args: argparse.Namespace, path: str, indices: Any = None, *, steps: bool = True) -> Any:
    from multiverse.agents.episodes import read_episodes

    return read_episodes(path, indices, steps=steps, on_bad_file=_on_bad_file(args))


def _episodes_arg(args: argparse.Namespace) -> Any:
    return _read(args, args.dir, args.episode)


def _data_error(exc: Exception, args: argparse.Namespace) -> UsageError:
    """A dataset error as one line; a bad file's says that --skip-bad skips it (where the command has it)."""
    if getattr(exc, "file", None) is not None and hasattr(args, "skip_bad"):
        return UsageError(f"{exc}; --skip-bad skips it and reads the other files")
    return UsageError(str(exc))


def _skipped_files(args: argparse.Namespace) -> int:
    """Name each file --skip-bad left out (plain print: paths and messages stay whole on one line); their count."""
    bad = getattr(args, "bad_files", {})
    for why in bad.values():
        print(f"skipped {why}")
    return len(bad)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def cmd_replay(args: argparse.Namespace) -> int:
    from multiverse.agents.episodes import EpisodeDataError
    from multiverse.agents.replay import ReplayRefused, check_replayable, verify_dataset
    from multiverse.agents.summary import step_summary, summary_mismatch

    try:
        if args.render:
            from multiverse.agents.render import render

            if Path(args.render).suffix.lower() not in (".gif", ".html", ".htm"):
                raise UsageError(f"--render writes OUT.gif or OUT.html, got {args.render!r}")

            episodes = list(_episodes_arg(args))
            if len(episodes) != 1:
                raise UsageError(f"--render draws one episode; pick it with --episode K ({len(episodes)} selected)")
            path, note = render(episodes[0], args.render)
            console.print(f"wrote {path}{note}")
            if not args.verify:
                _skipped_files(args)
                return 0
        if not args.verify:
            # what the steps say (their rewards, flags and last info are read, not the texts or images): an edited
            # summary column is shown as it really is, and named below the table
            table = Table(title=f"episodes in {args.dir}")
            for col in ("#", "env", "seed", "agent", "steps", "return", "success", "file"):
                table.add_column(col)
            notes = []
            for rec in _read(args, args.dir, args.episode, steps=False):
                ep, s = rec.episode, step_summary(rec)
                success = ep.success if s.success is None else s.success
                table.add_row(str(rec.index), ep.env_id, str(ep.seed), rec.meta.agent, str(s.steps),
                              f"{s.total_return:+.2f}", "yes" if success else "no", f"{rec.file.name}:{rec.row}")
                mismatch = summary_mismatch(rec)
                if mismatch is not None:
                    notes.append(f"episode {rec.index} ({rec.file.name}) {mismatch.message}; the table shows what its "
                                 f"steps say (replay --verify fails it)")
            console.print(table)
            for note in notes:
                print(note)
            n_bad = _skipped_files(args)
            if n_bad:
                print(f"{_plural(n_bad, 'unreadable file')} skipped (--skip-bad)")
            return 0
        # refusals before any replay, without reading the steps
        check_replayable(args.dir, args.episode, on_bad_file=_on_bad_file(args))
        report = verify_dataset(_episodes_arg(args), stop_at_first=not args.all_divergences)
    except (EpisodeDataError, ReplayRefused) as exc:
        raise _data_error(exc, args) from None
    for note in report.skipped:
        console.print(f"skipped {note}")
    n_bad = _skipped_files(args)
    for div in report.divergences:
        print(f"DIVERGENCE {div.describe()}")
    rate = report.steps / report.seconds if report.seconds > 0 else float("inf")
    status = "FAILED" if report.divergences else "ok"
    console.print(f"replay --verify {status}: {report.episodes} episodes, {report.steps} steps "
                  f"({rate:.0f} steps/s), {len(report.divergences)} divergent"
                  + (f", {_plural(n_bad, 'unreadable file')} skipped (--skip-bad)" if n_bad else ""))
    return 1 if report.divergences else 0


def cmd_export(args: argparse.Namespace) -> int:
    from multiverse.agents.episodes import EpisodeDataError
    from multiverse.agents.export import to_minari

    try:
        datasets = to_minari(_episodes_arg(args), args.out, path=args.path)
    except EpisodeDataError as exc:
        raise UsageError(str(exc)) from None
    except ValueError as exc:  # a bad or taken dataset id
        raise UsageError(str(exc).splitlines()[0]) from None
    where = args.path or os.environ.get("MINARI_DATASETS_PATH") or "~/.minari/datasets"
    if len(datasets) > 1:
        console.print(f"{len(datasets)} env ids: one Minari dataset per env id (Minari keeps one env spec per dataset)")
    for name, dataset in datasets.items():
        console.print(f"wrote Minari dataset {name!r} under {where}: {dataset.total_episodes} episodes, "
                      f"{dataset.total_steps} steps (minari.load_dataset({name!r}))")
    return 0


def cmd_sft(args: argparse.Namespace) -> int:
    from multiverse.agents.episodes import EpisodeDataError
    from multiverse.agents.summary import summary_mismatch
    from multiverse.launch.config import ConfigError, load_config

    if args.epochs < 1:
        raise UsageError(f"--epochs must be >= 1, got {args.epochs}")
    try:
        config = load_config(args.config, args.overrides, check_envs=False)
        episodes = list(_read(args, args.episodes))
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    except EpisodeDataError as exc:
        raise _data_error(exc, args) from None
    # an episode whose summary columns disagree with its steps was edited or damaged: not trained on unseen
    faked = [(rec, m) for rec in episodes if (m := summary_mismatch(rec)) is not None]
    if faked and not args.skip_bad:
        rec, m = faked[0]
        raise UsageError(f"episode {rec.index} ({rec.file.name}) {m.message}: it was edited or is damaged "
                         f"(`multiverse replay {args.episodes} --verify` checks every episode); --skip-bad leaves such "
                         f"episodes out")
    n_bad = _skipped_files(args)
    for rec, m in faked:
        print(f"skipped episode {rec.index} ({rec.file.name}) {m.message}")
    if n_bad or faked:
        print(f"skipped {_plural(n_bad, 'unreadable file')} and {_plural(len(faked), 'episode')} whose summary "
              f"disagrees with its steps (--skip-bad)")
    left_out = {id(rec) for rec, _ in faked}
    episodes = [rec for rec in episodes if id(rec) not in left_out]
    from multiverse.agents.learner import Learner
    from multiverse.agents.sft import action_probability, bc_samples, train_bc
    from multiverse.launch.train import learner_config

    start = time.perf_counter()
    learner = Learner(learner_config(config))
    samples, skipped = bc_samples(learner.policy, episodes, only_success=args.only_success)
    if not samples:
        raise UsageError(f"no recorded step of {args.episodes} can be trained on ({skipped} skipped); record episodes "
                         f"whose actions are legal, e.g. with --agent oracle")
    before = action_probability(learner.policy, samples)
    console.print(f"sft: {len(samples)} steps from {len(episodes)} episodes ({skipped} skipped); model "
                  f"{config.model.name} ({'LoRA' if config.model.lora else 'full'}); p(recorded action) {before:.3f}")
    train_bc(learner, samples, epochs=args.epochs, minibatch=config.algorithm.minibatch, seed=config.run.seed,
             on_epoch=lambda r: console.print(f"epoch {int(r['epoch'])}/{args.epochs}  bc_loss {r['bc_loss']:.4f}  "
                                              f"p(action) {r['p_action']:.3f}"))
    after = action_probability(learner.policy, samples)
    path = learner.save(args.out)
    console.print(f"p(recorded action) {before:.3f} -> {after:.3f}; checkpoint {path} "
                  f"({time.perf_counter() - start:.0f} s; record with --agent checkpoint:{path})")
    return 0


def _train_help() -> str:
    from multiverse.launch.config import describe_fields

    return (
        "Overrides are KEY=VALUE with dotted keys; values are YAML (numbers, true/false, null, [lists], {maps}).\n"
        "  multiverse train --config launch/configs/smoke.yaml run.iterations=3 rollout.workers=1\n"
        "  multiverse train --config local envs.train='{games/Catch-v0: 2, web/ClickButton-v0: 1}'\n"
        "  multiverse train --resume runs/local-20250101-120000-42 run.iterations=40\n\n"
        "Config fields:\n" + describe_fields()
    )


# --------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="multiverse", description="Universe, revisited: envs, one LM policy, RL on Ray.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    envs_p = sub.add_parser("envs", help="list, show and check environments")
    envs_sub = envs_p.add_subparsers(dest="envs_command", required=True, metavar="SUBCOMMAND")
    p = envs_sub.add_parser("list", help="list registered environments")
    p.add_argument("--kind", choices=["game", "web"], help="only this kind")
    p.add_argument("--json", action="store_true", help="a JSON array of {id, kind, tags, ...}")
    p.set_defaults(func=cmd_envs_list)
    p = envs_sub.add_parser("show", help="an env's spec and randomization space")
    p.add_argument("id")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_envs_show)
    p = envs_sub.add_parser("check", help="run the author checks; exit 0 only if all pass")
    p.add_argument("ids", nargs="*", metavar="ID")
    p.add_argument("--all", action="store_true", help="every registered env")
    p.add_argument("--kind", choices=["game", "web"], help="with --all: only this kind")
    p.add_argument("--seeds", type=int, default=20, help="seeds for the oracle check (default 20)")
    p.add_argument("--only", action="append", metavar="CHECK", help="run only this check (repeatable)")
    p.add_argument("--verbose", "-v", action="store_true", help="print each result as it finishes")
    p.set_defaults(func=cmd_envs_check)

    p = sub.add_parser("play", help="play episodes: a scripted agent, or yourself (--agent human)",
                       description="--agent human: a game in a pygame window (arrows/WASD, space, 1-9; q quits) and a "
                       "web task in a visible Chromium with the actions typed here, where a display is; else (or with "
                       "--terminal) in the terminal: type an action, its number, or q.")
    p.add_argument("id")
    p.add_argument("--agent", choices=["random", "oracle", "human"], default="random")
    p.add_argument("--terminal", action="store_true", help="human: play in the terminal even where a window could open")
    p.add_argument("--episodes", type=int, default=5)
    p.add_argument("--seed", type=int, default=0, help="episode k uses seed S+k")
    p.add_argument("--split", choices=["train", "heldout"], default="train")
    p.add_argument("--pixels", action="store_true", help="render pixel observations too")
    p.add_argument("--param", action="append", metavar="NAME=VALUE", help="pin a randomized parameter (repeatable)")
    p.set_defaults(func=cmd_play)

    p = sub.add_parser("demo", help="oracle and random episodes over every env, as a table")
    p.add_argument("--episodes", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--kind", choices=["game", "web"])
    p.add_argument("--family", action="append", help="env families to play (repeatable; default: games and web)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("train", help="train one policy jointly across envs on Ray (see train --help)",
                       description="Train one language-model policy jointly across envs on Ray rollout workers. "
                       "Writes a run dir: config.yaml, metrics.csv, eval.csv, evals/, tb/ (TensorBoard), checkpoints/.",
                       epilog=_train_help(), formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", help="a YAML config, or a shipped one by name: smoke, local, cluster")
    p.add_argument("--resume", metavar="RUN_DIR",
                   help="continue a run from its newest checkpoint whose files match their recorded sha256")
    p.add_argument("--checkpoint", metavar="iter_N", help="with --resume: continue from this checkpoint (iter_N or N)")
    p.add_argument("--address", help="Ray cluster to join (default: RAY_ADDRESS, else an embedded Ray)")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides, e.g. run.iterations=3")
    p.set_defaults(func=cmd_train)

    exp_p = sub.add_parser("experiment", help="run a packaged experiment (generalization) and write its report")
    exp_sub = exp_p.add_subparsers(dest="experiment", required=True, metavar="NAME")
    p = exp_sub.add_parser(
        "generalization", help="zero-shot vs trained vs no-randomization vs RLlib PPO on held-out variants and envs",
        description="Train and evaluate every arm (zero_shot, multiverse, no_randomization, ppo_value, rllib_ppo) over "
        "several seeds with the same env-step budget, then write OUT/report.md, OUT/report.json (heldout_gain_vs_zero_shot_"
        "points) and OUT/plots/. Rerun the same command to resume: finished (arm, seed) runs are kept.")
    p.add_argument("--config", required=True,
                   help="an experiment YAML, or a shipped one by name: experiment_cpu, experiment_smoke")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for the runs and the report")
    p.add_argument("--budget", type=float, default=1.0,
                   help="scale the env-step budget and the evaluation episodes (1: as written; 0.1: a quick look)")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                   help="overrides of the experiment or its training config, e.g. experiment.seeds=[0,1] "
                   "train.rollout.workers=1")
    p.set_defaults(func=cmd_experiment)

    p = sub.add_parser("plot", help="write PNG learning curves of a run dir into RUN_DIR/plots")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.set_defaults(func=cmd_plot)

    p = sub.add_parser("submit", help="run multiverse train on a Ray cluster with ray job submit",
                       description="Validate the config here, then `ray job submit --working-dir . -- multiverse train "
                       "--config ...` to the cluster's dashboard address. Start the cluster from an environment where "
                       "multiverse is installed. The run dir goes under run.root resolved here (pass run.root=... for "
                       "a path the cluster shares).")
    p.add_argument("--config", required=True, help="a YAML config inside the working dir, or a shipped one by name")
    p.add_argument("--address", help="the cluster's dashboard, e.g. http://127.0.0.1:8265 (default: RAY_ADDRESS)")
    p.add_argument("--working-dir", default=".", help="uploaded to the cluster for the job (default: .)")
    p.add_argument("--submission-id", help="the job's id (default: multiverse-<config>-<time>)")
    p.add_argument("--no-wait", action="store_true", help="return once submitted instead of following the logs")
    p.add_argument("--pip", action="append", metavar="REQ", help="a requirement the job installs (a plugin's "
                   "package name or wheel on the cluster; repeatable): runtime_env pip, a virtualenv per job")
    p.add_argument("--py-modules", action="append", metavar="PATH", help="local code shipped with the job: a package "
                   "folder, a .py file or a .whl (a plugin's wheel brings its entry points); repeatable")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides")
    p.set_defaults(func=cmd_submit)

    p = sub.add_parser("record", help="record episodes of envs to a Parquet dataset folder",
                       description="Play episodes with a scripted agent or a policy checkpoint and store them, one "
                       "row per episode, in Parquet files under --out (readable with pyarrow and Ray Data).")
    p.add_argument("--env", action="append", metavar="ID", help="env id to record (repeatable)")
    p.add_argument("--all", action="store_true", help="every registered env")
    p.add_argument("--kind", choices=["game", "web"], help="with --all: only this kind")
    p.add_argument("--agent", default="oracle", help="random, oracle (default) or checkpoint:PATH (a learner checkpoint, a run's "
                        "checkpoints/iter_N, or a run dir: its newest checkpoint)")
    p.add_argument("--episodes", type=int, default=5, help="episodes per env (default 5)")
    p.add_argument("--seed", type=int, default=0, help="episode k uses seed S+k")
    p.add_argument("--split", choices=["train", "heldout"], default="train")
    p.add_argument("--param", action="append", metavar="NAME=VALUE", help="pin a randomized parameter (repeatable)")
    p.add_argument("--pixels", action="store_true", help="store each observation's image (PNG) too")
    p.add_argument("--greedy", action="store_true", help="checkpoint agent: argmax instead of sampling")
    p.add_argument("--out", required=True, metavar="DIR", help="dataset folder (created; new files are added)")
    p.add_argument("--max-file-mb", type=float, default=64.0, help="roll to a new file past this size (default 64)")
    p.set_defaults(func=cmd_record)

    p = sub.add_parser("replay", help="list, verify or render recorded episodes",
                       description="Without options: list the episodes. --verify re-makes each env from its id, seed, "
                       "options and parameters, re-applies the actions and checks every observation (sha256), legal "
                       "actions, reward and flag; the first divergence is printed and the exit status is 1. "
                       "--render writes one episode as an animated GIF or a self-contained HTML viewer.")
    p.add_argument("dir", metavar="DIR", help="a dataset folder (or one .parquet file)")
    p.add_argument("--episode", type=int, action="append", metavar="K", help="only episode K (repeatable; see the list)")
    p.add_argument("--verify", action="store_true", help="replay and compare step by step")
    p.add_argument("--all-divergences", action="store_true", help="with --verify: go on after the first divergent episode")
    p.add_argument("--render", metavar="OUT", help="write OUT.gif or OUT.html of the selected episode")
    p.add_argument("--skip-bad", action="store_true", help="leave out unreadable files (each named, then counted) "
                   "instead of stopping; episode numbers then count the readable files only")
    p.set_defaults(func=cmd_replay)

    p = sub.add_parser("export", help="convert recorded episodes to another format (minari)")
    export_sub = p.add_subparsers(dest="export_format", required=True, metavar="FORMAT")
    p = export_sub.add_parser("minari", help="write a Minari dataset (minari.load_dataset reads it)",
                              description="Observations become Dict(text=Text[, image=Box]), actions Text (the action "
                              "strings), infos carry each step's legal actions as JSON; see multiverse.agents.export.")
    p.add_argument("dir", metavar="DIR", help="a dataset folder written by multiverse record")
    p.add_argument("--out", required=True, metavar="NAME", help="the Minari dataset id, e.g. "
                   "multiverse/catch-oracle-v0; episodes of several env ids make one dataset per id: "
                   "NAMESPACE/<env id, '/' as '-'>/NAME-vN")
    p.add_argument("--path", metavar="ROOT", help="Minari's datasets folder (default: MINARI_DATASETS_PATH, "
                   "else ~/.minari/datasets)")
    p.add_argument("--episode", type=int, action="append", metavar="K", help="only episode K (repeatable)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("sft", help="behaviour cloning on recorded episodes (a supervised warm start)",
                       description="Train the config's model to give the recorded actions high probability (the NLL of "
                       "each recorded action under the policy's distribution over the legal actions), with the "
                       "config's algorithm.lr and algorithm.minibatch, and save a learner checkpoint.")
    p.add_argument("--episodes", required=True, metavar="DIR", help="a dataset folder (e.g. oracle episodes)")
    p.add_argument("--config", required=True, help="a YAML config, or a shipped one by name (its model and algorithm)")
    p.add_argument("--out", required=True, metavar="CHECKPOINT", help="the learner checkpoint folder to write")
    p.add_argument("--epochs", type=int, default=3, help="passes over the recorded steps (default 3)")
    p.add_argument("--only-success", action="store_true", help="train only on successful episodes (as their last "
                   "step's info says)")
    p.add_argument("--skip-bad", action="store_true", help="leave out unreadable files and episodes whose summary "
                   "columns disagree with their steps (each named, then counted) instead of stopping")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides, e.g. algorithm.lr=1e-3")
    p.set_defaults(func=cmd_sft)
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("multiverse-rl")
    except PackageNotFoundError:
        return "unknown"


def main(argv: Sequence[str] | None = None) -> int:
    from multiverse.envs.randomization import RandomizationError
    from multiverse.envs.registry import RegistryError

    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (UsageError, RegistryError, RandomizationError) as exc:
        print(f"multiverse {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
