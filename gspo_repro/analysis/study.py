"""The regime study's table, map and manifest, from its runs' metrics only.

Per cell and per arm A other than ``grpo``: the paired difference A - grpo of the mean
training reward at matched FLOPs (:func:`paired.reward_auc`, the same seed of both arms drew
the same queries in every batch), its 95% t-interval over seeds, and the verdict of
:func:`claims.superiority` (A better / worse / inconclusive), decided before any study ran.
Collapses per arm by :func:`claims.collapsed` (the rule ``claims.COLLAPSE_TEXT`` prints).
Each cell also reports what it measured of its regime: expert volatility per rollout batch
(the share of (token, layer) expert sets the batch's updates changed; one update per batch
when ``rl.minibatches`` is 1), the train/inference log-prob gap and the GRPO clip fraction,
each with its interval over seeds.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pandas as pd

from gspo_repro.analysis import claims, paired
from gspo_repro.analysis.tables import run_metrics
from gspo_repro.config import Config
from gspo_repro.io import atomic_write_text
from gspo_repro.study import BASELINE, Study, cell_config, run_dir, runs

FIGURE = "regime_map.png"
BETTER, WORSE = "arm better", "arm worse"
"""Verdicts of a comparison: :func:`claims.superiority` on arm - grpo, named for the study."""
_WORDS = {claims.REPRODUCED: BETTER, claims.CONTRADICTED: WORSE}
TABLES = ("study.csv", "study.md", "regimes.csv")
MEASURED = {"volatility": "expert volatility per rollout batch",
            "engine_gap_mean": "|log pi_trainer - log pi_engine| per token",
            "clip_frac": "clip fraction"}
"""Regime measurements per cell (of its grpo runs): metric -> what it is."""


def training(base: Config, study: Study) -> pd.DataFrame:
    """One row per (cell, arm, seed, rollout batch) with cumulative compute, from each
    finished run's metrics.jsonl; a ValueError naming the first run missing or unfinished."""
    rows = []
    for cell, arm, seed in runs(study):
        run = Path(run_dir(base, study, cell, arm, seed))
        if not (run / "run.json").exists():
            raise ValueError(f"run {run} has not finished (no run.json): train it with "
                             "snakemake study")
        rows += run_metrics(run / "metrics.jsonl", cell=cell.name, arm=arm, seed=seed)
    return pd.DataFrame(rows)


def cell_rows(base: Config, study: Study, train: pd.DataFrame) -> pd.DataFrame:
    """The study table: one row per (cell, arm other than grpo)."""
    rows = []
    for cell in study.cells:
        cfg = cell_config(base, study, cell)
        t = train[train["cell"] == cell.name]
        regime = {}
        for metric in MEASURED:
            per_seed = (t[t["arm"] == BASELINE].groupby("seed")[metric].mean()
                        if metric in t else pd.Series(dtype=float))
            iv = claims.t_row(per_seed.tolist())
            regime.update({metric: iv["value"], f"{metric}_lo": iv["lo"],
                           f"{metric}_hi": iv["hi"]})
        base_coll, n = claims.collapses(t, BASELINE)
        for arm in cell.arms:
            if arm == BASELINE:
                continue
            diff = claims.t_row(list(paired.reward_auc(t, arm, BASELINE).values()))
            coll, _ = claims.collapses(t, arm)
            verdict = (claims.INCONCLUSIVE if diff["seeds"] < claims.MIN_SEEDS
                       or math.isnan(diff["lo"]) else
                       _WORDS.get(claims.superiority(diff["lo"], diff["hi"]),
                                  claims.INCONCLUSIVE))
            rows.append({
                "cell": cell.name, "profile": cell.profile, "arm": arm,
                "comparison": f"{arm} - {BASELINE}",
                "minibatches": cfg.rl.minibatches,
                "old_logprobs": cfg.rl.algorithms[arm].old_logprobs,
                "engine_dtype": cfg.rl.vllm_dtype or "auto",
                "experts": f"{cfg.model.num_experts_per_tok}/{cfg.model.num_experts}"
                           f" x {cfg.model.num_hidden_layers}",
                "response_len": float(t[t["arm"] == BASELINE]["response_len_mean"].mean())
                if "response_len_mean" in t else math.nan,
                "reward_auc_diff": diff["value"], "lo": diff["lo"], "hi": diff["hi"],
                "seeds": diff["seeds"], "verdict": verdict,
                "collapsed": coll, "collapsed_grpo": base_coll, "runs_per_arm": n,
                **regime, "question": cell.question})
    return pd.DataFrame(rows)


def _pct(v, lo=math.nan, hi=math.nan, unit="%") -> str:
    """``v`` (and its interval) in percent, or in points with ``unit=" pts"``."""
    if v is None or math.isnan(v):
        return "-"
    sign = "+" if unit != "%" and v > 0 else ""
    return f"{sign}{100 * v:.2f}{unit}" + (
        "" if math.isnan(lo) else f" [{100 * lo:.2f}, {100 * hi:.2f}]")


