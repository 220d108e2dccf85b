"""Objectives against hand-worked values, a loop reference, and the paper's identities."""

import math

import pytest
import torch

from gspo_repro.objectives import OBJECTIVES, get_objective, objective_loss, register

F64 = torch.float64


def batch(ratios, mask, old=None):
    """logp / old_logp whose per-token ratios are ``ratios``; logp is a leaf with grad."""
    ratios = torch.tensor(ratios, dtype=F64)
    old = torch.full_like(ratios, -1.0) if old is None else old
    logp = (old + ratios.log()).requires_grad_(True)
    return logp, old, torch.tensor(mask, dtype=F64)


# Two sequences: 3 valid tokens and 2 valid tokens (+1 padding). Ratios chosen for hand math.
RATIOS = [[1.5, 1.0, 0.5], [1.1, 0.6, 1.0]]
MASK = [[1, 1, 1], [1, 1, 0]]


def test_grpo_hand_worked():
    logp, old, mask = batch(RATIOS, MASK)
    adv = torch.tensor([1.0, -1.0], dtype=F64)
    loss, m = objective_loss("grpo", logp, old, adv, mask)  # clip range [0.8, 1.27]
    # seq 0, A=+1: min(1.5, 1.27)=1.27 (clipped high); 1.0; min(0.5, 0.8)=0.5 (no clip for A>0)
    #   mean = (1.27 + 1.0 + 0.5) / 3 = 0.923333...
    # seq 1, A=-1: min(-1.1, -1.1) = -1.1; min(-0.6, -0.8) = -0.8 (clipped low)
    #   mean = (-1.1 - 0.8) / 2 = -0.95
    # objective = (0.923333 - 0.95) / 2 = -0.0133333; loss = +0.0133333
    assert loss.item() == pytest.approx(-((1.27 + 1.0 + 0.5) / 3 - 0.95) / 2, abs=1e-12)
    # clipped: seq0 tok0 (high), seq1 tok1 (low) -> 2 of 5 valid tokens
    assert m["clip_frac"].item() == pytest.approx(0.4)
    assert m["clip_frac_high"].item() == pytest.approx(0.2)
    assert m["clip_frac_low"].item() == pytest.approx(0.2)
    # token ratios over the 5 valid tokens: (1.5 + 1 + 0.5 + 1.1 + 0.6) / 5 = 0.94
    assert m["ratio_mean"].item() == pytest.approx(0.94)
    assert m["ratio_min"].item() == pytest.approx(0.5)
    assert m["ratio_max"].item() == pytest.approx(1.5)
    # approx_kl = mean(old - logp) = -mean(log ratio) over valid tokens
    kl = -(math.log(1.5) + math.log(0.5) + math.log(1.1) + math.log(0.6)) / 5  # = 0.14064
    assert m["approx_kl"].item() == pytest.approx(kl)
    assert m["num_tokens"].item() == 5 and m["num_seqs"].item() == 2


def test_gspo_hand_worked():
    logp, old, mask = batch(RATIOS, MASK)
    adv = torch.tensor([1.0, -1.0], dtype=F64)
    loss, m = objective_loss("gspo", logp, old, adv, mask, eps_low=0.1, eps_high=0.1)
    # s_0 = (1.5 * 1.0 * 0.5)^(1/3) = 0.75^(1/3) = 0.908560; A=+1, inside [0.9, 1.1]: 0.908560
    # s_1 = (1.1 * 0.6)^(1/2) = 0.66^(1/2) = 0.812404; A=-1: min(-0.812404, -0.9) = -0.9 (low)
    # objective = (0.908560 - 0.9) / 2 = 0.004280; loss = -0.004280
    s0, s1 = 0.75 ** (1 / 3), 0.66**0.5
    assert loss.item() == pytest.approx(-(s0 - 0.9) / 2, abs=1e-12)
    # the clipped sequence holds 2 of the 5 valid tokens
    assert m["clip_frac"].item() == pytest.approx(0.4)
    assert m["clip_frac_low"].item() == pytest.approx(0.4)
    assert m["clip_frac_high"].item() == 0.0
    # ratio statistics are over sequences: (0.908560 + 0.812404) / 2 = 0.860482
    assert m["ratio_mean"].item() == pytest.approx((s0 + s1) / 2)
    assert m["ratio_min"].item() == pytest.approx(s1)
    assert m["ratio_max"].item() == pytest.approx(s0)


