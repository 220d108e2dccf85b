import pytest

from gspo_repro.tasks import FAMILIES, Task, make_split
from gspo_repro.tasks.synthetic import split_of
from gspo_repro.verifiers import Verdict, math_correct, run_tests


@pytest.mark.parametrize("family", list(FAMILIES))
def test_train_and_eval_are_disjoint(family):
    train = make_split(family, "train", 400, seed=0)
    evals = make_split(family, "eval", 200, seed=0)
    other_seed = make_split(family, "train", 400, seed=1)
    eval_prompts = {t.prompt for t in evals}
    assert not eval_prompts & {t.prompt for t in train + other_seed}
    assert not {t.id for t in evals} & {t.id for t in train}
    assert all(split_of(t.prompt) == "eval" for t in evals)
    assert len({t.prompt for t in train}) == 400  # distinct within a split


def test_families_never_share_an_eval_prompt_with_train():
    # code and rated draw from one program space; the prompt hash keeps splits apart.
    train = {t.prompt for f in FAMILIES for t in make_split(f, "train", 300)}
    evals = {t.prompt for f in FAMILIES for t in make_split(f, "eval", 100)}
    assert not train & evals


@pytest.mark.parametrize("family", list(FAMILIES))
def test_same_seed_same_tasks(family):
    assert make_split(family, "eval", 50, seed=3) == make_split(family, "eval", 50, seed=3)
    assert make_split(family, "eval", 50, seed=3) != make_split(family, "eval", 50, seed=4)


def test_math_solutions_are_right():
    for t in make_split("math", "train", 200):
        assert math_correct(t.solution, t.reference, strict=True)
        assert 0 <= int(t.reference) <= 999
        assert t.solution.count("\n") == int(t.difficulty)  # one line per step, then the answer


def test_code_references_pass_their_tests():
    tasks = make_split("code", "eval", 6) + make_split("rated", "eval", 6)
    for t in tasks:
        assert len(t.tests) == 5
        results = run_tests(t.reference, t.tests)
        assert all(r.verdict is Verdict.PASS for r in results), (t.prompt, results)


def test_ratings_span_the_scale_and_follow_steps():
    tasks = make_split("rated", "train", 300)
    by_steps = {}
    for t in tasks:
        by_steps.setdefault(t.meta["steps"], set()).add(t.difficulty)
    assert min(t.difficulty for t in tasks) == 800 and max(t.difficulty for t in tasks) == 3500
    ratings = [by_steps[s].pop() for s in sorted(by_steps)]
    assert ratings == sorted(ratings) and len(set(ratings)) == len(ratings)


def test_record_round_trips_through_json():
    t = make_split("code", "eval", 1)[0]
    assert Task.from_json(t.to_json()) == t


def test_bad_family_or_split():
    with pytest.raises(ValueError, match="unknown task family 'poetry'"):
        make_split("poetry", "train", 1)
    with pytest.raises(ValueError, match="unknown split 'dev'"):
        make_split("math", "dev", 1)


def test_held_out_difficulty_reaches_past_sfts_range_only_where_set():
    """eval.code_difficulty draws the held-out code problems from its own step range (beyond
    SFT's 1-4, where RL has headroom); unset, the family's own range; bad, refused by name."""
    from gspo_repro.config import load_config
    from gspo_repro.eval.lm_eval_tasks import benchmark_tasks

    hard, prov = benchmark_tasks("code", load_config(overrides={
        "eval.code_difficulty": [4, 7], "eval.code_problems": 40}))
    assert {t.meta["steps"] for t in hard} == {4, 5, 6, 7}
    assert prov["source"].endswith("steps 4-7")
    own, prov = benchmark_tasks("code", load_config(overrides={"eval.code_problems": 40}))
    assert {t.meta["steps"] for t in own} == {1, 2, 3, 4} and "steps" not in prov["source"]
    math_tasks, _ = benchmark_tasks("math", load_config(overrides={
        "eval.math_difficulty": [7, 7], "eval.n_problems": 10}))
    assert {t.difficulty for t in math_tasks} == {7}
    with pytest.raises(ValueError, match=r"eval.code_difficulty must be .*\[5, 2\]"):
        load_config(overrides={"eval.code_difficulty": [5, 2]})
