# V-Pretraining reproducibility workflow.
#   snakemake --cores 2 all                                  embedded default (config/config.yaml)
#   snakemake --cores 2 all --configfile config/paper.yaml   the paper's setting
# The config is validated against workflow/schemas/config.schema.yaml (a lab preset: lab.schema.yaml)
# before any rule runs.
from snakemake.utils import min_version

min_version("9.0")


# The embedded default, unless config files are given with --configfile: those replace it rather
# than being merged into it (a preset is complete on its own; merging would leak embedded keys).
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


import sys

from vpt import workflow as W
from vpt.config import validate_config

# A preset with a `lab:` section (config/lab.yaml) is the CPU lab of vpt.lab, checked against
# workflow/schemas/lab.schema.yaml, and only its rules are loaded; every other config is the
# experiment pipeline, checked against workflow/schemas/config.schema.yaml.
KIND = "lab" if "lab" in config else "main"
_overrides = " + --config overrides" if workflow.config_settings.overwrite_config else ""
validate_config(config, source=", ".join(map(str, workflow.configfiles)) + _overrides, kind=KIND)
CONFIG = W.resolved_config_file(config)  # the file every job's `vpt` command reads
VPT = f"'{sys.executable}' -m vpt"

if KIND == "lab":

    include: "workflow/rules/lab.smk"

else:
    LAUNCH = f"{VPT} launch --config {CONFIG}"  # in-process, or a submitit job (config key `launcher`)
    RESULTS = config["results_dir"]
    LOGS = f"{RESULTS}/logs"
    RUN_ID = W.RUN_ID_PATTERN  # <model>/<method>/lr<lr>_s<seed>[_fb<n>]_<corpus>


    include: "workflow/rules/data.smk"
    include: "workflow/rules/train.smk"
    include: "workflow/rules/eval.smk"
    include: "workflow/rules/report.smk"
    include: "workflow/rules/bench.smk"


    rule all:
        default_target: True
        input:
            W.all_targets(config),
