"""The GPU path, checked on a GPU: one command, about 4 minutes on one GPU, no Ray and no packaged model.

NOT YET RUN ON HARDWARE: bench/results/gpu_check.json says ``status: not_run`` until a run on a GPU writes it.

    python bench/gpu_check.py                  # from the repo root, on a machine with a CUDA GPU
    python bench/gpu_check.py --cpu --out /tmp/gpu_check_cpu.json    # a dry run of every step on the CPU, tiny sizes
    python bench/gpu_check.py --model /models/Qwen2.5-1.5B-Instruct  # also time a model whose weights are at hand

Steps, each reported on its own (one failing does not hide the others):

1. agreement: scores, re-scored log-probs and the LoRA and value-head gradients of one PPO loss, on the device with
   the kernels ``auto`` picks there (``reference`` on CUDA), against the CPU ``reference`` kernels, for tiny-test and
   the SmolLM2-135M shapes. float32 compute within 2e-4 (scores, log-probs) and 1e-3 (gradients, relative); bf16
   compute within 3x what bf16 moves the CPU's own figures from float32 (the yardstick, measured in the same run).
2. placement: every weight and output on the device; ``get_weights`` on the CPU; a checkpoint round trip; a
   rollout replica on the device (``for_rollout``) loading those weights picks the learner's greedy actions.
3. training: a few PPO updates of the project's learner (``LocalLearner.update``) on a synthetic batch on the
   device (advantage +1 for each turn's first action): the loss goes down and that action's probability goes up.
4. throughput: decisions/s (``Policy.act`` over a batch scored in one forward), update samples/s
   (``LocalLearner.update``) and the FLOP/s of each against the GPU's dense bf16 peak (:data:`PEAK_TFLOPS` by
   device name; ``--peak-tflops`` overrides), at the shapes of SmolLM2-135M (the default model), SmolLM2-360M and
   Qwen2.5-1.5B (random weights made in code, on the device, saved as a model folder and loaded as
   ``model.name=<folder>``: a GPU machine may reach no Hub), and of each ``--model`` (a folder or a cached Hub id).

Needs torch with CUDA, numpy, safetensors, annotated-types, tokenizers, jinja2, transformers, accelerate and peft;
what is missing is named in one line, with the ``pip install --no-deps`` line for wheels brought along
(``--wheels DIR``; ``pip download --no-deps NAME==VERSION -d DIR`` on a machine with network makes them).
``multiverse`` is the installed package, else this repo's folders under their import names
(:func:`import_multiverse`): the script runs from a copy of the repo with nothing installed but those.

Status (the JSON's top-level ``status``) and exit code: ``ok`` (0) every check passed on a CUDA GPU; ``failed`` (1)
a check failed or raised there (its traceback under ``errors``); ``not_run`` (2) no CUDA GPU, or a package missing:
one line, nothing written. ``--cpu`` is a dry run, no GPU verification: ``status: not_run``, ``device: cpu``, exit 0
when its checks pass (else 1), written to ``--out`` (default: a file in the temp folder, never the committed one).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.abc
import importlib.util
import json
import sys
import tempfile
import time
import traceback
import warnings
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

ROOT = Path(__file__).resolve().parents[1]
RESULT = ROOT / "bench" / "results" / "gpu_check.json"
NOT_RUN, MISSING = 2, 2

#: (module, distribution, version tested with), in import order: what the steps import
REQUIRED = (("torch", "torch", "2.13.0"), ("numpy", "numpy", "2.4.6"), ("safetensors", "safetensors", "0.8.0"),
            ("annotated_types", "annotated-types", "0.8.0"), ("tokenizers", "tokenizers", "0.23.3"),
            ("jinja2", "jinja2", "3.1.6"), ("transformers", "transformers", "5.24.0"),
            ("accelerate", "accelerate", "1.15.0"), ("peft", "peft", "0.21.2"))
#: distributions whose import name differs, for a module that a required one imports
DISTRIBUTIONS = {"yaml": "pyyaml", "huggingface_hub": "huggingface-hub", "annotated_types": "annotated-types",
                 "typing_extensions": "typing-extensions", "hf_xet": "hf-xet"}

#: dense bf16 tensor-core peaks in TFLOP/s by device name (the first entry the name contains)
PEAK_TFLOPS = (("H200", 989.0), ("GH200", 989.0), ("H100 PCIE", 756.0), ("H100", 989.0), ("A100", 312.0),
               ("L40S", 362.0), ("L40", 181.0), ("L4", 121.0), ("A10", 125.0))

#: the architectures timed, as (model type, config): random weights of these shapes
SHAPES = {
    "smollm2-135m": ("llama", {"hidden_size": 576, "intermediate_size": 1536, "num_hidden_layers": 30,
                               "num_attention_heads": 9, "num_key_value_heads": 3, "vocab_size": 49152}),
    "smollm2-360m": ("llama", {"hidden_size": 960, "intermediate_size": 2560, "num_hidden_layers": 32,
                               "num_attention_heads": 15, "num_key_value_heads": 5, "vocab_size": 49152}),
    "qwen2.5-1.5b": ("qwen2", {"hidden_size": 1536, "intermediate_size": 8960, "num_hidden_layers": 28,
                               "num_attention_heads": 12, "num_key_value_heads": 2, "vocab_size": 151936}),
}
#: --cpu: each shape shrunk to this (its model type kept), so the dry run takes seconds
TINY_SHAPE = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
              "num_key_value_heads": 2, "vocab_size": 512}

ACTIONS = ["click(1)", "click(2)", "click(3)", "click(4)", 'press("Enter")', "scroll(down)"]


# --------------------------------------------------------------------------- what this machine has


def missing_packages() -> list[str]:
    """The distributions that cannot be imported here (one a required module imports counts too)."""
    missing: list[str] = []
    for module, dist, _ in REQUIRED:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as error:
            top = (error.name or module).split(".")[0]
            name = dist if top == module else DISTRIBUTIONS.get(top, top)
            if name not in missing:
                missing.append(name)
        except Exception as error:  # installed but broken (a wrong build): named, not a traceback
            missing.append(f"{dist} (import fails: {type(error).__name__}: {str(error)[:80]})")
    return missing


def missing_line(missing: list[str], wheels: Path | None) -> str:
    """One line: what is missing and how to bring it (wheels found in ``wheels`` are named by file)."""
    tested = {dist: version for _, dist, version in REQUIRED}
    names = [m.split(" ")[0] for m in missing]
    found = {n: sorted(wheels.glob(f"{n.replace('-', '_')}-*.whl")) + sorted(wheels.glob(f"{n}-*.whl"))
             for n in names} if wheels else {}
    have = [str(found[n][-1]) for n in names if found.get(n) and n != "torch"]
    lack = [n for n in names if not found.get(n) and n != "torch"]
    parts = [f"gpu_check: not_run: missing {', '.join(missing)}"]
    if have:
        parts.append(f"install them with `pip install --no-deps {' '.join(have)}`")
    if lack:
        where = wheels or "DIR"
        pins = " ".join(f"{n}=={tested[n]}" if n in tested else n for n in lack)
        parts.append(f"{'not in ' + str(wheels) + ': ' if wheels else ''}on a machine with network `pip download "
                     f"--no-deps {pins} -d {where}`, bring {where} here, `pip install --no-deps {where}/*.whl`")
    if "torch" in names:  # its CUDA libraries are wheels of their own: it comes with its dependencies
        parts.append(f"torch with CUDA: `pip install torch=={tested['torch']}` with its dependencies (or "
                     f"`pip download torch=={tested['torch']} -d DIR` where there is network)")
    return "; ".join(parts) + "; then run again"


class _RepoPackages(importlib.abc.MetaPathFinder):
    """``multiverse``, ``multiverse.agents``, ``.envs`` and ``.launch`` from this repo's folders (pyproject's
    package-dir mapping); their submodules then load from those folders as usual."""

    FOLDERS: ClassVar[dict[str, str]] = {"multiverse": "launch/toplevel", "multiverse.agents": "agents",
                                         "multiverse.envs": "envs", "multiverse.launch": "launch"}

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        folder = self.FOLDERS.get(name)
        if folder is None:
            return None
        return importlib.util.spec_from_file_location(name, ROOT / folder / "__init__.py",
                                                      submodule_search_locations=[str(ROOT / folder)])


def import_multiverse() -> str:
    """Make ``multiverse`` importable: the installed package where there is one, else this repo's folders."""
    if importlib.util.find_spec("multiverse") is not None:
        return "installed"
    sys.meta_path.insert(0, _RepoPackages())
    return f"from the repo at {ROOT}"


