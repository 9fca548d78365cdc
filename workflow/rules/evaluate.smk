# Rules of the evaluate stage; input functions live in common.smk.


rule evaluate_fxprocessor:
    input:
        model=f"{FXPROCESSOR_DIR}/final.pt",
        segments=fxprocessor_segments(),
    output:
        metrics="results/eval/fxprocessor/metrics.parquet",
        summary="results/tables/fxprocessor_eval.csv",
        meta="results/eval/fxprocessor/meta.json",
    log:
        "logs/evaluate/evaluate_fxprocessor.log",
    conda:
        "../../envs/train.yaml"
    threads: 2
    resources:
        gpu=config["cluster"]["gpus_per_job"],
        gpu_model=config["cluster"]["gpu_model"],
        slurm_partition=gpu_partition(),
        mem_mb=mem_mb(fxprocessor_resources("mem_mb", "eval")),
        runtime=runtime_min(fxprocessor_resources("runtime_min", "eval")),
    params:
        args=fxprocessor_eval_args(),
        device=config["train"]["device"],
        cpu_threads=config["train"]["cpu_threads"],
    shell:
        "python -m stemlab.evaluate fxprocessor --model-file {input.model} --segments {input.segments}"
        " --stems-root results/data/stems {params.args} --device {params.device} --cpu-threads {params.cpu_threads}"
        " --out-items {output.metrics} --out-summary {output.summary} --out-meta {output.meta} > {log} 2>&1"
