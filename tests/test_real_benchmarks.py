"""The paper's benchmarks from the copies the package ships: loaders, verdicts on
hand-written programs for real problems, the CodeForces Elo, and lm-eval end to end."""

import base64
import json
import os
import pickle
import subprocess
import sys
import zlib

import pytest

from gspo_repro.eval.elo import codeforces_elo, percentile, rating_for_rank, standings_elo
from gspo_repro.eval.scoring import reward
from gspo_repro.tasks.real import SHIPPED, decode_private_tests, in_window, load_benchmark

DATA = SHIPPED


def _fenced(code: str) -> str:
    return f"Here is my solution.\n```python\n{code.strip()}\n```\n"


def _by_id(name: str) -> dict:
    tasks, _ = load_benchmark(name, DATA, "local", window=None)
    return {t.id.split("/", 1)[1]: t for t in tasks}


def test_loaders_read_every_local_problem_and_say_what_they_hold():
    aime, prov = load_benchmark("aime24", DATA, "local")
    assert len(aime) == 30 and prov.tests == "answers" and prov.source == f"local:{DATA}"
    lcb, prov = load_benchmark("livecodebench", DATA, "local", window=None)
    assert len(lcb) == 279 and prov.tests == "public" and "hidden tests" in prov.note
    functional = [t for t in lcb if t.meta["func_name"]]
    assert functional and all(t.tests for t in lcb)
    cf, prov = load_benchmark("codeforces", DATA, "local")
    assert len(cf) == 408 and cf[0].id == "codeforces/1971A"
    assert "no per-problem ratings" in prov.note


def test_the_default_config_reads_the_shipped_copies_offline():
    from gspo_repro.config import EvalConfig

    assert (SHIPPED / "SOURCES.md").is_file() and "license" in (SHIPPED / "SOURCES.md").read_text()
    tasks, prov = load_benchmark("aime24", EvalConfig().data_dir, "auto")
    assert prov.source == f"local:{SHIPPED}" and len(tasks) == 30


def test_the_paper_window_keeps_only_problems_dated_inside_it():
    tasks, prov = load_benchmark("livecodebench", DATA, "local", window=("2024-10", "2025-02"))
    assert tasks and all("2024-10" <= t.meta["date"][:7] <= "2025-02" for t in tasks)
    assert f"keeps {len(tasks)} of 279" in prov.note
    assert in_window("2025-02-28T00:00:00", ("2024-10", "2025-02"))
    assert not in_window("2025-03-01", ("2024-10", "2025-02"))


def test_missing_local_files_are_named(tmp_path):
    with pytest.raises(ValueError, match="aime24/test.jsonl"):
        load_benchmark("aime24", tmp_path, "local")
    with pytest.raises(ValueError, match="unknown benchmark 'aime25'"):
        load_benchmark("aime25", tmp_path)


def test_private_tests_decode_from_the_hub_format():
    tests = [{"input": "1 2\n", "output": "3\n", "testtype": "stdin"}]
    blob = base64.b64encode(zlib.compress(pickle.dumps(json.dumps(tests)))).decode()
    assert decode_private_tests(blob) == tests
    assert decode_private_tests(json.dumps(tests)) == tests
    evil = base64.b64encode(zlib.compress(pickle.dumps(os.getcwd))).decode()
    with pytest.raises(pickle.UnpicklingError):
        decode_private_tests(evil)


def test_aime_answers_score_against_themselves_in_several_forms():
    for task in load_benchmark("aime24", DATA, "local")[0]:
        n = int(task.reference)
        for text in (f"\\boxed{{{n}}}", f"\\boxed{{{task.reference}}}", f"The answer is {n}.",
                     f"So the total is ${n}$", f"\\boxed{{{n}.0}}", f"... \\boxed{{ {n} }}"):
            assert reward(task, text) == 1.0, (task.id, text)
        assert reward(task, f"\\boxed{{{n + 1}}}") == 0.0
        assert reward(task, "I cannot solve this.") == 0.0


LCB_STDIN = {
    "abc365_a": ("y=int(input())\nprint(366 if y%4==0 and (y%100 or y%400==0) else 365)",
                 "y=int(input())\nprint(366 if y%4==0 else 365)"),
    "abc366_a": ("n,t,a=map(int,input().split())\nprint('Yes' if max(t,a)>n//2 else 'No')",
                 "n,t,a=map(int,input().split())\nprint('Yes' if t!=a else 'No')"),
    "abc368_a": ("n,k=map(int,input().split())\na=input().split()\nprint(*(a[n-k:]+a[:n-k]))",
                 "n,k=map(int,input().split())\na=input().split()\nprint(*(a[k:]+a[:k]))"),
}
LCB_FUNCTIONAL = {
    "3606": ("class Solution:\n    def minElement(self, nums: List[int]) -> int:\n"
             "        return min(sum(map(int, str(x))) for x in nums)",
             "class Solution:\n    def minElement(self, nums: List[int]) -> int:\n"
             "        return min(nums)"),
    "3625": ("class Solution:\n    def canAliceWin(self, n: int) -> bool:\n"
             "        take, alice = 10, True\n        while n >= take:\n"
             "            n -= take; take -= 1; alice = not alice\n"
             "        return not alice",
             "class Solution:\n    def canAliceWin(self, n: int) -> bool:\n"
             "        return False"),
}
CF_STDIN = {
    "1971A": ("for _ in range(int(input())):\n    x,y=map(int,input().split())\n"
              "    print(min(x,y),max(x,y))",
              "for _ in range(int(input())):\n    x,y=map(int,input().split())\n    print(x,y)"),
    "1971C": ("def inside(a,b,x):\n    a,b=min(a,b),max(a,b)\n    return a<x<b\n"
              "for _ in range(int(input())):\n    a,b,c,d=map(int,input().split())\n"
              "    print('YES' if inside(a,b,c)!=inside(a,b,d) else 'NO')",
              "for _ in range(int(input())):\n    input()\n    print('YES')"),
    "1971D": ("for _ in range(int(input())):\n    s=input()\n"
              "    cuts=1+sum(s[i]!=s[i+1] for i in range(len(s)-1))\n"
              "    print(cuts-1 if '01' in s else cuts)",
              "for _ in range(int(input())):\n    s=input()\n"
              "    print(1+sum(s[i]!=s[i+1] for i in range(len(s)-1)))"),
}


