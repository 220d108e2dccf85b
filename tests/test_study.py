"""The regime study: its file's checks, its cells' configs, its DAG, and its analysis of
constructed runs (a clear win, a tie, a collapse) down to a manifest that verifies."""

import json
import re

import numpy as np
import pytest
import yaml

from gspo_repro.config import load_config
from gspo_repro.study import cell_config, load_study, reuses_workflow, run_dir, study_from_dict
from tests.test_workflow import ROOT, snakemake

BASE = load_config(ROOT / "config/config.yaml")


def _study(**cells):
    return {"seeds": [0, 1, 2], "cells": [{"name": k, **v} for k, v in cells.items()]}


def test_the_committed_study_has_three_seeds_and_grpo_in_every_cell():
    study = load_study(ROOT / "config/study.yaml", BASE)
    assert len(study.seeds) >= 3
    assert all("grpo" in c.arms for c in study.cells)
    # the axes it keeps: staleness 1 / 4 / 16 minibatches, both MoE profiles, every arm the
    # issue names (R3 and the mismatch correction at least once)
    configs = [cell_config(BASE, study, c) for c in study.cells]
    assert {c.rl.minibatches for c in configs} == {1, 4, 16}
    assert {c.rl.vllm_dtype for c in configs} == {"", "bfloat16"}  # a train/inference gap
    assert {c.profile for c in study.cells} == {"default", "fine"}
    assert {"grpo", "grpo_rr", "grpo_r3", "gspo", "grpo_tis"} <= {
        a for c in study.cells for a in c.arms}


@pytest.mark.parametrize("data,named", [
    ({"seeds": [0], "cells": [{"name": "a", "arms": ["gspo"]}]}, "cells.a.arms"),
    ({"seeds": [0], "cells": [{"name": "a", "arms": ["grpo"], "profile": "nope"}]},
     "cells.a.profile"),
    ({"seeds": [0], "cells": [{"name": "a", "arms": ["grpo"], "set": {"model.num_experts": 4}}]},
     "cells.a.set"),
    ({"seeds": [0], "cells": [{"name": "a", "arms": ["grpo"], "set": {"rl.minibatchez": 4}}]},
     "minibatchez"),
    ({"seeds": [0], "cells": [{"name": "a", "arms": ["grpo"], "algo_set": {"olds": 1}}]},
     "olds"),
    ({"seeds": [0], "cells": [{"name": "a", "arms": ["grpo_rr"], "algo_set": {}}]}, "grpo"),
    ({"seeds": [0, 0], "cells": [{"name": "a", "arms": ["grpo"]}]}, "seeds"),
    ({"seeds": [0], "cellz": []}, "cellz"),
])
def test_a_broken_study_file_is_refused_naming_the_field(data, named):
    with pytest.raises(ValueError) as e:
        study_from_dict(data, BASE, "study.yaml")
    msg = str(e.value)
    assert msg.startswith("study.yaml: ") and named in msg and "\n" not in msg


def test_cell_configs_apply_their_overrides_and_only_them():
    study = study_from_dict(_study(
        plain={"arms": ["grpo", "gspo"]},
        stale={"arms": ["grpo", "gspo"], "set": {"rl.minibatches": 16}},
        engine={"arms": ["grpo", "gspo"], "algo_set": {"old_logprobs": "engine"}}), BASE)
    plain, stale, engine = (cell_config(BASE, study, c) for c in study.cells)
    assert stale.rl.minibatches == 16 and plain.rl.minibatches == BASE.rl.minibatches
    assert engine.rl.algorithms["grpo"].old_logprobs == "engine"
    assert engine.rl.algorithms["gspo"].eps_low == BASE.rl.algorithms["gspo"].eps_low
    assert engine.rl.algorithms["grpo_rr"].old_logprobs == "trainer"  # not an arm of the cell
    assert plain.rl == BASE.rl and plain.model == BASE.model
    # only the workflow's own config reuses the workflow's runs
    assert reuses_workflow(BASE, study, study.cells[0], "gspo")
    assert not reuses_workflow(BASE, study, study.cells[1], "gspo")
    assert run_dir(BASE, study, study.cells[0], "gspo", 1) == f"{BASE.run_dir}/rl/gspo/seed1"
    # R2 replays the trainer's old pass, which engine log-probs skip: refused by the arm check
    with pytest.raises(ValueError, match="cells.bad"):
        study_from_dict(_study(bad={"arms": ["grpo", "grpo_rr"],
                                    "algo_set": {"old_logprobs": "engine"}}), BASE)


