# Every checkpoint on every benchmark through lm-eval: the SFT start ("sft") and each run's
# final checkpoint ("{arm}/seed{seed}/step{step}"), and its kept mid-run checkpoints where
# rl.save_every asks for curves, not just end points.
# One job, one engine start, per checkpoint for all of its benchmarks; every checkpoint
# gets the same problems and sampling seeds (paired evaluations).


rule eval:
    input:
        cfg=f"{RUN}/config/eval.yaml",
        done=lambda wc: checkpoint_of(wc)[0],
    output:
        [f"{RUN}/eval/{{ckpt}}/{b}.json" for b in BENCHES],
    params:
        ckpt=lambda wc: checkpoint_of(wc)[1],
        out=lambda wc: f"{RUN}/eval/{wc.ckpt}",
        benches=" ".join(BENCHES),
        task_dir=f"{RUN}/tasks",
    wildcard_constraints:
        ckpt=r"sft|[A-Za-z0-9_]+/seed\d+/step\d+",
    log:
        f"{RUN}/logs/eval/{{ckpt}}.log",
    benchmark:
        f"{RUN}/benchmarks/eval/{{ckpt}}.tsv"
    threads: 1
    conda:
        ENV
    resources:
        gpu=res("eval", "gpu"),
        mem_mb=res("eval", "mem_mb"),
        runtime=res("eval", "runtime"),
    shell:
        "gspo-repro eval --config {input.cfg} --ckpt {params.ckpt} --benchmark {params.benches}"
        " --task-dir {params.task_dir} --out {params.out} > {log} 2>&1"


# Any model on the benchmarks, outside training: `snakemake evaluate --config
# 'evaluate={mine: /path/to/checkpoint}'` (a local HF checkpoint or a hub id).
rule eval_external:
    input:
        cfg=f"{RUN}/config/eval.yaml",
    output:
        f"{RUN}/external/{{model}}/{{bench}}.json",
    params:
        ckpt=lambda wc: EXTERNAL[wc.model],
        task_dir=lambda wc: f"{RUN}/tasks/{wc.bench}",
    log:
        f"{RUN}/logs/external/{{model}}/{{bench}}.log",
    benchmark:
        f"{RUN}/benchmarks/external/{{model}}/{{bench}}.tsv"
    threads: 1
    conda:
        ENV
    resources:
        gpu=res("eval", "gpu"),
        mem_mb=res("eval", "mem_mb"),
        runtime=res("eval", "runtime"),
    shell:
        "gspo-repro eval --config {input.cfg} --ckpt {params.ckpt} --benchmark {wildcards.bench}"
        " --task-dir {params.task_dir} --out {output} > {log} 2>&1"


rule evaluate:
    input:
        expand(f"{RUN}/external/{{model}}/{{bench}}.json", model=EXTERNAL, bench=BENCHES),
    output:
        csv=f"{RES}/tables/external.csv",
        md=f"{RES}/tables/external.md",
    params:
        prefix=lambda wc, output: output.csv[: -len(".csv")],
    log:
        f"{RUN}/logs/external_table.log",
    localrule: True
    conda:
        ENV
    shell:
        "gspo-repro table --out {params.prefix} {input} > {log} 2>&1"
