"""Tables from metrics and evaluation files only: nothing here recomputes a training quantity.

Layout read (what the workflow writes under ``run_dir``):

    rl/{arm}/seed{seed}/metrics.jsonl, run.json     one line per rollout batch; the ledger
    eval/sft/{bench}.json                           the shared starting point (step 0)
    eval/{arm}/seed{seed}/step{step}/{bench}.json   lm-eval reports along training
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pandas as pd

from gspo_repro.analysis.stats import mean_ci
from gspo_repro.eval.elo import METHOD as ELO_METHOD
from gspo_repro.eval.elo import elo_estimate
from gspo_repro.io import read_json

# Ledger entries that must agree between arms for the comparison to be at matched compute.
MATCHED = ("queries", "samples", "rollout_batches", "updates")


def _read_jsonl(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def run_metrics(path: str | Path, **labels) -> list[dict]:
    """The records of one run's metrics.jsonl, each with ``labels`` and cumulative compute
    (``cum_flops``, ``cum_rollout_tokens``); a ValueError naming the file if it is missing."""
    path = Path(path)
    if not path.exists():
        raise ValueError(f"missing training metrics {path}")
    rows, flops, tokens = [], 0.0, 0.0
    for rec in _read_jsonl(path):
        flops += rec.get("flops", 0.0)
        tokens += rec.get("tokens_generated", 0.0)
        rows.append({**rec, **labels, "cum_flops": flops, "cum_rollout_tokens": tokens})
    return rows


def training_frame(run_dir: str | Path, arms: list[str], seeds: list[int]) -> pd.DataFrame:
    """One row per (arm, seed, rollout batch) with the metrics.jsonl fields and cumulative
    compute (FLOPs, rollout tokens)."""
    return pd.DataFrame([row for arm in arms for seed in seeds for row in run_metrics(
        Path(run_dir) / "rl" / arm / f"seed{seed}" / "metrics.jsonl", arm=arm, seed=seed)])


def _elo(rep: dict) -> dict:
    """The Elo of a ``rated`` or ``codeforces`` report (NaN when the method had no data)."""
    if rep["benchmark"] == "rated":
        pp = rep["per_problem"]
        return {"elo": elo_estimate([p["difficulty"] for p in pp], [p["avg_at_k"] for p in pp]),
                "elo_method": ELO_METHOD}
    if rep["benchmark"] == "codeforces":
        elo = rep["elo"]
        return {"elo": math.nan if elo["elo"] is None else elo["elo"],
                "elo_method": elo["method"], "percentile": elo.get("percentile", math.nan)}
    return {}


def eval_reports(run_dir: str | Path, arms: list[str], seeds: list[int],
                 steps: list[int] | None = None, benchmarks: list[str] | None = None):
    """(arm, seed, step, report) of every evaluation report in the layout above: the SFT
    start's as ("sft", -1, 0), then each arm's and seed's checkpoints (in path order).
    ``steps`` and ``benchmarks`` (the config's; None: any) keep only what the config asks
    for: a report another config left in the run directory never enters the tables."""
    root = Path(run_dir) / "eval"

    def wanted(path: Path) -> bool:
        return benchmarks is None or path.stem in benchmarks

    for path in sorted((root / "sft").glob("*.json")):
        if wanted(path):
            yield "sft", -1, 0, read_json(path, "evaluation report")
    for arm in arms:
        for seed in seeds:
            for path in sorted((root / arm / f"seed{seed}").glob("step*/*.json")):
                m = re.fullmatch(r"step(\d+)", path.parent.name)
                if m and wanted(path) and (steps is None or int(m.group(1)) in steps):
                    yield arm, seed, int(m.group(1)), read_json(path, "evaluation report")


def eval_frame(run_dir: str | Path, arms: list[str], seeds: list[int],
               steps: list[int] | None = None,
               benchmarks: list[str] | None = None) -> pd.DataFrame:
    """One row per (arm, seed, step, benchmark): avg@k, and for ``rated`` an Elo estimate.
    The SFT checkpoint's evaluation is step 0 of every arm. ``steps``, ``benchmarks``: as
    :func:`eval_reports`."""
    reports = list(eval_reports(run_dir, arms, seeds, steps, benchmarks))
    sft = [rep for arm, _, _, rep in reports if arm == "sft"]
    rows = []
    for arm in arms:
        for seed in seeds:
            mine = [(0, rep) for rep in sft] + [(step, rep) for a, s, step, rep in reports
                                               if a == arm and s == seed]
            for step, rep in mine:
                rows.append({"arm": arm, "seed": seed, "step": step,
                             "benchmark": rep["benchmark"], "score": rep["avg_at_k"],
                             "k": rep["k"], "n_problems": rep["n_problems"]} | _elo(rep))
    return pd.DataFrame(rows)


def ledgers(run_dir: str | Path, arms: list[str], seeds: list[int]) -> pd.DataFrame:
    """The compute ledger of every RL run (run.json), one row per (arm, seed)."""
    rows = []
    for arm in arms:
        for seed in seeds:
            run = json.loads((Path(run_dir) / "rl" / arm / f"seed{seed}" / "run.json").read_text())
            rows.append({"arm": arm, "seed": seed, **run["ledger"]})
    return pd.DataFrame(rows)


def compute_check(led: pd.DataFrame) -> list[str]:
    """Ledger entries that differ between runs: empty when compute matched."""
    return [f"{k} differs across runs: {sorted(set(led[k]))}" for k in MATCHED
            if k in led and led[k].nunique() > 1]


def summary_table(train: pd.DataFrame, evals: pd.DataFrame, led: pd.DataFrame) -> pd.DataFrame:
    """Per arm: final-checkpoint benchmark scores and ``rated`` Elo, clip fraction and expert
    volatility (each mean and 95% t half-width over seeds), and compute used (mean)."""
    rows = []
    for arm, tr in train.groupby("arm", sort=False):
        row = {"arm": arm, "seeds": tr["seed"].nunique()}
        ev = evals[evals["arm"] == arm]
        for bench, eb in ev.groupby("benchmark"):
            last = eb[eb["step"] == eb["step"].max()]
            # No best-checkpoint column: a max over checkpoints of the held-out score is
            # selected on the test set itself, an optimistic number.
            finals = last.groupby("seed")["score"].mean().tolist()
            row[f"{bench}_final"], row[f"{bench}_final_ci"] = mean_ci(finals)
            if "elo" in last and last["elo"].notna().any():
                row[f"{bench}_elo_final"], row[f"{bench}_elo_final_ci"] = mean_ci(
                    last.groupby("seed")["elo"].mean().tolist())
        row["clip_frac"], row["clip_frac_ci"] = mean_ci(
            tr.groupby("seed")["clip_frac"].mean().tolist())
        if "volatility" in tr:
            row["volatility"], row["volatility_ci"] = mean_ci(
                tr.groupby("seed")["volatility"].mean().tolist())
        lr = led[led["arm"] == arm]
        for k in ("rollout_tokens", "trained_tokens", "flops", "wall_s"):
            if k in lr:
                row[k] = float(lr[k].mean())
        rows.append(row)
    return pd.DataFrame(rows)


def clip_ratio(summary: pd.DataFrame, num: str = "gspo", den: str = "grpo") -> float:
    """Mean clip fraction of arm ``num`` over that of arm ``den`` (nan if either is absent)."""
    s = summary.set_index("arm")["clip_frac"]
    if num not in s or den not in s or s[den] == 0:
        return math.nan
    return float(s[num] / s[den])


def _fmt(v) -> str:
    if isinstance(v, float):
        if math.isnan(v):
            return "n/a"
        return f"{v:.3g}" if abs(v) >= 1e4 or abs(v) < 1e-2 else f"{v:.3f}".rstrip("0").rstrip(".")
    return str(v)


def provenance_table(reports) -> str:
    """Markdown: for each benchmark in ``reports`` (evaluation reports), where its problems
    and tests came from and which Elo method its table uses."""
    seen: dict[str, dict] = {}
    for rep in reports:
        prov = rep.get("provenance") or {"source": "unrecorded", "tests": "?", "note": ""}
        seen.setdefault(rep["benchmark"], {**prov, "k": rep["k"], "n": rep["n_problems"],
                                           "elo": (rep.get("elo") or {}).get("method", "")})
    head = ("| benchmark | problems | k | source | tests | Elo method | note |\n"
            "|---|---|---|---|---|---|---|\n")
    rows = [f"| {b} | {p['n']} | {p['k']} | {p['source']} | {p['tests']} | {p['elo'] or '-'} | "
            f"{p.get('note') or ''} |" for b, p in sorted(seen.items())]
    return head + "\n".join(rows) + "\n"


def reports_table(reports: list[tuple[str, dict]]) -> pd.DataFrame:
    """One row per (model name, evaluation report): score, k, problems, Elo, source."""
    rows = []
    for name, rep in reports:
        prov = rep.get("provenance") or {}
        rows.append({"model": name, "benchmark": rep["benchmark"], "score": rep["avg_at_k"],
                     "k": rep["k"], "n_problems": rep["n_problems"], **_elo(rep),
                     "source": prov.get("source", ""), "tests": prov.get("tests", "")})
    return pd.DataFrame(rows)


def _ci_cell(value, ci) -> str:
    """The " ± ci" after a value; a value without one rests on a single seed (``mean_ci``)."""
    if not math.isnan(ci):
        return f" ± {_fmt(ci)}"
    return "" if math.isnan(value) else " (n=1, no CI)"


def table_markdown(frame: pd.DataFrame) -> str:
    """A frame as a Markdown table; a column ``c`` with a ``c_ci`` partner reads "x ± ci"."""
    cols = [c for c in frame.columns if not c.endswith("_ci")]
    head = "| " + " | ".join(cols) + " |\n|" + "---|" * len(cols) + "\n"
    lines = []
    for _, r in frame.iterrows():
        cells = []
        for c in cols:
            cell = _fmt(r[c])
            if f"{c}_ci" in frame:
                cell += _ci_cell(r[c], r[f"{c}_ci"])
            cells.append(cell)
        lines.append("| " + " | ".join(cells) + " |")
    return head + "\n".join(lines) + "\n"


def to_markdown(summary: pd.DataFrame, warnings: list[str], ratio: float) -> str:
    """The summary as a Markdown table: "x ± ci" cells, then the interval, the clip ratio and
    the compute check."""
    notes = [f"\nGSPO/GRPO mean clip-fraction ratio: {_fmt(ratio)} (paper, Fig. 2: ~100x).",
             "Cells read mean ± 95% Student-t half-width over seeds of the per-seed value, "
             "t_{0.975,n-1}·sd/√n with n = `seeds`; one seed has no interval (n=1, no CI).",
             "Scores are avg@k over held-out problems at the final checkpoint (no best-"
             "checkpoint column: choosing it on the held-out set would be optimistic).",
             "clip_frac and volatility: each seed's mean over rollout batches, zeros "
             "included; compute columns: mean over seeds.",
             f"Elo on `rated`: {ELO_METHOD}, clamped to [0, 4000]; on `codeforces`, the "
             "method benchmarks.md names."]
    if warnings:
        notes += [f"**WARNING: compute did not match across arms: {w}**" for w in warnings]
    else:
        notes.append("Compute matched across arms: " + ", ".join(MATCHED) + " agree.")
    return table_markdown(summary) + "\n".join(notes) + "\n"
