"""Answer checking: math answers compared as integers, programs run in a sandbox."""

from gspo_repro.verifiers.code import extract_code, score_program
from gspo_repro.verifiers.math import extract_answer, math_correct
from gspo_repro.verifiers.sandbox import TestResult, Verdict, run_tests

__all__ = ["TestResult", "Verdict", "extract_answer", "extract_code", "math_correct",
           "run_tests", "score_program"]
