"""Claims as verdicts: the rules on constructed data, the two-level bootstrap on hand-checkable
data, and claims.md/csv from a fake three-seed run."""

import json
import math
import re

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps
from test_analysis import _fake_run, _write_run

from gspo_repro.analysis import TABLES, analyze, claims, paired
from gspo_repro.config import load_config


def test_superiority_rule_on_a_win_a_loss_and_a_tie():
    assert claims.superiority(0.02, 0.10) == "reproduced"  # clear win: interval above 0
    assert claims.superiority(-0.10, -0.02) == "contradicted"  # clear loss
    assert claims.superiority(-0.05, 0.05) == "inconclusive"  # tie: the interval holds 0
    assert claims.superiority(0.0, 0.0) == "inconclusive"  # a point at 0 is a tie, not a win


def test_noninferiority_margin_is_one_point():
    assert claims.MARGIN == 0.01
    assert claims.noninferiority(-0.005, 0.03) == "reproduced"  # a small loss inside the margin
    assert claims.noninferiority(-0.02, 0.03) == "inconclusive"  # could be 2 points worse
    assert claims.noninferiority(-0.05, -0.02) == "contradicted"  # surely more than 1 point worse
    assert claims.noninferiority(-0.01, 0.0) == "inconclusive"  # at the margin: not above it


def test_clip_ratio_rule():
    assert claims.clip_rule(10.0, 200.0) == "reproduced"  # lower bound at 10x
    assert claims.clip_rule(9.9, 200.0) == "inconclusive"
    assert claims.clip_rule(0.2, 0.9) == "contradicted"  # GSPO clipped fewer tokens
    assert claims.clip_rule(0.5, math.inf) == "inconclusive"


def test_replay_collapse_and_volatility_rules():
    assert claims.replay_rule(0.01, 0.2, grpo_collapses=0) == "reproduced"
    assert claims.replay_rule(-0.2, -0.01, grpo_collapses=0) == "contradicted"
    assert claims.replay_rule(-0.2, -0.01, grpo_collapses=1) == "inconclusive"
    assert claims.collapse_rule(2, 0) == "reproduced"
    assert claims.collapse_rule(0, 1) == "contradicted"
    assert claims.collapse_rule(0, 0) == "inconclusive"
    assert claims.volatility_rule(0.08, 0.12, comparable=True) == "reproduced"
    assert claims.volatility_rule(0.18, 0.30, comparable=True) == "reproduced"  # overlaps
    assert claims.volatility_rule(0.001, 0.01, comparable=True) == "contradicted"
    assert claims.volatility_rule(0.08, 0.12, comparable=False) == "not comparable"


def test_collapse_rule_on_constructed_curves():
    assert claims.COLLAPSE_PERSIST == 6 and paired.SMOOTH == 5
    # Rises to 0.6 and falls to 0 for good. Smoothed (centred 5-batch mean): best 0.56 at batch
    # 3; batch 6 is (0.6 + 0.6 + 0.1 + 0.05 + 0) / 5 = 0.27 < 0.28, and nothing after it gets
    # back to 0.9 x 0.56: a collapse, judged at batch 6 (14 batches: 0-7 judged).
    assert claims.collapsed([0.2, 0.4, 0.6, 0.6, 0.6, 0.6, 0.1, 0.05] + [0.0] * 6)
    # Three zero batches inside 0.6: the smoothed curve dips to (0.6 + 0 + 0 + 0 + 0.6) / 5 =
    # 0.24 < 0.3 at batches 6-8 and is back at 0.6 >= 0.54 by batch 11: a dip, not a collapse.
    assert not claims.collapsed([0.6] * 6 + [0.0] * 3 + [0.6] * 8)
    assert not claims.collapsed([0.3] * 20) and not claims.collapsed([0.0] * 20)
    # A late fall. The rule of the c0a0457 run called this a collapse, as no batch was left to
    # recover in; a drop now needs 6 batches after it to be judged: the smoothed curve first
    # falls below 0.3 at batch 9 ((0.6 + 0 x 4) / 5 = 0.12 ... batch 8 is 0.48), and only
    # batches 0-8 of 15 have 6 batches after them.
    assert not claims.collapsed([0.6] * 10 + [0.0] * 5)
    # The same fall with 6 more batches observed after it, still at 0: a collapse.
    assert claims.collapsed([0.6] * 10 + [0.0] * 12)
    # A step down to a third of the best that stays there: smoothed 0.28 < 0.3 at batch 7,
    # then 0.2 < 0.54 to the end.
    assert claims.collapsed([0.6] * 6 + [0.2] * 10)
    # Skipped updates: three batches in a row collapse the run, three apart do not.
    assert claims.collapsed([0.3] * 6, skipped=[0, 0, 1, 2, 1, 0])
    assert not claims.collapsed([0.3] * 6, skipped=[1, 0, 1, 0, 1, 0])


