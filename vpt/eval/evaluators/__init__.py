"""One module per evaluator; each registers its task(s) in vpt.eval.registry.TASK_REGISTRY when
imported (the registry imports every module here on first use). Harness and scoring code is
imported inside the functions, so listing the tasks (argparse, the Snakefile) stays light."""