@pytest.mark.parametrize("committed", [True, False])
def test_the_study_dag_plans_every_cell_arm_and_seed(tmp_path, committed):
    """The committed study, and one whose plain cell is the workflow's own config: that
    cell's arms the workflow trains are planned once, by the workflow's rl rule."""
    path = ROOT / "config/study.yaml"
    if not committed:
        path = tmp_path / "study.yaml"
        path.write_text(yaml.safe_dump(_study(
            plain={"arms": ["grpo", "grpo_tis"]},
            stale={"arms": ["grpo", "gspo"], "set": {"rl.minibatches": 16}})))
    base = load_config(ROOT / "config/config.yaml",
                       overrides={"results_dir": str(tmp_path / "res")})
    study = load_study(path, base)
    assert study.results_dir == f"{tmp_path}/res/study"  # the config's results, not results/
    r = snakemake("-n", "study", "--config", f"run_dir={tmp_path}/run", f"study={path}",
                  f"results_dir={tmp_path}/res")
    assert r.returncode == 0, r.stderr + r.stdout
    planned = set(re.findall(r"wildcards: cell=(\w+), arm=(\w+), seed=(\d+)", r.stdout))
    reused = set(re.findall(r"wildcards: arm=(\w+), seed=(\d+)", r.stdout))
    want = {(c.name, a, str(s)) for c in study.cells for a in c.arms for s in study.seeds}
    cells = {c.name: c for c in study.cells}
    own = {(c, a, s) for c, a, s in want if reuses_workflow(base, study, cells[c], a)}
    assert planned == want - own
    assert {(a, s) for _, a, s in own} <= reused  # trained once, by the workflow's rl rule
    assert committed or {a for _, a, _ in own} == {"grpo"}  # grpo_tis is no workflow arm
    for cell in study.cells:
        assert len({s for c, _, s in want if c == cell.name}) >= 3
    profiles = set(re.findall(r"profiles/(\w+)/run.json", r.stdout))
    assert profiles == {c.profile for c in study.cells} - {"default"}
    assert "rule study_analyze:" in r.stdout and not (tmp_path / "run").exists()
    assert f"{tmp_path}/res/study/manifest.json" in r.stdout


def _write_run(path, rewards, flops=1e9):
    path.mkdir(parents=True, exist_ok=True)
    with open(path / "metrics.jsonl", "w") as f:
        for step, r in enumerate(rewards):
            f.write(json.dumps({"step": step, "reward_mean": float(r), "flops": flops,
                                "volatility": 0.1, "engine_gap_mean": 1e-6,
                                "clip_frac": 0.01, "response_len_mean": 60.0,
                                "skipped_updates": 0}) + "\n")
    (path / "run.json").write_text("{}")


def test_analysis_of_constructed_runs_gives_win_tie_and_collapse(tmp_path):
    from gspo_repro.analysis.study import analyze_study
    from gspo_repro.manifest import verify

    base = load_config(overrides={"run_dir": str(tmp_path / "run")})
    study = study_from_dict(_study(
        win={"arms": ["grpo", "gspo"], "set": {"rl.minibatches": 2}},
        tie={"arms": ["grpo", "gspo"], "set": {"rl.minibatches": 8,
                                               "rl.vllm_dtype": "bfloat16"}},
        crash={"arms": ["grpo", "gspo"]}), base)
    rng = np.random.default_rng(0)
    steps = 24
    for seed in study.seeds:
        hard = rng.uniform(0.3, 0.5, steps)  # the batch's queries, shared by both arms
        for cell in study.cells:
            grpo = hard.copy()
            if cell.name == "tie":
                gspo = hard + rng.normal(0, 0.001, steps) * (-1) ** seed
            else:
                gspo = hard + 0.1
            if cell.name == "crash" and seed == 0:  # grpo drops to 0 and stays there
                grpo[8:] = 0.0
            for arm, rew in (("grpo", grpo), ("gspo", gspo)):
                _write_run(tmp_path / run_dir(base, study, cell, arm, seed), rew)
    out = tmp_path / "res"
    unfinished = tmp_path / run_dir(base, study, study.cells[2], "gspo", 2) / "run.json"
    unfinished.unlink()
    with pytest.raises(ValueError, match="has not finished"):
        analyze_study(base, study, out)
    assert not out.exists()  # nothing written from a partial study
    unfinished.write_text("{}")
    table = analyze_study(base, study, out).set_index("cell")
    assert table.loc["win", "verdict"] == "arm better" and table.loc["win", "lo"] > 0
    assert table.loc["crash", "collapsed_grpo"] == 1 and table.loc["crash", "collapsed"] == 0
    assert table.loc["win", "collapsed_grpo"] == 0
    assert table.loc["tie", "verdict"] == "inconclusive"
    assert table.loc["tie", "lo"] < 0 < table.loc["tie", "hi"]
    assert table.loc["win", "volatility"] == pytest.approx(0.1)
    assert table.loc["win", "minibatches"] == 2 and table.loc["tie", "minibatches"] == 8
    assert table.loc["tie", "engine_dtype"] == "bfloat16"
    assert table.loc["win", "engine_dtype"] == "auto"
    md = (out / "study.md").read_text()
    assert "| win |" in md and "collapses at batch t" in md and "| 8 | bfloat16 |" in md
    assert (out / "regime_map.png").stat().st_size > 0
    assert verify(out) == []
    manifest = json.loads((out / "manifest.json").read_text())
    assert [c["name"] for c in manifest["config"]["study"]["cells"]] == ["win", "tie", "crash"]
    (out / "study.csv").write_text("edited")
    assert verify(out) == ["changed: study.csv (sha256 differs from the manifest)"]