def peak_tflops(name: str, override: float | None) -> tuple[float | None, str]:
    """The device's dense bf16 peak and where it came from."""
    if override:
        return override, "--peak-tflops"
    for key, peak in PEAK_TFLOPS:
        if key in name.upper():
            return peak, f"table ({key})"
    return None, "unknown device: pass --peak-tflops"


# --------------------------------------------------------------------------- models and learners


def write_random_model(shape: str, folder: Path, device: str, tiny: bool) -> Path:
    """A model folder of ``shape`` with random weights (made on ``device``: a 1.5B init takes a minute on a CPU) and
    tiny-test's byte-level chat tokenizer, which any vocabulary of 259 ids or more can read."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from multiverse.agents.models import tiny_test_tokenizer

    kind, sizes = SHAPES[shape]
    tokenizer = tiny_test_tokenizer()
    config = AutoConfig.for_model(kind, **(TINY_SHAPE if tiny else sizes), tie_word_embeddings=True,
                                  max_position_embeddings=4096, pad_token_id=tokenizer.pad_token_id,
                                  eos_token_id=tokenizer.eos_token_id, bos_token_id=None)
    with torch.device(device), torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def make_learner(model: str, device: str, *, dtype: str = "bfloat16", kernels: str = "auto", batch: int = 8,
                 lr: float = 1e-3) -> Any:
    """The project's learner (LoRA, value head) with LoRA and value-head weights that are the same nonzero values on
    any device and kernels, and ``batch`` turns per forward."""
    import torch

    from multiverse.agents.learner import LearnerConfig
    from multiverse.agents.losses import PPOConfig
    from multiverse.agents.models import ModelConfig
    from multiverse.agents.policy import PolicyConfig
    from multiverse.agents.prompt import PromptConfig
    from multiverse.agents.update import LocalLearner

    policy = PolicyConfig(compute_dtype="float32" if dtype == "float32" else "bfloat16", rows_per_forward=batch,
                          prompt=PromptConfig(system_prompt="Act.", history_steps=0))
    config = LearnerConfig(model=ModelConfig(name=model, lora=True, dtype=dtype, value_head=True, device=device,
                                             kernels=kernels), policy=policy, lr=lr, micro_batch=batch)
    learner = LocalLearner(config, PPOConfig())
    with torch.no_grad():
        for name, p in learner.policy.trainable_parameters().items():
            gen = torch.Generator().manual_seed(zlib.crc32(name.encode()))
            p.copy_(torch.randn(p.shape, generator=gen) * 0.02)
    return learner


def turns(n: int, chars: int = 0) -> list[Any]:
    """``n`` distinct turns (no two share a forward row); with ``chars``, observations of about that length."""
    from multiverse.agents.prompt import Turn

    out = []
    for i in range(n):
        rows = [f"[{k}] button 'Item {i}-{k}'" for k in range(1, 5)]
        obs = f"Page {i}. Click the button for item {i}-{1 + i % 4}.\n" + "\n".join(rows)
        while len(obs) < chars:
            obs += f"\nrow {len(obs)}: " + "#." * 8
        legal = ACTIONS if chars else ACTIONS[:4] + ["type(1, <text>)"]
        out.append(Turn(f"Click item {i}-{1 + i % 4}.", obs, legal))
    return out


def sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


# --------------------------------------------------------------------------- 1. agreement


def measure(learner: Any, decisions: list[Any]) -> dict[str, Any]:
    """Scores, re-scored log-probs and the gradients of one PPO loss, brought to the CPU."""
    import torch

    from multiverse.agents.learner import Sample

    policy = learner.policy
    scores = torch.cat(policy.score(turns(6))).float().cpu()
    with torch.no_grad():
        logp = policy.evaluate(decisions).logp_N.float().cpu()
    batch = [Sample.from_decision(d, advantage=1.0 if i % 2 else -1.0, return_=float(i)) for i, d in enumerate(decisions)]
    learner.learner.forward_backward(batch, learner.loss_fn)
    grads = {n: p.grad.detach().float().cpu() for n, p in policy.trainable_parameters().items()}
    learner.learner.optimizer.zero_grad(set_to_none=True)
    return {"scores": scores, "logp": logp, "grads": grads}


def diffs(a: dict[str, Any], b: dict[str, Any]) -> dict[str, float]:
    import torch

    def flat(d: dict[str, Any]) -> Any:
        return torch.cat([d[n].flatten() for n in sorted(b["grads"])])

    grad_a, grad_b = flat(a["grads"]), flat(b["grads"])
    return {"score_max_abs": float((a["scores"] - b["scores"]).abs().max()),
            "logp_max_abs": float((a["logp"] - b["logp"]).abs().max()),
            "grad_rel": float((grad_a - grad_b).norm() / grad_b.norm().clamp(min=1e-30))}


def agreement(model: str, device: str) -> dict[str, Any]:
    import torch

    out: dict[str, Any] = {}
    for dtype in ("float32", "bfloat16"):
        reference = make_learner(model, "cpu", dtype=dtype, kernels="reference")
        decisions = reference.policy.act(turns(6), temperature=2.0, generator=torch.Generator().manual_seed(0))
        cpu = measure(reference, decisions)
        on_device = make_learner(model, device, dtype=dtype)
        row = {"kernels": kernels_of(on_device), "device_vs_cpu_reference": diffs(measure(on_device, decisions), cpu)}
        if dtype == "bfloat16":  # the yardstick: float32 compute of the same bf16-rounded weights, on the CPU
            twin = make_learner(model, "cpu", dtype="float32", kernels="reference")
            with torch.no_grad():
                for p in twin.policy.model.parameters():
                    if not p.requires_grad:
                        p.copy_(p.to(torch.bfloat16))
            row["cpu_bf16_vs_float32"] = diffs(cpu, measure(twin, decisions))
        out[dtype] = row
    return out


def kernels_of(learner: Any) -> str:
    from multiverse.agents import kernels

    return kernels.installed(learner.policy.model).name


# --------------------------------------------------------------------------- 2. placement, 3. training


def placement(model: str, device: str) -> dict[str, Any]:
    import torch

    from multiverse.agents.learner import Learner
    from multiverse.agents.models import build_model
    from multiverse.agents.policy import Policy

    learner = make_learner(model, device)
    policy = learner.policy
    want = torch.device(device).type
    tensors = [*policy.model.parameters(), *policy.model.buffers(), *policy.value_head.parameters()]
    out = policy.evaluate(policy.act(turns(4)))
    weights = learner.weights()
    result: dict[str, Any] = {
        "kernels": kernels_of(learner),
        "weights_off_device": sorted({str(t.device) for t in tensors if t.device.type != want}),
        "outputs_on": sorted({str(t.device) for t in (out.logp_N, out.scores_NA, out.values_N)}),
        "get_weights_on": sorted({str(w.device) for w in weights.values()}),
    }
    with tempfile.TemporaryDirectory() as tmp:
        learner.save(Path(tmp) / "ckpt")
        again = Learner.from_checkpoint(Path(tmp) / "ckpt")
        with torch.no_grad():
            decisions = policy.act(turns(4), greedy=True)
            a, b = policy.evaluate(decisions).logp_N, again.policy.evaluate(decisions).logp_N
        result["checkpoint_round_trip_equal"] = bool(torch.equal(a, b))
    loaded = build_model(learner.learner.config.model)
    replica = Policy(loaded.model, loaded.tokenizer, learner.learner.config.policy, value_head=True).for_rollout()
    replica.set_weights(weights)  # CPU tensors, as they come out of Ray's object store
    mine, theirs = policy.act(turns(6), greedy=True), replica.act(turns(6), greedy=True)
    result["replica_device"] = str(replica.device)
    result["replica_same_actions"] = [d.action for d in mine] == [d.action for d in theirs]
    result["replica_logp_max_abs"] = max(abs(x.logp - y.logp) for x, y in zip(mine, theirs))
    return result


def training(model: str, device: str, updates: int = 8) -> dict[str, Any]:
    """Updates on one synthetic batch: advantage +1 where a turn's first action was taken, -1 elsewhere."""
    import torch

    from multiverse.agents.learner import Sample

    learner = make_learner(model, device, lr=3e-3)
    decisions = learner.policy.act(turns(8), temperature=1.0, generator=torch.Generator().manual_seed(0))
    samples = [Sample.from_decision(d, advantage=1.0 if d.index == 0 else -1.0) for d in decisions]

    def first_action_prob() -> float:
        with torch.no_grad():
            return float(learner.policy.evaluate(decisions).logdist_NA[:, 0].exp().mean())

    before = first_action_prob()
    losses = [learner.update(samples, epochs=1, minibatch=len(samples), seed=k)["loss"] for k in range(updates)]
    return {"losses": losses, "first_action_prob_before": before, "first_action_prob_after": first_action_prob(),
            "turns_that_took_the_first": sum(d.index == 0 for d in decisions)}


