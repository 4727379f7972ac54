# Tables and figures (vpt.report.registry): pandas aggregation of the evaluations (or the benchmark)
# a report reads, laid out like the paper. `snakemake results/tables/table1.md` builds only Table 1's inputs.

for _name in W.reports(config):

    rule:
        name:
            f"report_{_name}"
        input:
            W.report_inputs(config, _name),
        output:
            W.report_outputs(config, _name),
        params:
            name=_name,
        log:
            f"{LOGS}/report/{_name}.log",
        shell:
            "{VPT} report {params.name} --config {CONFIG} > {log} 2>&1"


# The vision lab's tuning on its own (config/lab_vision.yaml): every trial's validation score,
# run before the method groups, whose pinned lrs the report then checks against it.
if "vision_lab" in config:

    rule lab_vision_tuning:
        input:
            W.lab_vision_tuning_inputs(config),
