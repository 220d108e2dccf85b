"""Figures, each the small-scale counterpart of one of the paper's figures.

Every line is the mean over seeds and every band the interval the tables print, the 95%
Student-t interval of :mod:`gspo_repro.analysis.stats`, drawn with ``fill_between``; one seed
draws no band. Titles say which interval and how many seeds; legends give n per arm. Each
function returns its (saved, closed) Figure so a caller can inspect what it drew.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from gspo_repro.analysis.stats import on_common_x, seed_band, seeds_note  # noqa: E402

# One colour per arm wherever it appears, the paper's three first.
_ORDER = ["gspo", "grpo", "grpo_rr", "gspo_token"]


def _palette(arms) -> dict:
    arms = sorted(set(arms), key=lambda a: (_ORDER.index(a) if a in _ORDER else 99, a))
    return dict(zip(arms, sns.color_palette("colorblind", len(arms)), strict=False))


def _save(fig, path: Path):
    """Write a PNG atomically (a killed run never leaves half an image); return the figure."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fig.savefig(tmp, dpi=130, bbox_inches="tight", format="png")
    plt.close(fig)
    os.replace(tmp, path)
    return fig


def _draw(ax, band: pd.DataFrame, x: str, pal: dict, marker: str | None = None) -> None:
    """Mean line and t-band (where defined) per arm of a ``seed_band`` frame, on ``ax``."""
    for arm, colour in pal.items():
        g = band[band["arm"] == arm].sort_values(x)
        if g.empty:
            continue
        ax.plot(g[x], g["mean"], color=colour, marker=marker, label=f"{arm} (n={g['n'].max()})")
        if g["half"].notna().any():
            ax.fill_between(g[x], g["lo"], g["hi"], color=colour, alpha=0.2, linewidth=0)


def _per_arm_line(train: pd.DataFrame, x: str, y: str, labels: dict, path: Path,
                  common_x: bool = False, symlog: bool = False):
    """One line per arm of ``y`` against ``x`` with its band over seeds, saved to ``path``.
    ``common_x``: seeds' x differ (FLOPs), so interpolate them onto one grid first.
    ``symlog``: log above the smallest nonzero mean's decade, linear down to an honest 0."""
    band = seed_band(on_common_x(train, x, y) if common_x else train, ["arm", x], y)
    fig, ax = plt.subplots(figsize=(6, 4))
    _draw(ax, band, x, _palette(train.arm))
    if symlog:
        pos = band.loc[band["mean"] > 0, "mean"]
        thresh = 10.0 ** math.floor(math.log10(pos.min())) if len(pos) else 1e-6
        ax.set_yscale("symlog", linthresh=thresh)
        ax.set_ylim(bottom=0)  # a fraction is never negative, whatever the band's lower end
        labels = {**labels, "ylabel": f"{labels['ylabel']} (symlog, linear below {thresh:g})"}
    ax.set(**{**labels, "title": f"{labels['title']}\n{seeds_note(band['n'])}"})
    ax.legend(title="arm")
    return _save(fig, path)


def reward_vs_compute(train: pd.DataFrame, path: Path):
    """Fig. 1 (left): training reward against cumulative training FLOPs, per arm; each seed's
    curve is interpolated onto a common FLOPs grid (``stats.on_common_x``) before averaging."""
    return _per_arm_line(train, "cum_flops", "reward_mean", {
        "xlabel": "training compute (FLOPs, cumulative)", "ylabel": "training reward (mean)",
        "title": "Training reward vs compute (seeds interpolated to common FLOPs)"}, path,
        common_x=True)


def scores_vs_step(evals: pd.DataFrame, path: Path):
    """Fig. 1 (right): benchmark avg@k against RL step, one panel per benchmark."""
    band = seed_band(evals, ["arm", "benchmark", "step"], "score")
    benches = sorted(band["benchmark"].unique())
    fig, axes = plt.subplots(1, len(benches), figsize=(3.6 * len(benches), 3.4), squeeze=False,
                             layout="constrained")
    for ax, bench in zip(axes[0], benches, strict=True):
        _draw(ax, band[band["benchmark"] == bench], "step", _palette(evals.arm), marker="o")
        ax.set(title=f"benchmark = {bench}", xlabel="RL step (rollout batches)")
    axes[0, 0].set_ylabel("avg@k (held out)")
    axes[0, -1].legend(title="arm", loc="center left", bbox_to_anchor=(1.02, 0.5))
    fig.suptitle(f"Benchmark scores along training ({seeds_note(band['n'])})")
    return _save(fig, path)


