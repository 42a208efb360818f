"""A training run's folder: resolved config, metrics (CSV + TensorBoard), evaluation tables, checkpoints.

    RUN_DIR/
      config.yaml            the config as resolved (what --resume reads)
      metrics.csv            one row per iteration (the same scalars as TensorBoard)
      eval.csv               one row per evaluation, env and split
      evals/iter_NNNNNN.md   each evaluation as a table
      tb/                    TensorBoard event files (tensorboard --logdir RUN_DIR/tb)
      checkpoints/iter_NNNNNN/{learner/, trainer.json, manifest.json}
      checkpoints/discarded/ checkpoints set aside by a resume from an older one
      plots/                 written by `multiverse plot RUN_DIR`
      episodes/{eval,train}/ recorded episodes (Parquet) when run.record_eval / run.record_every are on

A checkpoint is written into a temporary folder (the learner's safetensors and
JSON, then the trainer's state: iteration, RNG, sampler, ADR, counters) and
renamed into place: a crash mid-write leaves the previous checkpoints as they
were. Its manifest records every file's size and sha256; resuming takes the
newest checkpoint that still matches it (or the one asked for), sets the later
ones aside and truncates the CSVs and TensorBoard after its iteration, so a
resumed run reads as one run.

:class:`RunDirLog` is the loop's :class:`~multiverse.agents.runlog.RunLog` over a run dir: the files above, and a
line per iteration (and each evaluation's table) on the console.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from multiverse.agents.durable import check_folder, fsync_dir, write_manifest, write_text_atomic

__all__ = ["CHECKPOINT_FAULT_ENV", "MetricsLog", "RunDir", "RunDirLog"]

#: test hook: ``kill-in-checkpoint:N`` SIGKILLs the process halfway through writing checkpoint N
CHECKPOINT_FAULT_ENV = "MULTIVERSE_FAULT"
#: what a checkpoint folder must hold (Learner.save writes the learner/ part); checked when it has no manifest
CHECKPOINT_FILES = ("trainer.json", "learner/learner.json", "learner/weights.safetensors",
                    "learner/optimizer.safetensors")


class RunDir:
    """Paths and checkpoints of one run (see the module docstring)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser().resolve()
        self.config_file = self.path / "config.yaml"
        self.metrics_csv = self.path / "metrics.csv"
        self.eval_csv = self.path / "eval.csv"
        self.evals = self.path / "evals"
        self.tb = self.path / "tb"
        self.checkpoints = self.path / "checkpoints"
        self.plots = self.path / "plots"

    def create(self, config_yaml: str) -> None:
        if self.path.exists() and any(self.path.iterdir()):
            raise FileExistsError(f"run dir {self.path} already exists and is not empty; "
                                  f"resume it with --resume {self.path} or choose another run.name")
        self.path.mkdir(parents=True, exist_ok=True)
        self.write_config(config_yaml)

    def write_config(self, config_yaml: str) -> None:
        write_text_atomic(self.config_file, config_yaml)

    # -- checkpoints

    def checkpoint_dirs(self) -> list[Path]:
        """Complete checkpoints, oldest first (a folder renamed into place holds trainer.json)."""
        if not self.checkpoints.is_dir():
            return []
        found = [p for p in self.checkpoints.glob("iter_*") if (p / "trainer.json").is_file()]
        return sorted(found, key=lambda p: int(p.name.split("_")[1]))

    def latest_checkpoint(self) -> Path | None:
        dirs = self.checkpoint_dirs()
        return dirs[-1] if dirs else None

    def save_checkpoint(self, iteration: int, save_learner: Callable[[Path], None], state: Mapping[str, Any],
                        keep: int) -> Path:
        """Write ``checkpoints/iter_N`` atomically, then drop all but the ``keep`` newest."""
        self.checkpoints.mkdir(parents=True, exist_ok=True)
        final = self.checkpoints / f"iter_{iteration:06d}"
        tmp = Path(tempfile.mkdtemp(prefix=f".iter_{iteration:06d}.tmp-", dir=self.checkpoints))
        save_learner(tmp / "learner")
        fault = os.environ.get(CHECKPOINT_FAULT_ENV, "")
        if fault == f"kill-in-checkpoint:{iteration}":
            os.kill(os.getpid(), signal.SIGKILL)  # the learner is written, the trainer state is not
        text = json.dumps(dict(state), indent=1) + "\n"
        with open(tmp / "trainer.json", "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        write_manifest(tmp)  # every file's size and sha256: what a resume checks
        fsync_dir(tmp)
        if final.exists():  # the same iteration again (a resumed run): replace it whole
            old = self.checkpoints / f".{final.name}.old-{os.getpid()}"
            os.rename(final, old)
            os.rename(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, final)
        fsync_dir(self.checkpoints)
        for old in self.checkpoint_dirs()[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
        for left in self.checkpoints.glob(".iter_*.tmp-*"):  # debris of an interrupted write
            if left != tmp:
                shutil.rmtree(left, ignore_errors=True)
        return final

    @staticmethod
    def read_state(checkpoint: Path) -> dict[str, Any]:
        return json.loads((checkpoint / "trainer.json").read_text())

    @staticmethod
    def checkpoint_problem(checkpoint: Path) -> str | None:
        """Why ``checkpoint`` cannot be resumed from (None: it can): a file that differs from its manifest; for a
        checkpoint written before manifests, a file missing or unreadable (see :func:`check_folder`)."""
        return check_folder(checkpoint, required=CHECKPOINT_FILES)

    def resume_point(self, choice: str | None = None) -> tuple[Path, list[tuple[Path, str]]]:
        """The checkpoint to resume from: ``choice`` (``iter_N`` or ``N``), else the newest intact one, with the
        newer ones skipped and why. Raises FileNotFoundError, in one line, when there is none to resume from."""
        dirs = self.checkpoint_dirs()
        names = ", ".join(p.name for p in dirs) or "none"
        if choice is not None:
            number = Path(choice).name.removeprefix("iter_")
            if not number.isdigit():
                raise FileNotFoundError(f"--checkpoint takes iter_N or N (e.g. iter_000008), got {choice[:40]!r}; "
                                        f"{self.checkpoints} has {names}")
            wanted = self.checkpoints / f"iter_{int(number):06d}"
            if wanted not in dirs:
                raise FileNotFoundError(f"no checkpoint {wanted.name} in {self.checkpoints}; there are {names}")
            problem = self.checkpoint_problem(wanted)
            if problem:
                raise FileNotFoundError(f"{wanted.relative_to(self.path)} cannot be resumed from ({problem}); pick "
                                        f"another with --checkpoint (there are {names})")
            return wanted, []
        if not dirs:
            raise FileNotFoundError(f"{self.checkpoints} holds no complete checkpoint to resume from; start a new run")
        skipped = []
        for checkpoint in reversed(dirs):
            problem = self.checkpoint_problem(checkpoint)
            if problem is None:
                return checkpoint, skipped
            skipped.append((checkpoint, problem))
        raise FileNotFoundError(
            f"no checkpoint in {self.checkpoints} can be resumed from: "
            + ", ".join(f"{p.name} ({why})" for p, why in skipped)
            + f"; start a new run (multiverse train --config {self.config_file} run.name=NEW_NAME)")

    def set_aside_after(self, iteration: int) -> Path | None:
        """Move the checkpoints after ``iteration`` into checkpoints/discarded/TIME-*/: a resume from an older one
        abandons them, and a later --resume must not take them. Returns that folder (None: there were none)."""
        later = [p for p in self.checkpoints.glob("iter_*")
                 if p.name[5:].isdigit() and int(p.name[5:]) > iteration] if self.checkpoints.is_dir() else []
        if not later:
            return None
        (self.checkpoints / "discarded").mkdir(exist_ok=True)
        aside = Path(tempfile.mkdtemp(prefix=time.strftime("%Y%m%d-%H%M%S-"), dir=self.checkpoints / "discarded"))
        for p in later:
            os.rename(p, aside / p.name)
        fsync_dir(self.checkpoints)
        return aside


class _Csv:
    """A CSV whose columns may grow: rewritten whole (atomically) when a row brings a new column."""

    def __init__(self, path: Path, first: Sequence[str]) -> None:
        self.path, self.first = path, list(first)
        self.rows: list[dict[str, Any]] = []
        self.columns: list[str] = list(first)
        if path.is_file():
            with open(path, newline="") as f:
                reader = csv.DictReader(f)
                self.columns = list(reader.fieldnames or first)
                self.rows = [dict(r) for r in reader]

    def truncate(self, keep: Callable[[dict[str, Any]], bool]) -> None:
        self.rows = [r for r in self.rows if keep(r)]
        self._rewrite()

    def _rewrite(self) -> None:
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=self.columns, restval="")
        w.writeheader()
        w.writerows(self.rows)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(self.path, buf.getvalue())

    def append(self, row: Mapping[str, Any]) -> None:
        row = {k: _fmt(v) for k, v in row.items()}
        self.rows.append(row)
        new = [k for k in row if k not in self.columns]
        if new or not self.path.is_file():
            self.columns += new
            self._rewrite()
            return
        with open(self.path, "a", newline="") as f:
            csv.DictWriter(f, fieldnames=self.columns, restval="").writerow(row)


def _fmt(v: Any) -> Any:
    if isinstance(v, float):
        return "" if math.isnan(v) else repr(v)
    return v


class MetricsLog:
    """metrics.csv, eval.csv, evals/*.md and TensorBoard scalars of a run."""

    def __init__(self, run: RunDir, *, resume_after: int | None = None) -> None:
        from tensorboardX import SummaryWriter

        self.run = run
        self.metrics = _Csv(run.metrics_csv, ["iteration"])
        self.eval = _Csv(run.eval_csv, ["iteration", "env", "split", "role", "success", "return", "length", "episodes"])
        if resume_after is not None:
            self.metrics.truncate(lambda r: int(r["iteration"]) <= resume_after)
            self.eval.truncate(lambda r: int(r["iteration"]) <= resume_after)
            for md in run.evals.glob("iter_*.md") if run.evals.is_dir() else []:
                if int(md.stem.split("_")[1]) > resume_after:
                    md.unlink()
        # purge_step drops events a crashed run wrote after the checkpoint it resumes from
        self.tb = SummaryWriter(str(run.tb), purge_step=None if resume_after is None else resume_after + 1,
                                flush_secs=10)

    def log(self, iteration: int, row: Mapping[str, Any]) -> None:
        self.metrics.append({"iteration": iteration, **row})
        for k, v in row.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
                self.tb.add_scalar(k, v, iteration)
        self.tb.flush()

    def log_eval(self, iteration: int, rows: Sequence[Mapping[str, Any]]) -> str:
        """Append the evaluation rows; returns them as a Markdown table (also written to evals/)."""
        for r in rows:
            self.eval.append({"iteration": iteration, **r})
            for k in ("success", "return", "length"):
                if isinstance(r[k], float) and math.isfinite(r[k]):
                    self.tb.add_scalar(f"eval/{r['split']}/{k}/{r['env']}", r[k], iteration)
        ok = [r["success"] for r in rows if isinstance(r["success"], float) and math.isfinite(r["success"])]
        if ok:
            self.tb.add_scalar("eval/success", sum(ok) / len(ok), iteration)
        self.tb.flush()
        lines = [f"# evaluation at iteration {iteration} (greedy)", "",
                 "| env | role | split | success | return | length | episodes |", "|---|---|---|---|---|---|---|"]
        for r in rows:
            lines.append(f"| {r['env']} | {r['role']} | {r['split']} | {r['success']:.3f} | {r['return']:+.3f} | "
                         f"{r['length']:.1f} | {r['episodes']} |")
        text = "\n".join(lines) + "\n"
        self.run.evals.mkdir(parents=True, exist_ok=True)
        write_text_atomic(self.run.evals / f"iter_{iteration:06d}.md", text)
        return text

    def close(self) -> None:
        self.tb.close()


class RunDirLog:
    """The loop's outputs in a run dir, and on the console (see the module docstring)."""

    def __init__(self, run: RunDir, *, env_ids: Sequence[str], iterations: int, keep_checkpoints: int,
                 resume_after: int | None, model: str, max_steps: int | None, console: Any, progress: bool) -> None:
        from multiverse.agents.runlog import EpisodeRecorder

        self.run, self.env_ids, self.total, self.keep = run, list(env_ids), iterations, keep_checkpoints
        self.metrics = MetricsLog(run, resume_after=resume_after)
        self.recorder = EpisodeRecorder(run.path / "episodes", model=model, run=str(run.path), max_steps=max_steps)
        self.console = console
        self.bar = _progress_bar(console, iterations, resume_after or 0) if progress else None

    @property
    def logged(self) -> bool:
        """Whether any metrics or evaluation row was written (a failed new run without any leaves no run dir)."""
        return bool(self.metrics.metrics.rows or self.metrics.eval.rows)

    def iteration(self, iteration: int, row: Mapping[str, Any]) -> None:
        from multiverse.agents.runlog import progress_line

        self.metrics.log(iteration, row)
        self.console.print(progress_line(iteration, self.total, row, self.env_ids), markup=False, highlight=False,
                           soft_wrap=True)
        if self.bar is not None:
            success = row["train/success"]
            self.bar.update(self.bar.task_ids[0], completed=iteration,
                            description="success -" if math.isnan(success) else f"success {success:.2f}")

    def evaluation(self, iteration: int, rows: Sequence[Mapping[str, Any]]) -> None:
        self.console.print(self.metrics.log_eval(iteration, rows).rstrip(), markup=False, highlight=False)

    def record(self, kind: str, episodes: Sequence[Any], iteration: int, learner_step: int, adr: Any = None) -> None:
        self.recorder.write(kind, episodes, iteration, learner_step, adr)

    def checkpoint(self, iteration: int, learner: Any, state: Mapping[str, Any]) -> None:
        self.run.save_checkpoint(iteration, learner.save, state, keep=self.keep)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
        self.metrics.close()
        self.recorder.close()


def _progress_bar(console: Any, total: int, done: int) -> Any:
    """A rich progress bar when the terminal is interactive (logs get one line per iteration either way)."""
    if not console.is_terminal:
        return None
    from rich import progress as rp

    bar = rp.Progress(rp.TextColumn("[bold]train"), rp.BarColumn(), rp.MofNCompleteColumn(), rp.TimeElapsedColumn(),
                      rp.TimeRemainingColumn(), rp.TextColumn("{task.description}"), console=console)
    bar.add_task("", total=total, completed=done)
    bar.start()
    return bar
