# Rules of the synth stage; input functions live in common.smk.


# --------------------------------------------------------------------------- generation
# results/synth/shards/<shard>/   synth_shard: songs of one shard (canonical song directories) + manifest.parquet;
#                                 written to a temp dir beside it and renamed when complete
# results/synth/manifest.parquet  synth_manifest: one row per song, all shards


rule synth_shard:
    input:
        soundfonts=synth_soundfont_downloads(),
        genres=synth_genre_files(),
        corpora=synth_corpus_dirs(),
        composer=synth_composer_model(),
    output:
        directory("results/synth/shards/{shard}"),
    log:
        "logs/synth/synth_shard/{shard}.log",
    wildcard_constraints:
        shard="shard-[0-9]{5}",
    conda:
        "../../envs/synth.yaml"
    threads: synth_workers()
    resources:
        mem_mb=mem_mb(1500 + 2500 * synth_workers()),
        runtime=runtime_min(synth_shard_runtime_min()),
        slurm_partition=cpu_partition(),
    params:
        config=synth_shard_config(),
        corpora=synth_corpus_args(),
    shell:
        "python -m stemlab.synth generate --shard {wildcards.shard} --out {output} "
        "--workers {threads} --config {params.config} {params.corpora} > {log} 2>&1"


rule synth_manifest:
    input:
        synth_shard_dirs(),
    output:
        SYNTH_MANIFEST,
    log:
        "logs/synth/synth_manifest.log",
    conda:
        "../../envs/synth.yaml"
    resources:
        mem_mb=mem_mb(1000),
        runtime=runtime_min(10),
        slurm_partition=cpu_partition(),
    shell:
        "python -m stemlab.synth manifest --out {output} {input} > {log} 2>&1"


# --------------------------------------------------------------------------- validity, figures, export
# results/tables/synth_validity.csv        synth_validity: beat F / note accuracy per genre, time signature, overall
# results/tables/synth_validity_songs.csv  synth_validity: the same per song
# results/synth/songs.parquet, stems.parquet  synth_stats: per-song / per-stem tables from song.json
# results/figures/synth_distributions.pdf  synth_figure (plots the synth_stats tables)
# results/synth/audiofolder/               synth_export (optional target): Hugging Face audiofolder


rule synth_validity:
    input:
        SYNTH_MANIFEST,
    output:
        table=report(
            "results/tables/synth_validity.csv",
            caption="../report/synth_validity_table.rst",
            category="Synthetic data",
            labels={"table": "synth_validity"},
        ),
        songs="results/tables/synth_validity_songs.csv",
    log:
        "logs/synth/synth_validity.log",
    conda:
        "../../envs/synth.yaml"
    threads: 8
    resources:
        mem_mb=mem_mb(8000),
        runtime=runtime_min(120),
        slurm_partition=cpu_partition(),
    params:
        config=synth_validity_config(),
    shell:
        "python -m stemlab.synth validity --manifest {input} --out {output.table} "
        "--songs-out {output.songs} --config {params.config} --workers {threads} > {log} 2>&1"


rule synth_stats:
    input:
        SYNTH_MANIFEST,
    output:
        songs="results/synth/songs.parquet",
        stems="results/synth/stems.parquet",
    log:
        "logs/synth/synth_stats.log",
    conda:
        "../../envs/synth.yaml"
    resources:
        mem_mb=mem_mb(2000),
        runtime=runtime_min(30),
        slurm_partition=cpu_partition(),
    shell:
        "python -m stemlab.synth stats --manifest {input} --songs-out {output.songs} "
        "--stems-out {output.stems} > {log} 2>&1"


rule synth_figure:
    input:
        songs="results/synth/songs.parquet",
        stems="results/synth/stems.parquet",
        code=figure_code("synth/figure.py"),
    output:
        pdf=report(
            "results/figures/synth_distributions.pdf",
            caption="../report/synth_distributions.rst",
            category="Synthetic data",
            labels={"figure": "synth_distributions"},
        ),
        png="results/figures/synth_distributions.png",
    log:
        "logs/synth/synth_figure.log",
    localrule: True
    conda:
        "../../envs/figures.yaml"
    shell:
        "python -m stemlab.synth.figure --songs {input.songs} --stems {input.stems} "
        "--out {output.pdf} > {log} 2>&1"


rule synth_export:
    input:
        SYNTH_MANIFEST,
    output:
        directory("results/synth/audiofolder"),
    log:
        "logs/synth/synth_export.log",
    conda:
        "../../envs/synth.yaml"
    resources:
        mem_mb=mem_mb(2000),
        runtime=runtime_min(120),
        slurm_partition=cpu_partition(),
    shell:
        "python -m stemlab.synth export --manifest {input} --out {output} "
        "--stems wet,dry > {log} 2>&1"
