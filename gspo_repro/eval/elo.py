"""An Elo estimate from solves of rated problems (the CodeForces-like benchmark).

Method ("difficulty-rating MLE"): a contestant of rating r solves a problem of rating d with
probability 1 / (1 + 10^((d - r) / 400)), the Elo expected score. The estimate is the r at
which the expected number of solves equals the observed number (the maximum-likelihood r
under that model). The expected count rises strictly with r, so bisection finds it. Solving
everything or nothing has no finite answer; the estimate is then clamped to ``bounds``.
"""

from __future__ import annotations

METHOD = "difficulty-rating MLE: sum_i 1/(1+10^((d_i-r)/400)) = solves"


def expected_solves(rating: float, difficulties: list[float]) -> float:
    """Expected number of problems a contestant rated ``rating`` solves."""
    return sum(1.0 / (1.0 + 10 ** ((d - rating) / 400)) for d in difficulties)


def elo_estimate(difficulties: list[float], solves: list[float],
                 bounds: tuple[float, float] = (0.0, 4000.0)) -> float:
    """The rating whose expected solves match ``sum(solves)`` (each solve in [0, 1])."""
    if len(difficulties) != len(solves) or not difficulties:
        raise ValueError("elo_estimate needs one solve rate per problem, at least one problem")
    if any(not 0 <= s <= 1 for s in solves):
        raise ValueError("solve rates must lie in [0, 1]")
    target = sum(solves)
    lo, hi = bounds
    if expected_solves(lo, difficulties) >= target:
        return lo
    if expected_solves(hi, difficulties) <= target:
        return hi
    for _ in range(100):  # the interval shrinks 2^100-fold: far below a rating point
        mid = (lo + hi) / 2
        if expected_solves(mid, difficulties) < target:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2
