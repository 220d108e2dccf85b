"""The Snakemake workflow: its config checks, its DAG, its lint, and adding an algorithm."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = shutil.which("snakemake") or str(Path(sys.executable).with_name("snakemake"))


def snakemake(*args, cwd=ROOT, env=None):
    return subprocess.run([SNAKEMAKE, "--cores", "1", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300, env={**os.environ, **(env or {})})


def test_schema_file_is_the_one_derived_from_the_dataclasses():
    from gspo_repro.schema import config_schema

    committed = yaml.safe_load((ROOT / "workflow/schemas/config.schema.yaml").read_text())
    assert committed == config_schema(), "regenerate with: gspo-repro schema > " \
                                         "workflow/schemas/config.schema.yaml"


def test_dry_run_plans_every_stage_of_the_default_config(tmp_path):
    r = snakemake("-n", "--config", f"run_dir={tmp_path}/run", f"results_dir={tmp_path}/res")
    assert r.returncode == 0, r.stderr + r.stdout
    for rule in ("stage_config", "sft", "rl", "eval", "analyze", "manifest"):
        assert f"rule {rule}:" in r.stdout
    assert r.stdout.count("rule rl:") == 9  # grpo, grpo_rr, gspo at seeds 0, 1, 2
    # one eval job per checkpoint: the SFT start and each run's final checkpoint
    assert r.stdout.count("rule eval:") == 1 + 9
    assert "grpo/seed2/step24" in r.stdout  # the final one, named by its step
    assert not (tmp_path / "run").exists()  # a dry run starts no job


def test_lint_is_clean():
    r = snakemake("--lint")
    assert r.returncode == 0 and "Congratulations" in r.stdout + r.stderr, r.stdout + r.stderr


@pytest.mark.parametrize("override,named", [
    ("sft_steps=3", "sft_steps"),  # unknown key
    ("seed=abc", "seed"),  # wrong type
    ("arms=[grpo,no_such_algo]", "no_such_algo"),  # unknown algorithm
])
def test_a_broken_config_stops_before_any_job_with_one_line(tmp_path, override, named):
    r = snakemake("-n", "--config", override, f"run_dir={tmp_path}/run")
    assert r.returncode != 0
    errors = [line for line in (r.stderr + r.stdout).splitlines() if "invalid config" in line]
    assert len(errors) == 1 and named in errors[0], r.stderr + r.stdout
    assert not (tmp_path / "run").exists()


PLUGIN = """
import torch
from gspo_repro.objectives import grpo, register


@register("scaled_grpo", aggregation="seq_mean_token_mean")
def scaled_grpo(logp, old_logp, advantages, mask, eps_low=0.2, eps_high=0.28, scale=1.0):
    \"\"\"GRPO's per-token terms times ``scale`` (a parameter of its own).\"\"\"
    terms, metrics = grpo(logp, old_logp, advantages, mask, eps_low=eps_low, eps_high=eps_high)
    return terms * scale, metrics
"""


def test_a_plugin_objective_with_a_parameter_and_its_aggregation_is_planned_and_trains(
        tmp_path, tiny_checkpoint):
    """A new objective is one registered function in a user module (``plugins``) and one arm
    entry, here with its own parameter and a non-default aggregation (token_mean): the DAG
    gets its rl and eval jobs, and the arm trains."""
    (tmp_path / "my_objective.py").write_text(PLUGIN)
    arm = {"objective": "scaled_grpo", "eps_low": 0.2, "eps_high": 0.28,
           "aggregation": "token_mean", "params": {"scale": 0.5}}
    cfg = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    cfg["plugins"] = ["my_objective"]
    cfg["rl"]["algorithms"] = {"mine": arm}
    cfg["arms"] = ["gspo", "mine"]
    cfg["run_dir"], cfg["results_dir"] = f"{tmp_path}/run", f"{tmp_path}/res"
    (tmp_path / "mine.yaml").write_text(yaml.safe_dump(cfg))
    env = {"PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    r = snakemake("-n", "--configfile", str(tmp_path / "mine.yaml"), env=env)
    assert r.returncode == 0, r.stderr + r.stdout
    assert f"{tmp_path}/run/rl/mine/seed0/run.json" in r.stdout
    assert f"{tmp_path}/run/eval/mine/seed0/step" in r.stdout
    small = {"plugins": ["my_objective"], "rl": {
        "steps": 2, "queries": 4, "group_size": 4, "max_new_tokens": 24, "pool": 50,
        "engine": "transformers", "families": ["math"], "algorithms": {"mine": arm}}}
    (tmp_path / "small.yaml").write_text(yaml.safe_dump(small))
    out = tmp_path / "rl_mine"
    r = subprocess.run([sys.executable, "-m", "gspo_repro.cli", "rl", "--config",
                        str(tmp_path / "small.yaml"), "--algo", "mine", "--init",
                        str(tiny_checkpoint), "--out", str(out), "--no-progress"],
                       env={**os.environ, **env}, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    run = json.loads((out / "run.json").read_text())
    assert run["algorithm_config"]["params"] == {"scale": 0.5}
    assert run["algorithm_config"]["aggregation"] == "token_mean"
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 2
    bad = dict(arm, params={"scale": 0.5, "beta": 1.0})
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump({**small, "rl": {
        **small["rl"], "algorithms": {"mine": bad}}}))
    r = subprocess.run([sys.executable, "-m", "gspo_repro.cli", "rl", "--config",
                        str(tmp_path / "bad.yaml"), "--algo", "mine", "--dry-run"],
                       env={**os.environ, **env}, capture_output=True, text=True, timeout=120)
    assert r.returncode != 0
    assert "objective 'scaled_grpo' takes no parameter 'beta'" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_paper_config_plans_the_papers_dag(tmp_path):
    """Qwen3-30B-A3B-Base, the three real benchmarks, the paper's sample counts; no job runs."""
    from gspo_repro.config import load_config

    cfg = load_config(ROOT / "config/paper.yaml")
    assert cfg.model.pretrained == "Qwen/Qwen3-30B-A3B-Base"
    assert [cfg.eval.samples_for(b) for b in cfg.eval.benchmarks] == [32, 8, 8]
    assert cfg.rl.minibatches == 4
    assert (cfg.rl.algorithm("gspo").eps_low, cfg.rl.algorithm("gspo").eps_high) == (3e-4, 4e-4)
    r = snakemake("-n", "--configfile", "config/paper.yaml", "--config",
                  f"run_dir={tmp_path}/run", f"results_dir={tmp_path}/res")
    assert r.returncode == 0, r.stderr + r.stdout
    for bench in ("aime24", "livecodebench", "codeforces"):
        assert f"{tmp_path}/run/eval/gspo/seed0/step500/{bench}.json" in r.stdout
    assert r.stdout.count("rule rl:") == 3 and not (tmp_path / "run").exists()