def test_collapse_by_hand_recovery_and_the_observed_window():
    # Unsmoothed (window=1), so each value is the curve itself; best 1.0, drop line 0.5,
    # recovery line 0.9, a drop judged only with 6 or more batches after it.
    # A drop that lasts: batch 1 falls to 0.4 and batches 2-7 stay there.
    assert claims.collapsed([1.0] + [0.4] * 7, window=1)
    # Back to 0.9 (= 0.9 x best, which counts as recovered) at batch 8, the 7th after the
    # drop, then down again for 6 batches: every drop before batch 8 recovers; the drops at
    # batches 9-14 never get back to 0.9, but only batch 9 (6 after it, 16 batches) is judged:
    # a collapse. Without the second fall, a recovery however late is no collapse.
    assert claims.collapsed([1.0] + [0.4] * 7 + [0.9] + [0.4] * 7, window=1)
    assert not claims.collapsed([1.0] + [0.4] * 12 + [0.9], window=1)
    # Just under the recovery line after the drop: a collapse.
    assert claims.collapsed([1.0, 0.4] + [0.89] * 6, window=1)
    # A drop in the final batches, too few observed: 10 batches at 1.0 then 6 at 0.2; the
    # drop at batch 10 has 5 batches after it (batches 0-9 judged): not a collapse. One more
    # batch at 0.2 gives it 6: a collapse.
    assert not claims.collapsed([1.0] * 10 + [0.2] * 6, window=1)
    assert claims.collapsed([1.0] * 10 + [0.2] * 7, window=1)
    # A monotone rising curve is never below its best so far.
    assert not claims.collapsed(np.linspace(0.0, 1.0, 30).tolist())
    assert not claims.collapsed(np.linspace(0.0, 1.0, 30).tolist(), window=1)
    # Three consecutive skipped updates collapse a run whatever its reward, even a short one.
    assert claims.collapsed(np.linspace(0.0, 1.0, 8).tolist(), skipped=[0, 1, 1, 1, 0, 0, 0, 0])
    assert not claims.collapsed(np.linspace(0.0, 1.0, 8).tolist(),
                                skipped=[0, 1, 1, 0, 1, 1, 0, 0])


def test_bootstrap_of_constant_differences_is_a_point():
    assert paired.two_level_bootstrap([np.full(7, 0.25), np.full(3, 0.25)]) == (
        0.25, 0.25, 0.25)


def test_bootstrap_with_one_seed_is_the_bootstrap_over_problems():
    # 0..99: population sd sqrt((100^2 - 1) / 12) = 28.866, so the bootstrap standard error of
    # the mean is 28.866 / sqrt(100) = 2.8866 (to about 1/sqrt(2 B) = 1.6% with B = 2000).
    d = np.arange(100.0)
    dist = paired.bootstrap_means([d])
    assert dist.std() == pytest.approx(2.8866, rel=0.05)
    point, lo, hi = paired.two_level_bootstrap([d])
    assert point == 49.5 and lo == pytest.approx(49.5 - 1.96 * 2.8866, abs=0.6)
    assert hi == pytest.approx(49.5 + 1.96 * 2.8866, abs=0.6)
    ref = sps.bootstrap((d,), np.mean, n_resamples=2000, method="percentile",
                        random_state=np.random.default_rng(1)).confidence_interval
    assert (lo, hi) == pytest.approx((ref.low, ref.high), abs=0.8)


