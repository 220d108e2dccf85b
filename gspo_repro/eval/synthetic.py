"""Sampled pass@1 of a checkpoint on the held-out synthetic families."""

from __future__ import annotations

import statistics
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor

from gspo_repro.rollout import sample
from gspo_repro.tasks import Task
from gspo_repro.verifiers import extract_answer, extract_code, math_correct, score_program


def reward(task: Task, text: str) -> float:
    """1.0 when the response solves the task (strict boxed answer / all tests pass), else 0."""
    if task.family == "math":
        return float(math_correct(text, task.reference, strict=True))
    return float(score_program(text, task.tests)[0])


def _key(task: Task, text: str):
    """Responses that must score the same: same boxed answer, or same extracted program."""
    if task.family == "math":
        return task.id, "math", extract_answer(text, strict=True)
    return task.id, "code", extract_code(text)


def rewards(tasks: list[Task], texts: list[str], workers: int = 4) -> list[float]:
    """``reward`` for each (task, text) pair; each distinct answer is scored once, code in
    parallel sandboxes (a group of G samples often repeats one program)."""
    keys = [_key(t, x) for t, x in zip(tasks, texts, strict=True)]
    first: dict = {}
    for i, k in enumerate(keys):
        first.setdefault(k, i)
    todo = list(first.values())
    with ThreadPoolExecutor(workers) as pool:
        scored = dict(zip(todo, pool.map(reward, [tasks[i] for i in todo],
                                         [texts[i] for i in todo]), strict=True))
    return [scored[first[k]] for k in keys]


def evaluate(model, tokenizer, tasks: list[Task], samples: int, temperature: float,
             max_new_tokens: int, seed: int, batch_size: int) -> dict:
    """avg@k pass rate, response-length stats and accuracy by difficulty for one family."""
    outs = sample(model, tokenizer, [t.prompt for t in tasks], n=samples,
                  max_new_tokens=max_new_tokens, temperature=temperature, seed=seed,
                  batch_size=batch_size)
    scores = rewards([tasks[s.prompt_index] for s in outs], [s.text for s in outs])
    by_diff = defaultdict(list)
    for s, r in zip(outs, scores, strict=True):
        by_diff[tasks[s.prompt_index].difficulty].append(r)
    lengths = [len(s.token_ids) for s in outs]
    return {
        "pass@1": sum(scores) / len(scores),
        "n_problems": len(tasks),
        "samples": samples,
        "median_response_tokens": statistics.median(lengths),
        "truncated_frac": sum(not s.finished for s in outs) / len(outs),
        "by_difficulty": {str(k): sum(v) / len(v) for k, v in sorted(by_diff.items())},
        "per_sample": [{"task": tasks[s.prompt_index].id, "reward": r, "tokens": len(s.token_ids)}
                       for s, r in zip(outs, scores, strict=True)],
    }
