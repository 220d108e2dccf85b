"""Where a finished `make repro` spent its time, phase by phase, from the run's own records.

    python benchmarks/phases.py --run runs/default --label after [--wall-s 2374]

Reads the workflow's per-job benchmark files (runs/default/benchmarks/*.tsv: whole-job
wall time), each RL run's per-batch phase times (metrics.jsonl: rollout, reward, old
log-probs, update, weight sync, volatility; "startup" is the job's wall time minus its
batches, so it also holds the final export and engine teardown) and each evaluation's
timing record (start-up before lm-eval, then engine, sampling and scoring; reports written
before the timing record existed give the job time only).
Adds the summary under ``--label`` to results/bench/phases.json, keeping the other labels,
so a before and an after sit side by side. ``--wall-s``: the whole command's wall time as
measured outside (e.g. /usr/bin/time), set-up included.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
from pathlib import Path

from _common import ROOT, write

RL_PHASES = ("rollout", "reward", "old_logprobs", "update", "sync", "volatility")


def _tsv_seconds(path: Path) -> float:
    with path.open() as f:
        return float(next(csv.DictReader(f, delimiter="\t"))["s"])


def _stats(values: list[float]) -> dict:
    return {"n": len(values), "total_s": round(sum(values), 1),
            "mean_s": round(statistics.fmean(values), 2) if values else None}


def _rl(run: Path) -> dict:
    jobs, phases = [], {p: [] for p in (*RL_PHASES, "startup")}
    for tsv in sorted((run / "benchmarks").glob("rl_*_seed*.tsv")):
        job = _tsv_seconds(tsv)
        name = tsv.stem[len("rl_"):]
        arm, seed = name.rsplit("_seed", 1)
        rows = [json.loads(x) for x in (run / "rl" / arm / f"seed{seed}" / "metrics.jsonl")
                .read_text().splitlines() if x.strip()]
        jobs.append(job)
        for p in RL_PHASES:
            phases[p].append(sum(r.get(f"time/{p}", 0.0) for r in rows))
        phases["startup"].append(job - sum(r["wall_s"] for r in rows))
    return {"job": _stats(jobs), **{p: _stats(v) for p, v in phases.items()}}


def _eval(run: Path) -> dict:
    jobs, timing = [], {"startup_s": [], "evaluate_s": [], "score_s": []}
    for tsv in sorted((run / "benchmarks" / "eval").rglob("*.tsv")):
        jobs.append(_tsv_seconds(tsv))
        ckpt = tsv.relative_to(run / "benchmarks" / "eval").with_suffix("")
        report = next((run / "eval" / ckpt).glob("*.json"), None)
        t = json.loads(report.read_text()).get("timing") if report else None
        for k in timing if t else ():
            timing[k].append(t[k])
    out = {"job": _stats(jobs)}
    if timing["startup_s"]:
        out |= {k.removesuffix("_s"): _stats(v) for k, v in timing.items()}
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", default="runs/default", help="a finished workflow run directory")
    ap.add_argument("--label", required=True, help="e.g. before / after")
    ap.add_argument("--wall-s", type=float, help="the whole make repro, set-up included")
    args = ap.parse_args()
    run = Path(args.run).resolve()
    from gspo_repro.manifest import machine

    # the commit and machine the run's own manifest recorded (the run may be older than this
    # script, its checkout since moved on)
    manifest = run.parents[1] / "results" / "manifest.json"
    recorded = json.loads(manifest.read_text()) if manifest.exists() else {}
    sft = json.loads((run / "sft" / "run.json").read_text())["ledger"]
    summary = {
        "run": str(args.run), "commit": recorded.get("git_commit", "unknown"),
        "make_repro_wall_s": args.wall_s, "machine": recorded.get("machine") or machine(),
        "sft": {"job_s": _tsv_seconds(run / "benchmarks" / "sft.tsv"), "steps": sft["steps"],
                "trained_tokens": sft["trained_tokens"],
                "tokens_per_s": round(sft["trained_tokens"] / sft["wall_s"], 1)},
        "rl": _rl(run), "eval": _eval(run),
    }
    path = ROOT / "results" / "bench" / "phases.json"
    labels = json.loads(path.read_text()).get("labels", {}) if path.exists() else {}
    labels[args.label] = summary
    write("phases", {"what": "time per phase of make repro, from the run's own records; job "
                             "times are whole processes", "labels": labels})