def test_bootstrap_distribution_matches_enumeration():
    """Seed 1 holds problems (0, 2), seed 2 holds (4, 4). A drawn seed's mean M is seed 1's
    resampled mean with probability 1/2 -- 0, 1, 2 with probabilities 1/4, 1/2, 1/4 -- or 4:
    P(M) = 1/8, 1/4, 1/8, 1/2 at 0, 1, 2, 4. The statistic X = (M1 + M2) / 2 of two independent
    draws: P(X = 0) = 1/64, P(0.5) = 2 (1/8)(1/4) = 1/16, P(4) = 1/4, P(2.5) = 2 (1/4)(1/2)
    = 1/4; E[X] = E[M] = 2.5 and Var X = Var M / 2 = (8.75 - 6.25) / 2 = 1.25. The 2.5%
    quantile is 0.5 (P(X <= 0) = 0.016 < 0.025 <= P(X <= 0.5) = 0.078) and the 97.5% one 4."""
    groups = [np.array([0.0, 2.0]), np.array([4.0, 4.0])]
    dist = paired.bootstrap_means(groups, n_boot=40000)
    freq = {x: np.mean(dist == x) for x in (0.0, 0.5, 2.5, 4.0)}
    assert freq == pytest.approx({0.0: 1 / 64, 0.5: 1 / 16, 2.5: 1 / 4, 4.0: 1 / 4}, abs=0.01)
    assert dist.mean() == pytest.approx(2.5, abs=0.02) and dist.var() == pytest.approx(
        1.25, rel=0.03)
    assert paired.two_level_bootstrap(groups, n_boot=40000) == (2.5, 0.5, 4.0)


def test_bootstrap_resamples_each_seed_within_its_own_problems():
    # Seed 1 has a single problem (value 10): any draw of it means 10, never a padded 0. Each
    # resample is (M1 + M2) / 2 with M in {0, 10} (seed 0 holds three zeros), so 0, 5 or 10.
    dist = paired.bootstrap_means([np.zeros(3), np.array([10.0])], n_boot=4000)
    assert set(np.unique(dist)) == {0.0, 5.0, 10.0}
    assert np.mean(dist == 5.0) == pytest.approx(0.5, abs=0.03)


def test_probability_of_improvement_counts_ties_half():
    # Seed 0: wins, tie, loss -> 1, 0.5, 0 (mean 0.5); seed 1: two wins (mean 1); P = 0.75.
    w = paired.improvement([np.array([0.5, 0.0, -1.0]), np.array([1.0, 0.5])])
    assert [x.tolist() for x in w] == [[1.0, 0.5, 0.0], [1.0, 1.0]]
    assert paired.heldout_difference([np.array([0.5, 0.0, -1.0]), np.array([1.0, 0.5])])[
        "p_improve"] == pytest.approx(0.75)


def test_reward_area_at_matched_compute_by_hand():
    # Arm a: FLOPs 1, 2, 3 with reward 0, 1, 2; arm b: FLOPs 0, 2, 4 with reward 1, 1, 1.
    # Common range 1..3: a's mean reward over it (a straight line 0 -> 2) is 1, b's is 1, so
    # the difference is 0; seed 1 adds 0.5 to a everywhere: difference 0.5.
    rows = [{"arm": "a", "seed": s, "cum_flops": x, "reward_mean": y + 0.5 * s}
            for s in (0, 1) for x, y in ((1, 0), (2, 1), (3, 2))]
    rows += [{"arm": "b", "seed": s, "cum_flops": x, "reward_mean": 1.0}
             for s in (0, 1) for x in (0, 2, 4)]
    assert paired.reward_auc(pd.DataFrame(rows), "a", "b") == pytest.approx({0: 0.0, 1: 0.5})


def test_paired_batch_differences_are_smoothed_within_a_seed():
    # Differences 0, 0, 5, 0, 0, 0 with a centred 5-batch window (ends average what exists):
    # step 0 (0+0+5)/3, step 1 (0+0+5+0)/4, steps 2-3 5/5 = 1, step 4 (5+0+0+0)/4, step 5 0.
    train = pd.DataFrame([{"arm": arm, "seed": 0, "step": s, "reward_mean": r,
                           "queries_sha": f"q{s}"}
                          for arm, rs in (("a", [0, 0, 5, 0, 0, 0]), ("b", [0] * 6))
                          for s, r in enumerate(rs)])
    d = paired.batch_differences(train, "a", "b")
    assert d["smooth"].tolist() == pytest.approx([5 / 3, 1.25, 1, 1, 1.25, 0])
    assert (d["same_queries"] == 1).all()


