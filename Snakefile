# Entry for plain `snakemake`: all rules live in workflows/rules/*.smk.
#   snakemake --cores 2 --config experiment=edge-digits      # plan + run an experiment
#   snakemake --cores 2 artifacts/<alias>/<key>/outputs.json  # one planned invocation
import glob

for _smk in sorted(glob.glob(str(workflow.basedir) + "/workflows/rules/*.smk")):
    include: _smk

if config.get("experiment"):
    # defined here, in the main Snakefile: only its rules can be the default target
    rule all:
        default_target: True
        input:
            efflab_experiment_targets(config["experiment"], bool(config.get("quick"))),
