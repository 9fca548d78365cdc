# Helpers shared by every stage: the stemlab import path, config checking, shard lists and
# the input functions of the target rules. Rules live in the per-stage files; logic in scripts/stemlab.
import sys
from pathlib import Path

sys.path.insert(0, str(Path(workflow.basedir) / "scripts"))

from stemlab.config import check_config  # noqa: E402  (cheap: yaml + jsonschema)
from stemlab import plan  # noqa: E402

CONFIG_SCHEMA = Path(workflow.basedir) / "workflow" / "schemas" / "config.schema.yaml"

# Every rule runs the stemlab CLI with the package on PYTHONPATH, so it works inside a conda env
# that does not have stemlab installed.
STEMLAB = f"PYTHONPATH={Path(workflow.basedir) / 'scripts'}${{PYTHONPATH:+:$PYTHONPATH}} python -m stemlab"


# --------------------------------------------------------------------------- synthetic data


def synth_shards():
    s = config["synth"]
    return plan.shard_names(s["songs"], s["shard_size"])


def synth_targets():
    return []


# --------------------------------------------------------------------------- corpora + preprocessing


def data_targets():
    return []


# --------------------------------------------------------------------------- models


def train_targets():
    return []


def evaluate_targets():
    return []


def figure_targets():
    return []


def all_targets():
    return (
        synth_targets()
        + data_targets()
        + train_targets()
        + evaluate_targets()
        + figure_targets()
    )


# --------------------------------------------------------------------------- cluster resources
# Memory and runtime grow with the attempt, so a retried job asks SLURM for more.


def mem_mb(base):
    return lambda wildcards, attempt: int(base) * attempt


def runtime_min(base):
    return lambda wildcards, attempt: int(base) * attempt


def cpu_partition():
    return config["cluster"]["cpu_partition"]


def gpu_partition():
    return config["cluster"]["gpu_partition"]
