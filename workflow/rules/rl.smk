# One RL run per (arm, seed), all from the same SFT checkpoint at matched compute. The run
# directory is not a declared output, so an interrupted run keeps its trainer state and
# --resume continues it; run.json, written last, marks it complete. A run directory of
# another identity (config, SFT checkpoint, code), left by an output Snakemake found stale,
# is discarded and trained afresh (--restart-if-changed), never continued.


rule rl:
    input:
        cfg=f"{RUN}/config/rl.yaml",
        sft=f"{RUN}/sft/run.json",
    output:
        run=f"{RUN}/rl/{{arm}}/seed{{seed}}/run.json",
    log:
        f"{RUN}/logs/rl_{{arm}}_seed{{seed}}.log",
    benchmark:
        f"{RUN}/benchmarks/rl_{{arm}}_seed{{seed}}.tsv"
    params:
        init=f"{RUN}/sft/checkpoint",
        out=lambda wc: f"{RUN}/rl/{wc.arm}/seed{wc.seed}",
    # one thread per run: on the tiny model two single-threaded runs side by side have
    # 1.4x the throughput of one two-threaded run at a time (6-batch runs, start-up
    # included: results/bench/threads.json; phases.json has the whole workflow)
    threads: 1
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
