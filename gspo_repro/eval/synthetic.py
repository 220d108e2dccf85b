"""Sampled pass@1 of a checkpoint on the held-out synthetic families."""

from __future__ import annotations

import math
import statistics
from collections import defaultdict

from gspo_repro.eval.scoring import rewards, sandbox_isolation
from gspo_repro.rollout import sample
from gspo_repro.tasks import Task


def evaluate(model, tokenizer, tasks: list[Task], samples: int, temperature: float,
             max_new_tokens: int, seed: int, batch_size: int, engine=None) -> dict:
    """avg@k pass rate, response-length stats, accuracy by difficulty and the code sandbox's
    isolation for one family; sampled with transformers' ``generate``, or with a rollout
    ``engine`` when given."""
    sandbox = sandbox_isolation({t.family for t in tasks})  # no sandbox: fail before sampling
    prompts = [t.prompt for t in tasks]
    if engine is not None:
        outs = engine.generate(prompts, samples, max_new_tokens, temperature, seed)
    else:
        outs = sample(model, tokenizer, prompts, n=samples, max_new_tokens=max_new_tokens,
                      temperature=temperature, seed=seed, batch_size=batch_size)
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
        "isolation": sandbox,
        "per_sample": [{"task": tasks[s.prompt_index].id, "reward": r, "tokens": len(s.token_ids)}
                       for s, r in zip(outs, scores, strict=True)],
    }


def paired_delta(base: dict, new: dict) -> dict:
    """pass@1 of ``new`` minus ``base`` (two ``evaluate`` results on the same problems),
    paired by problem: the mean of per-problem differences, its standard error over
    problems and a normal 95% interval. Pairing removes the spread of problem difficulty,
    which dominates the error of two independent pass rates."""
    def per_task(rep):
        acc = defaultdict(list)
        for s in rep["per_sample"]:
            acc[s["task"]].append(s["reward"])
        return {k: sum(v) / len(v) for k, v in acc.items()}

    a, b = per_task(base), per_task(new)
    if set(a) != set(b):
        raise ValueError("the two reports are not on the same problems")
    diffs = [b[k] - a[k] for k in sorted(a)]
    mean = sum(diffs) / len(diffs)
    se = statistics.stdev(diffs) / math.sqrt(len(diffs)) if len(diffs) > 1 else float("nan")
    return {"base": sum(a.values()) / len(a), "new": sum(b.values()) / len(b), "delta": mean,
            "se": se, "ci95": [mean - 1.96 * se, mean + 1.96 * se], "n_problems": len(diffs)}
