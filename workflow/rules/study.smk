# The regime study (`snakemake study`): cells of the study file (config key `study`), each
# every arm x every seed of the study from its profile's SFT checkpoint, judged on training
# reward against grpo in the same cell (gspo_repro/study.py, gspo_repro/analysis/study.py).
# A cell that is the workflow's own config reuses the workflow's runs of the same arms.
from gspo_repro.analysis.study import FIGURE as STUDY_FIGURE, TABLES as STUDY_TABLES
from gspo_repro.study import (
    cell_config,
    load_study,
    profile_config,
    run_dir as study_run_dir,
    runs as study_runs,
    sft_dir,
    study_root,
)

try:
    STUDY = load_study(CFG.study, CFG) if os.path.exists(CFG.study) else None
except ValueError as e:
    sys.exit(f"gspo-repro: invalid study: {e}")
SROOT = study_root(CFG)
SCELLS = {c.name: c for c in STUDY.cells} if STUDY else {}
SRES = STUDY.results_dir if STUDY else f"{RES}/study"


wildcard_constraints:
    cell=r"[A-Za-z0-9_]+",
    profile=r"[A-Za-z0-9_]+",


# The profile's and cell's configs as params, as rule stage_config: a study file that changes
# a cell rewrites its config, and its runs then train afresh (--restart-if-changed).
rule study_profile_config:
    output:
        f"{SROOT}/profiles/{{profile}}.yaml",
    params:
        cfg=lambda wc: sections(profile_config(CFG, STUDY, wc.profile), STAGE_KEYS["sft"]),
    log:
        f"{RUN}/logs/study_profile_{{profile}}.log",
    localrule: True
    run:
        atomic_write_yaml(output[0], params.cfg)


rule study_sft:
    input:
        cfg=f"{SROOT}/profiles/{{profile}}.yaml",
    output:
        run=f"{SROOT}/profiles/{{profile}}/run.json",
        ckpt=directory(f"{SROOT}/profiles/{{profile}}/checkpoint"),
    log:
        f"{RUN}/logs/study_sft_{{profile}}.log",
    benchmark:
        f"{RUN}/benchmarks/study_sft_{{profile}}.tsv"
    params:
        out=lambda wc, output: os.path.dirname(output.run),
    threads: 2
    conda:
        ENV
    resources:
        gpu=res("sft", "gpu"),
        mem_mb=res("sft", "mem_mb"),
        runtime=res("sft", "runtime"),
    shell:
        "gspo-repro sft --config {input.cfg} --out {params.out} --no-progress > {log} 2>&1"


rule study_cell_config:
    output:
        f"{SROOT}/cells/{{cell}}/rl.yaml",
    params:
        cfg=lambda wc: sections(cell_config(CFG, STUDY, SCELLS[wc.cell]), STAGE_KEYS["rl"]),
    log:
        f"{RUN}/logs/study_cell_{{cell}}.log",
    localrule: True
    run:
        atomic_write_yaml(output[0], params.cfg)


rule study_rl:
    input:
        cfg=f"{SROOT}/cells/{{cell}}/rl.yaml",
        sft=lambda wc: f"{sft_dir(CFG, SCELLS[wc.cell].profile)}/run.json",
    output:
        run=f"{SROOT}/cells/{{cell}}/rl/{{arm}}/seed{{seed}}/run.json",
    log:
        f"{RUN}/logs/study_{{cell}}_{{arm}}_seed{{seed}}.log",
    benchmark:
        f"{RUN}/benchmarks/study_{{cell}}_{{arm}}_seed{{seed}}.tsv"
    params:
        init=lambda wc: f"{sft_dir(CFG, SCELLS[wc.cell].profile)}/checkpoint",
        out=lambda wc, output: os.path.dirname(output.run),
    threads: 1  # as rule rl: two single-threaded runs side by side
    conda:
        ENV
    resources:
        gpu=res("rl", "gpu"),
        mem_mb=res("rl", "mem_mb"),
        runtime=res("rl", "runtime"),
    shell:
        "gspo-repro rl --config {input.cfg} --algo {wildcards.arm} --seed {wildcards.seed}"
        " --init {params.init} --out {params.out}"
        " --resume --restart-if-changed --no-progress > {log} 2>&1"


STUDY_RUNS = (
    [f"{study_run_dir(CFG, STUDY, c, a, s)}/run.json" for c, a, s in study_runs(STUDY)]
    if STUDY
    else []
)


rule study_analyze:
    input:
        cfg=f"{RUN}/config/analyze.yaml",
        study=CFG.study,
        runs=STUDY_RUNS,
    output:
        tables=[f"{SRES}/{t}" for t in STUDY_TABLES],
        figure=report(f"{SRES}/{STUDY_FIGURE}", caption="../report/regime_map.rst",
                      category="Study"),
        manifest=f"{SRES}/manifest.json",
    params:
        out=lambda wc, output: os.path.dirname(output.manifest),
    log:
        f"{RUN}/logs/study_analyze.log",
    conda:
        ENV
    resources:
        gpu=res("analyze", "gpu"),
        mem_mb=res("analyze", "mem_mb"),
        runtime=res("analyze", "runtime"),
    shell:
        "gspo-repro study --config {input.cfg} --out {params.out} > {log} 2>&1"
