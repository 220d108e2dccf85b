"""The variants the field compares (CISPO, GMPO, SAPO, TIS, IcePop, DAPO's and Dr.GRPO's
parts): hand-worked values with the arithmetic in comments, a slow loop reference each,
aggregations that give one gradient however a minibatch is split, and arms checked by name."""

import math

import pytest
import torch

from gspo_repro.advantages import get_advantage
from gspo_repro.objectives import (
    AGGREGATIONS,
    OBJECTIVES,
    Totals,
    get_aggregation,
    local_totals,
    objective_loss,
)
from gspo_repro.shaping import dynamic_sampling, overlong
from tests.test_objectives import MASK, RATIOS, batch, random_batch

ADV = torch.tensor([1.0, -1.0], dtype=torch.float64)


def test_cispo_hand_worked():
    logp, old, mask = batch(RATIOS, MASK)  # old = -1 everywhere: logp = -1 + ln w
    loss, m = objective_loss("cispo", logp, old, ADV, mask)  # weights clipped to [0, 1.28]
    # term = -sg(clip(w)) A logp; seq 0 (A=+1): w 1.5 -> 1.28 x (-1 + ln 1.5 = -0.594535)
    # = -0.761005 -> term +0.761005; w 1.0: +1.0; w 0.5: 0.5 x 1.693147 = +0.846574.
    # seq 1 (A=-1): w 1.1: -(1.1 x -0.904690) x -1 ... = -0.995159; w 0.6: -0.906495.
    # token_mean over 5 tokens: (0.761005 + 1 + 0.846574 - 0.995159 - 0.906495) / 5 = 0.141185
    assert loss.item() == pytest.approx(0.141185, abs=1e-6)
    assert m["clip_frac"].item() == pytest.approx(1 / 5)  # only w = 1.5 is above 1.28
    loss.backward()
    # d loss / d logp = -clip(w) A / 5: every token keeps a gradient, the clipped one too
    want = torch.tensor([[-1.28, -1.0, -0.5], [1.1, 0.6, 0.0]], dtype=torch.float64) / 5
    assert torch.allclose(logp.grad, want, atol=1e-12)


def test_gmpo_hand_worked():
    logp, old, mask = batch(RATIOS, MASK)
    loss, m = objective_loss("gmpo", logp, old, ADV, mask)  # log-ratios clipped to +-0.4
    # seq 0 (A=+1): ln w = 0.405465, 0, -0.693147; only the upper side binds for A > 0:
    # 0.4, 0, -0.693147 -> mean -0.097716 -> r = 0.906907, term -A r = -0.906907.
    # seq 1 (A=-1): ln w = 0.095310, -0.510826; only the lower side binds: 0.095310, -0.4
    # -> mean -0.152345 -> r = 0.858692, term +0.858692. Mean over 2 sequences: -0.024107.
    assert loss.item() == pytest.approx(-0.024107, abs=1e-6)
    assert m["clip_frac"].item() == pytest.approx(2 / 5)
    assert m["clip_frac_high"].item() == pytest.approx(1 / 5)


def test_sapo_hand_worked():
    logp, old, mask = batch(RATIOS, MASK)
    loss, m = objective_loss("sapo", logp, old, ADV, mask, tau_pos=1.0, tau_neg=1.05)
    # seq 0 (A=+1, tau 1): f(w) = 4 sigmoid(w - 1): 4 x 0.622459 = 2.489837, 2, 1.510163;
    # terms -f A, token mean -2.0. seq 1 (A=-1, tau 1.05): f = (4/1.05) sigmoid(1.05 (w-1)):
    # 3.809524 x 0.526226 = 2.004670, 3.809524 x 0.396517 = 1.510540 -> mean +1.757605.
    # (-2.0 + 1.757605) / 2 = -0.121197
    assert loss.item() == pytest.approx(-0.121197, abs=1e-6)
    assert m["clip_frac"].item() == 0.0
    on = torch.full((1, 2), -1.0, dtype=torch.float64).requires_grad_(True)
    l1, _ = objective_loss("sapo", on, on.detach(), torch.tensor([2.0], dtype=torch.float64),
                           torch.ones(1, 2, dtype=torch.float64))
    l1.backward()  # on-policy f'(1) = 1: the plain policy gradient -A / |y|
    assert torch.allclose(on.grad, torch.full((1, 2), -1.0, dtype=torch.float64))


