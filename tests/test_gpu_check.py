"""bench/gpu_check.py, as far as a machine without a GPU can run it (CI has none): its --cpu dry run takes every
step's code path from a copy of the repo with multiverse not installed and writes the JSON with its fields, and says
it is no GPU verification; without a GPU, or without a package it needs, the check is one line, exit 2, and writes
nothing; the committed result says not_run until a GPU run writes it. None of this verifies anything on a GPU."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import ROOT

SCRIPT = ROOT / "bench" / "gpu_check.py"
#: a process where multiverse is not installed (the editable install's finder taken out), as on a GPU machine that
#: got only a copy of the repo; then the script runs as `python bench/gpu_check.py ARGS`
WITHOUT_INSTALL = ("import runpy, sys; sys.meta_path[:] = [f for f in sys.meta_path if not str(getattr(f, "
                   "'__module__', '')).startswith('__editable__')]; sys.argv = sys.argv[1:]; "
                   "runpy.run_path(sys.argv[0], run_name='__main__')")


def gpu_check_module():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(*args: str, python: tuple[str, ...] = (sys.executable,), env: dict[str, str] | None = None,
        cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([*python, *args], capture_output=True, text=True, timeout=600, cwd=cwd,
                          env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})})


def test_the_cpu_dry_run_takes_every_step_from_the_repo_alone_and_writes_its_json(tmp_path: Path) -> None:
    out = tmp_path / "gpu_check.json"
    done = run(str(SCRIPT), "--cpu", "--shapes", "smollm2-135m", "--peak-tflops", "2", "--out", str(out),
               python=(sys.executable, "-c", WITHOUT_INSTALL), cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == (f"gpu_check: not_run on the CPU (dry run): 12 checks, all passed; "
                                                    f"{out}")
    result = json.loads(out.read_text())
    assert result["multiverse"] == f"from the repo at {ROOT}"  # the path shim, not an installed package
    assert (result["status"], result["device"], result["gpu"]) == ("not_run", "cpu", None)
    assert "nothing about a GPU was verified" in result["note"] and result["errors"] == {}
    assert result["measures"] == gpu_check_module().WOULD_MEASURE
    assert set(result["checks"]) == {
        *(f"agreement/{m}/{k}" for m in ("tiny-test", "smollm2-135m") for k in ("float32", "bfloat16", "kernels")),
        "placement/on_device", "placement/get_weights_on_cpu", "placement/checkpoint", "placement/replica",
        "training/loss_goes_down", "training/rewarded_action_more_likely"} and all(result["checks"].values())
    bf16 = result["agreement"]["smollm2-135m"]["bfloat16"]
    assert bf16["kernels"] == "cpu_fused" and 0 < bf16["cpu_bf16_vs_float32"]["grad_rel"] < 0.1
    assert result["placement"]["get_weights_on"] == ["cpu"] and result["placement"]["replica_device"] == "cpu"
    losses = result["training"]["losses"]
    assert len(losses) == 8 and losses[-1] < losses[0]
    [(shape, row)] = result["throughput"].items()
    assert shape == "smollm2-135m" and row["batch"] == 4 and row["candidates"] == 6
    assert row["decisions_per_s_batch4"] > 0 and row["update_samples_per_s"] > 0
    assert row["score_fraction_of_peak"] == row["score_tflops"] / 2 and row["update_fraction_of_peak"] > 0
    assert result["peak_source"] == "--peak-tflops"


def test_without_a_gpu_or_a_package_it_is_one_line_exit_2_and_nothing_written(tmp_path: Path) -> None:
    out = tmp_path / "gpu_check.json"
    done = run(str(SCRIPT), "--out", str(out), env={"CUDA_VISIBLE_DEVICES": ""})  # no GPU visible, on any machine
    assert done.returncode == 2 and len(done.stdout.strip().splitlines()) == 1, done.stdout + done.stderr
    assert done.stdout.startswith("gpu_check: not_run: torch ") and "sees no CUDA GPU here" in done.stdout
    assert "--cpu runs the steps on the CPU" in done.stdout and not out.exists()
    # -S: no site-packages, so nothing the script needs is importable; a wheel brought along is named by its file
    wheel = tmp_path / "wheels" / "peft-0.21.2-py3-none-any.whl"
    wheel.parent.mkdir()
    wheel.touch()
    done = run(str(SCRIPT), "--wheels", str(wheel.parent), "--out", str(out), python=(sys.executable, "-S"))
    assert done.returncode == 2 and len(done.stdout.strip().splitlines()) == 1 and not done.stderr, done.stderr
    line = done.stdout.strip()
    assert line.startswith("gpu_check: not_run: missing torch, numpy, safetensors, annotated-types, tokenizers, "
                           "jinja2, transformers, accelerate, peft; ")
    assert f"install them with `pip install --no-deps {wheel}`" in line
    assert "`pip download --no-deps numpy==" in line and f"-d {wheel.parent}`" in line
    assert "torch with CUDA: `pip install torch==" in line and not out.exists()


def test_the_committed_result_says_not_run_until_a_gpu_run_writes_it() -> None:
    result = json.loads((ROOT / "bench" / "results" / "gpu_check.json").read_text())
    assert result["status"] in ("not_run", "ok", "failed")
    if result["status"] == "not_run":
        assert result["measures"] == gpu_check_module().WOULD_MEASURE and "not yet run" in result["why"]
        assert result["command"] == "python bench/gpu_check.py"
    else:  # written by a run on a GPU: its device, and every check
        assert result["device"] == "cuda" and result["gpu"] and result["checks"]
        assert (result["status"] == "ok") == (all(result["checks"].values()) and not result["errors"])
