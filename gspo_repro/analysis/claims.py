"""The paper's claims as verdicts computed from a run, by rules fixed here before any run.

``CLAIMS`` lists each claim with the statistic that tests it and the rule that judges it;
``RULES`` gives each rule's sentence (printed in the table) and its function of the statistic's
95% interval. A verdict is reproduced, contradicted or inconclusive by the row's rule, unless
one of these comes first:

- "not run": an arm the claim needs is not among the run's arms;
- "not evaluated": the arms have no per-problem evaluation (or no training data) to compare;
- "not comparable": the expert-volatility claim on a model other than the paper's. The share
  of (token, layer) expert sets that change depends on how many experts a token picks among
  how many (8 of 128 in Qwen3-30B-A3B; 2 of 8 in the tiny model) and on the size of an
  update; the paper gives one number for one model and predicts nothing for others, so on
  another model the value is printed but not judged;
- "inconclusive (1 seed)": fewer than ``MIN_SEEDS`` seeds. Intervals over seeds do not exist
  then, and a held-out interval over problems alone leaves out the seed-to-seed variation
  between runs that the claims are about.

Intervals: held-out differences and P(A > B) by the two-level bootstrap of
:mod:`gspo_repro.analysis.paired`; per-seed training quantities (reward area, volatility) by the
project's 95% Student-t interval over seeds; the clip ratio, a ratio of means, by a paired
bootstrap over seeds (its per-seed ratios can be infinite when GRPO clipped nothing).

Standard errors (column ``se``), next to each interval: for a bootstrap row (held-out
difference, clip ratio) the standard deviation (ddof 1) of the bootstrap replicates of the
statistic; for a t row over seeds (reward area, volatility, per-batch paired difference) the
sample sd over seeds / sqrt(n). A count (collapses) or a row without data has none (NaN), and
a non-finite one (a clip-ratio resample in which GRPO clipped nothing) prints as "-".
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from gspo_repro.analysis import paired
from gspo_repro.analysis.stats import LEVEL, mean_ci
from gspo_repro.analysis.tables import _fmt

REPRODUCED, CONTRADICTED, INCONCLUSIVE = "reproduced", "contradicted", "inconclusive"
NOT_RUN, NOT_EVALUATED, NOT_COMPARABLE = "not run", "not evaluated", "not comparable"

MIN_SEEDS = 2
"""Seeds a verdict other than inconclusive needs."""
CLIP_REPRODUCED = 10.0
"""Clip ratio whose 95% lower bound reproduces "about two orders of magnitude": 10x, a
deliberately low bar for a claim read off a plot (Fig. 2: ~0.15 / ~0.0013 = ~115x)."""
CLIP_CONTRADICTED = 1.0
"""Clip ratio whose 95% upper bound contradicts the claim: GSPO clipping fewer tokens."""
MARGIN = 0.01
"""Non-inferiority margin: 1 point of avg@k (pass@1) or of mean training reward, both in
[0, 1]."""
VOLATILITY_BAND = (0.05, 0.20)
"""Volatility range taken as "about 10%": an interval overlapping it reproduces the claim."""
PAPER_MODEL = "Qwen/Qwen3-30B-A3B-Base"
"""The model the paper measured volatility on; any other is not comparable."""
COLLAPSE_DROP, COLLAPSE_RECOVER, COLLAPSE_PERSIST, COLLAPSE_SKIPPED = 0.5, 0.9, 6, 3
"""A run collapses at batch t when its smoothed reward there falls below COLLAPSE_DROP of its
best so far (batch t included) and never again reaches COLLAPSE_RECOVER of that best, judged
only where at least COLLAPSE_PERSIST batches follow t (a dip in the last batches, which all
arms draw from the same queries, has no time to show that it lasts), or when
COLLAPSE_SKIPPED consecutive batches each skip an update (non-finite loss or gradient).
Changed after the c0a0457 run and before the next (13ef0db and the commit after): its one
"collapse" was a dip in its last two batches shared by every arm."""

COLLAPSE_TEXT = (f"a run collapses at batch t if its training reward, smoothed by a centred "
                 f"rolling mean over {paired.SMOOTH} batches, falls below {COLLAPSE_DROP:g} x "
                 f"its best smoothed value up to t and never again reaches {COLLAPSE_RECOVER:g} x "
                 f"that best (a drop with fewer than {COLLAPSE_PERSIST} batches after it is not "
                 f"judged), or if {COLLAPSE_SKIPPED} "
                 "consecutive batches each skip a non-finite update")


def superiority(lo: float, hi: float) -> str:
    """A - B better: reproduced if the interval lies above 0, contradicted if below."""
    return REPRODUCED if lo > 0 else CONTRADICTED if hi < 0 else INCONCLUSIVE


def noninferiority(lo: float, hi: float, margin: float = MARGIN) -> str:
    """A - B at least as good, up to ``margin``: reproduced if the lower bound is above
    -margin, contradicted if the upper bound is below it."""
    return REPRODUCED if lo > -margin else CONTRADICTED if hi < -margin else INCONCLUSIVE


def clip_rule(lo: float, hi: float) -> str:
    """GSPO / GRPO clip ratio: reproduced if the lower bound is at least ``CLIP_REPRODUCED``,
    contradicted if the upper bound is below ``CLIP_CONTRADICTED``."""
    return (REPRODUCED if lo >= CLIP_REPRODUCED else CONTRADICTED if hi < CLIP_CONTRADICTED
            else INCONCLUSIVE)


def replay_rule(lo: float, hi: float, grpo_collapses: int) -> str:
    """grpo_rr - grpo: reproduced if the interval lies above 0; contradicted only if it lies
    below 0 and no GRPO seed collapsed (replay then hurt a GRPO that did not need it)."""
    if lo > 0:
        return REPRODUCED
    return CONTRADICTED if hi < 0 and grpo_collapses == 0 else INCONCLUSIVE


def collapse_rule(grpo: int, grpo_rr: int) -> str:
    """Collapsed seeds: reproduced if GRPO collapsed in more seeds than GRPO with replay,
    contradicted if in fewer, inconclusive if as many (none at all included)."""
    return REPRODUCED if grpo > grpo_rr else CONTRADICTED if grpo < grpo_rr else INCONCLUSIVE


def volatility_rule(lo: float, hi: float, comparable: bool) -> str:
    """Reproduced if the interval overlaps ``VOLATILITY_BAND``, contradicted if not; not
    comparable on a model other than ``PAPER_MODEL``."""
    if not comparable:
        return NOT_COMPARABLE
    return REPRODUCED if lo <= VOLATILITY_BAND[1] and hi >= VOLATILITY_BAND[0] else CONTRADICTED


@dataclass(frozen=True)
class Rule:
    """A verdict rule: the sentence the table prints and its function of a row."""

    text: str
    decide: Callable[[dict], str]


RULES = {
    "clip": Rule(f"reproduced if the lower bound >= {CLIP_REPRODUCED:g}x; contradicted if the "
                 f"upper bound < {CLIP_CONTRADICTED:g}x", lambda r: clip_rule(r["lo"], r["hi"])),
    "superiority": Rule("reproduced if the interval of A - B lies above 0; contradicted if "
                        "below 0", lambda r: superiority(r["lo"], r["hi"])),
    "noninferiority": Rule(f"non-inferiority, margin {MARGIN:g}: reproduced if the lower bound "
                           f"> -{MARGIN:g}; contradicted if the upper bound < -{MARGIN:g}",
                           lambda r: noninferiority(r["lo"], r["hi"])),
    "replay": Rule("reproduced if the interval lies above 0; contradicted if below 0 and no "
                   "grpo seed collapsed", lambda r: replay_rule(r["lo"], r["hi"],
                                                                r["grpo_collapses"])),
    "collapse": Rule("reproduced if grpo collapsed in more seeds than grpo_rr; contradicted if "
                     "in fewer", lambda r: collapse_rule(r["grpo_collapses"], r["rr_collapses"])),
    "volatility": Rule(f"on {PAPER_MODEL} only: reproduced if the interval overlaps "
                       f"[{VOLATILITY_BAND[0]:g}, {VOLATILITY_BAND[1]:g}], else contradicted",
                       lambda r: volatility_rule(r["lo"], r["hi"], r["comparable"])),
}


@dataclass(frozen=True)
class Claim:
    """One claim of the paper, the statistic of arms ``a`` and ``b`` that tests it (clip_ratio,
    reward_auc, heldout, collapses or volatility) and the key of its rule in ``RULES``."""

    claim: str
    paper: str
    statistic: str
    a: str
    b: str
    rule: str


_EFFICIENT = "GSPO beats GRPO at matched compute"
_REPLAY = "GRPO on the MoE needs Routing Replay"
_NO_REPLAY = "GSPO without replay matches or beats GRPO with it"
_ENGINE = "GSPO tolerates the engine's log-probs"
CLAIMS = (
    Claim("GSPO clips about two orders of magnitude more tokens than GRPO",
          "~115x (Fig. 2: ~0.15 vs ~0.0013)", "clip_ratio", "gspo", "grpo", "clip"),
    Claim(_EFFICIENT, "higher training reward at equal compute (Fig. 1)", "reward_auc", "gspo",
          "grpo", "superiority"),
    Claim(_EFFICIENT, "higher AIME'24, LiveCodeBench, CodeForces (Fig. 1)", "heldout", "gspo",
          "grpo", "superiority"),
    Claim(_REPLAY, "GRPO without replay fails to converge (Fig. 3)", "collapses", "grpo",
          "grpo_rr", "collapse"),
    Claim(_REPLAY, "replay needed for GRPO to train (Fig. 3)", "reward_auc", "grpo_rr", "grpo",
          "replay"),
    Claim(_REPLAY, "replay needed for GRPO to train (Fig. 3)", "heldout", "grpo_rr", "grpo",
          "replay"),
    Claim(_NO_REPLAY, "GSPO at or above GRPO + replay (Fig. 3)", "reward_auc", "gspo", "grpo_rr",
          "noninferiority"),
    Claim(_NO_REPLAY, "GSPO at or above GRPO + replay (Fig. 3)", "heldout", "gspo", "grpo_rr",
          "noninferiority"),
    Claim("About 10% of activated experts change after one update",
          "~10% (Qwen3-30B-A3B: 48 layers, 8 of 128 experts)", "volatility", "grpo", "",
          "volatility"),
    Claim(_ENGINE, "engine log-probs usable without recompute (sec. 5.4; no number)",
          "reward_auc", "gspo_engine", "gspo", "noninferiority"),
    Claim(_ENGINE, "engine log-probs usable without recompute (sec. 5.4; no number)",
          "heldout", "gspo_engine", "gspo", "noninferiority"),
)
COLUMNS = ["claim", "statistic", "value", "lo", "hi", "se", "method", "seeds", "problems",
           "p_improve", "p_improve_lo", "p_improve_hi", "paper", "verdict", "rule", "note"]


def collapsed(reward, skipped=None, window: int = paired.SMOOTH) -> bool:
    """Whether a run's per-batch training ``reward`` (and ``skipped`` updates per batch)
    collapsed by the rule of ``COLLAPSE_TEXT``: some batch t whose smoothed reward is below
    ``COLLAPSE_DROP`` x the best smoothed value up to t and never again reaches
    ``COLLAPSE_RECOVER`` x that best; only batches with at least ``COLLAPSE_PERSIST`` batches
    after them are judged. Rewards are taken to be non-negative."""
    smooth = pd.Series(reward, dtype=float).rolling(window, center=True, min_periods=1).mean()
    y = smooth.to_numpy()
    judged = len(y) - COLLAPSE_PERSIST  # batches 0 .. judged - 1 have enough batches after
    if judged > 0:
        best = np.fmax.accumulate(y)[:judged]
        # the best smoothed value after each judged batch, that batch excluded
        later = np.fmax.accumulate(y[::-1])[::-1][1:judged + 1]
        if ((y[:judged] < COLLAPSE_DROP * best) & ~(later >= COLLAPSE_RECOVER * best)).any():
            return True
    bad = np.asarray(skipped if skipped is not None else [], dtype=float) > 0
    runs = np.convolve(bad, np.ones(COLLAPSE_SKIPPED), "valid") if bad.size else np.zeros(0)
    return bool((runs >= COLLAPSE_SKIPPED).any())


def collapses(train: pd.DataFrame, arm: str) -> tuple[int, int]:
    """(Collapsed seeds, seeds) of ``arm`` by :func:`collapsed`."""
    runs = [g.sort_values("step") for _, g in train[train["arm"] == arm].groupby("seed")]
    return sum(collapsed(g["reward_mean"], g.get("skipped_updates")) for g in runs), len(runs)


def clip_ratio(train: pd.DataFrame, a: str = "gspo", b: str = "grpo", n_boot: int = paired.N_BOOT,
               seed: int = paired.BOOT_SEED) -> dict:
    """Mean clip fraction of ``a`` over that of ``b`` (each the mean over seeds of the seed's
    mean over batches) with a paired percentile bootstrap over seeds and its standard error,
    the sd (ddof 1) of the resampled ratios: NaN with one seed, and NaN (printed "-") when a
    resample's ``b`` clipped nothing, its ratio then infinite."""
    per = train.groupby(["arm", "seed"])["clip_frac"].mean()
    seeds = sorted(set(per[a].index) & set(per[b].index))
    x, y = per[a][seeds].to_numpy(), per[b][seeds].to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        value = float(x.mean() / y.mean())
        if len(seeds) < 2:
            return {"value": value, "lo": math.nan, "hi": math.nan, "se": math.nan,
                    "seeds": len(seeds)}
        pick = np.random.default_rng(seed).integers(len(seeds), size=(n_boot, len(seeds)))
        ratios = x[pick].mean(1) / y[pick].mean(1)  # a resample where b clipped nothing: inf
        se = float(np.std(ratios, ddof=1)) if np.isfinite(ratios).all() else math.nan
    lo, hi = np.quantile(ratios, [(1 - LEVEL) / 2, (1 + LEVEL) / 2], method="inverted_cdf")
    return {"value": value, "lo": float(lo), "hi": float(hi), "se": se, "seeds": len(seeds)}


