# Rules of the train stage; input functions live in common.smk.
# Training runs the shared loop (stemlab.train): it checkpoints to <model>/checkpoints/ every N steps,
# every M seconds and on SIGTERM/SIGUSR1 (SLURM preemption), and a re-run resumes from the newest
# checkpoint. Checkpoints are not outputs, so Snakemake keeps them when a job fails or is requeued.


rule train_fxprocessor:
    input:
        segments=fxprocessor_segments(),
    output:
        weights=f"{FXPROCESSOR_DIR}/final.pt",
        log_csv=f"{FXPROCESSOR_DIR}/train_log.csv",
        meta=f"{FXPROCESSOR_DIR}/meta.json",
    log:
        "logs/train/train_fxprocessor.log",
    conda:
        "../../envs/train.yaml"
    threads: 4
    resources:
        gpu=config["cluster"]["gpus_per_job"],
        gpu_model=config["cluster"]["gpu_model"],
        slurm_partition=gpu_partition(),
        mem_mb=mem_mb(fxprocessor_resources("mem_mb")),
        runtime=runtime_min(fxprocessor_resources("runtime_min")),
    params:
        settings=fxprocessor_settings(),
        seed=config["seed"],
        device=config["train"]["device"],
        cpu_threads=config["train"]["cpu_threads"],
        out=output_dir,
    shell:
        "python -m stemlab.train fxprocessor --segments {input.segments} --stems-root results/data/stems"
        " --settings {params.settings} --seed {params.seed} --device {params.device} --cpu-threads {params.cpu_threads}"
        " --out {params.out} > {log} 2>&1"