# --------------------------------------------------------------------------- 4. throughput


def forward_flops(config: Any, prompt_len: int, cand_lens: list[int]) -> float:
    """Useful FLOPs of one packed row's forward: the decoder's matmuls over every token, attention over the keys each
    query may see (a candidate sees the prompt and itself), the LM head where a candidate token is scored (the count
    bench/policy_throughput.py makes; repeated here so this file runs alone)."""
    H, inter, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    heads, kv = config.num_attention_heads, config.num_key_value_heads
    hd = getattr(config, "head_dim", None) or H // heads
    linear = layers * (H * heads * hd + 2 * H * kv * hd + heads * hd * H + 3 * H * inter)
    keys = prompt_len * (prompt_len + 1) / 2 + sum(n * prompt_len + n * (n + 1) / 2 for n in cand_lens)
    return (2.0 * linear * (prompt_len + sum(cand_lens)) + layers * heads * 4 * hd * keys
            + 2.0 * H * config.vocab_size * sum(cand_lens))


def timed(fn: Callable[[], Any], seconds: float) -> float:
    """Seconds per call of ``fn``: one warm-up call, then calls for about ``seconds`` (at least 2)."""
    fn()
    reps, start = 0, time.perf_counter()
    while reps < 2 or time.perf_counter() - start < seconds:
        fn()
        reps += 1
    return (time.perf_counter() - start) / reps


