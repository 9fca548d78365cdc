# Rules of the figures stage; input functions live in common.smk. Figures only read result tables.


rule figure_fxprocessor_eval:
    input:
        rows=eval_items("fxprocessor"),
        code=figure_code("megami/figure.py"),
    output:
        pdf=report(
            "results/figures/fxprocessor_eval.pdf",
            caption="../report/fxprocessor_eval.rst",
            category="MEGAMI",
            labels={"figure": "fxprocessor_eval"},
        ),
        png="results/figures/fxprocessor_eval.png",
    log:
        "logs/figures/figure_fxprocessor_eval.log",
    localrule: True
    conda:
        "../../envs/figures.yaml"
    shell:
        "python -m stemlab.megami.figure --items {input.rows} --out {output.pdf} > {log} 2>&1"


rule figure_megami_mix:
    input:
        table="results/tables/megami.csv",
        rows=eval_items("megami"),
        code=figure_code("megami/mix_figure.py"),
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
        rows=eval_items("relations"),
        code=figure_code("relations/figure.py"),
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
        "python -m stemlab.relations.figure --items {input.rows} --out {output.pdf} > {log} 2>&1"


rule figure_mixer:
    input:
        table="results/tables/mixer.csv",
        code=figure_code("mixer/figure.py"),
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
        "python -m stemlab.mixer.figure --table {input.table} --out {output.pdf} > {log} 2>&1"


rule figure_stage:
    input:
        table="results/tables/stage.csv",
        rows=eval_items("stage"),
        code=figure_code("stage/figure.py"),
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


rule figure_clap_retrieval:
    input:
        table="results/tables/clap.csv",
        code=figure_code("paper/clap_figure.py"),
    output:
        pdf=report(
            "results/figures/clap_retrieval.pdf",
            caption="../report/clap_retrieval.rst",
            category="CLAP",
            labels={"figure": "clap_retrieval"},
        ),
        png="results/figures/clap_retrieval.png",
    log:
        "logs/figures/figure_clap_retrieval.log",
    localrule: True
    conda:
        "../../envs/figures.yaml"
    shell:
        "python -m stemlab.paper.clap_figure --table {input.table} --out {output.pdf} > {log} 2>&1"


rule figure_fx_encoder_probe:
    input:
        table="results/tables/fx_encoder.csv",
        code=figure_code("paper/fx_probe_figure.py"),
    output:
        pdf=report(
            "results/figures/fx_encoder_probe.pdf",
            caption="../report/fx_encoder_probe.rst",
            category="MEGAMI",
            labels={"figure": "fx_encoder_probe"},
        ),
        png="results/figures/fx_encoder_probe.png",
    log:
        "logs/figures/figure_fx_encoder_probe.log",
    localrule: True
    conda:
        "../../envs/figures.yaml"
    shell:
        "python -m stemlab.paper.fx_probe_figure --table {input.table} --out {output.pdf} > {log} 2>&1"


rule figure_synth_validity:
    input:
        table="results/tables/synth_validity.csv",
        songs="results/tables/synth_validity_songs.csv",
        targets=paper_file("targets.yaml"),
        code=figure_code("paper/validity_figure.py"),
    output:
        pdf=report(
            "results/figures/synth_validity.pdf",
            caption="../report/synth_validity.rst",
            category="Synthetic data",
            labels={"figure": "synth_validity"},
        ),
        png="results/figures/synth_validity.png",
    log:
        "logs/figures/figure_synth_validity.log",
    localrule: True
    conda:
        "../../envs/figures.yaml"
    shell:
        "python -m stemlab.paper.validity_figure --table {input.table} --songs {input.songs} "
        "--targets {input.targets} --out {output.pdf} > {log} 2>&1"


rule figure_training_curves:
    input:
        logs=training_logs(),
        code=figure_code("paper/training_figure.py"),
    output:
        pdf=report(
            "results/figures/training_curves.pdf",
            caption="../report/training_curves.rst",
            category="Training",
            labels={"figure": "training_curves"},
        ),
        png="results/figures/training_curves.png",
    log:
        "logs/figures/figure_training_curves.log",
    localrule: True
    conda:
        "../../envs/figures.yaml"
    shell:
        "python -m stemlab.paper.training_figure --logs {input.logs} --out {output.pdf} > {log} 2>&1"


rule figure_rulegraph:
    input:
        snakefile=workflow_snakefile(),
        rules=rulegraph_sources(),
    output:
        pdf=report(
            "results/figures/rulegraph.pdf",
            caption="../report/rulegraph.rst",
            category="Rule graph",
            labels={"figure": "rulegraph"},
        ),
        png="results/figures/rulegraph.png",
        dot="results/figures/rulegraph.dot",
    log:
        "logs/figures/figure_rulegraph.log",
    localrule: True
    conda:
        "../../envs/paper.yaml"
    params:
        configfiles=rulegraph_configfiles(),
    shell:
        "python -m stemlab.paper.rulegraph --snakefile {input.snakefile} "
        "--configfile {params.configfiles} --out {output.pdf} > {log} 2>&1"
