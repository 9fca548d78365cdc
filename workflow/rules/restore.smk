# Rules of the restore path, included instead of train.smk when config restore.url is set (common.smk
# "bundle, restore" block): the models come from a released bundle, everything downstream reruns from them.
#   resources/bundle/stemlab-bundle.tar      download_bundle: restore.url, checked against restore.sha256
#                                            (bytes resumable in resources/downloads/bundle/), then every
#                                            member against its manifest.json; a failed check leaves nothing
#   results/models/<model>/seed-<s>/         restore_model: final.pt, train_log.csv, meta.json of one row
#                                            and seed, once the bundled model's task, settings and loop
#                                            match this config's train job
#   results/restore/tables_check.csv         check_restored_tables: the regenerated tables against the bundled


rule download_bundle:
    output:
        RESTORED_TAR,
    log:
        "logs/restore/download_bundle.log",
    localrule: True
    conda:
        "../../envs/core.yaml"
    params:
        args=download_bundle_args,
    shell:
        "python -m stemlab.bundle fetch {params.args} --out {output} > {log} 2>&1"


rule restore_model:
    input:
        RESTORED_TAR,
    output:
        weights="results/models/{model}/seed-{seed}/final.pt",
        log_csv=report(
            "results/models/{model}/seed-{seed}/train_log.csv",
            caption="../report/train_log.rst",
            category="Training",
            subcategory="{model}",
            labels={
                "model": "{model}",
                "seed": "{seed}",
                "log": "training (restored)",
            },
        ),
        meta="results/models/{model}/seed-{seed}/meta.json",
    log:
        "logs/restore/restore_model/{model}/seed-{seed}.log",
    wildcard_constraints:
        model=model_re(),
        seed=SEED_RE,
    localrule: True
    conda:
        "../../envs/core.yaml"
    params:
        job=model_job("train"),
        out=output_dir,
    shell:
        "python -m stemlab.bundle restore --bundle {input} --model {wildcards.model} --seed {wildcards.seed}"
        " --job {params.job} --out {params.out} > {log} 2>&1"


rule check_restored_tables:
    input:
        bundle=RESTORED_TAR,
        tables=bundle_tables,
    output:
        report(
            RESTORE_TABLES_CHECK,
            caption="../report/restore_check.rst",
            category="Restore",
            labels={"table": "bundled vs regenerated"},
        ),
    log:
        "logs/restore/check_restored_tables.log",
    localrule: True
    conda:
        "../../envs/core.yaml"
    shell:
        "python -m stemlab.bundle compare --bundle {input.bundle} --out {output} {input.tables} > {log} 2>&1"
