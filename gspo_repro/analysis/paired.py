"""Paired comparisons between arms: held-out scores by problem, training reward by batch and
at matched compute.

Arms run under the same seed index see the same queries in every rollout batch and are scored
on the same held-out problems, so a difference is taken inside a seed (and inside a problem or
a batch) before anything is averaged: the difficulty the arms share cancels.

Held-out differences take the two-level bootstrap of :func:`two_level_bootstrap` (seeds, then
problems within seeds). scipy's ``stats.bootstrap`` resamples one level (or several samples
independently), not problems nested in seeds, and rliable's stratified bootstrap resamples runs
within tasks, not tasks within runs; so the nesting is written here, in numpy. Per-seed
training quantities (reward area at matched compute) take the project's one interval, the 95%
Student-t interval over seeds of :mod:`gspo_repro.analysis.stats`.

Every measured difference also carries its standard error (``se``): for a bootstrap, the
standard deviation (ddof 1) of the bootstrap replicates of the statistic; for a t-interval
over seeds, the sample sd over seeds / sqrt(n) (:func:`standard_error`).
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path

import numpy as np
import pandas as pd

from gspo_repro.analysis.stats import LEVEL, mean_ci, seed_band
from gspo_repro.analysis.tables import eval_reports

N_BOOT = 2000
"""Resamples of every bootstrap."""
BOOT_SEED = 0
"""Seed of the bootstrap generator, so a table is the same on every run of ``analyze``."""
SMOOTH = 5
"""Window, in rollout batches, of the centred rolling mean put on training-reward curves."""
PAIRS = (("gspo", "grpo"), ("grpo_rr", "grpo"), ("gspo", "grpo_rr"), ("gspo_engine", "gspo"))
"""Arm pairs (A, B) compared as A - B, batch by batch and on held-out problems."""
BOOT_METHOD = (f"two-level bootstrap: seeds, then problems within seeds, {N_BOOT} resamples, "
               f"percentile {LEVEL:.0%}")


def present_pairs(arms) -> list[tuple[str, str]]:
    """The pairs of ``PAIRS`` whose two arms are both in ``arms``."""
    return [p for p in PAIRS if set(p) <= set(arms)]


def two_level_bootstrap(groups: list, n_boot: int = N_BOOT, seed: int = BOOT_SEED,
                        level: float = LEVEL) -> tuple[float, float, float]:
    """Mean of per-seed means of ``groups`` (one array of per-problem values per seed) and its
    percentile interval from a two-level bootstrap: draw as many seeds as there are, with
    replacement; within each drawn seed draw its problems with replacement; take the mean of
    the drawn seeds' means. The interval is the (1 - level)/2 and (1 + level)/2 quantiles of the
    ``n_boot`` resampled means, each an actual resample (inverted-CDF percentiles, no
    interpolation). Resampling both levels counts the problem-level variance about twice
    (Davison & Hinkley 1997, Bootstrap Methods, on hierarchical data), so the interval errs
    wide. One seed: the ordinary bootstrap over problems. Returns (mean, lo, hi)."""
    est = bootstrap_estimate(groups, n_boot, seed, level)
    return est["value"], est["lo"], est["hi"]


def bootstrap_estimate(groups: list, n_boot: int = N_BOOT, seed: int = BOOT_SEED,
                       level: float = LEVEL) -> dict:
    """The mean and percentile interval of :func:`two_level_bootstrap` (``value``, ``lo``,
    ``hi``) and its standard error ``se``: the standard deviation (ddof 1) of the same
    ``n_boot`` resampled means. Like the interval, it counts the problem-level variance about
    twice, so it errs large unless a seed mean's problem-level variance is small next to the
    seed-to-seed variance."""
    dist = bootstrap_means(groups, n_boot, seed)
    point = float(np.mean([np.mean(g) for g in groups]))
    lo, hi = np.quantile(dist, [(1 - level) / 2, (1 + level) / 2], method="inverted_cdf")
    return {"value": point, "lo": float(lo), "hi": float(hi), "se": float(np.std(dist, ddof=1))}


def standard_error(values) -> float:
    """Sample standard deviation (ddof 1) of the non-missing ``values`` over the square root
    of their count: the standard error that goes with :func:`stats.mean_ci`'s t-interval (NaN
    with fewer than two values)."""
    values = [v for v in values if v is not None and not math.isnan(v)]
    if len(values) < 2:
        return math.nan
    return statistics.stdev(values) / math.sqrt(len(values))


def bootstrap_means(groups: list, n_boot: int = N_BOOT, seed: int = BOOT_SEED,
                    chunk: int = 500) -> np.ndarray:
    """The ``n_boot`` resampled means of :func:`two_level_bootstrap`, vectorised over
    resamples (``chunk`` at a time, to bound memory); seeds may hold different problem counts."""
    groups = [np.asarray(g, dtype=float) for g in groups]
    if not groups or any(g.size == 0 for g in groups):
        raise ValueError("two-level bootstrap: every seed needs at least one value")
    sizes = np.array([g.size for g in groups])
    table = np.zeros((len(groups), sizes.max()))
    for i, g in enumerate(groups):
        table[i, :g.size] = g
    rng = np.random.default_rng(seed)
    out = []
    for start in range(0, n_boot, chunk):
        b = min(chunk, n_boot - start)
        seeds = rng.integers(len(groups), size=(b, len(groups)))
        n = sizes[seeds]
        # problem j of a drawn seed with n problems: floor(u * n) < n, a uniform index
        picks = (rng.random((b, len(groups), sizes.max())) * n[..., None]).astype(int)
        used = np.arange(sizes.max()) < n[..., None]  # a seed with fewer problems draws fewer
        drawn = np.where(used, table[seeds[..., None], picks], 0.0)
        out.append((drawn.sum(-1) / n).mean(-1))
    return np.concatenate(out)


def improvement(groups: list) -> list[np.ndarray]:
    """Per (seed, problem) whether A beat B: 1 when the difference is positive, 0.5 when tied,
    0 when negative. Its mean is the probability of improvement P(A > B), rliable's statistic
    (Agarwal et al. 2021), taken paired: rliable compares every run of A with every run of B on
    a task, while arms here share seeds, so A meets B on the same seed and problem."""
    return [(np.asarray(g) > 0) + 0.5 * (np.asarray(g) == 0) for g in groups]


def final_problem_scores(run_dir: str | Path, arms: list[str], seeds: list[int],
                         steps: list[int] | None = None,
                         benchmarks: list[str] | None = None) -> pd.DataFrame:
    """One row per (arm, seed, benchmark, problem id): the problem's avg@k at that run's final
    evaluated checkpoint (columns arm, seed, step, benchmark, id, score). The SFT start is arm
    ``sft``, seed -1, step 0. Reports without per-problem rows add nothing. ``steps``,
    ``benchmarks``: as :func:`tables.eval_reports`."""
    reports = list(eval_reports(run_dir, arms, seeds, steps, benchmarks))
    last = {}
    for arm, seed, step, _ in reports:
        last[(arm, seed)] = max(step, last.get((arm, seed), step))
    rows = []
    for arm, seed, step, rep in reports:
        if step != last[(arm, seed)]:
            continue
        ids = [p["id"] for p in rep.get("per_problem", [])]
        if len(set(ids)) != len(ids):
            raise ValueError(f"{rep.get('checkpoint')}: {rep['benchmark']} problem ids repeat, "
                             f"so problems cannot be paired")
        rows.extend({"arm": arm, "seed": seed, "step": step, "benchmark": rep["benchmark"],
                     "id": str(p["id"]), "score": float(p["avg_at_k"])}
                    for p in rep.get("per_problem", []))
    return pd.DataFrame(rows, columns=["arm", "seed", "step", "benchmark", "id", "score"])


def paired_groups(scores: pd.DataFrame, bench: str, a: str, b: str,
                  seeds: list[int]) -> list[np.ndarray]:
    """Per seed that both arms ran, score(a) - score(b) on each problem both were scored on;
    ``b`` = "sft" pairs every seed of ``a`` with the one SFT evaluation."""
    on = scores[scores["benchmark"] == bench]
    out = []
    for seed in seeds:
        x = on[(on["arm"] == a) & (on["seed"] == seed)].set_index("id")["score"]
        y = on[(on["arm"] == b) & ((on["seed"] == seed) | (b == "sft"))].set_index("id")["score"]
        common = x.index.intersection(y.index)
        if len(common):
            out.append((x[common] - y[common]).to_numpy())
    return out


def heldout_difference(groups: list[np.ndarray]) -> dict:
    """Mean paired difference with its two-level bootstrap interval and standard error
    (:func:`bootstrap_estimate`), probability of improvement P(A > B) with its interval (the
    same resamples: one generator seed), and the seeds and problems they rest on (problems:
    the smallest count of any seed)."""
    diff = bootstrap_estimate(groups)
    poi, poi_lo, poi_hi = two_level_bootstrap(improvement(groups))
    return {**diff, "p_improve": poi, "p_improve_lo": poi_lo, "p_improve_hi": poi_hi,
            "seeds": len(groups), "problems": min(map(len, groups))}


def reward_auc(train: pd.DataFrame, a: str, b: str) -> dict[int, float]:
    """Per seed both arms ran: area under arm ``a``'s training-reward curve against cumulative
    FLOPs minus arm ``b``'s, each divided by the FLOPs range every seed of both arms covers (the
    mean reward over that range). Curves are interpolated linearly onto the union of the runs'
    FLOPs inside the range and integrated by the trapezoid rule; no run is extrapolated."""
    runs = {(arm, seed): g.sort_values("cum_flops")
            for (arm, seed), g in train[train["arm"].isin([a, b])].groupby(["arm", "seed"])}
    if not runs:
        return {}
    lo = max(g["cum_flops"].iloc[0] for g in runs.values())
    hi = min(g["cum_flops"].iloc[-1] for g in runs.values())
    if hi <= lo:
        return {}
    grid = np.unique(np.concatenate([g["cum_flops"].to_numpy() for g in runs.values()]))
    grid = grid[(grid >= lo) & (grid <= hi)]

    def auc(g):
        return np.trapezoid(np.interp(grid, g["cum_flops"], g["reward_mean"]), grid) / (hi - lo)

    return {seed: float(auc(runs[a, seed]) - auc(runs[b, seed]))
            for arm, seed in runs if arm == a and (b, seed) in runs}


def batch_differences(train: pd.DataFrame, a: str, b: str, window: int = SMOOTH) -> pd.DataFrame:
    """Per (seed, step) both arms ran: training reward of ``a`` minus ``b`` (``diff``), its
    centred rolling mean over ``window`` batches within the seed (``smooth``; at the ends, the
    batches there are), and whether both arms drew the same queries (``same_queries``, from
    the ``queries_sha`` the trainer logs; NaN where it is not logged)."""
    cols = ["seed", "step", "reward_mean"] + (["queries_sha"] if "queries_sha" in train else [])
    x, y = (train.loc[train["arm"] == arm, cols] for arm in (a, b))
    m = x.merge(y, on=["seed", "step"], suffixes=("_a", "_b")).sort_values(["seed", "step"])
    m["diff"] = m["reward_mean_a"] - m["reward_mean_b"]
    m["smooth"] = m.groupby("seed")["diff"].transform(
        lambda d: d.rolling(window, center=True, min_periods=1).mean())
    m["same_queries"] = (m["queries_sha_a"] == m["queries_sha_b"]).astype(float) if (
        "queries_sha" in cols) else np.nan
    return m[["seed", "step", "diff", "smooth", "same_queries"]]


def paired_training(train: pd.DataFrame, pairs: list[tuple[str, str]],
                    window: int = SMOOTH) -> pd.DataFrame:
    """Per arm pair ("a-b") and step: the smoothed per-batch reward difference of
    :func:`batch_differences`, mean over seeds with its 95% t-interval (``seed_band``)."""
    parts = []
    for a, b in pairs:
        d = batch_differences(train, a, b, window).assign(pair=f"{a} - {b}")
        band = seed_band(d, ["pair", "step"], "smooth")
        parts.append(band.merge(d.groupby("step", as_index=False)["same_queries"].mean(),
                                on="step"))
    if not parts:
        return pd.DataFrame(columns=["pair", "step", "mean", "sd", "n", "half", "lo", "hi",
                                     "same_queries"])
    return pd.concat(parts, ignore_index=True)


def per_batch_summary(train: pd.DataFrame, a: str, b: str) -> dict:
    """Each seed's mean over batches of the unsmoothed paired reward difference, then the mean,
    95% t-interval and standard error over seeds; NaN when the arms share no batch."""
    d = batch_differences(train, a, b)
    per_seed = d.groupby("seed")["diff"].mean().tolist()
    mean, half = mean_ci(per_seed)
    return {"value": mean, "lo": mean - half, "hi": mean + half,
            "se": standard_error(per_seed), "seeds": len(per_seed)}
