"""Policy-gradient objectives of the GSPO paper (arXiv 2507.18071) as pure tensor functions.

Every objective has one signature::

    loss, metrics = OBJECTIVES[name](logp, old_logp, advantages, mask, eps_low=..., eps_high=...)

``logp`` and ``old_logp`` are float [B, T] log-probabilities of the sampled tokens under
pi_theta (carrying the gradient) and pi_old; ``advantages`` is [B] (one per sequence) or
[B, T] (one per token); ``mask`` is [B, T], nonzero on response tokens. ``loss`` is the
scalar to minimise (the negated objective); ``metrics`` maps names to detached 0-dim tensors.

Values at masked positions never matter: they are replaced before any arithmetic, so padding
may hold anything, inf and nan included. Sequences without a single response token are left
out of every average (they carry no sample).

A new objective is one function with this signature, decorated with ``@register("name")``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

Objective = Callable[..., tuple[torch.Tensor, dict[str, torch.Tensor]]]
OBJECTIVES: dict[str, Objective] = {}


def register(name: str) -> Callable[[Objective], Objective]:
    """Add an objective to ``OBJECTIVES`` under ``name``; a name can be taken only once."""

    def deco(fn: Objective) -> Objective:
        if name in OBJECTIVES:
            raise ValueError(f"objective {name!r} is already registered")
        OBJECTIVES[name] = fn
        return fn

    return deco


def get_objective(name: str) -> Objective:
    """The registered objective ``name``, or a ValueError listing the known ones."""
    try:
        return OBJECTIVES[name]
    except KeyError:
        raise ValueError(
            f"unknown objective {name!r}; known: {', '.join(sorted(OBJECTIVES))}"
        ) from None


def _check(logp, old_logp, advantages, mask) -> torch.Tensor:
    """Validate shapes and return the mask as bool."""
    if logp.dim() != 2:
        raise ValueError(f"logp must be [B, T], got shape {tuple(logp.shape)}")
    if old_logp.shape != logp.shape or mask.shape != logp.shape:
        raise ValueError(
            f"logp {tuple(logp.shape)}, old_logp {tuple(old_logp.shape)} and mask "
            f"{tuple(mask.shape)} must have the same shape"
        )
    if advantages.shape not in (logp.shape[:1], logp.shape):
        raise ValueError(
            f"advantages must be [B]={tuple(logp.shape[:1])} or [B, T]={tuple(logp.shape)}, "
            f"got {tuple(advantages.shape)}"
        )
    return mask.bool()


def _token_advantages(advantages: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """Per-token advantages [B, T], zero (not nan) at masked positions."""
    adv = advantages[:, None].expand_as(m) if advantages.dim() == 1 else advantages
    return torch.where(m, adv, torch.zeros_like(adv))


def _clipped_surrogate(ratio, adv, eps_low: float, eps_high: float):
    """min(ratio * A, clip(ratio, 1 - eps_low, 1 + eps_high) * A), and where the clip binds.

    The clip binds (the min picks the clipped branch and its gradient is zero) exactly when
    A > 0 and ratio > 1 + eps_high ("high"), or A < 0 and ratio < 1 - eps_low ("low").
    """
    if eps_low < 0 or eps_high < 0:
        raise ValueError(f"eps_low and eps_high must be >= 0, got {eps_low}, {eps_high}")
    clipped = ratio.clamp(1.0 - eps_low, 1.0 + eps_high)
    term = torch.minimum(ratio * adv, clipped * adv)
    high = (adv > 0) & (ratio > 1.0 + eps_high)
    low = (adv < 0) & (ratio < 1.0 - eps_low)
    return term, low, high


def _seq_mean(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """Mean of x over each sequence's valid tokens: [B, T] -> [B] (0 for empty rows)."""
    return torch.where(m, x, torch.zeros_like(x)).sum(-1) / m.sum(-1).clamp(min=1)


def _metrics(ratio, ratio_valid, low_tok, high_tok, delta, m) -> dict[str, torch.Tensor]:
    """Clip and ratio statistics shared by all objectives.

    ``low_tok``/``high_tok`` are [B, T] flags of tokens whose term was clipped; ``ratio`` are
    the ratios the objective clipped, ``ratio_valid`` which of them count. ``num_tokens`` and
    ``num_seqs`` let a caller weight the fractions when reducing across ranks; ``num_ratios``
    is how many ratios ``ratio_mean`` averages (tokens or sequences, by objective).
    """
    n_tok = m.sum()
    denom = n_tok.clamp(min=1).to(delta.dtype)
    low = (low_tok & m).sum() / denom
    high = (high_tok & m).sum() / denom
    r = ratio[ratio_valid].detach()
    n_ratios = r.numel()
    if n_ratios == 0:
        r = torch.ones(1, dtype=ratio.dtype, device=ratio.device)
    return {
        "clip_frac": (low + high).detach(),
        "clip_frac_low": low.detach(),
        "clip_frac_high": high.detach(),
        "ratio_mean": r.mean(),
        "ratio_min": r.min(),
        "ratio_max": r.max(),
        # k1 estimator of KL(pi_old || pi_theta) on the sampled tokens.
        "approx_kl": (-torch.where(m, delta, torch.zeros_like(delta)).sum() / denom).detach(),
        "num_tokens": n_tok.detach().to(delta.dtype),
        "num_seqs": (m.sum(-1) > 0).sum().detach().to(delta.dtype),
        "num_ratios": torch.tensor(float(n_ratios), dtype=delta.dtype, device=delta.device),
    }


