"""Policy-gradient objectives as pure tensor functions, and how their terms become a loss.

Every objective has one signature::

    terms, metrics = OBJECTIVES[name](logp, old_logp, advantages, mask, *, eps_low, eps_high,
                                      [rollout_logp,] **params)

``logp`` and ``old_logp`` are float [B, T] log-probabilities of the sampled tokens under
pi_theta (carrying the gradient) and pi_old; ``advantages`` is [B] (one per sequence) or
[B, T] (one per token); ``mask`` is [B, T], nonzero on response tokens; ``rollout_logp``
(only for objectives that name it) the inference engine's log-probs of the same tokens.
``terms`` are [B, T] per-token loss terms (the negated objective, zero off the mask);
``metrics`` maps names to detached 0-dim tensors. A sequence-level objective puts its one
term on every token of the sequence, so that the mean over those tokens is that term.

An **aggregation** (``AGGREGATIONS``) turns terms into the scalar to minimise, given the
totals of the whole minibatch over every micro-batch and rank (``Totals``), so a minibatch
cut into any number of micro-batches on any number of ranks has one gradient:

- ``seq_mean_token_mean`` (the GSPO paper's GRPO and GSPO): mean over sequences of each
  sequence's token mean;
- ``token_mean`` (DAPO): sum over every token / number of tokens;
- ``seq_mean_token_sum_norm`` (Dr.GRPO): sum over every token / (sequences x max length).

Values at masked positions never matter: they are replaced before any arithmetic, so padding
may hold anything, inf and nan included. Sequences without a single response token are left
out of every count (they carry no sample).

A new objective is one function with this signature, decorated with ``@register("name")``;
its keyword parameters beyond the common ones are the ``params:`` of an arm.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass

import torch

from gspo_repro.registry import Registry

Objective = Callable[..., tuple[torch.Tensor, dict[str, torch.Tensor]]]
OBJECTIVES = Registry("objective")
# Arguments every objective receives; anything else in its signature is an arm's ``params``.
COMMON = ("logp", "old_logp", "advantages", "mask", "eps_low", "eps_high", "rollout_logp")


def register(name: str, level: str = "token", aggregation: str = "seq_mean_token_mean"
             ) -> Callable[[Objective], Objective]:
    """Add an objective to ``OBJECTIVES`` under ``name`` (a name can be taken only once);
    ``level`` says whether its ratio is per token or per sequence (a mismatch correction
    follows it) and ``aggregation`` is the default way its terms become a loss."""
    if level not in ("token", "sequence"):
        raise ValueError(f"objective level must be token or sequence, got {level!r}")

    def deco(fn: Objective) -> Objective:
        fn.level, fn.aggregation = level, aggregation
        return OBJECTIVES.register(name)(fn)

    return deco


get_objective = OBJECTIVES.lookup


def takes_rollout_logp(fn: Objective) -> bool:
    """Whether the objective reads the inference engine's log-probs."""
    return "rollout_logp" in inspect.signature(fn).parameters


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


