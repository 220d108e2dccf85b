"""Elo estimate, tables, plots and the results manifest."""

import json
import math
import random
import shutil

import pandas as pd
import pytest
from matplotlib.collections import PolyCollection

from gspo_repro.analysis import FIGURES, analyze, plots, stats, tables
from gspo_repro.config import load_config
from gspo_repro.eval.elo import elo_estimate, expected_solves
from gspo_repro.manifest import verify, write_manifest


def test_elo_hand_computed_cases():
    # One problem rated 1500 solved half the time: 1/(1+10^0) = 0.5, so r = 1500.
    assert elo_estimate([1500], [0.5]) == pytest.approx(1500, abs=1e-6)
    # 1200 solved, 1800 not: the two expected scores sum to 1 exactly when r = 1500, since
    # 1/(1+10^(-300/400)) + 1/(1+10^(300/400)) = 1.
    assert elo_estimate([1200, 1800], [1, 0]) == pytest.approx(1500, abs=1e-6)
    # Problems at 1000 and 2000, one solve in total, 1.5 expected at r = 1500 -> r below 1500;
    # at r = 1500 - 400*log10(...) the check is just that the expected count matches.
    r = elo_estimate([1000, 2000], [1, 0])
    assert expected_solves(r, [1000, 2000]) == pytest.approx(1.0, abs=1e-9)
    # Everything or nothing solved has no finite estimate: the bounds.
    assert elo_estimate([800, 1200, 3000], [1, 1, 1]) == 4000
    assert elo_estimate([800, 1200, 3000], [0, 0, 0]) == 0


def test_elo_never_drops_when_more_is_solved():
    rng = random.Random(0)
    for _ in range(200):
        n = rng.randint(1, 12)
        diffs = [rng.choice(range(800, 3600, 100)) for _ in range(n)]
        solves = [rng.random() for _ in range(n)]
        better = list(solves)
        i = rng.randrange(n)
        better[i] = min(1.0, better[i] + rng.random())
        assert elo_estimate(diffs, better) >= elo_estimate(diffs, solves) - 1e-6


def test_elo_rejects_bad_input():
    with pytest.raises(ValueError, match="solve rates"):
        elo_estimate([1000], [1.5])
    with pytest.raises(ValueError, match="one solve rate per problem"):
        elo_estimate([1000, 1200], [1])


def test_mean_ci_uses_the_t_quantile():
    m, ci = stats.mean_ci([1.0, 2.0, 3.0])
    # mean 2, sd 1, n 3: t_{0.975,2} = 4.3027, 4.3027 * 1 / sqrt(3) = 2.4841
    assert m == 2.0 and ci == pytest.approx(2.4841, abs=1e-4)
    # 0..10: n 11, sd sqrt(110 / 10) = sqrt(11), so sd / sqrt(n) = 1 and the half-width is
    # t_{0.975,10} = 2.2281 itself (past the old 9-dof table, which fell back to 1.96).
    assert stats.mean_ci([float(i) for i in range(11)])[1] == pytest.approx(2.2281, abs=1e-4)
    assert math.isnan(stats.mean_ci([5.0])[1])


def test_curves_are_interpolated_onto_a_common_x_without_extrapolating():
    # Seed 0 covers x 1..3, seed 1 covers 0..4: the common range is 1..3, the grid the union
    # of x in it (1, 2, 3). Seed 0 there: 0, 1, 2. Seed 1: 1 at x 1 (1 -> 1 between 0 and 2),
    # 1 at x 2, 3 at x 3 (halfway from 1 to 5). Means 0.5, 1, 2.5; x 0 and 4 are dropped.
    frame = pd.DataFrame({"arm": "a", "seed": [0, 0, 1, 1, 1], "x": [1, 3, 0, 2, 4],
                          "y": [0.0, 2.0, 1.0, 1.0, 5.0]})
    band = stats.seed_band(stats.on_common_x(frame, "x", "y"), ["arm", "x"], "y")
    assert band["x"].tolist() == [1, 2, 3] and band["n"].tolist() == [2, 2, 2]
    assert band["mean"].tolist() == pytest.approx([0.5, 1.0, 2.5])


