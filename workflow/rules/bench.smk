# Benchmarks: not part of `all`; build one with e.g. `snakemake --cores 2 results/bench/decontaminate.json`.


rule bench_decontaminate:
    output:
        f"{config['results_dir']}/bench/decontaminate.json",
    threads: 2
    log:
        f"{LOGS}/bench/decontaminate.log",
    shell:
        "{VPT} bench decontaminate --docs 5000 --words 300 --workers {threads} --out {output} > {log} 2>&1"


# Our ntp loop against transformers.Trainer on the default ntp run (embedded: the tiny base model).
rule bench_trainer:
    input:
        W.train_inputs(config, W.default_run(config, "ntp")),
    output:
        f"{RESULTS}/bench/trainer.json",
    threads: 2
    log:
        f"{LOGS}/bench/trainer.log",
    shell:
        "{VPT} bench trainer --config {CONFIG} --warmup 3 --window 20 --repeats 5 --threads {threads} --out {output} > {log} 2>&1"