def t_row(per_seed: list[float]) -> dict:
    """Mean over seeds of ``per_seed``, its 95% t-interval and standard error (sd / sqrt(n))."""
    mean, half = mean_ci(per_seed)
    return {"value": mean, "lo": mean - half, "hi": mean + half,
            "se": paired.standard_error(per_seed), "seeds": len(per_seed)}


STATISTICS = {
    "clip_ratio": "mean clip_frac {a} / {b}",
    "reward_auc": "training-reward area at matched FLOPs, {a} - {b}",
    "heldout": "final held-out avg@k on {bench}, {a} - {b}",
    "collapses": "seeds collapsed, {a} - {b}",
    "volatility": "expert volatility of {a}: share of (token, layer) expert sets changed by one "
                  "rollout batch's updates",
}
"""What each statistic is, as the table's ``statistic`` column names it."""


def _measure(c: Claim, train: pd.DataFrame, scores: pd.DataFrame, seeds: list[int]) -> list[dict]:
    """The rows of claim ``c``: its statistic, interval, method and counts (several for a
    held-out claim, one per benchmark)."""
    label = STATISTICS[c.statistic].format
    if c.statistic == "clip_ratio":
        return [{**clip_ratio(train, c.a, c.b), "statistic": label(a=c.a, b=c.b),
                 "method": f"paired bootstrap over seeds, {paired.N_BOOT} resamples, "
                           "percentile 95%"}]
    if c.statistic == "reward_auc":
        return [{**t_row(list(paired.reward_auc(train, c.a, c.b).values())),
                 "statistic": label(a=c.a, b=c.b),
                 "method": "95% t over seeds of paired differences"}]
    if c.statistic == "volatility":
        # the paper's number motivates replay for GRPO; another arm stands in without one
        arm = c.a if c.a in set(train["arm"]) else train["arm"].iloc[0]
        per_seed = train[train["arm"] == arm].groupby("seed")["volatility"].mean().dropna()
        return [{**t_row(per_seed.tolist()), "method": "95% t over seeds",
                 "statistic": label(a=arm)}]
    if c.statistic == "collapses":
        (ga, n), (gb, _) = collapses(train, c.a), collapses(train, c.b)
        return [{"value": ga - gb, "lo": math.nan, "hi": math.nan, "se": math.nan, "seeds": n,
                 "method": "count", "statistic": label(a=c.a, b=c.b),
                 "note": f"{c.a} {ga}/{n}, {c.b} {gb}/{n} collapsed"}]
    rows = []
    for bench in sorted(scores["benchmark"].unique()):
        groups = paired.paired_groups(scores, bench, c.a, c.b, seeds)
        if groups:
            rows.append({**paired.heldout_difference(groups), "method": paired.BOOT_METHOD,
                         "statistic": label(a=c.a, b=c.b, bench=bench)})
    return rows


