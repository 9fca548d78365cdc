# Rules of Stage (accompaniment generation); input functions live in common.smk ("stage" block).
# tokenize_stage encodes one corpus shard with the codec model's final.pt (stage_tokens.codec, its first
# seed unless stage_tokens.seed): per song the target stems, the context stems and a metronome click track,
# into results/stage/tokens/<corpus>/<shard>.parquet (stemlab.stage.tokenize; read back with
# stemlab.stage.tokens.read_tokens). It runs with the codec's evaluate resources.


rule tokenize_stage:
    input:
        unpack(stage_token_inputs),
    output:
        "results/stage/tokens/{corpus}/{shard}.parquet",
    log:
        "logs/stage/tokenize_stage/{corpus}/{shard}.log",
    wildcard_constraints:
        corpus=DATA_CORPUS_RE,
        shard=DATA_SHARD_RE,
    conda:
        "../../envs/train.yaml"
    threads: stage_token_threads
    resources:
        gpu=stage_token_resource("gpu"),
        gpu_model=stage_token_resource("gpu_model"),
        slurm_partition=stage_token_resource("slurm_partition"),
        mem_mb=stage_token_resource("mem_mb"),
        runtime=stage_token_resource("runtime"),
    params:
        job=stage_token_job,
    shell:
        "python -m stemlab.stage.tokenize --config {params.job} --out {output} > {log} 2>&1"
