# Evaluations: one job per (run, checkpoint, task) through lm-evaluation-harness:
# results/eval/<run id>/<final | step_NNNNNNN>/<task>.json(l).


rule eval:
    input:
        lambda wc: W.eval_inputs(config, wc.run, wc.checkpoint, wc.task),
        stamp=lambda wc: W.stamp(f"eval/{wc.task}", W.eval_settings(config, wc.task)),
    output:
        json=f"{RESULTS}/eval/{{run}}/{{checkpoint}}/{{task}}.json",
        rows=f"{RESULTS}/eval/{{run}}/{{checkpoint}}/{{task}}.jsonl",
    wildcard_constraints:
        run=RUN_ID,
        checkpoint=W.paths.CHECKPOINT_LABEL_PATTERN,
        task=W.alternatives(W.TASK_REGISTRY.names()),  # the registered tasks (vpt.eval.registry)
    params:
        model=lambda wc: W.parse_run(config, wc.run).model,
    log:
        f"{LOGS}/eval/{{run}}/{{checkpoint}}/{{task}}.log",
    shell:
        "{LAUNCH} --kind eval --model {params.model} --name eval-{wildcards.task} -- "
        "eval --run {wildcards.run} --at {wildcards.checkpoint} --task {wildcards.task} --config {CONFIG} > {log} 2>&1"


# The embedded base ViT's vision evaluations (vpt's own evaluators on the frozen backbone):
# results/eval/vision_base/final/<task>.json(l).
rule eval_vision_base:
    input:
        lambda wc: W.eval_inputs(config, W.paths.VISION_BASE, W.paths.FINAL, wc.task),
        stamp=lambda wc: W.stamp(f"eval/{wc.task}", W.eval_settings(config, wc.task)),
    output:
        json=f"{RESULTS}/eval/{W.paths.VISION_BASE}/{W.paths.FINAL}/{{task}}.json",
        rows=f"{RESULTS}/eval/{W.paths.VISION_BASE}/{W.paths.FINAL}/{{task}}.jsonl",
    wildcard_constraints:
        task=W.alternatives(W.TASK_REGISTRY.where(lambda t: isinstance(t, W.NativeTask))),
    log:
        f"{LOGS}/eval/{W.paths.VISION_BASE}/{{task}}.log",
    shell:
        "{LAUNCH} --kind eval --model vision_base --name eval-{wildcards.task} -- "
        "eval --run vision_base --task {wildcards.task} --config {CONFIG} > {log} 2>&1"
