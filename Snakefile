# gspo-repro: cold-start SFT -> matched-compute RL arms -> lm-eval evaluation -> analysis.
# The default config is the embedded tiny reproduction (2-core CPU, minutes); pass
# --configfile config/paper.yaml for the paper's scale. Rules live in workflow/rules/.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/config.smk"
include: "workflow/rules/sft.smk"
include: "workflow/rules/rl.smk"
include: "workflow/rules/eval.smk"
include: "workflow/rules/analysis.smk"
include: "workflow/rules/study.smk"


rule all:
    input:
        RESULTS_ALL,


# The regime study (config/study.yaml): not part of `all`; `snakemake study` runs it.
rule study:
    input:
        f"{SRES}/manifest.json",
    localrule: True