def test_clip_ratio_with_a_bootstrap_over_seeds():
    # GRPO per seed 0.001, 0.002, 0.003 (mean 0.002), GSPO 0.1 each: ratio 50. The all-seed-2
    # resample (probability 1/27 > 2.5%) gives the smallest ratio, 0.1 / 0.003 = 33.3; the
    # all-seed-0 one the largest, 100.
    train = pd.DataFrame([{"arm": arm, "seed": s, "step": t, "clip_frac": c}
                          for s in range(3) for t in range(4)
                          for arm, c in (("gspo", 0.1), ("grpo", 0.001 * (s + 1)))])
    r = claims.clip_ratio(train)
    assert r["value"] == pytest.approx(50) and r["seeds"] == 3
    assert (r["lo"], r["hi"]) == pytest.approx((100 / 3, 100))
    assert claims.clip_rule(r["lo"], r["hi"]) == "reproduced"
    # SE: the sd of the resampled ratios; the 27 equally likely resamples of 3 seeds give its
    # exact value (2000 resamples: within a few percent).
    picks = np.array(np.meshgrid(*[range(3)] * 3)).reshape(3, -1).T
    exact = (0.1 / (0.001 * (picks + 1)).mean(1)).std()
    assert r["se"] == pytest.approx(exact, rel=0.05)


def test_clip_ratio_se_is_not_finite_when_grpo_clipped_nothing_in_a_resample():
    # GRPO seed 0 clipped nothing: the all-seed-0 resample (1/27 of them) divides by 0.
    train = pd.DataFrame([{"arm": arm, "seed": s, "step": t, "clip_frac": c}
                          for s in range(3) for t in range(4)
                          for arm, c in (("gspo", 0.1), ("grpo", 0.001 * s))])
    r = claims.clip_ratio(train)
    assert r["hi"] == math.inf and math.isnan(r["se"])
    assert claims._se_cell(r["se"]) == "-" and claims._se_cell(math.inf) == "-"
    assert claims._se_cell(math.nan) == "-" and claims._se_cell(0.153) == "0.153"


def _t_rows_train():
    """Arms grpo and gspo, seeds 0-2, 4 batches of 10 FLOPs. GRPO's reward is 0.2 and GSPO's
    0.2 + 0.1, 0.2, 0.6 in seeds 0, 1, 2; GRPO's volatility 0.01, 0.02, 0.03."""
    gain = (0.1, 0.2, 0.6)
    return pd.DataFrame([{"arm": arm, "seed": s, "step": t, "cum_flops": 10.0 * (t + 1),
                          "reward_mean": 0.2 + (gain[s] if arm == "gspo" else 0.0),
                          "clip_frac": 0.1 if arm == "gspo" else 0.001 * (s + 1),
                          "volatility": 0.01 * (s + 1), "queries_sha": f"{s}-{t}"}
                         for arm in ("grpo", "gspo") for s in range(3) for t in range(4)])


def test_t_rows_standard_error_is_sd_over_root_n():
    # Per-seed differences 0.1, 0.2, 0.6: mean 0.3, sd^2 = (0.04 + 0.01 + 0.09) / 2 = 0.07,
    # SE = sqrt(0.07 / 3) = 0.1528; the t interval's half-width is t_{0.975, 2} x SE.
    se = math.sqrt(0.07 / 3)
    assert paired.standard_error([0.1, 0.2, 0.6]) == pytest.approx(se, rel=1e-12)
    assert math.isnan(paired.standard_error([0.1])) and math.isnan(paired.standard_error([]))
    train = _t_rows_train()
    scores = pd.DataFrame(columns=["arm", "seed", "step", "benchmark", "id", "score"])
    c = claims.claims_table(train, scores, ["grpo", "gspo"], [0, 1, 2]).set_index("statistic")
    auc = c.loc["training-reward area at matched FLOPs, gspo - grpo"]
    assert auc["value"] == pytest.approx(0.3) and auc["se"] == pytest.approx(se, rel=1e-9)
    assert auc["hi"] - auc["value"] == pytest.approx(sps.t.ppf(0.975, 2) * se, rel=1e-9)
    # Volatility 0.01, 0.02, 0.03: sd 0.01, SE 0.01 / sqrt(3).
    vol = c.loc[claims.STATISTICS["volatility"].format(a="grpo")]
    assert vol["se"] == pytest.approx(0.01 / math.sqrt(3), rel=1e-9)
    # The clip ratio's SE is a bootstrap's: finite here; counts and rows without data: NaN.
    assert math.isfinite(c.loc["mean clip_frac gspo / grpo", "se"])
    assert c["se"].isna().sum() == (c["verdict"].isin(["not run", "not evaluated"])).sum()
    p = claims.paired_table(train, scores, ["grpo", "gspo"], [0, 1, 2]).set_index("measure")
    assert p.loc["training reward per batch", "se"] == pytest.approx(se, rel=1e-9)
    assert p.loc["training-reward area, matched FLOPs", "se"] == pytest.approx(se, rel=1e-9)
    md = claims.to_markdown(c.reset_index(), p.reset_index())
    assert md.count("| measured | se | P(A>B) |") == 1
    assert md.count("| value [95%] | se | P(A>B) |") == 1
    assert "| 0.3 [-0.357, 0.957] | 0.153 |" in md and not re.search(r"\binf\b", md)
    assert "| **not run** |" in md and "| - | - |" in md  # no value, no SE


