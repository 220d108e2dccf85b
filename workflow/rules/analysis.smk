# Tables, figures and the manifest, from the metrics and evaluation files only.

EVALS = [f"{RUN}/eval/sft/{b}.json" for b in BENCHES] + [
    f"{RUN}/eval/{a}/seed{s}/step{n}/{b}.json"
    for a in ARMS
    for s in SEEDS
    for n in STEPS
    for b in BENCHES
]
FIGURES = {
    "fig1_reward_vs_compute": "fig1_reward_vs_compute.rst",
    "fig1_scores_vs_step": "fig1_scores_vs_step.rst",
    "fig2_clip_fraction": "fig2_clip_fraction.rst",
    "fig3_routing_replay": "fig3_routing_replay.rst",
    "expert_volatility": "expert_volatility.rst",
}
TABLES = [f"{RES}/tables/{t}" for t in ("summary.csv", "summary.md", "curves.csv", "training.csv")]
RESULTS_ALL = [f"{RES}/manifest.json"]


rule analyze:
    input:
        cfg=f"{RUN}/config/analyze.yaml",
        runs=expand(f"{RUN}/rl/{{arm}}/seed{{seed}}/run.json", arm=ARMS, seed=SEEDS),
        evals=EVALS,
    output:
        tables=TABLES,
        figures=[
            report(
                f"{RES}/figures/{name}.png",
                caption=f"../report/{caption}",
                category="Figures",
            )
            for name, caption in FIGURES.items()
        ],
    params:
        out=lambda wc, output: os.path.dirname(os.path.dirname(output.tables[0])),
    log:
        f"{RUN}/logs/analyze.log",
    conda:
        ENV
    resources:
        gpu=res("analyze", "gpu"),
        mem_mb=res("analyze", "mem_mb"),
        runtime=res("analyze", "runtime"),
    shell:
        "gspo-repro analyze --config {input.cfg} --out {params.out} > {log} 2>&1"


rule manifest:
    input:
        cfg=f"{RUN}/config/analyze.yaml",
        artifacts=rules.analyze.output,
    output:
        f"{RES}/manifest.json",
    params:
        out=lambda wc, output: os.path.dirname(output[0]),
    log:
        f"{RUN}/logs/manifest.log",
    localrule: True
    conda:
        ENV
    shell:
        "gspo-repro manifest --config {input.cfg} {params.out} > {log} 2>&1"
