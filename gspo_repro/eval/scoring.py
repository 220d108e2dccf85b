"""One reward per (task, response), whatever the task's source: 1.0 solved, 0.0 not."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from gspo_repro.tasks import Task
from gspo_repro.verifiers import extract_answer, extract_code, math_correct, score_program
from gspo_repro.verifiers.sandbox import SandboxUnavailable, isolation

MATH_FAMILIES = {"math": True, "aime24": False}
"""Integer-answer families, each with whether its answer must be boxed (strict)."""


def reward(task: Task, text: str) -> float:
    """1.0 when the response solves the task, else 0.

    Synthetic math needs a boxed answer (a truncated chain must not earn credit by its last
    number); AIME'24 accepts Qwen's fallbacks ("the answer is N", the last number). Code
    passes when every test passes; functional problems call ``meta["func_name"]``.
    """
    if task.family in MATH_FAMILIES:
        return float(math_correct(text, task.reference, strict=MATH_FAMILIES[task.family]))
    return float(score_program(text, task.tests, func_name=task.meta.get("func_name"))[0])


def sandbox_isolation(families) -> str:
    """The code sandbox's mode (``isolation()``) for a report on tasks of ``families``.

    Raises ``SandboxUnavailable`` where a family is scored by running code and no sandbox
    can run: call it before sampling, not after. Math runs no code: without a sandbox its
    reports say so instead.
    """
    try:
        return isolation()
    except SandboxUnavailable:
        if any(f not in MATH_FAMILIES for f in families):
            raise
        return "none (no code run)"


def _key(task: Task, text: str):
    """Responses that must score the same: same answer, or same extracted program."""
    if task.family in MATH_FAMILIES:
        return task.id, "math", extract_answer(text, strict=MATH_FAMILIES[task.family])
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