def test_gspo_token_hand_worked():
    logp, old, mask = batch(RATIOS, MASK)
    # per-token advantages; the padded slot holds garbage that must not matter
    adv = torch.tensor([[1.0, 1.0, -1.0], [-1.0, -1.0, 123.0]], dtype=F64)
    loss, m = objective_loss("gspo_token", logp, old, adv, mask, eps_low=0.1, eps_high=0.1)
    # every s_it equals s_i in value: s_0 = 0.908560, s_1 = 0.812404
    # seq 0: A=+1 -> 0.908560 twice; A=-1 -> min(-0.908560, -0.908560) (inside range, no clip)
    #   mean = (0.908560 + 0.908560 - 0.908560) / 3 = 0.302853
    # seq 1: A=-1 both tokens: min(-0.812404, -0.9) = -0.9, clipped low -> mean -0.9
    # objective = (0.302853 - 0.9) / 2 = -0.298573; loss = +0.298573
    s0 = 0.75 ** (1 / 3)
    assert loss.item() == pytest.approx(-(s0 / 3 - 0.9) / 2, abs=1e-12)
    assert m["clip_frac"].item() == pytest.approx(0.4)  # seq 1's two tokens of 5
    assert m["clip_frac_low"].item() == pytest.approx(0.4)


def test_defaults_are_the_papers():
    import inspect

    def defaults(name):
        p = inspect.signature(OBJECTIVES[name]).parameters
        return p["eps_low"].default, p["eps_high"].default

    assert defaults("grpo") == (0.2, 0.27)
    assert defaults("gspo") == (3e-4, 4e-4)
    assert defaults("gspo_token") == (3e-4, 4e-4)


def random_batch(seed, B=6, T=9, spread=0.05):
    g = torch.Generator().manual_seed(seed)
    old = -torch.rand(B, T, generator=g, dtype=F64) * 3
    logp = (old + torch.randn(B, T, generator=g, dtype=F64) * spread).requires_grad_(True)
    lengths = torch.randint(1, T + 1, (B,), generator=g)
    mask = (torch.arange(T)[None, :] < lengths[:, None]).to(F64)
    adv = torch.randn(B, generator=g, dtype=F64)
    return logp, old, adv, mask


def reference(name, logp, old, adv, mask, eps_low, eps_high):
    """Slow, loop-by-loop reading of the paper's equations: (loss, clipped token count)."""
    seq_terms, clipped = [], 0
    for i in range(logp.shape[0]):
        idx = [t for t in range(logp.shape[1]) if mask[i, t] > 0]
        lr = [float(logp[i, t].detach() - old[i, t]) for t in idx]
        a = [float(adv[i]) if adv.dim() == 1 else float(adv[i, t]) for t in idx]
        if name == "grpo":
            ratios = [math.exp(x) for x in lr]
        else:
            ratios = [math.exp(sum(lr) / len(lr))] * len(lr)
        terms = []
        for r, ai in zip(ratios, a, strict=True):
            c = min(max(r, 1 - eps_low), 1 + eps_high)
            terms.append(min(r * ai, c * ai))
            clipped += c * ai < r * ai
        seq_terms.append(sum(terms) / len(terms))
    return -sum(seq_terms) / len(seq_terms), clipped


@pytest.mark.parametrize("name,eps", [("grpo", (0.2, 0.27)), ("gspo", (0.01, 0.02)),
                                      ("gspo_token", (0.01, 0.02))])
