# Cold-start SFT of the model from random init on worked solutions of the train split.


rule sft:
    input:
        cfg=f"{RUN}/config/sft.yaml",
    output:
        run=f"{RUN}/sft/run.json",
        ckpt=directory(f"{RUN}/sft/checkpoint"),
    log:
        f"{RUN}/logs/sft.log",
    benchmark:
        f"{RUN}/benchmarks/sft.tsv"
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