def _on_tokens(per_seq: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """A sequence's term on each of its tokens (zero off the mask): its token mean is it."""
    return torch.where(m, per_seq[:, None].expand_as(m), torch.zeros_like(m, dtype=per_seq.dtype))


def _masked(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    return torch.where(m, x, torch.zeros_like(x))


@register("grpo")
def grpo(logp, old_logp, advantages, mask, eps_low: float = 0.2, eps_high: float = 0.27):
    """GRPO, token-level importance ratios (paper eq. 5-6)::

        J = E[ 1/G sum_i 1/|y_i| sum_t min(w_it A_it, clip(w_it, 1-eps_low, 1+eps_high) A_it) ]
        w_it = pi_theta(y_it | x, y_i,<t) / pi_old(y_it | x, y_i,<t)

    Terms: -min(w A, clip(w) A) per token. No KL term (the paper drops it). Defaults are the
    paper's GRPO clip range 0.2 / 0.27; with 0.2 / 0.28, token_mean, dynamic sampling and
    overlong shaping it is DAPO's loss.
    """
    m = _check(logp, old_logp, advantages, mask)
    adv = _token_advantages(advantages, m)
    delta = _log_ratio(logp, old_logp, m)
    ratio = torch.exp(delta)
    term, low, high = _clipped_surrogate(ratio, adv, eps_low, eps_high)
    return _masked(-term, m), _metrics(ratio, m, low, high, delta, m)


def _sequence_ratio(logp, old_logp, advantages, mask):
    """(mask, per-sequence advantages, token log-ratios, s_i) of a sequence-level objective."""
    m = _check(logp, old_logp, advantages, mask)
    if advantages.dim() != 1:
        raise ValueError("this objective takes one advantage per sequence ([B]); use "
                         "gspo_token for per-token ones")
    adv = torch.where(m.sum(-1) > 0, advantages, torch.zeros_like(advantages))
    delta = _log_ratio(logp, old_logp, m)
    return m, adv, delta, torch.exp(_seq_mean(delta, m))


@register("gspo", level="sequence")
def gspo(logp, old_logp, advantages, mask, eps_low: float = 3e-4, eps_high: float = 4e-4):
    """GSPO, one length-normalised importance ratio per sequence (paper eq. 7-8)::

        J = E[ 1/G sum_i min(s_i A_i, clip(s_i, 1-eps_low, 1+eps_high) A_i) ]
        s_i = (pi_theta(y_i | x) / pi_old(y_i | x))^(1/|y_i|)
            = exp( 1/|y_i| sum_t log pi_theta(y_it) - log pi_old(y_it) )

    Advantages must be one per sequence. Defaults are the paper's 3e-4 / 4e-4. A clipped
    sequence counts all its tokens in ``clip_frac``; ratio statistics are over sequences.
    Under ``token_mean`` the sequence terms would be weighted by length (TRL #3823): keep
    the default ``seq_mean_token_mean``.
    """
    m, adv, delta, s = _sequence_ratio(logp, old_logp, advantages, mask)
    term, low, high = _clipped_surrogate(s, adv, eps_low, eps_high)
    low_tok, high_tok = low[:, None].expand_as(m), high[:, None].expand_as(m)
    return _on_tokens(-term, m), _metrics(s, m.sum(-1) > 0, low_tok, high_tok, delta, m)


@register("gspo_token")
def gspo_token(logp, old_logp, advantages, mask, eps_low: float = 3e-4, eps_high: float = 4e-4):
    """GSPO-token, the sequence ratio with per-token advantages (paper eq. 13-14)::

        J = E[ 1/G sum_i 1/|y_i| sum_t min(s_it A_it, clip(s_it, 1-eps_low, 1+eps_high) A_it) ]
        s_it = sg[s_i] * pi_theta(y_it) / sg[pi_theta(y_it)]

    s_it equals s_i in value; its gradient is s_i * grad log pi_theta(y_it). With A_it = A_i
    it equals GSPO in loss and gradient (the trainer's advantages are per sequence, so as an
    arm it duplicates ``gspo``). Ratio statistics are over sequences.
    """
    m = _check(logp, old_logp, advantages, mask)
    adv = _token_advantages(advantages, m)
    delta = _log_ratio(logp, old_logp, m)
    s = torch.exp(_seq_mean(delta, m))
    lp = torch.where(m, logp, torch.zeros_like(logp))
    s_tok = s.detach()[:, None] * torch.exp(lp - lp.detach())
    term, low, high = _clipped_surrogate(s_tok, adv, eps_low, eps_high)
    return _masked(-term, m), _metrics(s, m.sum(-1) > 0, low, high, delta, m)


@register("cispo", aggregation="token_mean")
def cispo(logp, old_logp, advantages, mask, eps_low: float = 1.0, eps_high: float = 0.28):
    """CISPO (MiniMax-M1, arXiv 2506.13585 eq. 4-5): clip the importance weight, not the
    update, so every token keeps a gradient::

        J = E[ 1/sum_i |y_i| sum_i sum_t sg(clip(w_it, 1-eps_low, 1+eps_high)) A_it
                                          log pi_theta(y_it) ]

    Terms: -sg(clip(w)) A log pi_theta. eps_low 1.0 leaves no lower bound (MiniMax tuned only
    the upper one); ``clip_frac`` counts tokens whose weight was clipped (A of either sign).
    """
    m = _check(logp, old_logp, advantages, mask)
    adv = _token_advantages(advantages, m)
    delta = _log_ratio(logp, old_logp, m)
    ratio = torch.exp(delta)
    if eps_low < 0 or eps_high < 0:
        raise ValueError(f"eps_low and eps_high must be >= 0, got {eps_low}, {eps_high}")
    weight = ratio.clamp(1.0 - eps_low, 1.0 + eps_high).detach()
    term = weight * adv * _masked(logp, m)
    low, high = ratio < 1.0 - eps_low, ratio > 1.0 + eps_high
    return _masked(-term, m), _metrics(ratio, m, low, high, delta, m)


@register("gmpo", level="sequence")
def gmpo(logp, old_logp, advantages, mask, eps_low: float = 0.4, eps_high: float = 0.4):
    """GMPO (arXiv 2507.20673): the geometric mean of token ratios, each clipped in log
    space on the side the advantage's sign makes pessimistic::

        J = E[ 1/G sum_i A_i exp( 1/|y_i| sum_t sgn(A_i) min(sgn(A_i) d_it,
                                                   sgn(A_i) clip(d_it, -eps_low, eps_high)) ) ]
        d_it = log pi_theta(y_it) - log pi_old(y_it)

    As verl's ``geo_mean`` loss, whose ``clip_ratio`` 0.4 is the default here. Terms: the
    sequence's -A_i r_i on each of its tokens; ``clip_frac`` counts tokens whose log-ratio
    the clip bound.
    """
    m, adv, delta, _ = _sequence_ratio(logp, old_logp, advantages, mask)
    if eps_low < 0 or eps_high < 0:
        raise ValueError(f"eps_low and eps_high must be >= 0, got {eps_low}, {eps_high}")
    sign = torch.sign(adv)[:, None]
    clipped = delta.clamp(-eps_low, eps_high)
    kept = sign * torch.minimum(sign * delta, sign * clipped)
    r = torch.exp(_seq_mean(kept, m))
    bound = (kept != delta) & m
    low, high = bound & (delta < 0), bound & (delta > 0)
    return _on_tokens(-adv * r, m), _metrics(r, m.sum(-1) > 0, low, high, delta, m)


@register("sapo")
def sapo(logp, old_logp, advantages, mask, eps_low: float = 0.0, eps_high: float = 0.0,
         tau_pos: float = 1.0, tau_neg: float = 1.05):
    """SAPO (arXiv 2511.20347): a soft, temperature-controlled gate in place of the clip::

        J = E[ 1/G sum_i 1/|y_i| sum_t f(w_it) A_it ],  f(w) = (4/tau) sigmoid(tau (w - 1))
        tau = tau_pos where A > 0, tau_neg where A < 0

    f'(1) = 1: on-policy it is the plain policy gradient; off-policy the gradient fades
    smoothly, faster for negative advantages (tau_neg > tau_pos). eps_low/eps_high are unused
    (there is no hard clip), so ``clip_frac`` is 0.
    """
    m = _check(logp, old_logp, advantages, mask)
    if tau_pos <= 0 or tau_neg <= 0:
        raise ValueError(f"tau_pos and tau_neg must be > 0, got {tau_pos}, {tau_neg}")
    adv = _token_advantages(advantages, m)
    delta = _log_ratio(logp, old_logp, m)
    ratio = torch.exp(delta)
    tau = torch.where(adv > 0, torch.full_like(adv, tau_pos), torch.full_like(adv, tau_neg))
    gate = 4.0 / tau * torch.sigmoid(tau * (ratio - 1.0))
    none = torch.zeros_like(m)
    return _masked(-gate * adv, m), _metrics(ratio, m, none, none, delta, m)


def _mismatch(old_logp, rollout_logp, m, level: str) -> torch.Tensor:
    """pi_old / pi_rollout per token, or per sequence as the geometric mean over its tokens
    (on every token of it): the trainer/engine mismatch a correction acts on."""
    d = _log_ratio(old_logp.detach(), rollout_logp, m).detach()
    if level == "sequence":
        d = _on_tokens(_seq_mean(d, m), m)
    return torch.exp(d)


def _tis(base: Objective, level: str, logp, old_logp, advantages, mask, rollout_logp,
         eps_low, eps_high, cap: float):
    """Truncated importance sampling: ``base``'s terms times min(pi_old/pi_rollout, cap)."""
    terms, met = base(logp, old_logp, advantages, mask, eps_low=eps_low, eps_high=eps_high)
    m = mask.bool()
    rho = _mismatch(old_logp, rollout_logp, m, level)
    w = rho.clamp(max=cap)
    n = m.sum().clamp(min=1)
    met.update(mismatch_mean=(rho * m).sum() / n, mismatch_truncated=((rho > cap) & m).sum() / n)
    return terms * w, met


def _icepop(base: Objective, level: str, logp, old_logp, advantages, mask, rollout_logp,
            eps_low, eps_high, low: float, high: float):
    """IcePop-style masking: ``base``'s terms zeroed where pi_old/pi_rollout leaves
    [low, high]; the token (or sequence) still counts in the aggregation's totals."""
    terms, met = base(logp, old_logp, advantages, mask, eps_low=eps_low, eps_high=eps_high)
    m = mask.bool()
    rho = _mismatch(old_logp, rollout_logp, m, level)
    keep = (rho >= low) & (rho <= high)
    n = m.sum().clamp(min=1)
    met.update(mismatch_mean=(rho * m).sum() / n, mismatch_masked=(~keep & m).sum() / n)
    return torch.where(keep, terms, torch.zeros_like(terms)), met


@register("grpo_tis")
def grpo_tis(logp, old_logp, advantages, mask, rollout_logp, eps_low: float = 0.2,
             eps_high: float = 0.27, cap: float = 2.0):
    """GRPO with truncated importance sampling against the engine (TIS; verl
    ``rollout_is=token``): each token's term times min(pi_old(y_t) / pi_rollout(y_t), cap)."""
    return _tis(grpo, "token", logp, old_logp, advantages, mask, rollout_logp, eps_low,
                eps_high, cap)


@register("gspo_tis", level="sequence")
def gspo_tis(logp, old_logp, advantages, mask, rollout_logp, eps_low: float = 3e-4,
             eps_high: float = 4e-4, cap: float = 2.0):
    """GSPO with sequence-level TIS: each sequence's term times min(rho_i, cap), rho_i the
    geometric mean over its tokens of pi_old / pi_rollout."""
    return _tis(gspo, "sequence", logp, old_logp, advantages, mask, rollout_logp, eps_low,
                eps_high, cap)


@register("grpo_icepop")
def grpo_icepop(logp, old_logp, advantages, mask, rollout_logp, eps_low: float = 0.2,
                eps_high: float = 0.27, low: float = 0.5, high: float = 5.0):
    """GRPO with IcePop's masking: tokens whose pi_old / pi_rollout leaves [0.5, 5] get no
    gradient (Ling team's IcePop bounds)."""
    return _icepop(grpo, "token", logp, old_logp, advantages, mask, rollout_logp, eps_low,
                   eps_high, low, high)


@register("gspo_icepop", level="sequence")
def gspo_icepop(logp, old_logp, advantages, mask, rollout_logp, eps_low: float = 3e-4,
                eps_high: float = 4e-4, low: float = 0.5, high: float = 5.0):
    """GSPO with sequence-level masking: a sequence whose geometric-mean pi_old / pi_rollout
    leaves [low, high] gets no gradient."""
    return _icepop(gspo, "sequence", logp, old_logp, advantages, mask, rollout_logp, eps_low,
                   eps_high, low, high)


@dataclass(frozen=True)
class Totals:
    """What one minibatch holds, over every micro-batch and rank: response tokens,
    sequences with at least one, and the response budget (Dr.GRPO's constant)."""

    tokens: float
    seqs: float
    max_len: float


def local_totals(mask: torch.Tensor, max_len: int | None = None) -> Totals:
    """The totals of one [B, T] mask on its own (``max_len`` defaults to T)."""
    m = mask.bool()
    return Totals(float(m.sum()), float((m.sum(-1) > 0).sum()),
                  float(max_len if max_len is not None else m.shape[-1]))


Aggregation = Callable[[torch.Tensor, torch.Tensor, Totals], torch.Tensor]
AGGREGATIONS = Registry("aggregation")
register_aggregation = AGGREGATIONS.register


@register_aggregation("seq_mean_token_mean")
def seq_mean_token_mean(terms, mask, totals: Totals) -> torch.Tensor:
    """(1/N_seq) sum_i (1/|y_i|) sum_t terms_it: each sequence weighs the same."""
    return _seq_mean(terms, mask.bool()).sum() / max(totals.seqs, 1.0)


@register_aggregation("token_mean")
def token_mean(terms, mask, totals: Totals) -> torch.Tensor:
    """(1/N_tok) sum_i sum_t terms_it: each token weighs the same (DAPO)."""
    return _masked(terms, mask.bool()).sum() / max(totals.tokens, 1.0)


@register_aggregation("seq_mean_token_sum_norm")
def seq_mean_token_sum_norm(terms, mask, totals: Totals) -> torch.Tensor:
    """(1/(N_seq L_max)) sum_i sum_t terms_it: a constant normaliser (Dr.GRPO's G x L_max)."""
    return _masked(terms, mask.bool()).sum() / max(totals.seqs * totals.max_len, 1.0)


get_aggregation = AGGREGATIONS.lookup


def objective_loss(name: str, logp, old_logp, advantages, mask, aggregation: str = "",
                   **kw) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """One batch's loss under objective ``name`` and ``aggregation`` (its default when
    empty), the batch standing alone (its own totals): the scalar a single pass minimises."""
    fn = get_objective(name)
    terms, met = fn(logp, old_logp, advantages, mask, **kw)
    agg = get_aggregation(aggregation or getattr(fn, "aggregation", "seq_mean_token_mean"))
    return agg(terms, mask, local_totals(mask)), met