def turns_of(policy: Any, n: int, tokens: int) -> list[Any]:
    """``n`` distinct turns whose prompts are about ``tokens`` long in this policy's tokenizer."""
    chars = tokens
    for _ in range(4):
        length = len(policy.encode(turns(1, chars)[0])[0])
        if length >= tokens:
            break
        chars = int(chars * tokens / length) + 8
    return turns(n, chars)


def throughput(model: str, device: str, *, batch: int, tokens: int, seconds: float, peak: float | None) -> dict:
    """Decisions/s and update samples/s of ``model`` on ``device``, and their FLOP/s against ``peak`` TFLOP/s."""
    import torch

    from multiverse.agents.learner import Sample

    learner = make_learner(model, device, batch=batch, lr=1e-5)
    policy = learner.policy
    work = turns_of(policy, batch, tokens)
    encoded = [policy.encode(t) for t in work]
    config = policy.model.get_base_model().config
    flops = sum(forward_flops(config, len(ids), [len(b) for b in cands.blocks]) for ids, cands, _ in encoded)
    out: dict[str, Any] = {"parameters": sum(p.numel() for p in policy.model.parameters()), "batch": batch,
                           "prompt_tokens": len(encoded[0][0]), "candidates": len(encoded[0][1].blocks),
                           "kernels": kernels_of(learner)}
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    for n in sorted({min(8, batch), batch}):
        per_call = timed(lambda n=n: (policy.act(work[:n]), sync(device)), seconds)
        out[f"decisions_per_s_batch{n}"] = n / per_call
    out["score_tflops"] = flops / per_call / 1e12
    samples = [Sample.from_decision(d, advantage=1.0 if i % 2 else -1.0) for i, d in enumerate(policy.act(work))]
    per_update = timed(lambda: (learner.update(samples, epochs=1, minibatch=batch, seed=0), sync(device)), seconds)
    out["update_samples_per_s"] = batch / per_update
    passes = 2 + int(learner.loss_fn.needs_reference)  # the forward, the backward to the activations (the frozen
    out["update_tflops"] = passes * flops / per_update / 1e12  # base has no weight gradients), a reference forward
    for key in ("score", "update"):
        out[f"{key}_fraction_of_peak"] = out[f"{key}_tflops"] / peak if peak else None
    if device.startswith("cuda"):
        out["peak_memory_gib"] = torch.cuda.max_memory_allocated() / 2**30
    return out