def test_difficulty_sets_the_chain_length_of_every_family():
    from gspo_repro.tasks import make_split

    tasks = make_split("math", "train", 20, seed=0, steps=(16, 24))
    assert all(16 <= t.difficulty <= 24 for t in tasks)
    with pytest.raises(ValueError, match="rl.difficulty"):
        load_config(overrides={"rl.difficulty": [5, 2]})


def test_a_changed_cell_rewrites_its_config_so_its_runs_retrain(tmp_path):
    """A cell's rl.yaml is rewritten when the study file changes the cell (Snakemake's params
    trigger, as for the workflow's stage configs): its runs then see another config and are
    trained afresh, never silently kept from the old one."""
    study = tmp_path / "study.yaml"
    cell = {"name": "c", "arms": ["grpo", "gspo"], "set": {"rl.minibatches": 2}}
    study.write_text(yaml.safe_dump({"seeds": [0, 1, 2], "cells": [cell]}))
    target = f"{tmp_path}/run/study/cells/c/rl.yaml"
    conf = ("--config", f"run_dir={tmp_path}/run", f"study={study}")
    r = snakemake(target, *conf)
    assert r.returncode == 0, r.stderr + r.stdout
    assert yaml.safe_load(open(target))["rl"]["minibatches"] == 2
    r = snakemake("-n", target, *conf)
    assert "Nothing to be done" in r.stdout + r.stderr
    study.write_text(yaml.safe_dump({"seeds": [0, 1, 2], "cells": [
        {**cell, "set": {"rl.minibatches": 8}}]}))
    r = snakemake("-n", target, *conf)
    assert "rule study_cell_config:" in r.stdout, r.stdout + r.stderr


def test_a_part_of_the_study_is_analysed_alone_and_says_so(tmp_path):
    """--cells: the cells that have run are analysed without the rest (which have no runs);
    the table says it is a part, the manifest lists which, and an unknown cell is refused."""
    from gspo_repro.analysis.study import analyze_study
    from gspo_repro.study import select

    base = load_config(overrides={"run_dir": str(tmp_path / "run")})
    study = study_from_dict(_study(ran={"arms": ["grpo", "gspo"]},
                                   never={"arms": ["grpo", "gspo"],
                                          "set": {"rl.minibatches": 8}}), base)
    with pytest.raises(ValueError, match="no cell named 'nope'"):
        select(study, ["nope"])
    part = select(study, ["ran"])
    for seed in part.seeds:
        for arm, shift in (("grpo", 0.0), ("gspo", 0.1)):
            _write_run(tmp_path / run_dir(base, part, part.cells[0], arm, seed),
                       np.linspace(0.3, 0.5, 12) + shift + 0.01 * seed)
    with pytest.raises(ValueError, match="has not finished"):
        analyze_study(base, study, tmp_path / "whole")  # the cell "never" has no runs
    table = analyze_study(base, part, tmp_path / "part")
    assert list(table["cell"]) == ["ran"] and table["verdict"].iloc[0] == "arm better"
    assert "Part of the study: only the cells ran" in (tmp_path / "part/study.md").read_text()
    manifest = json.loads((tmp_path / "part/manifest.json").read_text())
    assert manifest["config"]["study"]["only"] == ["ran"]


def test_the_cli_wants_an_out_for_a_part_of_the_study():
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "gspo_repro.cli", "study", "--cells", "fine"],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode != 0 and "--cells analyses part of the study" in r.stderr
    r = subprocess.run([sys.executable, "-m", "gspo_repro.cli", "study", "--list", "--cells",
                        "fine_on_policy"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert {line.split()[0] for line in r.stdout.splitlines()} == {"fine_on_policy"}
