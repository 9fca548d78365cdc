# Rules of the train stage; input functions live in common.smk ("models" block).
# One rule trains every model of config `models:` per seed through its task (stemlab.train.run): it
# checkpoints to <model>/seed-<s>/checkpoints/ every N steps, every M seconds and on SIGTERM/SIGUSR1
# (SLURM preemption), and a re-run resumes from the newest checkpoint. Checkpoints are not outputs, so
# Snakemake keeps them when a job fails or is requeued. With config restore.url set, restore.smk is
# included instead: restore_model writes the same files from a released bundle.


rule train_model:
    input:
        unpack(model_train_inputs),
    output:
        weights="results/models/{model}/seed-{seed}/final.pt",
        log_csv=report(
            "results/models/{model}/seed-{seed}/train_log.csv",
            caption="../report/train_log.rst",
            category="Training",
            subcategory="{model}",
            labels={"model": "{model}", "seed": "{seed}", "log": "training"},
        ),
        meta="results/models/{model}/seed-{seed}/meta.json",
    log:
        "logs/train/train_model/{model}/seed-{seed}.log",
    wildcard_constraints:
        model=model_re(),
        seed=SEED_RE,
    conda:
        "../../envs/train.yaml"
    threads: model_threads("train")
    resources:
        gpu=model_resource("train", "gpu"),
        gpu_model=model_resource("train", "gpu_model"),
        slurm_partition=model_resource("train", "slurm_partition"),
        mem_mb=model_resource("train", "mem_mb"),
        runtime=model_resource("train", "runtime"),
    params:
        name=model_name,
        job=model_job("train"),
        out=output_dir,
    shell:
        "python -m stemlab.train {params.name} --config {params.job} --out {params.out} > {log} 2>&1"
