"""stemlab: a multitrack-music ML paper reproduced as one Snakemake DAG."""

__version__ = "0.1.0"
