# Rules of the evaluate stage; input functions live in common.smk ("models" block).
# evaluate_model scores one trained (model, seed) on held-out items against the task's baselines
# (results/eval/<model>/seed-<s>/items.parquet: long rows system, metric, value, item); summarize_model
# turns the rows of every seed into the model's table (mean and 95 % bootstrap CI over seeds and items).


rule evaluate_model:
    input:
        unpack(model_eval_inputs),
    output:
        rows="results/eval/{model}/seed-{seed}/items.parquet",
        meta="results/eval/{model}/seed-{seed}/meta.json",
    log:
        "logs/evaluate/evaluate_model/{model}/seed-{seed}.log",
    wildcard_constraints:
        model=model_re(),
        seed=SEED_RE,
    conda:
        "../../envs/train.yaml"
    threads: model_threads("eval")
    resources:
        gpu=model_resource("eval", "gpu"),
        gpu_model=model_resource("eval", "gpu_model"),
        slurm_partition=model_resource("eval", "slurm_partition"),
        mem_mb=model_resource("eval", "mem_mb"),
        runtime=model_resource("eval", "runtime"),
    params:
        name=model_name,
        job=model_job("eval"),
        model_dir=lambda wildcards, input: str(Path(input.model).parent),
        out=output_dir,
    shell:
        "python -m stemlab.evaluate {params.name} --config {params.job} --model-dir {params.model_dir}"
        " --out {params.out} > {log} 2>&1"


rule summarize_model:
    input:
        model_summary_inputs,
    output:
        report(
            "results/tables/{model}.csv",
            caption="../report/model_table.rst",
            category="Evaluation",
            subcategory="{model}",
            labels={"model": "{model}", "table": "summary"},
        ),
    log:
        "logs/evaluate/summarize_model/{model}.log",
    wildcard_constraints:
        model=model_name_re(),
    conda:
        "../../envs/train.yaml"
    resources:
        mem_mb=mem_mb(2000),
        runtime=runtime_min(15),
        slurm_partition=cpu_partition(),
    params:
        job=model_summary_job,
        caption=model_caption,
    shell:
        "python -m stemlab.evaluate.summary --config {params.job} --out {output} {input} > {log} 2>&1"


rule relations_examples:
    input:
        unpack(relations_example_inputs),
    output:
        directory("results/generated/relations"),
    log:
        "logs/evaluate/relations_examples.log",
    conda:
        "../../envs/train.yaml"
    resources:
        mem_mb=mem_mb(4000),
        runtime=runtime_min(30),
        slurm_partition=cpu_partition(),
    params:
        models=relations_example_models,
        pairs=lambda wildcards: config["models"]["relations"]["eval"]["examples"],
        encoder=relations_example_encoder,
    shell:
        "python -m stemlab.relations examples --models {params.models} --codebooks {input.codebooks} {params.encoder}"
        " --stems-root results/data/stems --pairs {params.pairs} --out {output} > {log} 2>&1"


rule generate_stage:
    input:
        unpack(stage_generate_inputs),
    output:
        directory("results/generated/stage/{target}/seed-{seed}"),
    log:
        "logs/evaluate/generate_stage/{target}/seed-{seed}.log",
    wildcard_constraints:
        target=STAGE_TARGET_RE,
        seed=SEED_RE,
    conda:
        "../../envs/train.yaml"
    threads: stage_generate_threads
    resources:
        gpu=stage_generate_resource("gpu"),
        gpu_model=stage_generate_resource("gpu_model"),
        slurm_partition=stage_generate_resource("slurm_partition"),
        mem_mb=stage_generate_resource("mem_mb"),
        runtime=stage_generate_resource("runtime"),
    params:
        job=stage_generate_job,
        model_dir=lambda wildcards, input: str(Path(input.model).parent),
    shell:
        "python -m stemlab.stage heldout --config {params.job} --model-dir {params.model_dir} --out {output} > {log} 2>&1"
