"""The CUDA path, checked where there is a GPU. NOT YET RUN: no session with a GPU has run this script.

What the tests check on a CPU only (tests/agents/test_kernels.py) this checks on ``--device`` (a few minutes on
one GPU), and writes bench/results/gpu_check.json:

* agreement: tiny-test and ``--model`` scores, re-scored log-probs and LoRA gradients on the device
  (``reference`` kernels, what ``auto`` picks there) against the fused CPU kernels (``cpu_fused`` on the CPU),
  in float32 and bf16, beside how far bf16 moves them from float32 on the CPU (the yardstick of the tests);
* placement: every weight and buffer of the model, the value head and every output on the device;
* one learner update on the device (weights move, get_weights comes back on the CPU), a checkpoint round trip,
  and a rollout replica on the device acting bit-identically to the learner;
* throughput on the device: act steps/s (batch 8), scoring FLOP/s, update samples/s.

    .venv/bin/python bench/gpu_check.py                                              # on a machine with a GPU
    .venv/bin/python bench/gpu_check.py --device cpu --models tiny-test --seconds 0.2 --out /tmp/g.json  # a dry run
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

import torch
from policy_throughput import flops_per_row, make_turn, timed

ROOT = Path(__file__).resolve().parents[1]


def turns() -> list[Any]:
    from multiverse.agents.prompt import Turn

    catch = Turn("Catch the ball.", "Catch the ball.\n..o..\n.....\n..=..", ["left", "stay", "right"])
    web = Turn("Log in as alice.", "Log in as alice.\n[1] textbox 'Username'\n[2] button 'Sign in'",
               ["click(1)", "click(2)", "type(1, <text>)", 'press("Enter")'])
    return [catch, web, Turn("Wait.", "Wait.\nNothing happens.", ["noop()"])] * 2


def learner(model: str, dtype: str, device: str, kernels: str) -> Any:
    """A LoRA learner whose adapters hold the same nonzero values on any device and kernels."""
    from multiverse.agents.learner import Learner, LearnerConfig
    from multiverse.agents.models import ModelConfig
    from multiverse.agents.policy import PolicyConfig
    from multiverse.agents.prompt import PromptConfig

    policy = PolicyConfig(compute_dtype="float32" if dtype == "float32" else "bfloat16",
                          prompt=PromptConfig(system_prompt="Act.", history_steps=2))
    lrn = Learner(LearnerConfig(model=ModelConfig(name=model, lora=True, dtype=dtype, value_head=True, device=device,
                                                  kernels=kernels), policy=policy, lr=3e-3))
    with torch.no_grad():
        for n, p in lrn.policy.trainable_parameters().items():
            p.copy_(torch.randn(p.shape, generator=torch.Generator().manual_seed(len(n))) * 0.02)
    return lrn


def measure(lrn: Any, decisions: list[Any]) -> dict[str, Any]:
    """Scores, re-scored log-probs and the gradients of one PPO loss, all on the CPU."""
    from multiverse.agents.learner import Sample
    from multiverse.agents.losses import PPOLoss

    scores = torch.cat(lrn.policy.score(turns())).cpu()
    with torch.no_grad():
        logp = lrn.policy.evaluate(decisions).logp_N.cpu()
    batch = [Sample.from_decision(d, advantage=1.0 if i % 2 else -1.0, return_=float(i)) for i, d in enumerate(decisions)]
    lrn.forward_backward(batch, PPOLoss())
    grads = {n: p.grad.detach().cpu() for n, p in lrn.policy.trainable_parameters().items()}
    lrn.optimizer.zero_grad(set_to_none=True)
    return {"scores": scores, "logp": logp, "grads": grads}


def gap(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    """|a - b| / |b| over every tensor together."""
    def flat(d: dict[str, torch.Tensor]) -> torch.Tensor:
        return torch.cat([d[n].float().flatten() for n in sorted(b)])

    return float((flat(a) - flat(b)).norm() / flat(b).norm())


def diffs(a: dict[str, Any], b: dict[str, Any]) -> dict[str, float]:
    return {"score_max_abs": float((a["scores"] - b["scores"]).abs().max()),
            "logp_max_abs": float((a["logp"] - b["logp"]).abs().max()),
            "grad_rel": gap(a["grads"], b["grads"])}


def agreement(model: str, device: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for dtype in ("float32", "bfloat16"):
        fused = learner(model, dtype, "cpu", "cpu_fused")
        decisions = fused.act(turns(), temperature=2.0, generator=torch.Generator().manual_seed(0))
        on_device = measure(learner(model, dtype, device, "reference"), decisions)
        row = {"device_reference_vs_cpu_fused": diffs(on_device, measure(fused, decisions)),
               "device_reference_vs_cpu_reference": diffs(on_device, measure(learner(model, dtype, "cpu", "reference"),
                                                                             decisions))}
        if dtype == "bfloat16":  # the yardstick: bf16 against float32 compute of the same bf16 weights, on the CPU
            twin = learner(model, "float32", "cpu", "reference")
            with torch.no_grad():
                for p in twin.policy.model.parameters():
                    if not p.requires_grad:
                        p.copy_(p.to(torch.bfloat16))
            row["cpu_bf16_vs_float32"] = diffs(measure(fused, decisions), measure(twin, decisions))
        out[dtype] = row
    return out


def placement_update_replica(model: str, device: str) -> dict[str, Any]:
    from multiverse.agents import kernels
    from multiverse.agents.learner import Learner, Sample
    from multiverse.agents.losses import PPOLoss
    from multiverse.agents.models import build_model
    from multiverse.agents.policy import Policy

    lrn = learner(model, "bfloat16", device, "auto")
    want = torch.device(device).type
    tensors = [*lrn.policy.model.parameters(), *lrn.policy.model.buffers(), *lrn.policy.value_head.parameters()]
    off = sorted({str(t.device) for t in tensors if t.device.type != want})
    decisions = lrn.act(turns(), temperature=2.0, generator=torch.Generator().manual_seed(1))
    out = lrn.policy.evaluate(decisions)
    outputs_on = sorted({str(t.device) for t in (out.logp_N, out.scores_NA, out.values_N)})
    before = lrn.get_weights()
    batch = [Sample.from_decision(d, advantage=1.0, return_=1.0) for d in decisions]
    metrics = lrn.forward_backward(batch, PPOLoss())
    metrics.update(lrn.optim_step())
    after = lrn.get_weights()
    result: dict[str, Any] = {
        "kernels_auto_picked": kernels.installed(lrn.policy.model).name,
        "weights_off_device": off, "outputs_on": outputs_on,
        "weights_returned_on": sorted({str(w.device) for w in after.values()}),
        "update_metrics": {k: float(v) for k, v in metrics.items()},
        "weights_moved": any(not torch.equal(before[n], after[n]) for n in before),
    }
    with tempfile.TemporaryDirectory() as tmp:
        lrn.save(Path(tmp) / "ckpt")
        again = Learner.from_checkpoint(Path(tmp) / "ckpt")
        with torch.no_grad():
            a, b = lrn.policy.evaluate(decisions).logp_N, again.policy.evaluate(decisions).logp_N
        result["checkpoint_round_trip_equal"] = bool(torch.equal(a, b))
    loaded = build_model(lrn.config.model)
    replica = Policy(loaded.model, loaded.tokenizer, lrn.config.policy, value_head=True).for_rollout()
    replica.set_weights(lrn.get_weights())
    da = lrn.act(turns(), temperature=2.0, generator=torch.Generator().manual_seed(5))
    db = replica.act(turns(), temperature=2.0, generator=torch.Generator().manual_seed(5))
    result["replica_bit_identical"] = [(d.action, d.logp) for d in da] == [(d.action, d.logp) for d in db]
    return result


def throughput(model: str, device: str, seconds: float) -> dict[str, Any]:
    from multiverse.agents.learner import Sample
    from multiverse.agents.losses import PPOLoss

    lrn = learner(model, "bfloat16", device, "auto")
    policy = lrn.policy
    turn = make_turn(policy.tokenizer, 200, policy)
    prompt_ids, cands, _ = policy.encode(turn)
    sync = torch.cuda.synchronize if torch.device(device).type == "cuda" else (lambda: None)
    out: dict[str, Any] = {"prompt_tokens": len(prompt_ids), "candidates": len(cands.blocks)}
    for batch in (1, 8):
        per_call, _ = timed(lambda b=batch: (policy.act([turn] * b), sync()), seconds)
        out[f"act_steps_per_s_batch{batch}"] = batch / per_call
    config = policy.model.get_base_model().config
    per_call, _ = timed(lambda: (policy.score([turn] * 8), sync()), seconds)
    out["score_flops_per_s_batch8"] = 8 * flops_per_row(config, len(prompt_ids), [len(b) for b in cands.blocks]) / per_call
    decisions = policy.act([turn] * 8)
    samples = [Sample.from_decision(d, advantage=1.0) for d in decisions]
    per_call, _ = timed(lambda: (lrn.forward_backward(samples, PPOLoss()), lrn.optim_step(), sync()), seconds)
    out["update_samples_per_s_batch8"] = 8 / per_call
    return out


def verdicts(result: dict[str, Any], device: str) -> dict[str, bool]:
    """Pass or fail per check: float32 within 1e-4 of the CPU, bf16 within 3x what bf16 moves from float32."""
    out: dict[str, bool] = {}
    for name, row in result.items():
        if name.startswith("agreement/"):
            f32 = row["float32"]["device_reference_vs_cpu_fused"]
            out[f"{name}/float32"] = max(f32.values()) < 1e-4
            bf, yard = row["bfloat16"]["device_reference_vs_cpu_fused"], row["bfloat16"]["cpu_bf16_vs_float32"]
            out[f"{name}/bfloat16"] = all(bf[k] <= 3 * yard[k] + 1e-6 for k in bf)
    run = result.get("placement_update_replica")
    if run:
        want = "reference" if torch.device(device).type != "cpu" else "cpu_fused"
        out["placement"] = not run["weights_off_device"] and all(d.startswith(torch.device(device).type)
                                                                 for d in run["outputs_on"])
        out["auto_kernels"] = run["kernels_auto_picked"] == want
        out["update"] = run["weights_moved"] and run["weights_returned_on"] == ["cpu"]
        out["checkpoint"] = run["checkpoint_round_trip_equal"]
        out["replica"] = run["replica_bit_identical"]
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--models", default="tiny-test,default", help="comma-separated; agreement runs on each")
    p.add_argument("--seconds", type=float, default=3.0, help="time per throughput measurement")
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "gpu_check.json"))
    args = p.parse_args(argv)
    result: dict[str, Any] = {"torch": torch.__version__, "cuda": torch.version.cuda, "device": args.device,
                              "date": time.strftime("%Y-%m-%dT%H:%M:%S"), "errors": {}}
    if torch.device(args.device).type == "cuda" and torch.cuda.is_available():
        result["gpu"] = torch.cuda.get_device_name(torch.device(args.device))
    models = args.models.split(",")
    steps = [(f"agreement/{m}", lambda m=m: agreement(m, args.device)) for m in models]
    steps += [("placement_update_replica", lambda: placement_update_replica(models[-1], args.device)),
              ("throughput", lambda: throughput(models[-1], args.device, args.seconds))]
    for name, step in steps:
        start = time.perf_counter()
        try:
            result[name] = step()
        except Exception:  # one failing check must not hide the others': each is reported
            result["errors"][name] = traceback.format_exc(limit=8)
        print(f"{name}: {time.perf_counter() - start:.1f} s", "FAILED" if name in result["errors"] else "", flush=True)
    result["checks"] = verdicts(result, args.device)
    result["ok"] = not result["errors"] and all(result["checks"].values())
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "errors"}, indent=1))
    for name, error in result["errors"].items():
        print(f"--- {name}\n{error}", file=sys.stderr)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