def _write_run(d, recs, steps, ledger_override=None):
    d.mkdir(parents=True)
    (d / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    ledger = {"queries": 32 * steps, "samples": 256 * steps, "rollout_batches": steps,
              "updates": 4 * steps, "flops": sum(r["flops"] for r in recs),
              "rollout_tokens": 4000, "trained_tokens": 8000, "wall_s": 100.0}
    (d / "run.json").write_text(json.dumps({"ledger": ledger | (ledger_override or {})}))


def _write_report(d, bench, solves):
    d.mkdir(parents=True, exist_ok=True)
    pp = [{"id": f"p{i}", "difficulty": 800 + 100 * i, "k": 2, "avg_at_k": v}
          for i, v in enumerate(solves)]
    (d / f"{bench}.json").write_text(json.dumps({
        "benchmark": bench, "k": 2, "n_problems": len(pp), "per_problem": pp,
        "avg_at_k": sum(solves) / len(solves)}))


def _fake_run(root, arms, seeds, steps=4, ledger_override=None):
    """A run directory in the workflow's layout, with made-up but well-formed records."""
    rng = random.Random(1)

    def evals(d):
        for bench in ("math", "rated"):
            _write_report(d, bench, [rng.choice([0, .5, 1]) for _ in range(10)])

    for arm in arms:
        for seed in seeds:
            recs = [{"step": s, "reward_mean": rng.random(), "clip_frac": 0.1 if "gspo" in arm
                     else 0.001, "volatility": 0.02, "flops": 1e12, "tokens_generated": 1000}
                    for s in range(steps)]
            _write_run(root / "rl" / arm / f"seed{seed}", recs, steps,
                       (ledger_override or {}).get(arm))
            for step in (2, 4):
                evals(root / "eval" / arm / f"seed{seed}" / f"step{step}")
    evals(root / "eval" / "sft")


# Per-seed values of the three-seed run, chosen for hand arithmetic (t_{0.975,2} = 4.3027).
CLIP = {"gspo": [0.1, 0.2, 0.3], "grpo": [0.0, 0.0, 0.003]}
MATH_FINAL = {"gspo": [0.1, 0.2, 0.3], "grpo": [0.3, 0.5, 0.7]}


def _three_seed_run(root, seeds=(0, 1, 2)):
    """Arms gspo and grpo; seed s spends 10 + s FLOPs per batch, so cumulative FLOPs differ
    (seed 0: 10..40, seed 1: 11..44, seed 2: 12..48); reward 0.1 (step + 1) + 0.01 seed."""
    for arm in CLIP:
        for seed in seeds:
            recs = [{"step": s, "reward_mean": 0.1 * (s + 1) + 0.01 * seed,
                     "clip_frac": CLIP[arm][seed], "volatility": 0.02 + 0.01 * seed,
                     "flops": 10 + seed, "tokens_generated": 1000} for s in range(4)]
            _write_run(root / "rl" / arm / f"seed{seed}", recs, 4)
            for step, score in ((2, 0.05), (4, MATH_FINAL[arm][seed])):
                for bench in ("math", "rated"):
                    _write_report(root / "eval" / arm / f"seed{seed}" / f"step{step}", bench,
                                  [score] * 10)
    for bench in ("math", "rated"):
        _write_report(root / "eval" / "sft", bench, [0.0] * 10)


EVALUATED = {"rl.steps": 4, "rl.save_every": 2}
"""The fake runs' config: 4 rollout batches, evaluated at steps 2 and 4."""


def _bands(fig):
    return sum(isinstance(c, PolyCollection) for ax in fig.axes for c in ax.collections)


def test_three_seeds_tables_and_figures_by_hand(tmp_path):
    _three_seed_run(tmp_path / "run")
    arms = ["grpo", "gspo"]
    cfg = load_config(None, {**EVALUATED, "run_dir": str(tmp_path / "run"),
                             "seeds": [0, 1, 2], "arms": arms})
    head = analyze(cfg, tmp_path / "res")
    s = pd.read_csv(tmp_path / "res" / "tables" / "summary.csv").set_index("arm")
    # gspo math 0.1, 0.2, 0.3: mean 0.2, sd 0.1, 4.3027 * 0.1 / sqrt(3) = 0.24841.
    # grpo math 0.3, 0.5, 0.7: mean 0.5, sd 0.2, 4.3027 * 0.2 / sqrt(3) = 0.49683.
    assert s.loc["gspo", ["math_final", "math_final_ci"]].tolist() == pytest.approx(
        [0.2, 0.24841], abs=1e-5)
    assert s.loc["grpo", ["math_final", "math_final_ci"]].tolist() == pytest.approx(
        [0.5, 0.49683], abs=1e-5)
    # grpo clip 0, 0, 0.003 (zeros count): mean 0.001, sd sqrt((1 + 1 + 4)e-6 / 2) = 0.0017321,
    # sd / sqrt(3) = 0.001, half-width 0.0043027; the ratio is 0.2 / 0.001 = 200.
    assert s.loc["grpo", ["clip_frac", "clip_frac_ci"]].tolist() == pytest.approx(
        [0.001, 0.0043027], abs=1e-7)
    assert head["clip_ratio_gspo_over_grpo"] == pytest.approx(200.0)
    # volatility 0.02, 0.03, 0.04: mean 0.03, half-width 4.3027 * 0.01 / sqrt(3) = 0.024841.
    assert s.loc["gspo", ["volatility", "volatility_ci"]].tolist() == pytest.approx(
        [0.03, 0.024841], abs=1e-6)
    assert not any(c.endswith("_best") for c in s.columns) and (s["seeds"] == 3).all()
    md = (tmp_path / "res" / "tables" / "summary.md").read_text()
    assert "| 0.2 ± 0.248 |" in md and "95% Student-t" in md and "n=1" not in md.split("\n\n")[0]

    train = tables.training_frame(cfg.run_dir, arms, [0, 1, 2])
    evals = tables.eval_frame(cfg.run_dir, arms, [0, 1, 2])
    fig = plots.reward_vs_compute(train, tmp_path / "f1.png")
    assert _bands(fig) == 2 and "over 3 seeds" in fig.axes[0].get_title()
    line = fig.axes[0].lines[0]
    # Common FLOPs range 12 (seed 2's first) .. 40 (seed 0's last); grid the seeds' x in it.
    assert list(line.get_xdata()) == [12, 20, 22, 24, 30, 33, 36, 40]
    # At x 20: seed 0 0.2; seed 1 0.11 + 9/11 * 0.1 = 0.19182; seed 2 0.12 + 8/12 * 0.1 =
    # 0.18667; mean 0.19283.
    assert line.get_ydata()[1] == pytest.approx(0.19283, abs=1e-5)
    fig = plots.clip_fraction(train, tmp_path / "f2.png")
    ax = fig.axes[0]
    grpo = next(ln for ln in ax.lines if ln.get_label().startswith("grpo"))
    assert list(grpo.get_ydata()) == pytest.approx([0.001] * 4)  # not 0.003: zeros averaged in
    assert ax.get_yscale() == "symlog" and ax.get_ylim()[0] == 0 and _bands(fig) == 2
    assert _bands(plots.scores_vs_step(evals, tmp_path / "f3.png")) == 4  # 2 arms x 2 panels
    assert _bands(plots.routing_replay(train, evals, tmp_path / "f4.png")) == 4
    assert _bands(plots.volatility(train, tmp_path / "f5.png")) == 2


def test_one_seed_has_no_interval(tmp_path):
    _three_seed_run(tmp_path / "run", seeds=(0,))
    arms = ["grpo", "gspo"]
    cfg = load_config(None, {**EVALUATED, "run_dir": str(tmp_path / "run"),
                             "seeds": [0], "arms": arms})
    analyze(cfg, tmp_path / "res")
    table = (tmp_path / "res" / "tables" / "summary.md").read_text().split("\n\n")[0]
    assert "| 0.1 (n=1, no CI) |" in table and "±" not in table
    fig = plots.reward_vs_compute(tables.training_frame(cfg.run_dir, arms, [0]),
                                  tmp_path / "f1.png")
    assert _bands(fig) == 0 and "1 seed: no interval" in fig.axes[0].get_title()


def test_analyze_writes_every_table_and_figure(tmp_path):
    _fake_run(tmp_path / "run", ["grpo", "grpo_rr", "gspo"], [0, 1])
    cfg = load_config(None, {**EVALUATED, "run_dir": str(tmp_path / "run"),
                             "seeds": [0, 1]})
    head = analyze(cfg, tmp_path / "res")
    assert head["clip_ratio_gspo_over_grpo"] == pytest.approx(100.0)
    assert head["compute_warnings"] == []
    for name in FIGURES:
        png = tmp_path / "res" / "figures" / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (tmp_path / "res" / "tables" / "summary.md").read_text()
    assert "Compute matched across arms" in md and "WARNING" not in md
    assert "difficulty-rating MLE" in md
    summary = (tmp_path / "res" / "tables" / "summary.csv").read_text()
    assert "rated_elo_final" in summary and "math_best" not in summary


def test_a_compute_mismatch_is_a_loud_warning(tmp_path):
    _fake_run(tmp_path / "run", ["grpo", "gspo"], [0], ledger_override={"gspo": {"samples": 1}})
    cfg = load_config(None, {**EVALUATED, "run_dir": str(tmp_path / "run"),
                             "arms": ["grpo", "gspo"]})
    head = analyze(cfg, tmp_path / "res")
    assert head["compute_warnings"] and "samples" in head["compute_warnings"][0]
    assert "WARNING: compute did not match" in (tmp_path / "res/tables/summary.md").read_text()


def test_verify_passes_on_intact_results_and_fails_on_one_changed_byte(tmp_path):
    res = tmp_path / "res"
    (res / "tables").mkdir(parents=True)
    (res / "tables" / "summary.csv").write_text("arm,score\ngspo,0.5\n")
    (res / "figures").mkdir()
    (res / "figures" / "f.png").write_bytes(bytes(range(256)))
    (res / "bench").mkdir()
    (res / "bench" / "rollout.json").write_text("{}")  # benchmarks are not workflow artifacts
    write_manifest(res, {"seeds": [0]})
    assert verify(res) == []
    copy = tmp_path / "copy"
    shutil.copytree(res, copy)
    data = bytearray((copy / "figures" / "f.png").read_bytes())
    data[100] ^= 1
    (copy / "figures" / "f.png").write_bytes(bytes(data))
    assert verify(copy) == ["changed: figures/f.png (sha256 differs from the manifest)"]
    assert verify(res) == []  # the original is untouched
    (res / "tables" / "extra.csv").write_text("x")
    assert verify(res) == ["unlisted: tables/extra.csv"]


def test_lm_eval_task_scores_each_of_k_responses(tmp_path):
    from gspo_repro.eval.lm_eval_tasks import process_results, task_name, write_task
    from gspo_repro.tasks import make_split

    for family in ("math", "code"):
        d = write_task(family, tmp_path / family, make_split(family, "eval", 3), k=2,
                       temperature=1.0, max_new_tokens=64)
        cfg = (d / f"{family}.yaml").read_text()
        assert f"task: {task_name(family)}" in cfg and "repeats: 2" in cfg
        assert "process_results: !function utils.process_results" in cfg
        docs = [json.loads(x) for x in (d / f"{family}.jsonl").read_text().splitlines()]
        assert [x["id"] for x in docs] == [t.id for t in make_split(family, "eval", 3)]
        right = make_split(family, "eval", 3)[0].solution
        assert process_results(docs[0], [[right, "no answer here"]]) == {"avg_at_k": 0.5}
        assert process_results(docs[0], [[right, right]]) == {"avg_at_k": 1.0}


def test_paired_delta_by_hand():
    """Per-problem means, then their differences: t1 0.5 -> 1.0, t2 0 -> 0.5, t3 1 -> 0.5,
    so diffs (0.5, 0.5, -0.5), mean 1/6, sd sqrt(((1/3)^2 * 2 + (2/3)^2) / 2) = 0.57735,
    se 0.57735 / sqrt(3) = 1/3."""
    from gspo_repro.eval.synthetic import paired_delta

    def rep(rewards):
        return {"per_sample": [{"task": t, "reward": r} for t, rs in rewards.items() for r in rs]}

    base = rep({"t1": [1, 0], "t2": [0, 0], "t3": [1, 1]})
    new = rep({"t1": [1, 1], "t2": [0, 1], "t3": [0, 1]})
    d = paired_delta(base, new)
    assert d["delta"] == pytest.approx(1 / 6) and d["se"] == pytest.approx(1 / 3)
    assert d["base"] == pytest.approx(0.5) and d["new"] == pytest.approx(2 / 3)
    assert d["ci95"] == pytest.approx([1 / 6 - 1.96 / 3, 1 / 6 + 1.96 / 3])
    with pytest.raises(ValueError, match="same problems"):
        paired_delta(base, rep({"t1": [1]}))


def test_reports_another_config_left_behind_never_enter_the_tables(tmp_path):
    """A run directory reused across configs keeps old evaluations: a step the config no
    longer evaluates (rl.steps was 8) and a benchmark it no longer runs. The analysis reads
    only the config's steps and benchmarks, so the final score is step 4's."""
    _three_seed_run(tmp_path / "run")
    for seed in (0, 1, 2):
        for arm in CLIP:
            _write_report(tmp_path / "run/eval" / arm / f"seed{seed}" / "step8", "math",
                          [1.0] * 10)
            _write_report(tmp_path / "run/eval" / arm / f"seed{seed}" / "step4", "code",
                          [1.0] * 10)
    cfg = load_config(None, {**EVALUATED, "run_dir": str(tmp_path / "run"),
                             "seeds": [0, 1, 2], "arms": list(CLIP),
                             "eval.benchmarks": ["math", "rated"]})
    analyze(cfg, tmp_path / "res")
    s = pd.read_csv(tmp_path / "res" / "tables" / "summary.csv").set_index("arm")
    assert s.loc["gspo", "math_final"] == pytest.approx(0.2)  # step 4's, not step 8's 1.0
    curves = pd.read_csv(tmp_path / "res" / "tables" / "curves.csv")
    assert set(curves["step"]) == {0, 2, 4} and set(curves["benchmark"]) == {"math", "rated"}
    assert "code" not in (tmp_path / "res" / "tables" / "benchmarks.md").read_text()
