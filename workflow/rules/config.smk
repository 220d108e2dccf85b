# Each stage's resolved config, written once; a stage reruns only when its sections change.
import yaml


rule stage_config:
    output:
        f"{RUN}/config/{{stage}}.yaml",
    params:
        cfg=lambda wc: stage_config(wc.stage),
    log:
        f"{RUN}/logs/config_{{stage}}.log",
    localrule: True
    run:
        with open(output[0], "w") as f:
            yaml.safe_dump(params.cfg, f, sort_keys=False)
