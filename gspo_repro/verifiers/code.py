"""Code answers: take the program out of a response and score it on tests in the sandbox."""

from __future__ import annotations

import re

from gspo_repro.verifiers.sandbox import Limits, TestResult, Verdict, run_tests

_FENCE = re.compile(r"```[ \t]*(?:python3?|py)?[ \t]*\n(.*?)(?:```|\Z)", re.DOTALL | re.IGNORECASE)


def extract_code(text: str) -> str:
    """The last fenced code block (an unclosed last fence counts), else the whole text."""
    blocks = _FENCE.findall(text)
    return blocks[-1] if blocks else text


def score_program(text: str, tests, limits: Limits | None = None,
                  stop_on_failure: bool = True) -> tuple[bool, list[TestResult]]:
    """(all tests passed, per-test results) for the program in the response ``text``."""
    if not tests:
        raise ValueError("score_program needs at least one test")
    source = extract_code(text)
    try:  # compiling runs none of the program; a program that cannot compile needs no sandbox
        compile(source, "<answer>", "exec")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as e:
        crash = TestResult(Verdict.CRASH, f"does not compile: {type(e).__name__}: {e}"[:200])
        return False, [crash] * len(tests)
    results = run_tests(source, tests, limits, stop_on_failure=stop_on_failure)
    return all(r.verdict is Verdict.PASS for r in results), results