def _rollout_from(old, mismatch):
    """Engine log-probs whose pi_old / pi_rollout is ``mismatch`` per token."""
    return old - torch.tensor(mismatch, dtype=torch.float64).log()


def test_tis_and_icepop_hand_worked():
    logp, old, mask = batch([[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]], MASK)  # on-policy
    roll = _rollout_from(old, [[3.0, 1.0, 0.25], [1.5, 8.0, 1.0]])
    # on-policy GRPO terms are -A on each token; TIS weights min(rho, 2): 2, 1, 0.25 | 1.5, 2
    # seq means: -(2 + 1 + 0.25)/3 = -1.083333; +(1.5 + 2)/2 = +1.75 -> loss 0.333333
    loss, m = objective_loss("grpo_tis", logp, old, ADV, mask, rollout_logp=roll, cap=2.0)
    assert loss.item() == pytest.approx((-13 / 12 + 1.75) / 2)
    assert m["mismatch_truncated"].item() == pytest.approx(2 / 5)  # 3.0 and 8.0
    # IcePop keeps rho in [0.5, 5]: seq 0 keeps 3.0, 1.0 (0.25 masked), seq 1 keeps 1.5
    # (8.0 masked): terms -1, -1, 0 | +1, 0 -> seq means -2/3, +1/2 -> loss -1/12
    loss, m = objective_loss("grpo_icepop", logp, old, ADV, mask, rollout_logp=roll)
    assert loss.item() == pytest.approx((-2 / 3 + 0.5) / 2)
    assert m["mismatch_masked"].item() == pytest.approx(2 / 5)
    # sequence level: geometric means rho_0 = (3 x 1 x 0.25)^(1/3) = 0.908560,
    # rho_1 = (1.5 x 8)^(1/2) = 3.464102 -> TIS weights 0.908560, 2 (capped)
    loss, _ = objective_loss("gspo_tis", logp, old, ADV, mask, rollout_logp=roll, cap=2.0)
    assert loss.item() == pytest.approx((-0.75 ** (1 / 3) + 2.0) / 2)
    # IcePop on the sequences: both inside [0.5, 5], nothing masked
    loss, m = objective_loss("gspo_icepop", logp, old, ADV, mask, rollout_logp=roll)
    assert loss.item() == pytest.approx(0.0) and m["mismatch_masked"].item() == 0.0


def loop_reference(name, logp, old, adv, mask, roll=None, **p):
    """Token by token, in Python floats: each objective's equation read literally."""
    seqs, tokens = [], []
    for i in range(logp.shape[0]):
        idx = [t for t in range(logp.shape[1]) if mask[i, t] > 0]
        if not idx:
            continue
        lp = [float(logp[i, t]) for t in idx]
        d = [lp[k] - float(old[i, t]) for k, t in enumerate(idx)]
        a = float(adv[i])
        if name == "cispo":
            terms = [-min(max(math.exp(x), 1 - p["eps_low"]), 1 + p["eps_high"]) * a * lp_
                     for x, lp_ in zip(d, lp, strict=True)]
        elif name == "gmpo":
            sg = math.copysign(1.0, a) if a else 0.0
            kept = [sg * min(sg * x, sg * min(max(x, -p["eps_low"]), p["eps_high"])) for x in d]
            terms = [-a * math.exp(sum(kept) / len(kept))] * len(d)
        elif name == "sapo":
            tau = p["tau_pos"] if a > 0 else p["tau_neg"]
            terms = [-4 / tau / (1 + math.exp(-tau * (math.exp(x) - 1))) * a for x in d]
        else:  # grpo_tis: GRPO's clipped term times min(pi_old / pi_rollout, cap)
            terms = []
            for k, t in enumerate(idx):
                w = math.exp(d[k])
                c = min(max(w, 1 - p["eps_low"]), 1 + p["eps_high"])
                rho = math.exp(float(old[i, t]) - float(roll[i, t]))
                terms.append(-min(w * a, c * a) * min(rho, p["cap"]))
        seqs.append(sum(terms) / len(terms))
        tokens += terms
    if name == "cispo":
        return sum(tokens) / len(tokens)
    return sum(seqs) / len(seqs)


