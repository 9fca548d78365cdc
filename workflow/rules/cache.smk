# Rules of the embedding cache; input functions live in common.smk ("cache" block).
# cache_embeddings embeds, with one encoder's final.pt, every window of config `cache.windows` that later
# models read in one corpus shard: each stem's wet and (where present) dry audio and the song's mix, into
# results/cache/<encoder>/<corpus>/<shard>.parquet (stemlab.encoders.cache; read back with read_cache).


rule cache_embeddings:
    input:
        unpack(cache_job_inputs),
    output:
        "results/cache/{encoder}/{corpus}/{shard}.parquet",
    log:
        "logs/cache/cache_embeddings/{encoder}/{corpus}/{shard}.log",
    wildcard_constraints:
        encoder=cache_encoder_re(),
        corpus=DATA_CORPUS_RE,
        shard=DATA_SHARD_RE,
    conda:
        "../../envs/train.yaml"
    threads: cache_threads
    resources:
        gpu=cache_resource("gpu"),
        gpu_model=cache_resource("gpu_model"),
        slurm_partition=cache_resource("slurm_partition"),
        mem_mb=cache_resource("mem_mb"),
        runtime=cache_resource("runtime"),
    params:
        job=cache_job,
    shell:
        "python -m stemlab.encoders.cache --config {params.job} --workers {threads} --out {output} > {log} 2>&1"
