# Training: the embedded default's tiny base models (language: pretrain_base; vision, when
# `vision.base_model` is configured: pretrain_vision_base, DINO), then every run of the grid (vpt.grid): one
# compute-matched job per run id <model>/<method>/lr<lr>_s<seed>[_fb<n>]_<corpus>. A job resumes
# from its latest checkpoint when rerun (or requeued by SLURM) with the same settings.

if "base_model" in config:

    rule pretrain_base:
        input:
            W.base_inputs(config),
            stamp=W.stamp("train/base", W.base_train_section(config)),
        output:
            W.base_output(config),
        threads: 2
        log:
            f"{LOGS}/train/base.log",
        shell:
            "{LAUNCH} --kind train --model base --name train-base -- train --base --config {CONFIG} > {log} 2>&1"


if "base_model" in config.get("vision", {}):

    rule pretrain_vision_base:
        input:
            W.vision_base_inputs(config),
            stamp=W.stamp("train/vision_base", W.vision_base_settings(config)),
        output:
            W.vision_base_output(config),
        threads: 2
        log:
            f"{LOGS}/train/vision_base.log",
        shell:
            "{LAUNCH} --kind train --model vision_base --name train-vision-base -- train --vision-base --config {CONFIG} > {log} 2>&1"


rule train:
    input:
        lambda wc: W.train_inputs(config, W.parse_run(config, wc.run)),
        stamp=lambda wc: W.stamp(f"train/{wc.run}", W.run_settings(config, W.parse_run(config, wc.run))),
    output:
        str(W.paths.final_state(W.paths.run_dir(config, "{run}"))),
    wildcard_constraints:
        run=RUN_ID,
    params:
        model=lambda wc: W.parse_run(config, wc.run).model,
    threads: 2
    log:
        f"{LOGS}/train/{{run}}.log",
    shell:
        "{LAUNCH} --kind train --model {params.model} --name train-{params.model} -- train --run {wildcards.run} --config {CONFIG} > {log} 2>&1"


if W.vision_runs(config):

    # Continued SSL of a ViT, one compute-matched job per vision grid run (vpt.vision.grid):
    # <model>/<method>/lr<lr>_s<seed>[_seg<w>_depth<w>][_<designer>].
    rule train_vision:
        input:
            lambda wc: W.vision_train_inputs(config, W.parse_vision_run(config, wc.run)),
            stamp=lambda wc: W.stamp(f"train/{wc.run}", W.vision_run_settings(config, W.parse_vision_run(config, wc.run))),
        output:
            str(W.paths.final_state(W.paths.run_dir(config, "{run}"))),
        wildcard_constraints:
            run=W.alternatives(r.id for r in W.vision_runs(config)),
        params:
            model=lambda wc: W.parse_vision_run(config, wc.run).model,
        threads: 2
        log:
            f"{LOGS}/train/{{run}}.log",
        shell:
            "{LAUNCH} --kind train --model {params.model} --name train-{params.model} -- train --run {wildcards.run} --config {CONFIG} > {log} 2>&1"


for _method in config["probe"]["methods"]:

    rule:
        name:
            f"probe_{_method}"
        input:
            W.probe_inputs(config, _method),
            stamp=W.stamp(f"probe/{_method}", config["probe"]),
        output:
            str(W.paths.probe_result(config, _method)),
        params:
            method=_method,
            model=config["learner"],
        log:
            f"{LOGS}/probe/{_method}.log",
        shell:
            "{LAUNCH} --kind probe --model {params.model} --name probe-{params.method} -- probe --method {params.method} --config {CONFIG} > {log} 2>&1"
