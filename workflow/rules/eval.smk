# Evaluations: results/eval/<run id>/<final | step_NNNNNNN>/<task>.json(l). One job per run and set
# of reports reading the results, running all its checkpoints and tasks in one process (the
# libraries load once); a rule per kind of job (vpt.workflow.eval_suites), whose `run` wildcard
# matches exactly its runs. Language tasks run through lm-evaluation-harness, vision ones (the base
# ViT's) through vpt's frozen-backbone evaluators.

for _suite in W.eval_suites(config):

    rule:
        name:
            _suite.rule
        input:
            lambda wc, tasks=_suite.tasks: W.eval_job_inputs(config, wc.run, tasks),
            stamps=[W.stamp(f"eval/{t}", W.eval_settings(config, t)) for t in _suite.tasks],
        output:
            [f"{RESULTS}/eval/{{run}}/{at}/{t}.{ext}" for at in _suite.labels for t in _suite.tasks for ext in ("json", "jsonl")],
        wildcard_constraints:
            run=W.alternatives(_suite.runs),
        params:
            model=lambda wc: W.eval_model(config, wc.run),
            at=" ".join(_suite.labels),
            tasks=" ".join(_suite.tasks),
        log:
            f"{LOGS}/eval/{{run}}/{'+'.join(_suite.labels)}/{'+'.join(_suite.tasks)}.log",
        shell:
            "{LAUNCH} --kind eval --model {params.model} --name {rule} -- "
            "eval --run {wildcards.run} --at {params.at} --task {params.tasks} --config {CONFIG} > {log} 2>&1"
