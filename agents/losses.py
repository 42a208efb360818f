"""Losses and advantages: small pure functions on tensors, each unit-tested against hand-computed values.

Shapes: ``_N`` items (one per action taken), ``_NA`` items x candidates,
``_T`` steps of one episode, ``_E`` episodes.

:class:`PPOLoss` combines them into the loss :meth:`Learner.forward_backward`
takes: PPO-clip on the action log-probs against the behaviour policy's, an
entropy bonus over the candidate distribution, an optional value loss, and an
optional exact KL (over the candidates) to the initial policy.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Hashable, Sequence
from typing import Annotated, Any

import torch
from annotated_types import Ge, Gt

__all__ = [
    "BCLoss",
    "EnvReturnScaler",
    "PPOConfig",
    "PPOLoss",
    "advantage_variance",
    "baseline_variances",
    "behaviour_cloning_loss",
    "candidate_entropy",
    "candidate_kl",
    "discounted_returns",
    "gae",
    "group_ids",
    "group_relative_advantages",
    "normalize_by_env",
    "ppo_clip_loss",
    "value_loss",
]


def ppo_clip_loss(
    logp_N: torch.Tensor, old_logp_N: torch.Tensor, adv_N: torch.Tensor, clip_eps: float = 0.2
) -> tuple[torch.Tensor, dict[str, float]]:
    """PPO's clipped surrogate, negated for minimisation: ``-mean(min(r A, clip(r, 1-eps, 1+eps) A))``,
    with ``r = exp(logp - old_logp)`` the importance ratio against the behaviour policy."""
    ratio_N = torch.exp(logp_N - old_logp_N)
    surrogate_N = torch.minimum(ratio_N * adv_N, ratio_N.clamp(1 - clip_eps, 1 + clip_eps) * adv_N)
    with torch.no_grad():
        log_ratio = logp_N - old_logp_N
        metrics = {
            "clip_frac": float(((ratio_N - 1).abs() > clip_eps).float().mean()),
            # k3 estimator of KL(behaviour || current): non-negative, low variance (Schulman's note)
            "approx_kl": float(((ratio_N - 1) - log_ratio).mean()),
            "ratio_mean": float(ratio_N.mean()),
        }
    return -surrogate_N.mean(), metrics


def group_ids(env_ids: Sequence[str], seeds: Sequence[int | None], randomizations: Sequence[Any]) -> list[str]:
    """Group keys: episodes of the same env with the same seed and parameters form a group (GRPO)."""
    import json

    return [
        f"{e}|{s}|{json.dumps(r, sort_keys=True, default=str)}" for e, s, r in zip(env_ids, seeds, randomizations)
    ]


def group_relative_advantages(
    returns_E: torch.Tensor, groups: Sequence[Hashable], *, scale: bool = True, eps: float = 1e-6
) -> torch.Tensor:
    """GRPO advantages: each episode's return minus its group's mean, divided by the group's std
    (population std, ``+ eps``) when ``scale``. A group of one, or of equal returns, gives 0."""
    if len(groups) != returns_E.shape[0]:
        raise ValueError(f"{len(groups)} group keys for {returns_E.shape[0]} returns")
    adv_E = torch.zeros_like(returns_E, dtype=torch.float32)
    index: dict[Hashable, list[int]] = {}
    for i, g in enumerate(groups):
        index.setdefault(g, []).append(i)
    for members in index.values():
        idx = torch.tensor(members)
        r = returns_E[idx].float()
        centred = r - r.mean()
        std = float(r.std(unbiased=False))
        adv_E[idx] = (centred / (std + eps) if std > 0 else torch.zeros_like(centred)) if scale else centred
    return adv_E


def discounted_returns(rewards_T: torch.Tensor, gamma: float = 1.0, last_value: float = 0.0) -> torch.Tensor:
    """``G_t = r_t + gamma * G_{t+1}``, ``G_T = last_value`` (0 at termination, V(s_T) at truncation)."""
    out_T = torch.zeros_like(rewards_T, dtype=torch.float32)
    g = float(last_value)
    for t in range(rewards_T.shape[0] - 1, -1, -1):
        g = float(rewards_T[t]) + gamma * g
        out_T[t] = g
    return out_T


def gae(
    rewards_T: torch.Tensor, values_T: torch.Tensor, *, gamma: float = 1.0, lam: float = 0.95, last_value: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalized advantage estimation for one episode: ``(advantages_T, returns_T = adv + V)``.

    ``delta_t = r_t + gamma V(s_{t+1}) - V(s_t)``, ``A_t = delta_t + gamma lam A_{t+1}``; ``V(s_T) =
    last_value`` (0 when the episode terminated, the value estimate when it was truncated)."""
    T = rewards_T.shape[0]
    adv_T = torch.zeros(T, dtype=torch.float32)
    next_value, running = float(last_value), 0.0
    for t in range(T - 1, -1, -1):
        delta = float(rewards_T[t]) + gamma * next_value - float(values_T[t])
        running = delta + gamma * lam * running
        adv_T[t] = running
        next_value = float(values_T[t])
    return adv_T, adv_T + values_T.detach().float()