def test_two_level_bootstrap_se_near_the_analytic_se():
    """40 seeds x 100 problems: difference 0.05 + a seed effect (sd 0.1) + problem noise (sd
    0.3). The analytic SE of the mean of seed means is sd(seed means) / sqrt(40). The two-level
    bootstrap's SE adds the within-seed variance once more (about 0.3^2 / 100 against a
    seed-mean variance of about 0.1^2 + 0.3^2 / 100: a few percent here): within 15%. Its exact
    value, Var = (mean over seeds of (m_s - m)^2 + v_s / n_s) / S with v_s the within-seed
    variance (ddof 0), it matches to Monte Carlo error (1 / sqrt(2 x 2000) = 1.6%)."""
    rng = np.random.default_rng(3)
    groups = [0.05 + rng.normal(0, 0.1) + rng.normal(0, 0.3, 100) for _ in range(40)]
    means = np.array([g.mean() for g in groups])
    analytic = means.std(ddof=1) / math.sqrt(len(groups))
    est = paired.bootstrap_estimate(groups)
    assert est["se"] == pytest.approx(analytic, rel=0.15)
    exact = math.sqrt((((means - means.mean()) ** 2).mean()
                       + np.mean([g.var() / g.size for g in groups])) / len(groups))
    assert est["se"] == pytest.approx(exact, rel=0.05)
    assert paired.heldout_difference(groups)["se"] == est["se"]
    assert (est["value"], est["lo"], est["hi"]) == paired.two_level_bootstrap(groups)


# Per-problem avg@k of the fake run: GSPO beats GRPO on math on every problem but two (ties),
# loses 0.5 on every code problem; GRPO with replay scores as GRPO does.
GRPO_MATH = [0.0, 0.0, 0.5, 0.5, 0.0, 0.0, 0.5, 0.0, 0.0, 0.5]
GSPO_GAIN = [1.0, 0.5, 0.0, 0.5, 0.5, 0.5, 0.5, 0.0, 0.5, 0.5]


def _report(d, bench, scores, reverse=False):
    pp = [{"id": f"{bench}-{i}", "k": 2, "avg_at_k": v} for i, v in enumerate(scores)]
    d.mkdir(parents=True, exist_ok=True)
    (d / f"{bench}.json").write_text(json.dumps({
        "benchmark": bench, "k": 2, "n_problems": len(pp), "avg_at_k": float(np.mean(scores)),
        "per_problem": pp[::-1] if reverse else pp}))


