"""bnre-workflow: Balanced Neural Ratio Estimation, simulate -> train -> evaluate -> figures."""


configfile: "config/config.yaml"


report: "rules/report/workflow.rst"


include: "rules/common.smk"
include: "rules/simulate.smk"
include: "rules/train.smk"
include: "rules/evaluate.smk"
include: "rules/aggregate.smk"
include: "rules/figures.smk"
include: "rules/infer.smk"


rule all:
    default_target: True
    input:
        path("summary"),
        path("coverage"),
        path("calibration"),
        figure_files(),
        training_figure_files(),
        posterior_figure_files(),
        observed_files(),
