"""The paper's benchmarks as Task records: AIME'24, LiveCodeBench and CodeForces.

Offline first. ``load_benchmark`` reads local copies (by default the ones shipped in
``gspo_repro/data/benchmarks``, whose SOURCES.md names each file's origin and license) when
they are there, and otherwise the dataset hub, which needs a network. Every load also
returns its provenance: which source, which test set (public examples only, or the full
hidden set), and what was left out. The tables carry that provenance, so a score is never
read as something it is not.

Code problems come in two kinds. ``stdin`` problems are programs that read stdin and write
stdout. ``functional`` (LeetCode-style) problems complete a ``class Solution`` method named
in ``meta["func_name"]``: each test's input holds one JSON value per argument, one per
line, and its output is the JSON of the return value, canonicalised here so the verifier
compares ``json.dumps`` texts.
"""

from __future__ import annotations

import base64
import json
import pickle
import re
import zlib
from dataclasses import dataclass
from pathlib import Path

from gspo_repro.io import read_json
from gspo_repro.tasks.base import Task

BENCHMARKS = ("aime24", "livecodebench", "codeforces")
SOURCES = ("auto", "local", "hub")
HUB = {
    "aime24": "Maxwell-Jia/AIME_2024",  # what lm-eval's own aime24 task reads
    "livecodebench": "livecodebench/code_generation_lite",
    "codeforces": "open-r1/codeforces",
}
LOCAL = {
    "aime24": ("aime24/test.jsonl",),
    "livecodebench": ("livecodebench/livecodebench.json", "livecodebench/livecodebench_v5.jsonl"),
    "codeforces": ("codeforces/codeforces.json", "codeforces/metadata_cf.json"),
}

AIME_PROMPT = ("{problem}\nPlease reason step by step, and put your final answer within "
               "\\boxed{{}}.\n")
_CODE_HEAD = ("You will be given a question (problem specification) and will generate a correct "
              "Python program that matches the specification and passes all tests.\n\n"
              "Question: {problem}\n\n")
_STDIN_TAIL = ("Read the inputs from stdin solve the problem and write the answer to stdout "
               "(do not directly test on the sample inputs). Enclose your code within "
               "delimiters as follows. Ensure that when the python program runs, it reads the "
               "inputs, runs the algorithm and writes output to STDOUT.\n"
               "```python\n# YOUR CODE HERE\n```\n\n")
_STARTER_TAIL = ("You will use the following starter code to write the solution to the problem and "
                 "enclose your code within delimiters.\n```python\n{starter}\n```\n\n")


@dataclass(frozen=True)
class Provenance:
    """Where a benchmark's problems and tests came from."""

    benchmark: str
    source: str
    """``local:<dir>`` or ``hub:<dataset id>``."""
    tests: str
    """``answers`` (AIME), ``public`` (examples only) or ``full`` (hidden tests too)."""
    n_problems: int
    note: str = ""

    def to_json(self) -> dict:
        """A JSON-ready dict."""
        return dict(self.__dict__)


def code_prompt(problem: str, starter_code: str = "") -> str:
    """LiveCodeBench's code-generation prompt: the starter code when there is one, else stdin."""
    tail = _STARTER_TAIL.format(starter=starter_code) if starter_code.strip() else _STDIN_TAIL
    return _CODE_HEAD.format(problem=problem.strip()) + tail


def func_name(starter_code: str) -> str | None:
    """The method a functional problem asks for: the first ``def`` of the starter code."""
    m = re.search(r"def\s+(\w+)\s*\(", starter_code)
    return m.group(1) if m else None


def _canonical_json(text: str) -> str:
    return json.dumps(json.loads(text))


def code_tests(raw: list[dict], functional: bool) -> tuple[dict, ...]:
    """``{"input", "output"}`` pairs; a functional test's output as canonical JSON."""
    out = []
    for t in raw:
        inp, want = t["input"], t["output"]
        out.append({"input": inp, "output": _canonical_json(want) if functional else want})
    return tuple(out)


class _NoGlobals(pickle.Unpickler):
    """LiveCodeBench pickles a JSON string: refuse anything that names a class or function."""

    def find_class(self, module, name):
        raise pickle.UnpicklingError(f"refusing {module}.{name} in a test blob")