def _claims_run(root, seeds=(0, 1, 2), steps=6):
    """Arms grpo, grpo_rr, gspo. Reward per batch: a query difficulty shared by all arms
    (0.1 sin(step), small enough that no curve collapses) plus 0.2 (grpo), 0.25 (grpo_rr) or
    0.3 (gspo); FLOPs per batch 10 + seed.
    GRPO seed 0 skips updates in batches 1-3 (a collapse by rule). Clip fractions: GSPO 0.15,
    GRPO 0.0013 (seed + 1)."""
    base = {"grpo": 0.2, "grpo_rr": 0.25, "gspo": 0.3}
    for arm, level in base.items():
        for seed in seeds:
            recs = [{"step": s, "reward_mean": level + 0.1 * math.sin(s),
                     "clip_frac": 0.15 if arm == "gspo" else 0.0013 * (seed + 1),
                     "volatility": 0.01, "flops": 10 + seed, "tokens_generated": 100,
                     "queries_sha": f"{seed}-{s}",
                     "skipped_updates": int(arm == "grpo" and seed == 0 and 1 <= s <= 3)}
                    for s in range(steps)]
            _write_run(root / "rl" / arm / f"seed{seed}", recs, steps)
            math_scores = [g + x for g, x in zip(GRPO_MATH, GSPO_GAIN, strict=True)] if (
                arm == "gspo") else GRPO_MATH
            for step in (3, steps):
                d = root / "eval" / arm / f"seed{seed}" / f"step{step}"
                _report(d, "math", math_scores if step == steps else [0.0] * 10,
                        reverse=arm == "gspo")  # pairing is by problem id, not position
                _report(d, "code", [0.0 if arm == "gspo" else 0.5] * 8)
    _report(root / "eval" / "sft", "math", [0.0] * 10)
    _report(root / "eval" / "sft", "code", [0.25] * 8)


def _analyze(tmp_path, seeds):
    _claims_run(tmp_path / "run", seeds)
    cfg = load_config(None, {"run_dir": str(tmp_path / "run"), "seeds": list(seeds),
                             "arms": ["grpo", "grpo_rr", "gspo"], "rl.steps": 6,
                             "rl.save_every": 3})
    head = analyze(cfg, tmp_path / "res")
    table = pd.read_csv(tmp_path / "res" / "tables" / "claims.csv")
    return head, table