def test_evaluate_target_scores_any_named_model(tmp_path):
    extra = tmp_path / "mine.yaml"
    extra.write_text("evaluate: {mine: /models/my-ckpt}\n"
                     "eval: {benchmarks: [aime24, codeforces]}\n")
    r = snakemake("-n", "evaluate", "--configfile", "config/config.yaml", str(extra),
                  "--config", f"run_dir={tmp_path}/run", f"results_dir={tmp_path}/res")
    assert r.returncode == 0, r.stderr + r.stdout
    assert r.stdout.count("rule eval_external:") == 2
    assert f"{tmp_path}/res/tables/external.md" in r.stdout
    assert "rule rl:" not in r.stdout and "rule sft:" not in r.stdout


def test_slurm_profile_plans_the_paper_dag_with_gpus_on_every_heavy_job(tmp_path):
    pytest.importorskip("snakemake_executor_plugin_slurm")
    r = snakemake("-n", "--configfile", "config/paper.yaml", "--profile", "profiles/slurm",
                  "--config", f"run_dir={tmp_path}/run", f"results_dir={tmp_path}/res")
    assert r.returncode == 0, r.stderr + r.stdout
    blocks = r.stdout.split("\nrule ")[1:]
    heavy = [b for b in blocks if b.split(":")[0] in ("sft", "rl", "eval")]
    # sft; rl per arm (3, one seed); one eval job per checkpoint for all 3 benchmarks: the
    # SFT start and each arm's 10 kept checkpoints (save_every 50 of 500 steps)
    assert len(heavy) == 1 + 3 + (1 + 3 * 10)
    for b in heavy:
        gpus = int(b.split("gpu=")[1].split(",")[0].split()[0])
        assert gpus >= 1 and "slurm_partition=gpu" in b, b


def test_rl_dry_run_plans_qwen3_30b_without_weights():
    """Parameter counts from the architecture on the meta device; memory by the formula."""
    import subprocess as sp

    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    out = sp.run([sys.executable, "-m", "gspo_repro.cli", "rl", "--dry-run", "--config",
                  str(ROOT / "config/paper.yaml"), "--algo", "gspo"], capture_output=True,
                 text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr
    import json

    plan = json.loads(out.stdout)
    total = plan["params_total"]
    assert total == 30_532_122_624 and plan["params_active"] == 3_353_032_704
    assert plan["world_size"] == 8 and plan["per_rank"]["samples"] == 256 * 16 // 8
    mem = plan["memory_per_rank_gib"]
    assert mem["sharded_states"] == round(total * 16 / 8 / 2**30, 2)
    eng = mem["vllm"]  # paper.yaml: engines of 4 GPUs, 45% of each GPU, asleep in training
    assert plan["engine"]["tensor_parallel_size"] == 4 and plan["engine"]["engines"] == 2
    assert eng["engine_weights"] == round(total * 2 / 4 / 2**30, 2)
    assert eng["trainer_resident_during_rollout"] == round(total * 12 / 8 / 2**30, 2)
    assert eng["kv_cache"] == round(0.45 * 80 - total * 2 / 4 / 2**30, 2)
    assert mem["fits"]