def decode_private_tests(blob: str) -> list[dict]:
    """LiveCodeBench's ``private_test_cases``: JSON, or base64 -> zlib -> pickle -> JSON."""
    try:
        return json.loads(blob)
    except json.JSONDecodeError:
        raw = zlib.decompress(base64.b64decode(blob.encode("ascii")))
        return json.loads(_NoGlobals(__import__("io").BytesIO(raw)).load())


def in_window(date: str, window: tuple[str, str] | None) -> bool:
    """Whether an ISO date falls in ``window`` = (first, last) months or days, inclusive."""
    if not window:
        return True
    first, last = window
    return first <= date[:len(first)] and date[:len(last)] <= last


def _aime_task(pid, problem: str, answer) -> Task:
    answer = str(answer).strip()
    if not re.fullmatch(r"\d+", answer):
        raise ValueError(f"aime24 problem {pid}: answer {answer!r} is not an integer")
    return Task(f"aime24/{pid}", "aime24", AIME_PROMPT.format(problem=problem.strip()),
                answer, 0.0, meta={"answer": int(answer)})


def _lcb_task(qid: str, problem: str, starter: str, tests: list[dict], date: str,
              platform: str, fname: str | None) -> Task:
    functional = bool(tests) and tests[0].get("testtype") == "functional"
    if functional and not fname:
        raise ValueError(f"livecodebench {qid}: functional tests but no method name")
    meta = {"question_id": qid, "date": date, "platform": platform, "starter_code": starter,
            "func_name": fname if functional else None}
    return Task(f"livecodebench/{qid}", "livecodebench", code_prompt(problem, starter), "",
                0.0, code_tests(tests, functional), meta=meta)


def _cf_task(pid: str, problem: str, tests: list[dict], rating) -> Task:
    meta = {"problem_id": pid, "contest_id": re.match(r"\d+", pid).group(0),
            "rating": float(rating) if rating is not None else None, "func_name": None}
    return Task(f"codeforces/{pid}", "codeforces", code_prompt(problem), "",
                float(rating or 0.0), code_tests(tests, False), meta=meta)


def _local_aime(d: Path) -> tuple[list[Task], str]:
    rows = read_json(d / LOCAL["aime24"][0], "benchmark file")
    return [_aime_task(r["id"], r["problem"], r["answer"]) for r in rows], ""


def _question(prompt: str) -> str:
    """The problem statement inside a LiveCodeBench prompt (QwQ's release_v5 file)."""
    start = prompt.index("Question: ") + len("Question: ")
    end = max(prompt.rfind("\n\nRead the inputs from stdin"),
              prompt.rfind("\n\nYou will use the following starter code"))
    return prompt[start:end].strip()


def _local_lcb(d: Path) -> tuple[list[Task], str]:
    problems = read_json(d / LOCAL["livecodebench"][0], "benchmark file")
    dated = {_question(r["prompt"]): r
             for r in read_json(d / LOCAL["livecodebench"][1], "benchmark file")}
    tasks = []
    for p in problems:
        info = dated.get(p["problem"].strip())
        if info is None:
            raise ValueError(f"{d / LOCAL['livecodebench'][1]}: no dated entry for problem "
                             f"{p['problem'][:60]!r}")
        platform = "leetcode" if p["starter_code"].strip() else "atcoder"
        tasks.append(_lcb_task(info["question_id"], p["problem"], p["starter_code"], p["tests"],
                               info["contest_date"], platform, func_name(p["starter_code"])))
    return tasks, "public tests only: the hidden tests live in the hub dataset"


def _local_cf(d: Path, ratings: dict[str, float] | None) -> tuple[list[Task], str]:
    problems = read_json(d / LOCAL["codeforces"][0], "benchmark file")
    ids = read_json(d / LOCAL["codeforces"][1], "benchmark file")
    if len(ids) != len(problems):
        raise ValueError(f"{d / LOCAL['codeforces'][1]}: {len(ids)} ids for {len(problems)} "
                         "problems")
    ratings = ratings or {}
    tasks = [_cf_task(pid, p["problem"], p["tests"], ratings.get(pid))
             for pid, p in zip(ids, problems, strict=True)]
    note = "example tests only (mostly one per problem)"
    if not ratings:
        note += "; no per-problem ratings in these files"
    return tasks, note


def _hub_rows(name: str, **kwargs):
    from datasets import load_dataset

    return load_dataset(HUB[name], **kwargs)