def _verdict(c: Claim, row: dict) -> tuple[str, list[str]]:
    """The verdict of a measured row and the notes it needs, the states of the module
    docstring before the claim's rule."""
    if c.rule == "volatility" and not row["comparable"]:
        return NOT_COMPARABLE, [f"model is not {PAPER_MODEL}; volatility here is per rollout "
                                "batch (all its updates), per (token, layer) expert set"]
    if row["seeds"] == 0:
        return NOT_EVALUATED, ["no data for this statistic"]
    if row["seeds"] < MIN_SEEDS:
        return f"{INCONCLUSIVE} (1 seed)", (["1 seed: the interval is over problems only"]
                                           if c.statistic == "heldout" else [])
    if c.rule != "collapse" and (math.isnan(row["lo"]) or math.isnan(row["hi"])):
        return INCONCLUSIVE, ["no interval"]
    return RULES[c.rule].decide(row), []


def claims_table(train: pd.DataFrame, scores: pd.DataFrame, arms: list[str], seeds: list[int],
                 model: str = "") -> pd.DataFrame:
    """One row per claim and statistic (per benchmark for held-out scores): measured value,
    95% interval and its method, seeds and problems, the paper's value, the verdict and its
    rule. ``scores`` is :func:`paired.final_problem_scores`; ``model`` is model.pretrained."""
    ctx = {"grpo_collapses": collapses(train, "grpo")[0], "rr_collapses":
           collapses(train, "grpo_rr")[0], "comparable": model == PAPER_MODEL}
    steps = scores[scores["arm"] != "sft"].groupby("arm")["step"].agg(set)
    rows = []
    for c in CLAIMS:
        head = {"claim": c.claim, "paper": c.paper, "rule": RULES[c.rule].text}
        label = STATISTICS[c.statistic].format(a=c.a, b=c.b, bench="each benchmark")
        missing = [x for x in (c.a, c.b) if x and x not in arms and c.statistic != "volatility"]
        if missing:
            rows.append({**head, "statistic": label, "verdict": NOT_RUN,
                         "note": f"arm {', '.join(missing)} not in the run"})
            continue
        measured = _measure(c, train, scores, seeds)
        if not measured:
            rows.append({**head, "statistic": label, "verdict": NOT_EVALUATED,
                         "note": "no per-problem evaluation reports"})
        for m in measured:
            row = {**head, **m, **ctx}
            row["verdict"], notes = _verdict(c, row)
            if c.statistic == "heldout" and steps.get(c.a) != steps.get(c.b):
                notes.append(f"final checkpoints differ: {c.a} steps {sorted(steps[c.a])}, "
                             f"{c.b} steps {sorted(steps[c.b])}")
            row["note"] = "; ".join(n for n in [m.get("note", ""), *notes] if n)
            rows.append(row)
    return pd.DataFrame(rows).reindex(columns=COLUMNS)


