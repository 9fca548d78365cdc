# Rules of the data stage; input functions live in common.smk ("corpora + preprocessing" block).
#
# Outputs (layout contract: results/README.md):
#   results/data/stems/<corpus>/<shard>/           canonical_stems (real corpora, from resources/corpora/<corpus>)
#                                                   or canonical_stems_synthetic (hard links to results/synth/shards)
#   results/data/features/<corpus>/<shard>.parquet  preprocess: essentia + loudness features per song
#   results/data/segments/<corpus>/shards/<shard>.parquet  segments_shard: rows of every model window
#   results/data/segments/<corpus>/<window>.parquet  segments: one window's segment table (data.segments)
#   results/data/splits/<corpus>.parquet            splits: song -> split (+ duration, categories)
#   results/tables/corpora.csv, results/figures/corpora.pdf   corpora_table, corpora_figure


rule canonical_stems:
    input:
        data_corpus_root,
    output:
        directory("results/data/stems/{corpus}/{shard}"),
    log:
        "logs/data/canonical_stems/{corpus}/{shard}.log",
    wildcard_constraints:
        corpus=DATA_REAL_RE,
        shard=DATA_SHARD_RE,
    conda:
        "../../envs/data.yaml"
    resources:
        mem_mb=mem_mb(4000),
        runtime=runtime_min(120),
        slurm_partition=cpu_partition(),
    params:
        config=data_stems_config,
    shell:
        "python -m stemlab.data stems --corpus {wildcards.corpus} --root {input} "
        "--shard {wildcards.shard} --config {params.config} --out {output} > {log} 2>&1"


rule canonical_stems_synthetic:
    input:
        "results/synth/shards/{shard}",
    output:
        directory("results/data/stems/synthetic/{shard}"),
    log:
        "logs/data/canonical_stems_synthetic/{shard}.log",
    wildcard_constraints:
        shard=DATA_SHARD_RE,
    conda:
        "../../envs/data.yaml"
    resources:
        mem_mb=mem_mb(1000),
        runtime=runtime_min(30),
        slurm_partition=cpu_partition(),
    params:
        config=data_synthetic_config,
    shell:
        "python -m stemlab.data synthetic --src {input} --shard {wildcards.shard} "
        "--config {params.config} --out {output} > {log} 2>&1"


rule preprocess:
    input:
        "results/data/stems/{corpus}/{shard}",
    output:
        "results/data/features/{corpus}/{shard}.parquet",
    log:
        "logs/data/preprocess/{corpus}/{shard}.log",
    wildcard_constraints:
        corpus=DATA_CORPUS_RE,
        shard=DATA_SHARD_RE,
    conda:
        "../../envs/data.yaml"
    resources:
        mem_mb=mem_mb(4000),
        runtime=runtime_min(120),
        slurm_partition=cpu_partition(),
    params:
        config=data_features_config,
    shell:
        "python -m stemlab.data features --stems {input} --config {params.config} --out {output} > {log} 2>&1"


rule segments_shard:
    input:
        "results/data/stems/{corpus}/{shard}",
    output:
        "results/data/segments/{corpus}/shards/{shard}.parquet",
    log:
        "logs/data/segments_shard/{corpus}/{shard}.log",
    wildcard_constraints:
        corpus=DATA_CORPUS_RE,
        shard=DATA_SHARD_RE,
    conda:
        "../../envs/data.yaml"
    resources:
        mem_mb=mem_mb(3000),
        runtime=runtime_min(60),
        slurm_partition=cpu_partition(),
    params:
        config=data_segments_config,
    shell:
        "python -m stemlab.data segments --stems {input} --config {params.config} --out {output} > {log} 2>&1"


rule segments:
    input:
        data_segment_shard_tables,
    output:
        "results/data/segments/{corpus}/{window}.parquet",
    log:
        "logs/data/segments/{corpus}/{window}.log",
    wildcard_constraints:
        corpus=DATA_CORPUS_RE,
        window=DATA_WINDOW_RE,
    conda:
        "../../envs/data.yaml"
    resources:
        mem_mb=mem_mb(4000),
        runtime=runtime_min(30),
        slurm_partition=cpu_partition(),
    shell:
        "python -m stemlab.data merge-segments --window {wildcards.window} --out {output} {input} > {log} 2>&1"


rule splits:
    input:
        data_stems_dirs,
    output:
        "results/data/splits/{corpus}.parquet",
    log:
        "logs/data/splits/{corpus}.log",
    wildcard_constraints:
        corpus=DATA_CORPUS_RE,
    conda:
        "../../envs/data.yaml"
    resources:
        mem_mb=mem_mb(2000),
        runtime=runtime_min(15),
        slurm_partition=cpu_partition(),
    shell:
        "python -m stemlab.data splits --out {output} {input} > {log} 2>&1"


rule corpora_table:
    input:
        data_split_tables(),
    output:
        report(
            "results/tables/corpora.csv",
            caption="../report/corpora_table.rst",
            category="Data",
            labels={"table": "corpora"},
        ),
    log:
        "logs/data/corpora_table.log",
    localrule: True
    conda:
        "../../envs/data.yaml"
    shell:
        "python -m stemlab.data summary --out {output} {input} > {log} 2>&1"


rule corpora_figure:
    input:
        table="results/tables/corpora.csv",
        code=figure_code("data/figure.py"),
    output:
        pdf=report(
            "results/figures/corpora.pdf",
            caption="../report/corpora.rst",
            category="Data",
            labels={"figure": "corpora"},
        ),
        png="results/figures/corpora.png",
    log:
        "logs/data/corpora_figure.log",
    localrule: True
    conda:
        "../../envs/figures.yaml"
    shell:
        "python -m stemlab.data.figure --table {input.table} --out {output.pdf} > {log} 2>&1"