@pytest.mark.parametrize("seed", range(5))
def test_against_loop_reference(name, eps, seed):
    logp, old, adv, mask = random_batch(seed, spread=0.3)
    loss, m = objective_loss(name, logp, old, adv, mask, eps_low=eps[0], eps_high=eps[1])
    ref_loss, ref_clipped = reference(name, logp, old, adv, mask, *eps)
    assert loss.item() == pytest.approx(ref_loss, abs=1e-12)
    assert m["clip_frac"].item() == pytest.approx(ref_clipped / mask.sum().item())


def grad(name, logp, old, adv, mask, **kw):
    logp.grad = None
    loss, _ = objective_loss(name, logp, old, adv, mask, **kw)
    loss.backward()
    return loss.detach(), logp.grad.clone()


@pytest.mark.parametrize("seed", range(5))
def test_gspo_token_equals_gspo_with_sequence_advantages(seed):
    logp, old, adv, mask = random_batch(seed, spread=0.02)
    kw = dict(eps_low=3e-3, eps_high=4e-3)  # some sequences clip, some do not
    l1, g1 = grad("gspo", logp, old, adv, mask, **kw)
    adv_tok = adv[:, None].expand_as(mask).clone()
    l2, g2 = grad("gspo_token", logp, old, adv_tok, mask, **kw)
    assert abs(l1.item() - l2.item()) < 1e-6
    assert torch.allclose(g1, g2, atol=1e-6, rtol=0)
    assert g1.abs().sum() > 0


@pytest.mark.parametrize("seed", range(3))
def test_grpo_and_gspo_gradients_agree_on_policy(seed):
    _, old, adv, mask = random_batch(seed)
    logp = old.clone().requires_grad_(True)  # pi_theta == pi_old: every ratio is 1
    _, g_grpo = grad("grpo", logp, old, adv, mask)
    _, g_gspo = grad("gspo", logp, old, adv, mask)
    # both equal -(1/G) A_i / |y_i| on each valid token
    expected = -(adv[:, None] * mask / mask.sum(-1, keepdim=True)) / mask.shape[0]
    assert torch.allclose(g_grpo, expected, atol=1e-12)
    assert torch.allclose(g_gspo, expected, atol=1e-12)


def test_clip_fraction_token_vs_sequence():
    # 2 x 5 valid tokens; one token of sequence 0 has ratio 1.5, everything else ratio 1
    logp, old, mask = batch([[1.5, 1, 1, 1, 1], [1, 1, 1, 1, 1]], [[1] * 5, [1] * 5])
    adv = torch.tensor([1.0, -1.0], dtype=F64)
    _, m_grpo = OBJECTIVES["grpo"](logp, old, adv, mask)
    _, m_gspo = OBJECTIVES["gspo"](logp, old, adv, mask)
    # GRPO: 1.5 > 1.27 with A>0 clips that one token: 1 / 10
    assert m_grpo["clip_frac"].item() == pytest.approx(0.1)
    # GSPO: s_0 = 1.5^(1/5) = 1.0845 > 1 + 4e-4 clips all 5 tokens of seq 0; s_1 = 1: 5 / 10
    assert m_gspo["clip_frac"].item() == pytest.approx(0.5)
    assert m_gspo["clip_frac_high"].item() == pytest.approx(0.5)


def test_gspo_clipped_sequence_has_zero_gradient():
    logp, old, mask = batch([[2.0, 1.5, 1.8], [1.0, 1.0, 1.0]], [[1] * 3, [1] * 3])
    adv = torch.tensor([1.0, 1.0], dtype=F64)
    _, g = grad("gspo", logp, old, adv, mask)
    # s_0 = (2 * 1.5 * 1.8)^(1/3) = 1.75 > 1 + 4e-4 with A > 0: the clip binds, no gradient
    assert torch.equal(g[0], torch.zeros(3, dtype=F64))
    # s_1 = 1 is inside the range: gradient -(1/2) * 1 / 3 per token
    assert torch.allclose(g[1], torch.full((3,), -1 / 6, dtype=F64))


