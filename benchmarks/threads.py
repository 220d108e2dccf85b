"""How to spend a machine's cores on RL runs: one two-threaded run at a time, or two
single-threaded runs side by side (the workflow's choice, `threads: 1` in rl.smk).

    python benchmarks/threads.py --init runs/default/sft/checkpoint [--steps 6] [--algo gspo]

Runs the real `gspo-repro rl` command (whole processes, start-up included) from the same
SFT checkpoint: first two runs one after the other with OMP_NUM_THREADS=2, then the same two
runs at once with OMP_NUM_THREADS=1 each. Both modes do the same work (the same two seeds),
so the ratio of their wall times is the throughput gain of running side by side. Take it on
an otherwise idle machine. Writes results/bench/threads.json.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

from _common import ROOT, write


def _launch(args, seed: int, threads: int, out: str) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "VLLM_ENABLE_V1_MULTIPROCESSING": "0"}
    return subprocess.Popen(
        [sys.executable, "-m", "gspo_repro.cli", "rl", "--config", args.config, "--algo", args.algo,
         "--seed", str(seed), "--init", args.init, "--out", out, "--set", f"rl.steps={args.steps}",
         "--set", "rl.save_every=0", "--no-progress"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _wait(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        if p.wait() != 0:
            raise SystemExit(f"an rl run failed (exit {p.returncode}): {' '.join(p.args)}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--init", required=True, help="SFT checkpoint the runs start from")
    ap.add_argument("--config", default="config/config.yaml")
    ap.add_argument("--algo", default="gspo")
    ap.add_argument("--steps", type=int, default=6, help="rollout batches per run")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="bench-threads-")

    t0 = time.perf_counter()
    serial = []
    for seed in (0, 1):
        t = time.perf_counter()
        _wait([_launch(args, seed, 2, f"{tmp}/serial{seed}")])
        serial.append(round(time.perf_counter() - t, 2))
    serial_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    _wait([_launch(args, seed, 1, f"{tmp}/side{seed}") for seed in (0, 1)])
    side_s = time.perf_counter() - t0

    write("threads", {
        "what": "two RL runs (whole `gspo-repro rl` processes): one after the other with 2 "
                "threads each, vs side by side with 1 thread each",
        "algo": args.algo, "steps": args.steps, "init": args.init, "config": args.config,
        "serial_2_threads_s": round(serial_s, 2), "serial_per_run_s": serial,
        "side_by_side_1_thread_s": round(side_s, 2),
        "throughput_gain": round(serial_s / side_s, 3)})
