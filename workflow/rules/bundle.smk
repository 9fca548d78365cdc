# Rule of the release bundle; input functions live in common.smk ("bundle, restore" block).
# `snakemake bundle` (not part of `all`) packs every model's final.pt, train_log.csv and meta.json and
# every table of results/tables into results/bundle/stemlab-bundle.tar (stemlab.bundle.pack: deterministic,
# manifest.json first) and writes its sha256 beside it; config `restore: {url, sha256}` restores from it.


rule bundle:
    input:
        unpack(bundle_inputs),
    output:
        tar=BUNDLE_TAR,
        sha256=BUNDLE_TAR_SHA256,
    log:
        "logs/bundle/bundle.log",
    conda:
        "../../envs/core.yaml"
    resources:
        mem_mb=mem_mb(2000),
        runtime=runtime_min(60),
        slurm_partition=cpu_partition(),
    params:
        digest=config_digest,
    shell:
        "python -m stemlab.bundle --quiet pack --out {output.tar} --config-digest {params.digest}"
        " {input} > {log} 2>&1"
