# Rules of the figures stage; input functions live in common.smk. Figures only read result tables.


rule figure_fxprocessor_eval:
    input:
        eval_items("fxprocessor"),
    output:
        report(
            "results/figures/fxprocessor_eval.pdf",
            caption="../report/fxprocessor_eval.rst",
            category="MEGAMI",
            labels={"figure": "fxprocessor_eval"},
        ),
    log:
        "logs/figures/figure_fxprocessor_eval.log",
    localrule: True
    conda:
        "../../envs/figures.yaml"
    shell:
        "python -m stemlab.megami.figure --items {input} --out {output} > {log} 2>&1"
