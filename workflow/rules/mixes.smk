# Rules that mix held-out songs with a trained model (input functions in common.smk, "models" block).
# mix_megami mixes every test song that has dry tracks, whole, with the megami model of one seed (its
# upstream clap, fx_encoder, domain_adaptor, fx_generator and fxprocessor), into one folder per seed:
# results/mixes/megami/seed-<s>/<corpus>/<song>.flac and index.csv. It runs with megami's eval resources.


rule mix_megami:
    input:
        unpack(megami_mix_inputs),
    output:
        directory("results/mixes/megami/seed-{seed}"),
    log:
        "logs/mixes/mix_megami/seed-{seed}.log",
    wildcard_constraints:
        seed=SEED_RE,
    conda:
        "../../envs/train.yaml"
    threads: megami_mix_threads
    resources:
        gpu=megami_mix_resource("gpu"),
        gpu_model=megami_mix_resource("gpu_model"),
        slurm_partition=megami_mix_resource("slurm_partition"),
        mem_mb=megami_mix_resource("mem_mb"),
        runtime=megami_mix_resource("runtime"),
    params:
        job=megami_mix_job,
        model_dir=lambda wildcards, input: str(Path(input.model).parent),
    shell:
        "python -m stemlab.megami.mix_songs --config {params.job} --model-dir {params.model_dir} --out {output} > {log} 2>&1"