@pytest.mark.parametrize("name", ["grpo", "gspo", "gspo_token"])
def test_padding_changes_nothing(name):
    logp, old, adv, mask = random_batch(7, spread=0.3)
    if name == "gspo_token":
        adv = adv[:, None] + 0.1 * torch.arange(mask.shape[1], dtype=F64)[None, :]
    kw = dict(eps_low=0.05, eps_high=0.05)
    loss, grad_a = grad(name, logp, old, adv, mask, **kw)
    _, m_a = OBJECTIVES[name](logp, old, adv, mask, **kw)

    pad = mask == 0
    assert pad.any()
    junk = torch.tensor([float("nan"), float("inf"), -float("inf"), 1e30], dtype=F64)
    fill = junk[torch.arange(int(pad.sum())) % 4]
    logp_b = logp.detach().clone()
    old_b = old.clone()
    logp_b[pad], old_b[pad] = fill, fill.flip(0)
    logp_b.requires_grad_(True)
    adv_b = adv.clone()
    if adv_b.dim() == 2:
        adv_b[pad] = fill
    loss_b, grad_b = grad(name, logp_b, old_b, adv_b, mask, **kw)
    _, m_b = OBJECTIVES[name](logp_b, old_b, adv_b, mask, **kw)

    assert loss_b.item() == loss.item()
    assert torch.equal(grad_b[~pad], grad_a[~pad])
    assert torch.equal(grad_b[pad], torch.zeros(int(pad.sum()), dtype=F64))
    for k in m_a:
        assert m_b[k].item() == m_a[k].item(), k


def test_empty_rows_are_left_out():
    logp, old, adv, mask = random_batch(3)
    loss, m = objective_loss("gspo", logp, old, adv, mask)
    z = torch.zeros(1, mask.shape[1], dtype=F64)
    loss2, m2 = objective_loss("gspo", torch.cat([logp, z]), torch.cat([old, z]),
                                   torch.cat([adv, torch.ones(1, dtype=F64)]), torch.cat([mask, z]))
    assert loss2.item() == pytest.approx(loss.item(), abs=1e-15)
    assert m2["num_seqs"].item() == m["num_seqs"].item()


def test_bad_inputs_raise_clearly():
    logp, old, adv, mask = random_batch(0)
    with pytest.raises(ValueError, match="advantages must be"):
        OBJECTIVES["grpo"](logp, old, adv[:-1], mask)
    with pytest.raises(ValueError, match="same shape"):
        OBJECTIVES["grpo"](logp, old[:, :-1], adv, mask)
    with pytest.raises(ValueError, match="one advantage per sequence"):
        OBJECTIVES["gspo"](logp, old, adv[:, None].expand_as(mask), mask)
    with pytest.raises(ValueError, match="eps_low"):
        OBJECTIVES["grpo"](logp, old, adv, mask, eps_low=-0.1)
    with pytest.raises(ValueError, match="known: .*gspo.*"):
        get_objective("ppo_typo")


def test_a_new_objective_is_one_registered_function():
    @register("test_token_mean", aggregation="token_mean")
    def token_mean(logp, old_logp, advantages, mask, eps_low=0.2, eps_high=0.28):
        """GRPO's per-token terms, reduced as a token mean by default."""
        m = mask.bool()
        ratio = torch.exp(torch.where(m, logp - old_logp, torch.zeros_like(logp)))
        adv = advantages[:, None].expand_as(ratio)
        term = torch.minimum(ratio * adv, ratio.clamp(1 - eps_low, 1 + eps_high) * adv)
        return torch.where(m, -term, torch.zeros_like(term)), {}

    try:
        logp, old, adv, mask = random_batch(1)
        loss, _ = objective_loss("test_token_mean", logp, old, adv, mask)
        terms, _ = get_objective("test_token_mean")(logp, old, adv, mask)
        assert torch.isfinite(loss) and torch.allclose(loss, terms.sum() / mask.sum())
        with pytest.raises(ValueError, match="already registered"):
            register("test_token_mean")(token_mean)
    finally:
        OBJECTIVES.pop("test_token_mean")
