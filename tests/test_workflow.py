"""The Snakemake workflow: its config checks, its DAG, its lint, and adding an algorithm."""

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
    assert r.stdout.count("rule rl:") == 3  # grpo, grpo_rr, gspo at seed 0
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


def test_an_algorithm_added_through_config_gets_its_rl_and_eval_jobs(tmp_path):
    """A new objective is one registered function (a plugin module) and one config entry."""
    (tmp_path / "toy_objective.py").write_text(
        "from gspo_repro.objectives import gspo, register\n\n\n"
        "@register('toy_half_gspo')\n"
        "def toy_half_gspo(logp, old_logp, advantages, mask, eps_low=3e-4, eps_high=4e-4):\n"
        "    loss, metrics = gspo(logp, old_logp, advantages, mask, eps_low, eps_high)\n"
        "    return 0.5 * loss, metrics\n")
    cfg = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    cfg["plugins"] = ["toy_objective"]
    cfg["rl"]["algorithms"] = {"toy": {"objective": "toy_half_gspo", "eps_low": 3e-4,
                                       "eps_high": 4e-4, "routing_replay": False}}
    cfg["arms"] = ["gspo", "toy"]
    cfg["run_dir"], cfg["results_dir"] = f"{tmp_path}/run", f"{tmp_path}/res"
    (tmp_path / "toy.yaml").write_text(yaml.safe_dump(cfg))
    env = {"PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    r = snakemake("-n", "--configfile", str(tmp_path / "toy.yaml"), env=env)
    assert r.returncode == 0, r.stderr + r.stdout
    assert f"{tmp_path}/run/rl/toy/seed0/run.json" in r.stdout
    assert f"{tmp_path}/run/eval/toy/seed0/step" in r.stdout
    # The objective is a real entry of the registry once the plugin is imported.
    code = ("from gspo_repro.config import load_config; import sys; "
            f"c = load_config({str(tmp_path / 'toy.yaml')!r}); "
            "from gspo_repro.objectives import OBJECTIVES; "
            "sys.exit(0 if 'toy_half_gspo' in OBJECTIVES and 'toy' in c.arms else 1)")
    assert subprocess.run([sys.executable, "-c", code], env={**os.environ, **env}).returncode == 0


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
    assert r.stdout.count("rule rl:") == 4 and not (tmp_path / "run").exists()


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
    assert len(heavy) == 1 + 4 + 123
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