@pytest.mark.parametrize("bench,cases", [("livecodebench", LCB_STDIN),
                                         ("livecodebench", LCB_FUNCTIONAL),
                                         ("codeforces", CF_STDIN)])
def test_hand_written_programs_get_the_right_verdicts(bench, cases):
    tasks = _by_id(bench)
    for pid, (right, wrong) in cases.items():
        task = tasks[pid]
        assert bool(task.meta["func_name"]) == (cases is LCB_FUNCTIONAL), pid
        assert reward(task, _fenced(right)) == 1.0, pid
        assert reward(task, _fenced(wrong)) == 0.0, pid
        assert reward(task, "no code here") == 0.0, pid


def test_standings_elo_hand_computed_cases():
    # One rated 1500 participant. Tied with them: rank 1.5, and 1 + 1/(1+10^0) = 1.5 at 1500.
    assert rating_for_rank(1.5, [1500.0]) == pytest.approx(1500.0, abs=1e-6)
    # Rank 1 + 1/(1+10^((r-1500)/400)) = 1.1 -> 10^((r-1500)/400) = 9 -> r = 1500 + 400 log10 9.
    assert rating_for_rank(1.1, [1500.0]) == pytest.approx(1500 + 400 * 0.954242509, abs=1e-3)
    people = [{"rating": 1200, "points": 2}, {"rating": 1800, "points": 0}]
    st = {"5": {"participants": people}}
    # Expected points 1: one participant above, one below -> rank 2 of 3 -> r = 1500 by symmetry.
    out = standings_elo({"5": {"A": 1.0, "B": 0.0}}, st)
    assert out["elo"] == pytest.approx(1500.0, abs=1e-6) and out["contests"] == 1
    none = standings_elo({"6": {"A": 1.0}}, st)
    assert none["elo"] is None and "no evaluated contest" in none["why"]


def test_codeforces_elo_names_its_method_and_says_when_there_is_none():
    rows = [{"contest_id": "1971", "index": "A", "rating": 800.0, "avg_at_k": 0.5},
            {"contest_id": "1971", "index": "B", "rating": 800.0, "avg_at_k": 0.5}]
    out = codeforces_elo(rows, histogram={"700": 1, "900": 3})
    # Half of the 800-rated problems solved: the MLE rating is 800; 1 of 4 humans is below.
    assert out["elo"] == pytest.approx(800.0, abs=1e-6) and out["percentile"] == 25.0
    assert out["method"].startswith("difficulty-rating MLE")
    missing = codeforces_elo([{**rows[0], "rating": None}])
    assert missing["elo"] is None and missing["method"] == "none"
    assert percentile(900, {"700": 1, "900": 2, "1100": 1}) == 50.0


def test_standings_elo_never_drops_when_more_is_solved():
    people = [{"rating": 1000 + 100 * i, "points": i % 4} for i in range(20)]
    st = {"9": {"participants": people, "problem_points": {"A": 1, "B": 2}}}
    elos = [standings_elo({"9": {"A": a, "B": b}}, st)["elo"]
            for a, b in [(0, 0), (0.5, 0), (1, 0), (1, 0.5), (1, 1)]]
    assert elos == sorted(elos) and elos[0] < elos[-1]


@pytest.mark.slow
@pytest.mark.parametrize("bench", ["aime24", "livecodebench", "codeforces"])
def test_real_benchmark_runs_through_lm_eval_offline(bench, tiny_checkpoint, tmp_path):
    out = tmp_path / f"{bench}.json"
    cmd = [sys.executable, "-m", "gspo_repro.cli", "eval", "--ckpt", str(tiny_checkpoint),
           "--benchmark", bench, "--task-dir", str(tmp_path / "task"), "--out", str(out),
           "--backend", "hf", "--set", f"eval.benchmarks=[{bench}]",
           "--set", "eval.data_source=local",
           "--set", "eval.limit=2", "--set", f"eval.{bench}_samples=2",
           "--set", "eval.max_new_tokens=24", "--set", "eval.batch_size=4"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "TRANSFORMERS_OFFLINE": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rep = json.loads(out.read_text())
    assert rep["benchmark"] == bench and rep["n_problems"] == 2 and rep["k"] == 2
    assert 0.0 <= rep["avg_at_k"] <= 1.0
    assert rep["provenance"]["source"] == f"local:{DATA}"
    for row in rep["per_problem"]:
        assert row["id"].startswith(bench + "/") and len(row["response_chars"]) == 2
        assert row["avg_at_k"] in (0.0, 0.5, 1.0)
    if bench == "codeforces":
        assert rep["elo"]["method"] == "none" and "ratings" in rep["elo"]["why"]
