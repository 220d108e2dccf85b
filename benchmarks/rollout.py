"""Rollout throughput of the two engines, side by side, on one model and one prompt set.

    python benchmarks/rollout.py [--ckpt DIR] [--queries 64] [--group 8] [--max-new 128]

Both engines get the same prompts (held-out math and code, half each), the same sampling
settings (temperature 1, no top-k/top-p) and the same token budget. Tokens/s counts the
response tokens generated; vLLM's start-up is reported apart. Without --ckpt the default
tiny model is built from random init. Writes results/bench/rollout.json.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

from _common import write

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ckpt", help="HF checkpoint (default: random-init tiny model)")
    ap.add_argument("--queries", type=int, default=64)
    ap.add_argument("--group", type=int, default=8)
    ap.add_argument("--max-new", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=2, help="timed calls per engine (best kept)")
    args = ap.parse_args()
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")

    from gspo_repro.models import build_tiny_model
    from gspo_repro.models.checkpoint import load_checkpoint, save_checkpoint
    from gspo_repro.models.tokenizer import build_tokenizer
    from gspo_repro.rollout.engines import TransformersEngine, VLLMEngine
    from gspo_repro.tasks import make_split

    tmp = tempfile.mkdtemp(prefix="bench-rollout-")
    ckpt = args.ckpt
    if ckpt is None:
        ckpt = f"{tmp}/model"
        save_checkpoint(build_tiny_model(), build_tokenizer(), ckpt)
    model, tok = load_checkpoint(ckpt)
    half = args.queries // 2
    prompts = [t.prompt for f, k in (("math", half), ("code", args.queries - half))
               for t in make_split(f, "eval", k, seed=0)]

    def timed(engine) -> dict:
        best = None
        for r in range(args.repeats):
            t = time.time()
            out = engine.generate(prompts, args.group, args.max_new, 1.0, seed=r)
            dt = time.time() - t
            tokens = sum(len(s.token_ids) for s in out)
            if best is None or tokens / dt > best["tokens_per_s"]:
                best = {"seconds": round(dt, 3), "tokens": tokens,
                        "tokens_per_s": round(tokens / dt, 1)}
        return best

    result = {"checkpoint": args.ckpt or "random-init tiny model", "queries": args.queries,
              "group_size": args.group, "max_new_tokens": args.max_new, "temperature": 1.0,
              "repeats": args.repeats}
    result["transformers"] = timed(TransformersEngine(model, tok, batch_size=512))
    t = time.time()
    vllm = VLLMEngine(ckpt, tok, tmp)
    start = time.time() - t
    result["vllm"] = {**timed(vllm), "startup_s": round(start, 1),
                      "probe_logprob_gap": vllm.probe_gap(model)}
    ratio = result["transformers"]["tokens_per_s"] / result["vllm"]["tokens_per_s"]
    result["transformers_over_vllm"] = round(ratio, 3)
    result["faster"] = "transformers" if ratio >= 1 else "vllm"
    print({k: result[k] for k in ("transformers", "vllm", "transformers_over_vllm")})
    write("rollout", result)
