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


rule figure_megami_mix:
    input:
        table="results/tables/megami.csv",
        rows=eval_items("megami"),
    output:
        pdf=report(
            "results/figures/megami_mix.pdf",
            caption="../report/megami_mix.rst",
            category="MEGAMI",
            labels={"figure": "megami_mix"},
        ),
        png="results/figures/megami_mix.png",
    log:
        "logs/figures/figure_megami_mix.log",
    localrule: True
    conda:
        "../../envs/figures.yaml"
    shell:
        "python -m stemlab.megami.mix_figure --table {input.table} --items {input.rows} --out {output.pdf} > {log} 2>&1"


rule figure_relations:
    input:
        eval_items("relations"),
    output:
        pdf=report(
            "results/figures/relations.pdf",
            caption="../report/relations.rst",
            category="Track relationships",
            labels={"figure": "relations"},
        ),
        png="results/figures/relations.png",
    log:
        "logs/figures/figure_relations.log",
    localrule: True
    conda:
        "../../envs/figures.yaml"
    shell:
        "python -m stemlab.relations.figure --items {input} --out {output.pdf} > {log} 2>&1"


rule figure_mixer:
    input:
        "results/tables/mixer.csv",
    output:
        pdf=report(
            "results/figures/mixer.pdf",
            caption="../report/mixer.rst",
            category="Instruction mixer",
            labels={"figure": "mixer"},
        ),
        png="results/figures/mixer.png",
    log:
        "logs/figures/figure_mixer.log",
    localrule: True
    conda:
        "../../envs/figures.yaml"
    shell:
        "python -m stemlab.mixer.figure --table {input} --out {output.pdf} > {log} 2>&1"


rule figure_stage:
    input:
        table="results/tables/stage.csv",
        rows=eval_items("stage"),
    output:
        pdf=report(
            "results/figures/stage.pdf",
            caption="../report/stage.rst",
            category="Stage accompaniment",
            labels={"figure": "stage"},
        ),
        png="results/figures/stage.png",
    log:
        "logs/figures/figure_stage.log",
    localrule: True
    conda:
        "../../envs/figures.yaml"
    shell:
        "python -m stemlab.stage.figure --table {input.table} --items {input.rows} --out {output.pdf} > {log} 2>&1"