@pytest.mark.parametrize("name,p", [
    ("cispo", {"eps_low": 1.0, "eps_high": 0.28}),
    ("gmpo", {"eps_low": 0.4, "eps_high": 0.4}),
    ("sapo", {"tau_pos": 1.0, "tau_neg": 1.05}),
    ("grpo_tis", {"eps_low": 0.2, "eps_high": 0.27, "cap": 1.1}),
])
@pytest.mark.parametrize("seed", range(4))
def test_against_loop_reference(name, p, seed):
    logp, old, adv, mask = random_batch(seed, spread=0.4)
    g = torch.Generator().manual_seed(100 + seed)
    roll = old + torch.randn(old.shape, generator=g, dtype=old.dtype) * 0.2
    kw = {"rollout_logp": roll} if name == "grpo_tis" else {}
    loss, _ = objective_loss(name, logp, old, adv, mask, **p, **kw)
    assert loss.item() == pytest.approx(loop_reference(name, logp.detach(), old, adv, mask,
                                                       roll, **p), abs=1e-10)


GRAD_CASES = [("grpo", {}), ("gspo", {"eps_low": 0.01, "eps_high": 0.02}), ("cispo", {}),
              ("gmpo", {}), ("sapo", {})]


def _grad_over_chunks(name, kw, agg, logp, old, adv, mask, chunks, world=1):
    """The gradient a minibatch gets when its rows are cut into ``chunks`` micro-batches,
    dealt to ``world`` ranks whose gradients are averaged (as FSDP does), every micro-batch
    normalised by the minibatch's totals over all of them."""
    rows = torch.arange(logp.shape[0])
    parts = list(torch.tensor_split(rows, chunks))
    totals = Totals(float(mask.sum()), float((mask.sum(-1) > 0).sum()), float(mask.shape[1]))
    grads = []
    for r in range(world):
        leaf = logp.detach().clone().requires_grad_(True)
        for part in parts[r::world]:
            terms, _ = OBJECTIVES[name](leaf[part], old[part], adv[part], mask[part], **kw)
            (get_aggregation(agg)(terms, mask[part], totals) * world).backward()
        grads.append(leaf.grad if leaf.grad is not None else torch.zeros_like(leaf))
    return sum(grads) / world


@pytest.mark.parametrize("agg", sorted(AGGREGATIONS))
@pytest.mark.parametrize("name,kw", GRAD_CASES)
def test_every_aggregation_gives_one_gradient_however_the_minibatch_is_split(name, kw, agg):
    logp, old, adv, mask = random_batch(7, B=14, T=11, spread=0.3)
    mask[3] = 0  # a sample without response tokens counts nowhere
    whole = _grad_over_chunks(name, kw, agg, logp, old, adv, mask, 1)
    assert whole.abs().sum() > 0
    for chunks, world in ((3, 1), (7, 1), (2, 2), (7, 2)):
        got = _grad_over_chunks(name, kw, agg, logp, old, adv, mask, chunks, world)
        assert torch.allclose(got, whole, atol=1e-12), (chunks, world)
    # and the loss of the whole equals the aggregation read literally
    terms, _ = OBJECTIVES[name](logp, old, adv, mask, **kw)
    t, m = terms.detach(), mask.bool()
    want = {"token_mean": t[m].sum() / m.sum(),
            "seq_mean_token_sum_norm": t[m].sum() / (13 * 11),
            "seq_mean_token_mean": sum(t[i][m[i]].mean() for i in range(14) if m[i].any()) / 13}
    got = get_aggregation(agg)(terms, mask, local_totals(mask))
    assert got.item() == pytest.approx(want[agg].item(), abs=1e-12)