def to_markdown(table: pd.DataFrame, study: Study) -> str:
    """The study table as Markdown, with the rules it was judged by."""
    lines = [
        f"# Regime study ({len(study.seeds)} seeds per arm and cell: {list(study.seeds)})",
        "",
        *([f"Part of the study: only the cells {', '.join(study.only)} of {study.source}.", ""]
          if study.only else []),
        "Statistic: mean training reward at matched FLOPs, arm minus grpo in the same cell, "
        "paired by seed (same queries per batch); 95% t-interval over seeds. Verdict: "
        + f"{BETTER!r} if the interval lies above 0, {WORSE!r} if below, else inconclusive "
        f"(also with fewer than {claims.MIN_SEEDS} seeds). Reward differences in points "
        "(reward in [0, 1] x 100).",
        f"Collapse: {claims.COLLAPSE_TEXT}.",
        "Engine dtype: rl.vllm_dtype; auto is float32 on CPU (log-probs exact to ~1e-6), "
        "bfloat16 on CUDA.",
        "",
        "| cell | profile | experts (active/all x layers) | minibatches | engine dtype | "
        "old log-probs | response tokens | volatility per batch (grpo) | engine gap (grpo) | "
        "comparison | reward diff [95% CI] | verdict | collapsed (arm, grpo) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in table.to_dict("records"):
        lines.append(
            f"| {r['cell']} | {r['profile']} | {r['experts']} | {r['minibatches']} | "
            f"{r['engine_dtype']} | {r['old_logprobs']} | {r['response_len']:.0f} | "
            f"{_pct(r['volatility'], r['volatility_lo'], r['volatility_hi'])} | "
            f"{r['engine_gap_mean']:.2g} | {r['comparison']} | "
            f"{_pct(r['reward_auc_diff'], r['lo'], r['hi'], ' pts')} | {r['verdict']} | "
            f"{r['collapsed']}/{r['runs_per_arm']}, {r['collapsed_grpo']}/{r['runs_per_arm']} |")
    questions = dict(zip(table["cell"], table["question"], strict=False))
    if any(questions.values()):
        lines += ["", "Cells:", ""] + [f"- **{c}**: {q}" for c, q in questions.items() if q]
    return "\n".join(lines) + "\n"


def regime_map(table: pd.DataFrame, path: Path):
    """One panel per comparison: the paired reward difference with its interval per cell,
    a red x where the arm collapsed in some seed, the cell's volatility and minibatches in
    its label."""
    from gspo_repro.analysis.plots import _save, plt

    comps = list(dict.fromkeys(table["comparison"]))
    cells = list(dict.fromkeys(table["cell"]))
    fig, axes = plt.subplots(1, max(len(comps), 1), figsize=(3.2 * max(len(comps), 1) + 1.5,
                                                             0.45 * len(cells) + 1.6),
                             sharey=True, squeeze=False)
    labels = {}
    for r in table.to_dict("records"):
        engine = "" if r["engine_dtype"] == "auto" else f", engine {r['engine_dtype']}"
        labels[r["cell"]] = (f"{r['cell']} (mb {r['minibatches']}, vol "
                             f"{_pct(r['volatility'])}, {r['experts']}{engine})")
    y = {c: i for i, c in enumerate(cells)}
    for ax, comp in zip(axes[0], comps, strict=False):
        g = table[table["comparison"] == comp]
        for r in g.to_dict("records"):
            yy = y[r["cell"]]
            err = np.array([[r["reward_auc_diff"] - r["lo"]], [r["hi"] - r["reward_auc_diff"]]])
            colour = {BETTER: "tab:green", WORSE: "tab:red"}.get(
                r["verdict"], "tab:grey")
            ax.errorbar(r["reward_auc_diff"], yy, xerr=None if np.isnan(err).any() else err,
                        fmt="o", color=colour, capsize=3)
            if r["collapsed"] or r["collapsed_grpo"]:
                ax.annotate(f"collapsed {r['collapsed']}/{r['runs_per_arm']} "
                            f"(grpo {r['collapsed_grpo']})", (r["reward_auc_diff"], yy),
                            textcoords="offset points", xytext=(4, 6), fontsize=7,
                            color="tab:red")
        ax.axvline(0, color="grey", linewidth=0.8)
        ax.set(title=comp, xlabel="training reward diff (matched FLOPs)")
    axes[0][0].set_yticks(range(len(cells)), [labels[c] for c in cells], fontsize=8)
    axes[0][0].invert_yaxis()
    n = int(table["seeds"].max()) if len(table) else 0
    fig.suptitle(f"Regime map: arm - grpo per cell, 95% t-interval over {n} seeds "
                 "(green above 0, red below, grey inconclusive)", fontsize=10, y=1.04)
    return _save(fig, path)


def analyze_study(base: Config, study: Study, out: str | Path) -> pd.DataFrame:
    """Write the study's tables and map under ``out``, then its manifest; return the table."""
    from gspo_repro.manifest import write_manifest

    out = Path(out)
    train = training(base, study)
    table = cell_rows(base, study, train)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "study.csv", table.to_csv(index=False))
    atomic_write_text(out / "study.md", to_markdown(table, study))
    keep = ["cell", "arm", "seed", "step", "cum_flops", "reward_mean", *[
        m for m in MEASURED if m in train], "skipped_updates"]
    atomic_write_text(out / "regimes.csv", train[[c for c in keep if c in train]]
                      .to_csv(index=False))
    regime_map(table, out / FIGURE)
    write_manifest(out, {"workflow": base.to_dict(), "study": {
        "source": study.source, "seeds": list(study.seeds), "only": list(study.only),
        "profiles": study.profiles,
        "cells": [dataclasses.asdict(c) for c in study.cells]}, "seeds": list(study.seeds)})
    return table
