# Rules of the paper stage: the benchmark table, the numbers of the text and the compiled paper; input
# functions live in common.smk. They read result tables and figures, never recompute.


rule benchmark:
    input:
        tables=paper_tables(),
        targets=paper_file("targets.yaml"),
    output:
        csv=report(
            "results/tables/benchmark.csv",
            caption="../report/benchmark.rst",
            category="Paper",
            labels={"table": "benchmark"},
        ),
        tex="results/tables/benchmark.tex",
    log:
        "logs/paper/benchmark.log",
    localrule: True
    conda:
        "../../envs/paper.yaml"
    params:
        corpora=paper_corpora(),
    shell:
        "python -m stemlab.paper.benchmark --tables {input.tables} --targets {input.targets} "
        "--corpora {params.corpora} --out {output.csv} --tex {output.tex} > {log} 2>&1"


rule paper_numbers:
    input:
        table="results/tables/{table}.csv",
        targets=paper_file("targets.yaml"),
    output:
        "results/paper/numbers/{table}.tex",
    log:
        "logs/paper/numbers/{table}.log",
    wildcard_constraints:
        table="|".join(paper_number_tables()),
    localrule: True
    conda:
        "../../envs/paper.yaml"
    shell:
        "python -m stemlab.paper.numbers table --table {input.table} --targets {input.targets} "
        "--out {output} > {log} 2>&1"


rule paper_numbers_index:
    output:
        "results/paper/numbers.tex",
    log:
        "logs/paper/numbers_index.log",
    localrule: True
    conda:
        "../../envs/paper.yaml"
    params:
        names=paper_number_tables(),
    shell:
        "python -m stemlab.paper.numbers index --names {params.names} --out {output} > {log} 2>&1"


rule paper:
    input:
        tex=paper_file("main.tex"),
        index="results/paper/numbers.tex",
        numbers=expand("results/paper/numbers/{table}.tex", table=paper_number_tables()),
        benchmark="results/tables/benchmark.tex",
        figures=paper_figures(),
    output:
        report(
            "results/paper/paper.pdf",
            caption="../report/paper.rst",
            category="Paper",
            labels={"document": "paper"},
        ),
    log:
        "logs/paper/paper.log",
    localrule: True
    conda:
        "../../envs/paper.yaml"
    shell:
        "python -m stemlab.paper.compile --tex {input.tex} --index {input.index} --numbers {input.numbers} "
        "--benchmark {input.benchmark} --figures {input.figures} --out {output} > {log} 2>&1"
