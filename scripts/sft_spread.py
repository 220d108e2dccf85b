"""How far the SFT start moves with its seed: SFT with each seed, then held-out pass@1.

    .venv/bin/python scripts/sft_spread.py [--seeds 0 1 2] [--config config/config.yaml]
        [--problems 400] [--samples 4] [--set KEY=VALUE ...] [--eval-set KEY=VALUE ...]
        [--out results/bench/sft_spread.json]

Each seed trains the config's SFT (``seed`` = model init and data order), then its
checkpoint is sampled on the held-out math and code splits (the same problems and sampling
seeds for every checkpoint) with the vLLM engine; ``--eval-set`` changes only the
evaluation (e.g. ``eval.code_difficulty=[4,7]``: held-out code past SFT's range; its report
is named after the overrides, beside the default one). Writes per seed pass@1 with its
standard error over problems, and the spread (max - min, sd) across seeds, with the machine
it ran on. Run directories go under runs/sft_spread/ (kept: a rerun reuses finished ones).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _cli(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "gspo_repro.cli", *args], check=True, cwd=ROOT,
                   env={**os.environ, "VLLM_ENABLE_V1_MULTIPROCESSING": "0"})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--config", default="config/config.yaml")
    ap.add_argument("--problems", type=int, default=400)
    ap.add_argument("--samples", type=int, default=4)
    ap.add_argument("--set", action="append", default=[], help="SFT config overrides")
    ap.add_argument("--eval-set", action="append", default=[],
                    help="evaluation config overrides (eval.*), e.g. eval.code_difficulty=[4,7]")
    ap.add_argument("--runs", default="runs/sft_spread")
    ap.add_argument("--out", default="results/bench/sft_spread.json")
    ap.add_argument("--trained", action="store_true",
                    help="evaluate the finished runs already in --runs as they are, even if "
                         "trained by an older package version (each row keeps its identity)")
    args = ap.parse_args()

    from gspo_repro.io import atomic_write_json
    from gspo_repro.manifest import machine

    sets = [x for kv in args.set for x in ("--set", kv)]
    rows = []
    for seed in args.seeds:
        run = ROOT / args.runs / f"seed{seed}"
        if not args.trained:
            _cli("sft", "--config", args.config, "--set", f"seed={seed}", *sets, "--out",
                 str(run), "--no-progress")
        done = json.loads((run / "run.json").read_text())
        sft_s = done["ledger"]["wall_s"]  # its training
        tag = re.sub(r"[^A-Za-z0-9]+", "_", "_".join(args.eval_set)).strip("_")
        rep = run / (f"eval_heldout_{tag}.json" if tag else "eval_heldout.json")
        _cli("eval-synthetic", "--config", args.config, "--ckpt", str(run / "checkpoint"),
             "--families", "math", "code", "--engine", "vllm",
             "--set", f"eval.n_problems={args.problems}", "--set", f"eval.samples={args.samples}",
             *(x for kv in args.eval_set for x in ("--set", kv)), "--out", str(rep))
        fams = json.loads(rep.read_text())["families"]
        row = {"seed": seed, "sft_wall_s": round(sft_s, 1), "sft_steps": done["ledger"]["steps"],
               "identity": {k: done["identity"][k] for k in ("code", "config_sha")}}
        for fam, r in fams.items():
            per = {}
            for s in r["per_sample"]:
                per.setdefault(s["task"], []).append(s["reward"])
            means = [statistics.fmean(v) for v in per.values()]
            row[fam] = {"pass@1": r["pass@1"],
                        "se": statistics.stdev(means) / len(means) ** 0.5,
                        "by_steps": r["by_difficulty"]}
        rows.append(row)
        print(json.dumps(row), flush=True)
    spread = {}
    for fam in ("math", "code"):
        vals = [r[fam]["pass@1"] for r in rows]
        spread[fam] = {"min": min(vals), "max": max(vals), "range": max(vals) - min(vals),
                       "sd_over_seeds": statistics.stdev(vals) if len(vals) > 1 else None}
    atomic_write_json(ROOT / args.out, {
        "what": "held-out pass@1 of the SFT start, per SFT seed", "config": args.config,
        "overrides": args.set, "eval_overrides": args.eval_set, "problems": args.problems,
        "samples": args.samples,
        "seeds": rows, "spread": spread, "machine": machine()})
    print(json.dumps(spread, indent=1))


if __name__ == "__main__":
    main()
