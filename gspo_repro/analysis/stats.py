"""The one interval for per-seed summaries, and curves put on a common x.

The interval is the 95% Student-t interval over seeds of a per-seed value:
mean ± t_{0.975, n-1} · sd / √n, with sd the sample standard deviation (ddof 1) of the n
per-seed values. One seed has no interval: the half-width is NaN, tables say so and figures
draw no band. Held-out differences between arms, which rest on problems as well as seeds,
take the two-level bootstrap of :mod:`gspo_repro.analysis.paired` instead.
"""

from __future__ import annotations

import math
import statistics

import numpy as np
import pandas as pd
from scipy.stats import t as student_t

LEVEL = 0.95


def half_width(sd, n):
    """t_{0.975, n-1} · sd / √n, elementwise over arrays; NaN where n < 2."""
    n = np.asarray(n, dtype=float)
    df = np.where(n >= 2, n - 1, np.nan)  # t.ppf of a NaN df is NaN: no interval, no error
    return student_t.ppf(0.5 + LEVEL / 2, df) * np.asarray(sd, dtype=float) / np.sqrt(n)


def mean_ci(values: list[float]) -> tuple[float, float]:
    """Mean of the non-missing ``values`` and the half-width of its 95% t-interval (NaN with
    fewer than two values)."""
    values = [v for v in values if v is not None and not math.isnan(v)]
    if not values:
        return math.nan, math.nan
    if len(values) < 2:
        return statistics.fmean(values), math.nan
    return statistics.fmean(values), float(half_width(statistics.stdev(values), len(values)))


def seed_band(frame: pd.DataFrame, keys: list[str], y: str) -> pd.DataFrame:
    """Per ``keys`` group (one row per seed in each): mean, sd, seed count n, half-width, lo
    and hi of ``y`` over seeds -- the interval of :func:`mean_ci`, zeros included."""
    frame = frame.dropna(subset=[y])
    if frame.duplicated([*keys, "seed"]).any():
        raise ValueError(f"{y}: more than one row per seed in a ({', '.join(keys)}) group")
    out = frame.groupby(keys, sort=False)[y].agg(mean="mean", sd="std", n="count").reset_index()
    half = half_width(out["sd"], out["n"])
    return out.assign(half=half, lo=out["mean"] - half, hi=out["mean"] + half)


def on_common_x(frame: pd.DataFrame, x: str, y: str, by: str = "arm") -> pd.DataFrame:
    """Each seed's ``y`` against ``x``, linearly interpolated onto one grid per ``by`` group.

    The grid is the union of the seeds' own x values inside the range every seed covers (the
    largest first x to the smallest last x): no seed is extrapolated, and every grid point
    averages all seeds, so n is the same along the curve."""
    parts = []
    for key, g in frame.dropna(subset=[x, y]).groupby(by, sort=False):
        curves = [c.sort_values(x) for _, c in g.groupby("seed", sort=False)]
        lo, hi = max(c[x].iloc[0] for c in curves), min(c[x].iloc[-1] for c in curves)
        grid = np.unique(g[x].to_numpy())
        grid = grid[(grid >= lo) & (grid <= hi)]
        parts += [pd.DataFrame({by: key, "seed": c["seed"].iloc[0], x: grid,
                                y: np.interp(grid, c[x], c[y])}) for c in curves]
    return pd.concat(parts, ignore_index=True)


def seeds_note(n) -> str:
    """What a band rests on, for a title or caption: "mean ± 95% t-CI over 3 seeds", or that
    one seed has no interval."""
    ns = sorted({int(v) for v in n})
    if not ns:
        return "no data"
    if ns[-1] < 2:
        return "1 seed: no interval"
    count = str(ns[0]) if len(ns) == 1 else f"{ns[0]}-{ns[-1]}"
    return f"mean ± 95% t-CI over {count} seeds"
