# Tables, figures and the manifest, from the metrics and evaluation files only. Their names
# come from the package (gspo_repro.analysis), which writes them.
from gspo_repro.analysis import FIGURES as ANALYSIS_FIGURES, TABLES as ANALYSIS_TABLES

EVALS = [f"{RUN}/eval/sft/{b}.json" for b in BENCHES] + [
    f"{RUN}/eval/{a}/seed{s}/step{n}/{b}.json"
    for a in ARMS
    for s in SEEDS
    for n in STEPS
    for b in BENCHES
]
TABLES = [f"{RES}/tables/{t}" for t in ANALYSIS_TABLES]
# The tables the Snakemake report shows, each with a caption: HTML is shown in the page,
# CSV offered as a download.
REPORTED = {"claims.html": "Claims", "summary.html": "Tables", "paired.csv": "Tables"}
EXTERNAL_TABLES = [f"{RES}/tables/external.csv", f"{RES}/tables/external.md"] if EXTERNAL else []
RESULTS_ALL = [f"{RES}/manifest.json"]


rule analyze:
    input:
        cfg=f"{RUN}/config/analyze.yaml",
        runs=expand(f"{RUN}/rl/{{arm}}/seed{{seed}}/run.json", arm=ARMS, seed=SEEDS),
        evals=EVALS,
    output:
        tables=[
            report(t, caption=f"../report/{os.path.splitext(os.path.basename(t))[0]}.rst",
                   category=REPORTED[os.path.basename(t)])
            if os.path.basename(t) in REPORTED
            else t
            for t in TABLES
        ],
        figures=[
            report(
                f"{RES}/figures/{name}.png",
                caption=f"../report/{name}.rst",
                category="Figures",
            )
            for name in ANALYSIS_FIGURES
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
        external=EXTERNAL_TABLES,
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
