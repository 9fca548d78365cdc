# stemlab: the multitrack-music paper as one Snakemake DAG.
# Run: snakemake --profile profiles/local all   (demo scale, laptop)
#      snakemake --profile profiles/slurm all   (paper scale, cluster)
from pathlib import Path

from snakemake.utils import min_version, validate

min_version("9.0")


# the paper config, wherever the run's --directory is; --configfile files (demo, smoke) merge over it
configfile: str(Path(workflow.basedir) / "config" / "config.yaml")


include: "workflow/rules/common.smk"


check_config(config, CONFIG_SCHEMA)
validate(config, "workflow/schemas/config.schema.yaml")


include: "workflow/rules/download.smk"
include: "workflow/rules/synth.smk"
include: "workflow/rules/data.smk"


# the models are trained, or restored from a released bundle (config restore.url): one of the two
if restoring():

    include: "workflow/rules/restore.smk"

else:

    include: "workflow/rules/train.smk"


include: "workflow/rules/bundle.smk"
include: "workflow/rules/cache.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/mixes.smk"
include: "workflow/rules/stage.smk"
include: "workflow/rules/paper.smk"


rule all:
    default_target: True
    input:
        all_targets(),


rule synth:
    input:
        synth_targets(),


rule data:
    input:
        data_targets(),


rule train:
    input:
        train_targets(),


rule cache:
    input:
        cache_targets(),


rule evaluate:
    input:
        evaluate_targets(),


rule figures:
    input:
        figure_targets(),
