# The CPU lab (vpt.lab, config/lab.yaml): data -> base learner -> tuning -> one job per method x
# seed -> the A.6 probe -> results/lab/report.md. What each rule reads, writes and stamps comes
# from vpt.lab.targets (tested; its paths are vpt.lab.paths, which the stages write to); every
# job runs `vpt lab <stage>` on the resolved config.
from vpt.lab import targets as LT


rule lab_report:
    input:
        LT.report_inputs(config),
        stamp=W.stamp("lab/report", LT.report_settings(config)),
    output:
        LT.report_output(config),
    log:
        LT.log(config, "report"),
    shell:
        "{VPT} lab report --config {CONFIG} > {log} 2>&1"


rule lab_data:
    input:
        stamp=W.stamp("lab/data", LT.data_settings(config)),
    output:
        LT.data_output(config),
    log:
        LT.log(config, "data"),
    shell:
        "{VPT} lab data --config {CONFIG} > {log} 2>&1"


rule lab_base:
    input:
        LT.data_output(config),
        stamp=W.stamp("lab/base", LT.base_settings(config)),
    output:
        LT.base_output(config),
    threads: 2
    log:
        LT.log(config, "base"),
    shell:
        "{VPT} lab base --threads {threads} --config {CONFIG} > {log} 2>&1"


rule lab_run:
    input:
        LT.base_output(config),
        stamp=W.stamp("lab/run", LT.run_settings(config)),
    output:
        LT.run_outputs(config, "{method}", "{seed}"),
    wildcard_constraints:
        method=LT.METHOD_PATTERN,
        seed=r"\d+",
    threads: 1
    log:
        LT.log(config, "run_{method}_s{seed}"),
    shell:
        "{VPT} lab run --method {wildcards.method} --seed {wildcards.seed} --config {CONFIG} > {log} 2>&1"


rule lab_probe:
    input:
        LT.probe_inputs(config),
        stamp=W.stamp("lab/probe", LT.probe_settings(config)),
    output:
        LT.probe_output(config),
    log:
        LT.log(config, "probe"),
    shell:
        "{VPT} lab probe --config {CONFIG} > {log} 2>&1"


# Tuning (validation split only): its own target, run once before the report's runs; the chosen
# values are pinned in lab.method_train, which tuning.md checks.
rule lab_tuning:
    input:
        LT.tuning_inputs(config),
        stamp=W.stamp("lab/tuning", LT.tuning_settings(config)),
    output:
        LT.tuning_output(config),
    log:
        LT.log(config, "tuning"),
    shell:
        "{VPT} lab tuning --config {CONFIG} > {log} 2>&1"


rule lab_tune:
    input:
        LT.base_output(config),
        stamp=lambda wc: W.stamp("lab/tune", LT.trial_settings(config, wc.method, int(wc.trial))),
    output:
        LT.trial_outputs(config, "{method}", "{trial}"),
    wildcard_constraints:
        method=LT.METHOD_PATTERN,
        trial=r"\d+",
    threads: 1
    log:
        LT.log(config, "tune_{method}_t{trial}"),
    shell:
        "{VPT} lab tune --method {wildcards.method} --trial {wildcards.trial} --config {CONFIG} > {log} 2>&1"