def _hub_aime() -> tuple[list[Task], str]:
    rows = _hub_rows("aime24", split="train")
    return [_aime_task(r["ID"], r["Problem"], r["Answer"]) for r in rows], ""


def _hub_lcb(version: str) -> tuple[list[Task], str]:
    rows = _hub_rows("livecodebench", split="test", version_tag=version, trust_remote_code=True)
    tasks = []
    for r in rows:
        tests = json.loads(r["public_test_cases"]) + decode_private_tests(r["private_test_cases"])
        meta = json.loads(r.get("metadata") or "{}")
        tasks.append(_lcb_task(r["question_id"], r["question_content"], r["starter_code"], tests,
                               r["contest_date"], r["platform"],
                               meta.get("func_name") or func_name(r["starter_code"])))
    return tasks, f"release {version}, public and hidden tests"


def _hub_cf(ratings: dict[str, float] | None) -> tuple[list[Task], str]:
    rows = _hub_rows("codeforces", split="test")
    tasks = []
    for r in rows:
        complete = r.get("official_tests_complete")
        tests = r["official_tests"] if complete and r.get("official_tests") else r["examples"]
        if not tests:
            continue
        statement = "\n\n".join(x for x in (r["description"], "Input Format:\n" + (
            r["input_format"] or ""), "Output Format:\n" + (r["output_format"] or "")) if x)
        rating = (ratings or {}).get(r["id"], r.get("rating"))
        tasks.append(_cf_task(r["id"], statement, tests, rating))
    return tasks, "official tests where complete, else the examples"


SHIPPED = Path(__file__).resolve().parents[1] / "data" / "benchmarks"


def benchmark_dir(data_dir: str | Path | None) -> Path:
    """Where the local benchmark copies are: ``data_dir``, or the package's own when empty."""
    return Path(data_dir) if data_dir else SHIPPED


def _local_files_present(name: str, d: Path) -> bool:
    return all((d / f).is_file() for f in LOCAL[name])


def load_benchmark(name: str, data_dir: str | Path | None = None, source: str = "auto",
                   window: tuple[str, str] | None = None,
                   ratings: dict[str, float] | None = None,
                   lcb_version: str = "release_v5") -> tuple[list[Task], Provenance]:
    """The problems of one real benchmark and where they came from.

    ``source``: ``local`` reads ``data_dir``; ``hub`` the dataset hub; ``auto`` the local
    files when all are present, else the hub. ``window`` keeps LiveCodeBench problems dated
    within it. ``ratings`` maps CodeForces problem ids ("1971A") to difficulty ratings.
    """
    if name not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {name!r}; known: {', '.join(BENCHMARKS)}")
    if source not in SOURCES:
        raise ValueError(f"unknown benchmark source {source!r}; known: {', '.join(SOURCES)}")
    d = benchmark_dir(data_dir)
    local = source == "local" or (source == "auto" and _local_files_present(name, d))
    if source == "local" and not _local_files_present(name, d):
        missing = [f for f in LOCAL[name] if not (d / f).is_file()]
        raise ValueError(f"{d}: missing benchmark file(s) {', '.join(missing)} for {name}")
    if local:
        tasks, note = {"aime24": lambda: _local_aime(d), "livecodebench": lambda: _local_lcb(d),
                       "codeforces": lambda: _local_cf(d, ratings)}[name]()
        where, tests = f"local:{d}", "public"
    else:
        tasks, note = {"aime24": _hub_aime, "livecodebench": lambda: _hub_lcb(lcb_version),
                       "codeforces": lambda: _hub_cf(ratings)}[name]()
        where = f"hub:{HUB[name]}"
        tests = "full" if name == "livecodebench" else "official-or-examples"
    if name == "aime24":
        tests = "answers"
    if name == "livecodebench" and window:
        dates = sorted(t.meta["date"][:10] for t in tasks)
        kept = [t for t in tasks if in_window(t.meta["date"], window)]
        span = f"{dates[0]}..{dates[-1]}" if dates else "none"
        note = (f"{note}; window {window[0]}..{window[1]} keeps {len(kept)} of {len(tasks)} "
                f"problems (data dated {span})").lstrip("; ")
        tasks = kept
    if not tasks:
        raise ValueError(f"{name}: no problems left from {where}")
    return tasks, Provenance(name, where, tests, len(tasks), note)