def test_claims_of_a_three_seed_run(tmp_path):
    head, c = _analyze(tmp_path, (0, 1, 2))
    assert {"claims.csv", "claims.md", "claims.html", "paired.csv",
            "paired_training.csv"} <= set(TABLES)
    # the report's copy: the same table as HTML, one row per claim row
    html = (tmp_path / "res" / "tables" / "claims.html").read_text()
    assert html.count("<table>") == 2 and "<th>verdict</th>" in html
    assert html.count("<strong>reproduced</strong>") == (c["verdict"] == "reproduced").sum()
    row = c.set_index("statistic").loc
    # Clip: GSPO 0.15, GRPO 0.0013, 0.0026, 0.0039 (mean 0.0026): 57.7x, bootstrap over seeds
    # from 0.15 / 0.0039 = 38.5 (all seed 2) to 0.15 / 0.0013 = 115.4 (all seed 0).
    clip = row["mean clip_frac gspo / grpo"]
    assert clip[["value", "lo", "hi"]].tolist() == pytest.approx([0.15 / 0.0026, 0.15 / 0.0039,
                                                                  0.15 / 0.0013])
    assert clip["verdict"] == "reproduced"
    # Reward areas: the shared sin(step) cancels in each seed; gspo - grpo 0.1 in every seed.
    auc = row["training-reward area at matched FLOPs, gspo - grpo"]
    assert auc[["value", "lo", "hi"]].tolist() == pytest.approx([0.1] * 3, abs=1e-9)
    assert auc["verdict"] == "reproduced" and auc["seeds"] == 3
    assert row["training-reward area at matched FLOPs, gspo - grpo_rr"]["verdict"] == "reproduced"
    # Math: GSPO gains 0.45 on average (ties on two problems: P(A>B) = (8 + 2/2) / 10 = 0.9).
    m = row["final held-out avg@k on math, gspo - grpo"]
    assert m["value"] == pytest.approx(0.45) and m["lo"] > 0 and m["verdict"] == "reproduced"
    assert m["p_improve"] == pytest.approx(0.9) and m["problems"] == 10
    assert "two-level bootstrap: seeds, then problems within seeds, 2000 resamples" in m["method"]
    # Code: a 0.5 loss on every problem is a point interval below 0.
    code = row["final held-out avg@k on code, gspo - grpo"]
    assert code[["value", "lo", "hi"]].tolist() == [-0.5] * 3 and code["verdict"] == "contradicted"
    # Replay: grpo_rr equals grpo held out (a tie), its reward area is higher; grpo seed 0
    # skipped updates in three batches in a row: collapses 1 - 0.
    tie = row["final held-out avg@k on math, grpo_rr - grpo"]
    assert tie[["value", "lo", "hi"]].tolist() == [0.0] * 3 and tie["verdict"] == "inconclusive"
    col = row["seeds collapsed, grpo - grpo_rr"]
    assert col["value"] == 1 and col["verdict"] == "reproduced" and "grpo 1/3" in col["note"]
    # GSPO vs GRPO + replay on code: 0.5 worse, beyond the 0.01 margin.
    assert row["final held-out avg@k on code, gspo - grpo_rr"]["verdict"] == "contradicted"
    vol = c[c["claim"].str.startswith("About 10%")].iloc[0]
    assert vol["verdict"] == "not comparable" and vol["value"] == pytest.approx(0.01)
    engine = c[c["claim"] == "GSPO tolerates the engine's log-probs"]
    assert len(engine) == 2 and (engine["verdict"] == "not run").all()
    assert [r["verdict"] for r in head["claims"]] == c["verdict"].tolist()

    # SE: 0 for the constant differences (reward area, code), positive for math.
    assert auc["se"] == pytest.approx(0, abs=1e-12) and code["se"] == 0 and m["se"] > 0
    assert math.isnan(col["se"]) and list(c.columns) == claims.COLUMNS

    md = (tmp_path / "res" / "tables" / "claims.md").read_text()
    assert "gspo_repro/analysis/claims.py" in md and paired.BOOT_METHOD in md
    assert "| measured | se |" in md and "| value [95%] | se |" in md
    assert "Standard error (`se`)" in md and claims.COLLAPSE_TEXT in md
    assert "| **reproduced** |" in md and "## Paired differences" in md
    p = pd.read_csv(tmp_path / "res" / "tables" / "paired.csv").set_index(
        ["comparison", "measure"])
    # Against the SFT start (math all 0): GSPO's own mean, 0.2 (GRPO) + 0.45 (its gain) = 0.65.
    assert p.loc[("gspo - sft", "final avg@k on math"), "value"] == pytest.approx(0.65)
    assert p.loc[("gspo - grpo", "training reward per batch"), "value"] == pytest.approx(0.1)
    assert p.loc[("gspo - grpo", "training reward per batch"), "same_queries"] == 1
    by_batch = pd.read_csv(tmp_path / "res" / "tables" / "paired_training.csv")
    g = by_batch[by_batch["pair"] == "gspo - grpo"]
    assert len(g) == 6 and g["mean"].tolist() == pytest.approx([0.1] * 6)
    assert (g["n"] == 3).all()
    png = tmp_path / "res" / "figures" / "fig1_paired_reward_diff.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_one_seed_is_inconclusive_whatever_the_rule(tmp_path):
    _, c = _analyze(tmp_path, (0,))
    judged = c[~c["verdict"].isin(["not run", "not comparable"])]
    # clip 1, collapses 1, reward areas 3, held out 3 pairs x 2 benchmarks
    assert (judged["verdict"] == "inconclusive (1 seed)").all() and len(judged) == 11
    m = c.set_index("statistic").loc["final held-out avg@k on math, gspo - grpo"]
    # With one seed the interval is the bootstrap over problems: defined, and above 0 here.
    assert m["lo"] > 0 and "over problems only" in m["note"]
    assert math.isnan(c.set_index("statistic").loc[
        "training-reward area at matched FLOPs, gspo - grpo", "lo"])


def test_a_run_without_the_papers_arms_still_writes_every_claim(tmp_path):
    _fake_run(tmp_path / "run", ["dapo"], [0, 1])
    cfg = load_config(None, {"run_dir": str(tmp_path / "run"), "seeds": [0, 1], "arms": ["dapo"],
                             "rl.steps": 4, "rl.save_every": 2})
    head = analyze(cfg, tmp_path / "res")
    verdicts = {r["verdict"] for r in head["claims"]}
    assert verdicts == {"not run", "not comparable"}  # volatility falls back to dapo's
    assert pd.read_csv(tmp_path / "res" / "tables" / "paired_training.csv").empty
    assert (tmp_path / "res" / "figures" / "fig1_paired_reward_diff.png").exists()