def _log_ratio(logp, old_logp, m) -> torch.Tensor:
    """log pi_theta - log pi_old per token, zero at masked positions (whatever they hold)."""
    zero = torch.zeros_like(logp)
    return torch.where(m, logp, zero) - torch.where(m, old_logp, zero).detach()


def _mean_over_seqs(per_seq: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """(1/G) sum_i over the sequences that hold at least one response token."""
    valid = m.sum(-1) > 0
    return torch.where(valid, per_seq, torch.zeros_like(per_seq)).sum() / valid.sum().clamp(min=1)


@register("grpo")
def grpo(logp, old_logp, advantages, mask, eps_low: float = 0.2, eps_high: float = 0.27):
    """GRPO, token-level importance ratios (paper eq. 5-6)::

        J = E[ 1/G sum_i 1/|y_i| sum_t min(w_it A_it, clip(w_it, 1-eps_low, 1+eps_high) A_it) ]
        w_it = pi_theta(y_it | x, y_i,<t) / pi_old(y_it | x, y_i,<t)

    No KL term (the paper drops it). Defaults are the paper's GRPO clip range 0.2 / 0.27.
    """
    m = _check(logp, old_logp, advantages, mask)
    adv = _token_advantages(advantages, m)
    delta = _log_ratio(logp, old_logp, m)
    ratio = torch.exp(delta)
    term, low, high = _clipped_surrogate(ratio, adv, eps_low, eps_high)
    loss = -_mean_over_seqs(_seq_mean(term, m), m)
    return loss, _metrics(ratio, m, low, high, delta, m)


@register("gspo")
def gspo(logp, old_logp, advantages, mask, eps_low: float = 3e-4, eps_high: float = 4e-4):
    """GSPO, one length-normalised importance ratio per sequence (paper eq. 7-8)::

        J = E[ 1/G sum_i min(s_i A_i, clip(s_i, 1-eps_low, 1+eps_high) A_i) ]
        s_i = (pi_theta(y_i | x) / pi_old(y_i | x))^(1/|y_i|)
            = exp( 1/|y_i| sum_t log pi_theta(y_it) - log pi_old(y_it) )

    Advantages must be one per sequence. Defaults are the paper's 3e-4 / 4e-4. A clipped
    sequence counts all its tokens in ``clip_frac``; ratio statistics are over sequences.
    """
    m = _check(logp, old_logp, advantages, mask)
    if advantages.dim() != 1:
        raise ValueError(
            "gspo takes one advantage per sequence ([B]); use gspo_token for per-token ones"
        )
    valid = m.sum(-1) > 0
    adv = torch.where(valid, advantages, torch.zeros_like(advantages))
    delta = _log_ratio(logp, old_logp, m)
    s = torch.exp(_seq_mean(delta, m))
    term, low, high = _clipped_surrogate(s, adv, eps_low, eps_high)
    loss = -_mean_over_seqs(term, m)
    low_tok, high_tok = low[:, None].expand_as(m), high[:, None].expand_as(m)
    return loss, _metrics(s, valid, low_tok, high_tok, delta, m)


@register("gspo_token")
def gspo_token(logp, old_logp, advantages, mask, eps_low: float = 3e-4, eps_high: float = 4e-4):
    """GSPO-token, the sequence ratio with per-token advantages (paper eq. 13-14)::

        J = E[ 1/G sum_i 1/|y_i| sum_t min(s_it A_it, clip(s_it, 1-eps_low, 1+eps_high) A_it) ]
        s_it = sg[s_i] * pi_theta(y_it) / sg[pi_theta(y_it)]

    s_it equals s_i in value; its gradient is s_i * grad log pi_theta(y_it). With A_it = A_i
    it equals GSPO in loss and gradient. Ratio statistics are over sequences.
    """
    m = _check(logp, old_logp, advantages, mask)
    adv = _token_advantages(advantages, m)
    delta = _log_ratio(logp, old_logp, m)
    s = torch.exp(_seq_mean(delta, m))
    lp = torch.where(m, logp, torch.zeros_like(logp))
    s_tok = s.detach()[:, None] * torch.exp(lp - lp.detach())
    term, low, high = _clipped_surrogate(s_tok, adv, eps_low, eps_high)
    loss = -_mean_over_seqs(_seq_mean(term, m), m)
    return loss, _metrics(s, m.sum(-1) > 0, low, high, delta, m)