# --------------------------------------------------------------------------- verdicts and the run


#: what a run measures, by the JSON's keys (the committed not_run file carries it too)
WOULD_MEASURE = {
    "agreement": "per model (tiny-test, smollm2-135m) and compute dtype: max |score| and |log-prob| differences and "
                 "the relative gradient difference of the device against the CPU reference kernels; for bf16 also "
                 "cpu_bf16_vs_float32, the yardstick",
    "placement": "devices of the weights and outputs, of get_weights; checkpoint round trip; a for_rollout replica "
                 "on the device acting as the learner does",
    "training": "the PPO loss over a few updates on one synthetic batch, and the probability of the rewarded action",
    "throughput": "per shape (smollm2-135m, smollm2-360m, qwen2.5-1.5b, each --model): decisions_per_s_batch8 and "
                  "_batch64, update_samples_per_s, score_tflops, update_tflops and their fraction_of_peak",
}


def verdicts(result: dict[str, Any], device: str) -> dict[str, bool]:
    """Pass or fail per check (the tolerances of the module docstring)."""
    out: dict[str, bool] = {}
    want = "reference" if device.startswith("cuda") else "cpu_fused"
    for name, rows in result.get("agreement", {}).items():
        f32 = rows["float32"]["device_vs_cpu_reference"]
        out[f"agreement/{name}/float32"] = (f32["score_max_abs"] < 2e-4 and f32["logp_max_abs"] < 2e-4
                                            and f32["grad_rel"] < 1e-3)
        bf16, yard = rows["bfloat16"]["device_vs_cpu_reference"], rows["bfloat16"]["cpu_bf16_vs_float32"]
        out[f"agreement/{name}/bfloat16"] = all(bf16[k] <= 3 * yard[k] + 1e-4 for k in bf16)
        out[f"agreement/{name}/kernels"] = rows["bfloat16"]["kernels"] == want
    if "placement" in result:
        p, kind = result["placement"], device.split(":")[0]
        out["placement/on_device"] = not p["weights_off_device"] and all(d.startswith(kind) for d in p["outputs_on"])
        out["placement/get_weights_on_cpu"] = p["get_weights_on"] == ["cpu"]
        out["placement/checkpoint"] = p["checkpoint_round_trip_equal"]
        out["placement/replica"] = (p["replica_device"].startswith(kind) and p["replica_same_actions"]
                                    and p["replica_logp_max_abs"] <= 1e-3)
    if "training" in result:
        t = result["training"]
        out["training/loss_goes_down"] = t["losses"][-1] < t["losses"][0]
        out["training/rewarded_action_more_likely"] = t["first_action_prob_after"] > t["first_action_prob_before"]
    return out


