# Data stages: synth -> download -> decontaminate -> tokenizer -> pack.
# Paths come from vpt.workflow (tested); each rule runs the matching `vpt data` command through
# `vpt launch` (in-process, or a SLURM job under --profile slurm). The stamp input holds the
# settings the job reads, so editing exactly those reruns it (vpt.workflow.stamp).

for _name in config["synth"]:

    rule:
        name:
            f"synth_{_name}"
        input:
            stamp=W.stamp(f"synth/{_name}", config["synth"][_name]),
        output:
            [str(p) for p in W.paths.synth_outputs(config, _name)],
        params:
            name=_name,
        log:
            f"{LOGS}/synth/{_name}.log",
        shell:
            "{LAUNCH} --kind data --model - --name synth -- data synth {params.name} --config {CONFIG} > {log} 2>&1"


for _name in config["datasets"]:

    rule:
        name:
            f"download_{_name}"
        input:
            W.download_inputs(config, _name),
            stamp=W.stamp(f"download/{_name}", config["datasets"][_name]),
        output:
            W.download_outputs(config, _name),
        params:
            name=_name,
        log:
            f"{LOGS}/download/{_name}.log",
        shell:
            "{LAUNCH} --kind data --model - --name download -- data download {params.name} --config {CONFIG} > {log} 2>&1"


rule decontaminate:
    input:
        W.decontaminate_inputs(config),
        stamp=W.stamp("decontaminate", config["decontaminate"]),
    output:
        W.decontaminate_outputs(config),
    threads: config["decontaminate"]["workers"]
    log:
        f"{LOGS}/decontaminate.log",
    shell:
        "{LAUNCH} --kind data --model - --name decontaminate -- data decontaminate --config {CONFIG} > {log} 2>&1"


rule tokenizer:
    input:
        W.tokenizer_inputs(config),
        stamp=W.stamp("tokenizer", config["tokenizer"]),
    output:
        W.tokenizer_outputs(config),
    log:
        f"{LOGS}/tokenizer.log",
    shell:
        "{LAUNCH} --kind data --model - --name tokenizer -- data tokenizer --config {CONFIG} > {log} 2>&1"


for _variant in config["pack"]["variants"]:

    rule:
        name:
            f"pack_{_variant}"
        input:
            W.pack_inputs(config, _variant),
            stamp=W.stamp(f"pack/{_variant}", config["pack"]),
        output:
            W.pack_outputs(config, _variant),
        params:
            variant=_variant,
        log:
            f"{LOGS}/pack/{_variant}.log",
        shell:
            "{LAUNCH} --kind data --model - --name pack -- data pack --variant {params.variant} --config {CONFIG} > {log} 2>&1"
