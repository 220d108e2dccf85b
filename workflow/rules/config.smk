# Each stage's resolved config, written once; a stage reruns only when its sections change
# (a changed params value reruns the rule that writes them, and the stage after it).
from gspo_repro.io import atomic_write_yaml


rule stage_config:
    output:
        f"{RUN}/config/{{stage}}.yaml",
    params:
        cfg=lambda wc: stage_config(wc.stage),
    log:
        f"{RUN}/logs/config_{{stage}}.log",
    localrule: True
    run:
        atomic_write_yaml(output[0], params.cfg)