def paired_table(train: pd.DataFrame, scores: pd.DataFrame, arms: list[str],
                 seeds: list[int]) -> pd.DataFrame:
    """Every paired difference the claims draw on, for each pair of ``paired.PAIRS`` the run has:
    per-batch training reward (each seed's mean over batches, 95% t over seeds), reward area
    at matched FLOPs (95% t), final held-out avg@k per benchmark with P(A > B) (two-level
    bootstrap); and each arm's final held-out avg@k against the SFT start."""
    rows = []
    pairs = paired.present_pairs(arms)
    for a, b in pairs:
        d = paired.batch_differences(train, a, b)
        same = float(d["same_queries"].mean()) if len(d) else math.nan
        rows.append({"comparison": f"{a} - {b}", "measure": "training reward per batch",
                     **paired.per_batch_summary(train, a, b), "same_queries": same,
                     "method": "95% t over seeds of each seed's mean paired difference"})
        rows.append({"comparison": f"{a} - {b}", "measure": "training-reward area, matched FLOPs",
                     **t_row(list(paired.reward_auc(train, a, b).values())),
                     "method": "95% t over seeds of paired differences"})
    for a, b in [*pairs, *((arm, "sft") for arm in arms)]:
        for bench in sorted(scores["benchmark"].unique()):
            groups = paired.paired_groups(scores, bench, a, b, seeds)
            if groups:
                rows.append({"comparison": f"{a} - {b}", "measure": f"final avg@k on {bench}",
                             **paired.heldout_difference(groups), "method": paired.BOOT_METHOD})
    cols = ["comparison", "measure", "value", "lo", "hi", "se", "method", "seeds", "problems",
            "p_improve", "p_improve_lo", "p_improve_hi", "same_queries"]
    return pd.DataFrame(rows).reindex(columns=cols)