def normalize_by_env(x_N: torch.Tensor, env_ids: Sequence[str], eps: float = 1e-6) -> torch.Tensor:
    """Standardize within each env id (mean 0, population std 1), so that no env's reward scale dominates
    a joint batch. An env with one item, or constant values, gives 0."""
    out_N = torch.zeros_like(x_N, dtype=torch.float32)
    for env in set(env_ids):
        idx = torch.tensor([i for i, e in enumerate(env_ids) if e == env])
        v = x_N[idx].float()
        std = float(v.std(unbiased=False))
        out_N[idx] = (v - v.mean()) / (std + eps) if std > 0 else torch.zeros_like(v)
    return out_N


class EnvReturnScaler:
    """Per-env running std of episode returns, to scale rewards before GAE (so one value head can serve
    envs whose rewards differ by orders of magnitude). State is plain JSON."""

    def __init__(self, eps: float = 1e-6) -> None:
        self.eps = eps
        self.stats: dict[str, list[float]] = {}  # env -> [count, mean, M2] (Welford)

    def update(self, env_id: str, returns: Sequence[float]) -> None:
        n, mean, m2 = self.stats.get(env_id, [0.0, 0.0, 0.0])
        for x in returns:
            n += 1
            d = x - mean
            mean += d / n
            m2 += d * (x - mean)
        self.stats[env_id] = [n, mean, m2]

    def scale(self, env_id: str) -> float:
        """The divisor for this env's rewards: its return std (1 until two returns were seen)."""
        n, _, m2 = self.stats.get(env_id, [0.0, 0.0, 0.0])
        return math.sqrt(m2 / n) + self.eps if n >= 2 and m2 > 0 else 1.0

    def state_dict(self) -> dict[str, Any]:
        return {"eps": self.eps, "stats": {k: list(v) for k, v in self.stats.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.eps = float(state["eps"])
        self.stats = {k: [float(x) for x in v] for k, v in state["stats"].items()}


def candidate_entropy(logdist_NA: torch.Tensor, mask_NA: torch.Tensor) -> torch.Tensor:
    """Entropy of each item's distribution over its candidates, ``-sum p log p`` over real candidates: (N,)."""
    p_NA = logdist_NA.exp()
    return -(p_NA * logdist_NA * mask_NA).sum(-1)


def candidate_kl(logdist_NA: torch.Tensor, ref_logdist_NA: torch.Tensor, mask_NA: torch.Tensor) -> torch.Tensor:
    """Exact KL(pi || pi_ref) over each item's candidates: (N,). (Generated text tokens are not included.)"""
    p_NA = logdist_NA.exp()
    return (p_NA * (logdist_NA - ref_logdist_NA) * mask_NA).sum(-1)


def value_loss(values_N: torch.Tensor, targets_N: torch.Tensor) -> torch.Tensor:
    """``0.5 * mean((V - target)^2)``."""
    return 0.5 * ((values_N - targets_N) ** 2).mean()


def behaviour_cloning_loss(logp_N: torch.Tensor) -> torch.Tensor:
    """Negative mean log-likelihood of the demonstrated actions (supervised warm start)."""
    return -logp_N.mean()


def advantage_variance(returns_N: torch.Tensor, advantages_N: torch.Tensor | None) -> dict[str, float]:
    """How much a baseline reduces the variance of the policy-gradient weights.

    ``adv_var_no_baseline``: variance of the returns-to-go themselves; ``adv_var_with_baseline``: of the
    advantages actually used (group-relative or GAE with the value head), both before any scaling;
    their ratio < 1 means the baseline helps."""
    no_base = float(returns_N.float().var(unbiased=False)) if returns_N.numel() else 0.0
    out = {"adv_var_no_baseline": no_base}
    if advantages_N is not None and advantages_N.numel():
        with_base = float(advantages_N.float().var(unbiased=False))
        out["adv_var_with_baseline"] = with_base
        out["adv_var_ratio"] = with_base / no_base if no_base > 0 else float("nan")
    return out


def _centred_sq(x_N: torch.Tensor, env_ids: Sequence[str]) -> torch.Tensor:
    """``x`` minus its env's mean, squared: each sample's share of the within-env variance."""
    out_N = torch.zeros_like(x_N, dtype=torch.float32)
    for env in set(env_ids):
        idx = torch.tensor([i for i, e in enumerate(env_ids) if e == env])
        v = x_N[idx].float()
        out_N[idx] = (v - v.mean()) ** 2
    return out_N


def baseline_variances(no_value_N: torch.Tensor, value_N: torch.Tensor | None, env_ids: Sequence[str]
                       ) -> dict[str, float]:
    """What the value head buys: the variance of the same samples' advantages with and without it.

    ``no_value_N``: per sample (one per step trained on), GRPO's advantage before its std scaling: the episode's
    return minus its group's mean return (group: same env, seed and parameters). ``value_N``: GAE on the value
    head's estimates recorded at acting time, the advantage ppo trains on (``None``: the policy has no value head).
    Both are raw, before :func:`normalize_by_env`, on the same rewards (a ppo run's rewards divided by the env's
    return scale on both sides), so the ratio is Var(R - b_value) against Var(R - b_group) over the same samples
    (with the run's gamma and lambda; at lambda = 1, R - b_value is the return-to-go minus V(s_t)).

    Each variance is a population variance within an env id: a sample's advantage minus its env's mean over this
    batch, squared, averaged over the samples (normalize_by_env takes that mean out before training, so an offset
    in the value head's estimates is not counted). ``adv_var_no_value`` and ``adv_var_gae`` pool every env's
    centred samples; ``adv_var_value_ratio`` = gae / no_value (< 1: the value head reduces the variance; NaN when
    every group's returns were equal, where GRPO's advantage is 0); the same three per env with ``/<env id>``
    appended. Without a value head only the ``adv_var_no_value`` keys are there."""
    if no_value_N.numel() == 0:
        return {}
    sides = {"no_value": _centred_sq(no_value_N, env_ids)}
    if value_N is not None:
        if value_N.shape != no_value_N.shape:
            raise ValueError(f"{value_N.numel()} value-head advantages for {no_value_N.numel()} samples")
        sides["gae"] = _centred_sq(value_N, env_ids)
    out: dict[str, float] = {}
    envs = sorted(set(env_ids))
    for suffix, idx in [("", None)] + [(f"/{e}", torch.tensor([i for i, x in enumerate(env_ids) if x == e]))
                                       for e in envs]:
        var = {k: float(sq.mean() if idx is None else sq[idx].mean()) for k, sq in sides.items()}
        for k, v in var.items():
            out[f"adv_var_{k}{suffix}"] = v
        if "gae" in var:
            # float noise of equal returns (a mean of equal float32s is not always exact) counts as no variance
            out[f"adv_var_value_ratio{suffix}"] = (var["gae"] / var["no_value"] if var["no_value"] > 1e-10
                                                   else float("nan"))
    return out


@dataclasses.dataclass(frozen=True)
class PPOConfig:
    """The PPO/GRPO objective's coefficients."""

    clip_eps: Annotated[float, Gt(0)] = 0.2
    """PPO clip range for the importance ratio."""
    entropy_coef: Annotated[float, Ge(0)] = 0.01
    """Weight of the entropy bonus over the candidate distribution."""
    kl_coef: Annotated[float, Ge(0)] = 0.0
    """Weight of the exact KL (over candidates) to the initial policy; 0 turns the reference pass off. With full
    fine-tuning the learner then keeps a frozen copy of the initial model."""
    value_coef: Annotated[float, Ge(0)] = 0.5
    """Weight of the value loss (used when the policy has a value head)."""
    skip_zero_advantage: bool = False
    """Leave samples whose advantage is exactly 0 out of the update when there is no value head: GRPO groups
    whose episodes all scored the same (DAPO's dynamic sampling). They carry only the entropy and KL terms
    but each costs a forward and backward pass."""


class PPOLoss:
    """The loss for :meth:`Learner.forward_backward`: ``loss_fn(out, batch) -> (loss, metrics)``.

    ``out`` is a :class:`~multiverse.agents.policy.PolicyOutput` (``ref_logdist_NA`` set when
    ``needs_reference``); ``batch`` holds ``old_logp_N``, ``adv_N`` and ``returns_N`` tensors.
    """

    def __init__(self, config: PPOConfig = PPOConfig()) -> None:
        self.config = config
        self.needs_reference = config.kl_coef > 0

    def __call__(self, out: Any, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        c = self.config
        loss, metrics = ppo_clip_loss(out.logp_N, batch["old_logp_N"], batch["adv_N"], c.clip_eps)
        metrics["policy_loss"] = float(loss.detach())
        entropy_N = candidate_entropy(out.logdist_NA, out.mask_NA)
        metrics["entropy"] = float(entropy_N.detach().mean())
        if c.entropy_coef:
            loss = loss - c.entropy_coef * entropy_N.mean()
        if out.values_N is not None:
            v_loss = value_loss(out.values_N, batch["returns_N"])
            metrics["value_loss"] = float(v_loss.detach())
            loss = loss + c.value_coef * v_loss
        if self.needs_reference:
            kl_N = candidate_kl(out.logdist_NA, out.ref_logdist_NA, out.mask_NA)
            metrics["kl_to_initial"] = float(kl_N.detach().mean())
            loss = loss + c.kl_coef * kl_N.mean()
        metrics["loss"] = float(loss.detach())
        return loss, metrics


class BCLoss:
    """Behaviour cloning for :meth:`Learner.forward_backward`: the negative log-likelihood of each demonstrated
    action under the policy's distribution over the legal actions (a template's generated text tokens included).

    Metrics: ``bc_loss`` and ``p_action``, the mean probability the policy gives the demonstrated action."""

    needs_reference = False

    def __call__(self, out: Any, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        loss = behaviour_cloning_loss(out.logp_N)
        with torch.no_grad():
            metrics = {"bc_loss": float(loss), "p_action": float(out.logp_N.exp().mean()), "loss": float(loss)}
        return loss, metrics
