"""Elo estimate, tables, plots and the results manifest."""

import json
import math
import random
import shutil

import pytest

from gspo_repro.analysis import FIGURES, analyze, tables
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
    m, ci = tables.mean_ci([1.0, 2.0, 3.0])
    # mean 2, sd 1, n 3: 4.303 * 1 / sqrt(3) = 2.4843
    assert m == 2.0 and ci == pytest.approx(4.303 / math.sqrt(3))
    assert math.isnan(tables.mean_ci([5.0])[1])


def _fake_run(root, arms, seeds, steps=4, ledger_override=None):
    """A run directory in the workflow's layout, with made-up but well-formed records."""
    rng = random.Random(1)
    for arm in arms:
        for seed in seeds:
            d = root / "rl" / arm / f"seed{seed}"
            d.mkdir(parents=True)
            recs = [{"step": s, "reward_mean": rng.random(), "clip_frac": 0.1 if "gspo" in arm
                     else 0.001, "volatility": 0.02, "flops": 1e12, "tokens_generated": 1000}
                    for s in range(steps)]
            (d / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
            ledger = {"queries": 32 * steps, "samples": 256 * steps, "rollout_batches": steps,
                      "updates": 4 * steps, "flops": 4e12, "rollout_tokens": 4000,
                      "trained_tokens": 8000, "wall_s": 100.0}
            ledger.update((ledger_override or {}).get(arm, {}))
            (d / "run.json").write_text(json.dumps({"ledger": ledger}))
            for step in (2, 4):
                for bench in ("math", "rated"):
                    _fake_eval(root / "eval" / arm / f"seed{seed}" / f"step{step}", bench, rng)
    for bench in ("math", "rated"):
        _fake_eval(root / "eval" / "sft", bench, rng)


def _fake_eval(d, bench, rng):
    d.mkdir(parents=True, exist_ok=True)
    pp = [{"id": f"p{i}", "difficulty": 800 + 100 * i, "k": 2, "avg_at_k": rng.choice([0, .5, 1])}
          for i in range(10)]
    (d / f"{bench}.json").write_text(json.dumps({
        "benchmark": bench, "k": 2, "n_problems": 10, "per_problem": pp,
        "avg_at_k": sum(p["avg_at_k"] for p in pp) / 10}))


def test_analyze_writes_every_table_and_figure(tmp_path):
    _fake_run(tmp_path / "run", ["grpo", "grpo_rr", "gspo"], [0, 1])
    cfg = load_config(None, {"run_dir": str(tmp_path / "run"), "seeds": [0, 1]})
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
    assert "rated_elo_final" in summary and "math_best" in summary


def test_a_compute_mismatch_is_a_loud_warning(tmp_path):
    _fake_run(tmp_path / "run", ["grpo", "gspo"], [0], ledger_override={"gspo": {"samples": 1}})
    cfg = load_config(None, {"run_dir": str(tmp_path / "run"), "arms": ["grpo", "gspo"]})
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