def versions() -> dict[str, str | None]:
    import importlib.metadata

    import torch

    found: dict[str, str | None] = {"cuda": torch.version.cuda}
    for _, dist, _ in REQUIRED:
        try:
            found[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            found[dist] = None
    return found


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cpu", action="store_true", help="a dry run on the CPU at tiny sizes (no GPU verification)")
    p.add_argument("--model", action="append", default=[], help="also time this model (a folder or a cached Hub id)")
    p.add_argument("--shapes", default=",".join(SHAPES), help="comma-separated architectures to time")
    p.add_argument("--peak-tflops", type=float, help="the device's dense bf16 peak (default: from the table)")
    p.add_argument("--wheels", type=Path, help="a folder of wheels brought along, for what is missing")
    p.add_argument("--seconds", type=float, help="time per throughput figure (default 2; --cpu 0.05)")
    p.add_argument("--batch", type=int, help="turns per forward and samples per update (default 64; --cpu 4)")
    p.add_argument("--prompt-tokens", type=int, help="prompt length of the timed turns (default 256; --cpu 48)")
    p.add_argument("--out", type=Path, help="where the JSON goes (default: bench/results/gpu_check.json; with --cpu "
                                            "a file in the temp folder)")
    args = p.parse_args(argv)
    missing = missing_packages()
    if missing:
        print(missing_line(missing, args.wheels), flush=True)
        return MISSING
    import torch
    import transformers

    warnings.filterwarnings("ignore", category=FutureWarning)  # transformers' deprecation notices: not findings
    transformers.logging.disable_progress_bar()
    if not args.cpu and not torch.cuda.is_available():
        build = torch.version.cuda
        print(f"gpu_check: not_run: torch {torch.__version__} sees no CUDA GPU here ("
              + (f"CUDA build {build}: no device visible" if build else "a CPU build: install a CUDA build of torch")
              + "); nothing written (--cpu runs the steps on the CPU at tiny sizes, a dry run)", flush=True)
        return NOT_RUN
    source = import_multiverse()
    device = "cpu" if args.cpu else "cuda"
    seconds = args.seconds or (0.05 if args.cpu else 2.0)
    batch = args.batch or (4 if args.cpu else 64)
    tokens = args.prompt_tokens or (48 if args.cpu else 256)
    out_path = args.out or (Path(tempfile.gettempdir()) / "gpu_check_cpu.json" if args.cpu else RESULT)
    gpu = torch.cuda.get_device_name(0) if device == "cuda" else None
    peak, peak_source = peak_tflops(gpu or "", args.peak_tflops)
    result: dict[str, Any] = {
        "status": "not_run", "device": device, "gpu": gpu, "command": " ".join(["python", *sys.argv]),
        "note": ("a dry run on the CPU at tiny sizes: every step's code ran, nothing about a GPU was verified"
                 if args.cpu else "a run on a CUDA GPU"),
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "versions": versions(), "multiverse": source,
        "peak_tflops": peak, "peak_source": peak_source, "measures": WOULD_MEASURE, "errors": {},
    }
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="gpu_check-") as tmp:
        folders: dict[str, str] = {}

        def model_of(shape: str) -> str:
            if shape not in folders:
                folders[shape] = str(write_random_model(shape, Path(tmp) / shape, device, args.cpu))
            return folders[shape]

        shapes = [s for s in args.shapes.split(",") if s]
        unknown = [s for s in shapes if s not in SHAPES]
        if unknown:
            print(f"gpu_check: unknown shape {unknown[0]!r}; use {', '.join(SHAPES)} (or --model for a model at hand)")
            return 2
        steps: list[tuple[str, str, Callable[[], Any]]] = [
            ("agreement", "tiny-test", lambda: agreement("tiny-test", device)),
            ("agreement", "smollm2-135m", lambda: agreement(model_of("smollm2-135m"), device)),
            ("placement", "", lambda: placement("tiny-test", device)),
            ("training", "", lambda: training("tiny-test", device)),
        ]
        for name in shapes + args.model:
            steps.append(("throughput", name, lambda name=name: throughput(
                model_of(name) if name in SHAPES else name, device, batch=batch, tokens=tokens, seconds=seconds,
                peak=peak)))
        for step, name, run in steps:
            key, began = f"{step}/{name}".rstrip("/"), time.perf_counter()
            try:
                value = run()
                if name:
                    result.setdefault(step, {})[name] = value
                else:
                    result[step] = value
            except Exception:  # one failing step must not hide the others': each is reported
                result["errors"][key] = traceback.format_exc(limit=12)
            print(f"{key}: {time.perf_counter() - began:.1f} s{'  FAILED' if key in result['errors'] else ''}",
                  flush=True)
            if device == "cuda":  # the next model gets the memory this one's learner held
                torch.cuda.empty_cache()
    result["checks"] = verdicts(result, device)
    passed = not result["errors"] and all(result["checks"].values())
    if not args.cpu:
        result["status"] = "ok" if passed else "failed"
    result["seconds"] = time.perf_counter() - start
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(result, indent=1) + "\n")
    for name, row in result.get("throughput", {}).items():
        frac = row["score_fraction_of_peak"]
        print(f"{name}: {row[f'decisions_per_s_batch{batch}']:.1f} decisions/s (batch {batch}), "
              f"{row['update_samples_per_s']:.1f} samples/s; scoring {row['score_tflops']:.3g} TFLOP/s"
              + (f" ({100 * frac:.1f}% of peak)" if frac is not None else ""))
    for name, error in result["errors"].items():
        print(f"--- {name}\n{error}", file=sys.stderr)
    failed = [k for k, ok in result["checks"].items() if not ok] + list(result["errors"])
    print(f"gpu_check: {result['status']} on {gpu or 'the CPU (dry run)'}: {len(result['checks'])} checks, "
          f"{'failed: ' + ', '.join(failed) if failed else 'all passed'}; {out_path}", flush=True)
    return 0 if passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
