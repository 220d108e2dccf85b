"""Time one RL arm for a few rollout batches; tokens/s per phase.

    python benchmarks/rl_step.py --init runs/sft/checkpoint [--algo gspo] [--steps 2]
                                 [--queries 64] [--group 8] [--engine vllm|transformers]
                                 [--families math code]

Runs the real loop (gspo_repro.train.rl) with the default config otherwise, on math and code
queries by default (the heavier batch: code rewards run sandboxed programs; the tiny default
trains on math only), and writes
results/bench/rl_step.json: seconds and tokens/s for rollout, reward, old log-probs,
update, volatility and weight sync, per rollout batch and in total.
"""

from __future__ import annotations

import argparse
import json
import tempfile

from _common import write

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--init", required=True, help="HF checkpoint (an SFT run's checkpoint/)")
    ap.add_argument("--config", default="config/config.yaml")
    ap.add_argument("--algo", default="gspo")
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--queries", type=int, default=64)
    ap.add_argument("--group", type=int, default=8)
    ap.add_argument("--families", nargs="+", default=["math", "code"])
    ap.add_argument("--engine", help="rollout engine (default: the config's rl.engine)")
    args = ap.parse_args()

    from gspo_repro.config import load_config
    from gspo_repro.train.rl import run_rl

    over = {"rl.steps": args.steps, "rl.queries": args.queries, "rl.group_size": args.group,
            "rl.checkpoint_every": 0, "rl.families": args.families, "rl.weights": []}
    over |= {"rl.engine": args.engine} if args.engine else {}
    cfg = load_config(args.config, over)
    out = tempfile.mkdtemp(prefix="bench-rl-")
    run_rl(cfg, args.algo, args.init, out, progress=False)
    recs = [json.loads(x) for x in open(f"{out}/metrics.jsonl")]
    phases = ("rollout", "reward", "old_logprobs", "update", "volatility", "sync")
    per_step = []
    for r in recs:
        gen, trained = r["tokens_generated"], r["tokens_trained"]
        row = {"step": r["step"], "wall_s": r["wall_s"], "tokens_generated": gen,
               "tokens_trained": trained}
        for p in phases:
            row[f"{p}_s"] = r[f"time/{p}"]
        row["rollout_tokens_per_s"] = round(gen / r["time/rollout"], 1)
        row["old_logprobs_tokens_per_s"] = round(trained / r["time/old_logprobs"], 1)
        row["update_tokens_per_s"] = round(trained / r["time/update"], 1)
        per_step.append(row)
    result = {"algo": args.algo, "engine": cfg.rl.engine, "init": args.init,
              "families": list(cfg.rl.families), "queries": args.queries, "group_size": args.group,
              "minibatches": cfg.rl.minibatches, "max_new_tokens": cfg.rl.max_new_tokens,
              "per_step": per_step,
              "mean_step_s": round(sum(r["wall_s"] for r in recs) / len(recs), 2),
              "goal_step_s": 30}
    print(json.dumps({k: v for k, v in result.items() if k != "per_step"}))
    write("rl_step", result)
