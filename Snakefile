# lalm-eval: reproducible evaluation of Large Audio Language Models.
# Full reproduction: snakemake --cores 8        (config/config.yaml)
# Offline demo:      make demo                  (config/demo.yaml)
from snakemake.utils import min_version

min_version("9.0")


report: "workflow/report/workflow.rst"


# config/config.yaml unless the user names another with --configfile (no silent merging)
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"



include: "workflow/rules/common.smk"
include: "workflow/rules/corpora.smk"
include: "workflow/rules/inference.smk"
include: "workflow/rules/scoring.smk"
include: "workflow/rules/training.smk"


# the rules only some suite kinds have (mixtures, judges, study tables, ...)
for _rules in suite_rule_files():

    include: rule_file(_rules)



rule all:
    input:
        all_targets(),
    default_target: True