def _cell(value, lo=math.nan, hi=math.nan) -> str:
    if isinstance(value, float) and math.isnan(value):
        return "-"
    out = _fmt(float(value)) if not isinstance(value, str) else value
    return out if math.isnan(lo) else f"{out} [{_fmt(float(lo))}, {_fmt(float(hi))}]"


def _se_cell(se) -> str:
    """A standard error, or "-" where there is none or it is not finite (never "inf")."""
    return _fmt(float(se)) if isinstance(se, int | float) and math.isfinite(se) else "-"


def to_markdown(claims: pd.DataFrame, paired_rows: pd.DataFrame) -> str:
    """claims.md: the claims with their verdicts, the interval methods, the rules' location,
    then every paired difference."""
    head = ("Claims of the GSPO paper (arXiv 2507.18071) as verdicts, each by a rule fixed "
            "before the run in `gspo_repro/analysis/claims.py`. Measured: value [95% interval]. "
            f"Intervals: held-out differences and P(A>B): {paired.BOOT_METHOD}; "
            "training-reward area and volatility: 95% Student-t over seeds of per-seed values; "
            f"clip ratio: paired bootstrap over seeds, {paired.N_BOOT} resamples, percentile "
            "95%. Standard error (`se`): for bootstrap rows (held-out differences, clip ratio) "
            "the standard deviation (ddof 1) of the bootstrap replicates of the statistic; for "
            "Student-t rows the sample sd over seeds / sqrt(n); none (-) for counts, rows "
            "without data and a non-finite bootstrap SE (a clip-ratio resample in which GRPO "
            f"clipped nothing). Fewer than {MIN_SEEDS} seeds: inconclusive whatever the "
            "rule.\n\n")
    lines = ["| claim | statistic | measured | se | P(A>B) | seeds | problems | paper | verdict "
             "| rule | note |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for _, r in claims.iterrows():
        lines.append("| " + " | ".join([
            r["claim"], r["statistic"], _cell(r["value"], r["lo"], r["hi"]), _se_cell(r["se"]),
            _cell(r["p_improve"], r["p_improve_lo"], r["p_improve_hi"]), _cell(r["seeds"]),
            _cell(r["problems"]), r["paper"], f"**{r['verdict']}**", r["rule"],
            r["note"] if isinstance(r["note"], str) else ""]) + " |")
    notes = ["", f"Collapse: {COLLAPSE_TEXT}.",
             "P(A>B): the share of (seed, problem) pairs on which A's avg@k beats B's, ties "
             "half (rliable's probability of improvement, paired by seed).",
             "Training-reward area: each seed's reward curve against cumulative FLOPs, "
             "interpolated onto the FLOPs range every seed of both arms covers, trapezoid "
             "area over that range's width; arm differences are paired by seed.", "",
             "## Paired differences", "",
             "Standard errors (`se`) as in the claims table: bootstrap rows, the sd of the "
             "replicates; t rows, the sd over seeds / sqrt(n).", "",
             "| comparison | measure | value [95%] | se | P(A>B) | seeds | problems | "
             "same queries | method |", "|---|---|---|---|---|---|---|---|---|"]
    for _, r in paired_rows.iterrows():
        notes.append("| " + " | ".join([
            r["comparison"], r["measure"], _cell(r["value"], r["lo"], r["hi"]),
            _se_cell(r["se"]), _cell(r["p_improve"], r["p_improve_lo"], r["p_improve_hi"]),
            _cell(r["seeds"]), _cell(r["problems"]), _cell(r["same_queries"]), r["method"]]) + " |")
    return head + "\n".join(lines + notes) + "\n"
