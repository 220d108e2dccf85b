# Config validation and the paths every rule shares. The config is checked twice before any
# job starts: by the package's dataclasses (one line naming the broken key) and by the JSON
# schema derived from them (workflow/schemas, kept identical by a test).
import os
import sys

from snakemake.utils import validate

from gspo_repro.config import config_from_dict

try:
    CFG = config_from_dict(config)
except ValueError as e:
    sys.exit(f"gspo-repro: invalid config: {e}")
validate(config, schema="../schemas/config.schema.yaml")

RUN = CFG.run_dir
RES = CFG.results_dir
ARMS = list(CFG.arms)
SEEDS = list(CFG.seeds)
BENCHES = list(CFG.eval.benchmarks)
EXTERNAL = dict(CFG.evaluate)  # models scored outside training: name -> checkpoint or hub id
STEPS = CFG.rl.evaluated_steps()
# The sections each stage depends on: a change elsewhere does not rerun it.
STAGE_KEYS = {"sft": ("seed", "model", "sft"), "rl": ("plugins", "model", "rl"),
              "eval": ("seed", "eval"), "analyze": None}


wildcard_constraints:
    arm=r"[A-Za-z0-9_]+",
    seed=r"\d+",
    step=r"\d+",
    bench=r"[A-Za-z0-9_]+",
    model=r"[A-Za-z0-9_]+",
    stage=r"sft|rl|eval|analyze",


def sections(cfg, keys):
    """``cfg`` as a plain dict, only ``keys`` (None: all), defaults filled in."""
    full = cfg.to_dict()
    return full if keys is None else {k: full[k] for k in keys}


def stage_config(stage):
    """The resolved config a stage runs with: its own sections."""
    return sections(CFG, STAGE_KEYS[stage])


def res(rule_name, key):
    return getattr(CFG.resources[rule_name], key)


def checkpoint_of(wc):
    """(completion marker, HF checkpoint directory) of the eval rule's checkpoint wildcard."""
    if wc.ckpt == "sft":
        return f"{RUN}/sft/run.json", f"{RUN}/sft/checkpoint"
    arm, seed, step = wc.ckpt.split("/")
    if int(step.removeprefix("step")) not in STEPS:  # never another step's checkpoint
        raise ValueError(f"eval of {wc.ckpt}: the config evaluates steps {STEPS} only")
    run = f"{RUN}/rl/{arm}/{seed}/run.json"
    if not CFG.rl.kept_steps():  # no intermediate checkpoints kept: the final one
        return run, f"{RUN}/rl/{arm}/{seed}/checkpoint"
    return run, f"{RUN}/rl/{arm}/{seed}/checkpoints/{step}"


# The conda environment of every rule: CPU (tiny default) or GPU (paper scale).
ENV = "../../envs/gspo-gpu.yaml" if any(r.gpu for r in CFG.resources.values()) else (
    "../../envs/gspo-cpu.yaml")