def test_advantage_estimators_hand_worked():
    r = torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 0.0])
    # Dr.GRPO: r - mean, no std: group 0 mean 0.5 -> +-0.5; group 1 mean 0.75 -> .25/.25/.25/-.75
    assert get_advantage("group_mean")(r, 4).tolist() == [0.5, -0.5, -0.5, 0.5,
                                                          0.25, 0.25, 0.25, -0.75]
    # RLOO: r_i - mean of the other three: group 0: 1 - 1/3, 0 - 2/3, ...; group 1: 1 - 2/3, 0 - 1
    a = get_advantage("rloo")(r, 4).tolist()
    assert a == pytest.approx([2 / 3, -2 / 3, -2 / 3, 2 / 3, 1 / 3, 1 / 3, 1 / 3, -1.0])
    with pytest.raises(ValueError, match="unknown advantage estimator 'ppo'; known: group"):
        get_advantage("ppo")


def test_dapo_dynamic_sampling_and_overlong_shaping_hand_worked():
    r = torch.tensor([[1.0, 1.0], [0.0, 1.0], [0.0, 0.0]])
    assert dynamic_sampling(r).tolist() == [False, True, False]  # all-equal groups dropped
    # L_max 256, L_cache 64: no penalty up to 192 tokens, then -(len - 192) / 64, -1 at 256
    lengths = torch.tensor([100, 192, 224, 256])
    got = overlong(torch.ones(4), lengths, max_len=256, cache=64)
    assert got.tolist() == [1.0, 1.0, 0.5, 0.0]
    with pytest.raises(ValueError, match="cache"):
        overlong(torch.ones(1), lengths[:1], max_len=256, cache=0)


@pytest.mark.parametrize("entry,named", [
    ({"objective": "sapo", "params": {"tau": 1.0}}, "takes no parameter 'tau'"),
    ({"objective": "grpo_tis", "params": {"cap": "x"}}, "must map names to numbers"),
    ({"objective": "grpo", "aggregation": "median"}, "unknown aggregation 'median'"),
    ({"objective": "grpo", "advantage": "gae"}, "unknown advantage estimator 'gae'"),
    ({"objective": "grpo", "filter": "keep_all"}, "unknown rollout filter 'keep_all'"),
    ({"objective": "grpo", "shaping": "overlong", "shaping_params": {"L": 3}},
     "takes no parameter 'L'"),
    ({"objective": "grpo", "old_logprobs": "cache"}, "old_logprobs must be trainer or engine"),
    ({"objective": "grpo", "routing_replay": True, "old_logprobs": "engine"}, "R3"),
])
def test_an_arm_is_checked_by_name(entry, named):
    from gspo_repro.config import load_config

    with pytest.raises(ValueError, match=named) as e:
        load_config(None, {"rl.algorithms": {"bad": entry}})
    assert "rl.algorithms.bad" in str(e.value) and "\n" not in str(e.value)


def test_a_parameter_an_objective_needs_must_be_given():
    from gspo_repro.config import load_config
    from gspo_repro.objectives import register

    @register("needs_beta")
    def needs_beta(logp, old_logp, advantages, mask, *, eps_low=0.2, eps_high=0.2, beta):
        return OBJECTIVES["grpo"](logp, old_logp, advantages, mask, eps_low=eps_low,
                                  eps_high=eps_high * beta)

    try:
        with pytest.raises(ValueError, match="needs parameter 'beta'"):
            load_config(None, {"rl.algorithms": {"b": {"objective": "needs_beta"}}})
        cfg = load_config(None, {"rl.algorithms": {"b": {"objective": "needs_beta",
                                                         "params": {"beta": 2}}}})
        assert cfg.rl.algorithm("b").params == {"beta": 2.0}
    finally:
        OBJECTIVES.pop("needs_beta")
