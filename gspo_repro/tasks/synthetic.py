"""Seeded synthetic task families that mirror the paper's three benchmarks.

- ``math`` (AIME-like): a chain of +, - (1-digit) and * (by 2 or 3) steps from a 2-digit
  start, evaluated left to right; every intermediate and
  the final answer lie in 0..999; the worked solution writes one step per line and ends in
  ``\\boxed{N}``. Difficulty = number of steps.
- ``code`` (LiveCodeBench-like): read a line of integers, apply a described pipeline of maps
  and filters, print a reduction; checked against hidden stdin/stdout tests.
- ``rated`` (CodeForces-like): the same program family over a wider range of steps, each
  problem carrying a rating on the 800..3500 scale set by its number of steps. More steps
  means more to get right, so the rating follows how hard a problem is.

Train and eval splits are disjoint by construction: a problem's split is a hash of its prompt
text, so the same prompt can never land in both, whichever family or seed produced it.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable

from gspo_repro.tasks.base import Task

EVAL_PERCENT = 20
SPLITS = ("train", "eval")


def split_of(prompt: str) -> str:
    """The split a prompt belongs to: a fixed 20% hash bucket is eval, the rest train."""
    bucket = int(hashlib.sha256(prompt.encode()).hexdigest()[:8], 16) % 100
    return "eval" if bucket < EVAL_PERCENT else "train"


def _id(family: str, prompt: str) -> str:
    return f"{family}-{hashlib.sha256(prompt.encode()).hexdigest()[:12]}"


def _math(rng: random.Random, steps: int) -> Task:
    value = rng.randint(10, 99)
    expr, lines = [str(value)], []
    while len(lines) < steps:
        op = rng.choices("+-*", weights=(4, 4, 1))[0]
        b = rng.randint(2, 3) if op == "*" else rng.randint(1, 9)
        new = value + b if op == "+" else value - b if op == "-" else value * b
        if not 0 <= new <= 999:
            continue
        lines.append(f"{value}{op}{b}={new}")
        expr.append(f"{op}{b}")
        value = new
    prompt = f"Evaluate left to right: {''.join(expr)}\n"
    solution = "\n".join(lines) + f"\nThe answer is \\boxed{{{value}}}."
    return Task(_id("math", prompt), "math", prompt, str(value), steps, solution=solution)


# (description, code line, function) per pipeline step; k is the step's constant.
_MAPS: dict[str, tuple[str, str, Callable[[list[int], int], list[int]]]] = {
    "add": ("add {k}", "a=[x+{k} for x in a]", lambda a, k: [x + k for x in a]),
    "sub": ("subtract {k}", "a=[x-{k} for x in a]",
            lambda a, k: [x - k for x in a]),
    "mul": ("multiply by {k}", "a=[x*{k} for x in a]",
            lambda a, k: [x * k for x in a]),
    "gt": ("keep above {k}", "a=[x for x in a if x>{k}]",
           lambda a, k: [x for x in a if x > k]),
    "lt": ("keep below {k}", "a=[x for x in a if x<{k}]",
           lambda a, k: [x for x in a if x < k]),
    "even": ("keep evens", "a=[x for x in a if x%2==0]",
             lambda a, k: [x for x in a if x % 2 == 0]),
    "odd": ("keep odds", "a=[x for x in a if x%2==1]",
            lambda a, k: [x for x in a if x % 2 == 1]),
}
_FINALS: dict[str, tuple[str, str, Callable[[list[int]], str]]] = {
    "sum": ("print the sum", "print(sum(a))", lambda a: str(sum(a))),
    "count": ("print the count", "print(len(a))", lambda a: str(len(a))),
    "max": ("print the max (0 if none)", "print(max(a,default=0))",
            lambda a: str(max(a, default=0))),
    "sorted": ("print them sorted", "print(*sorted(a))",
               lambda a: " ".join(map(str, sorted(a)))),
}
_CONST = {"add": (1, 9), "sub": (1, 9), "mul": (2, 5), "gt": (0, 20), "lt": (5, 30)}
N_TESTS = 5


def _program(rng: random.Random, steps: int, family: str, rating: int | None) -> Task:
    ops = [(name, rng.randint(*_CONST[name]) if name in _CONST else 0)
           for name in rng.choices(list(_MAPS), k=steps)]
    final = rng.choice(list(_FINALS))
    desc = "; ".join([*(_MAPS[n][0].format(k=k) for n, k in ops), _FINALS[final][0]])
    prompt = f"Read a line of integers; {desc}.\n"
    code = "\n".join(["a=list(map(int,input().split()))",
                      *(_MAPS[n][1].format(k=k) for n, k in ops), _FINALS[final][1]])
    tests = []
    for _ in range(N_TESTS):
        a = [rng.randint(0, 30) for _ in range(rng.randint(1, 8))]
        inp = " ".join(map(str, a))
        for n, k in ops:
            a = _MAPS[n][2](a, k)
        tests.append({"input": inp + "\n", "output": _FINALS[final][2](a) + "\n"})
    difficulty = float(rating if rating is not None else steps)
    meta = {"steps": steps} | ({"rating": rating} if rating is not None else {})
    return Task(_id(family, prompt), family, prompt, code, difficulty, tuple(tests),
                solution=f"```python\n{code}\n```", meta=meta)


def _rating(steps: int) -> int:
    """Rating of a rated problem: 1 step -> 800, 8 steps -> 3500, linear, rounded to 100."""
    return int(round((800 + (steps - 1) * (3500 - 800) / 7) / 100) * 100)


def _make(family: str, rng: random.Random, difficulty: int) -> Task:
    if family == "math":
        return _math(rng, difficulty)
    if family == "code":
        return _program(rng, difficulty, "code", None)
    return _program(rng, difficulty, "rated", _rating(difficulty))


# family -> inclusive range of steps drawn uniformly per problem
FAMILIES: dict[str, tuple[int, int]] = {"math": (2, 6), "code": (1, 4), "rated": (1, 8)}


def make_split(family: str, split: str, n: int, seed: int = 0,
               steps: tuple[int, int] | None = None) -> list[Task]:
    """``n`` distinct tasks of ``family`` in ``split``; the same arguments give the same tasks."""
    if family not in FAMILIES:
        raise ValueError(f"unknown task family {family!r}; known: {', '.join(FAMILIES)}")
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; known: {', '.join(SPLITS)}")
    lo, hi = steps or FAMILIES[family]
    rng = random.Random(f"{family}/{split}/{seed}")
    tasks: dict[str, Task] = {}
    for _ in range(1000 * n + 1000):
        if len(tasks) == n:
            return list(tasks.values())
        task = _make(family, rng, rng.randint(lo, hi))
        if split_of(task.prompt) == split:
            tasks.setdefault(task.prompt, task)
    raise RuntimeError(f"could not draw {n} distinct {family}/{split} tasks; ask for fewer")
