"""Seaborn figures, each the small-scale counterpart of one of the paper's figures."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

# One colour per arm wherever it appears, the paper's three first.
_ORDER = ["gspo", "grpo", "grpo_rr", "gspo_token"]


def _palette(arms) -> dict:
    arms = sorted(set(arms), key=lambda a: (_ORDER.index(a) if a in _ORDER else 99, a))
    return dict(zip(arms, sns.color_palette("colorblind", len(arms)), strict=False))


def _save(fig, path: Path) -> Path:
    """Write a PNG atomically (a killed run never leaves half an image)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fig.savefig(tmp, dpi=130, bbox_inches="tight", format="png")
    plt.close(fig)
    os.replace(tmp, path)
    return path


def _per_arm_line(train: pd.DataFrame, x: str, y: str, labels: dict, path: Path,
                  log: bool = False) -> Path:
    """One line per arm of ``y`` against ``x`` (95% bands over seeds), saved to ``path``."""
    fig, ax = plt.subplots(figsize=(6, 4))
    data = train[train[y] > 0] if log else train  # a log axis cannot show zeros
    sns.lineplot(data, x=x, y=y, hue="arm", palette=_palette(train.arm), errorbar=("ci", 95),
                 ax=ax)
    if log:
        ax.set_yscale("log")
    ax.set(**labels)
    return _save(fig, path)


def reward_vs_compute(train: pd.DataFrame, path: Path) -> Path:
    """Fig. 1 (left): training reward against cumulative training FLOPs, per arm."""
    return _per_arm_line(train, "cum_flops", "reward_mean", {
        "xlabel": "training compute (FLOPs, cumulative)", "ylabel": "training reward (mean)",
        "title": "Training reward vs compute"}, path)


def scores_vs_step(evals: pd.DataFrame, path: Path) -> Path:
    """Fig. 1 (right): benchmark avg@k against RL step, one panel per benchmark."""
    g = sns.relplot(evals, x="step", y="score", hue="arm", col="benchmark", kind="line",
                    marker="o", palette=_palette(evals.arm), errorbar=("ci", 95),
                    height=3.2, aspect=1.1, facet_kws={"sharey": False})
    g.set_axis_labels("RL step (rollout batches)", "avg@k (held out)")
    g.figure.suptitle("Benchmark scores along training", y=1.04)
    return _save(g.figure, path)


def clip_fraction(train: pd.DataFrame, path: Path) -> Path:
    """Fig. 2: fraction of clipped tokens per step, per arm, on a log axis."""
    return _per_arm_line(train, "step", "clip_frac", {
        "xlabel": "RL step (rollout batches)", "ylabel": "clipped token fraction (log)",
        "title": "Clipping fractions"}, path, log=True)


def routing_replay(train: pd.DataFrame, evals: pd.DataFrame, path: Path) -> Path:
    """Fig. 3: GRPO with and without Routing Replay against GSPO on the MoE model."""
    arms = [a for a in ("grpo", "grpo_rr", "gspo") if a in set(train.arm)]
    tr, ev = train[train.arm.isin(arms)], evals[evals.arm.isin(arms)]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    pal = _palette(train.arm)
    sns.lineplot(tr, x="step", y="reward_mean", hue="arm", palette=pal, errorbar=("ci", 95),
                 ax=axes[0])
    axes[0].set(xlabel="RL step", ylabel="training reward", title="Training reward")
    sns.lineplot(ev[ev.benchmark == "math"] if (ev.benchmark == "math").any() else ev,
                 x="step", y="score", hue="arm", marker="o", palette=pal, errorbar=("ci", 95),
                 ax=axes[1])
    axes[1].set(xlabel="RL step", ylabel="avg@k", title="Held-out math")
    # The paper's finding is that GRPO needs replay on an MoE and GSPO does not; the title
    # names the comparison, not the finding, which this run may or may not show.
    fig.suptitle("GRPO, GRPO + Routing Replay and GSPO on the MoE (counterpart of paper Fig. 3)",
                 y=1.03)
    return _save(fig, path)


def volatility(train: pd.DataFrame, path: Path) -> Path:
    """Share of (token, layer) expert sets that change after one rollout batch's updates."""
    return _per_arm_line(train, "step", "volatility", {
        "xlabel": "RL step (rollout batches)", "ylabel": "activated experts changed (share)",
        "title": "Expert-activation volatility per update round"}, path)