def clip_fraction(train: pd.DataFrame, path: Path):
    """Fig. 2: fraction of clipped tokens per step, per arm, averaged over seeds with zeros
    included, on a symlog axis that shows a zero mean at 0."""
    return _per_arm_line(train, "step", "clip_frac", {
        "xlabel": "RL step (rollout batches)", "ylabel": "clipped token fraction",
        "title": "Clipping fractions"}, path, symlog=True)


def routing_replay(train: pd.DataFrame, evals: pd.DataFrame, path: Path):
    """Fig. 3: GRPO with and without Routing Replay against GSPO on the MoE model."""
    arms = [a for a in ("grpo", "grpo_rr", "gspo") if a in set(train.arm)]
    tr, ev = train[train.arm.isin(arms)], evals[evals.arm.isin(arms)]
    math_only = (ev.benchmark == "math").any()
    ev = ev[ev.benchmark == "math"] if math_only else ev
    reward = seed_band(tr, ["arm", "step"], "reward_mean")
    # Without a math benchmark, every benchmark's score is pooled per seed before the band.
    score = seed_band(ev.groupby(["arm", "step", "seed"], as_index=False)["score"].mean(),
                      ["arm", "step"], "score")
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    pal = _palette(train.arm)
    _draw(axes[0], reward, "step", pal)
    axes[0].set(xlabel="RL step", ylabel="training reward", title="Training reward")
    _draw(axes[1], score, "step", pal, marker="o")
    axes[1].set(xlabel="RL step", ylabel="avg@k",
                title="Held-out math" if math_only else "Held-out, benchmarks pooled")
    if arms:
        axes[0].legend(title="arm")
    # The paper's finding is that GRPO needs replay on an MoE and GSPO does not; the title
    # names the comparison, not the finding, which this run may or may not show.
    fig.suptitle("GRPO, GRPO + Routing Replay and GSPO on the MoE (counterpart of paper Fig. 3)"
                 f"\n{seeds_note(reward['n'])}", y=1.06)
    return _save(fig, path)


def volatility(train: pd.DataFrame, path: Path):
    """Share of (token, layer) expert sets that change after one rollout batch's updates."""
    return _per_arm_line(train, "step", "volatility", {
        "xlabel": "RL step (rollout batches)", "ylabel": "activated experts changed (share)",
        "title": "Expert-activation volatility per update round"}, path)


def paired_reward_diff(table: pd.DataFrame, path: Path):
    """Training reward of arm A minus arm B per rollout batch, paired by (seed, batch) so that
    the query difficulty both arms saw cancels, smoothed within each seed by a centred rolling
    mean; one line per pair of a ``paired.paired_training`` table, with its band over seeds."""
    from gspo_repro.analysis.paired import SMOOTH

    fig, ax = plt.subplots(figsize=(6, 4))
    pairs = list(dict.fromkeys(table["pair"]))
    pal = dict(zip(pairs, sns.color_palette("colorblind", len(pairs)), strict=False))
    _draw(ax, table.rename(columns={"pair": "arm"}), "step", pal)
    ax.axhline(0, color="grey", linewidth=0.8)
    if not pairs:
        ax.text(0.5, 0.5, "no arm pair of the paper in this run", ha="center",
                transform=ax.transAxes)
    ax.set(xlabel="RL step (rollout batches)", ylabel="training reward, A - B",
           title=f"Paired per-batch reward difference (centred rolling mean, {SMOOTH} batches)"
                 f"\n{seeds_note(table['n'])}")
    if pairs:
        ax.legend(title="A - B")
    return _save(fig, path)
