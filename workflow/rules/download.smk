# Rules of the download stage; input functions live in common.smk ("downloads" block).
#
# Outputs (consumers: data.smk reads corpora, synth.smk soundfonts, the models' jobs pretrained snapshots):
#   resources/downloads/<corpus>/<file>     download_corpus: the archive named by data.corpora.<corpus>.url,
#                                           sha256-verified; bytes arrive in <file>.part (resumed on re-run)
#   resources/corpora/<corpus>/             extract_corpus: the archive's contents in its own layout (a
#                                           wrapping top folder is kept: find songs by their marker files),
#                                           or, when data.corpora.<corpus>.path is a folder, real folders
#                                           of symlinks to its files (re-linked when the folder's file list,
#                                           sizes or mtimes change); plus .stemlab-source.json (provenance).
#                                           An enabled corpus with neither path nor url fails here with one
#                                           line saying where to get it and which key to set.
#   resources/pretrained/<name>/            download_pretrained: every file of pretrained.<name>.files (path, url,
#                                           sha256), bytes resumable in resources/downloads/pretrained/<name>/;
#                                           .stemlab-source.json lists their sha256s; `downloads` fetches
#                                           the snapshots enabled models read, any other by its folder
#   resources/soundfonts/<name>.sf2         download_soundfont: an entry {name, url, sha256} of soundfonts
# Corpus names: moisesdb, musdb18hq, medleydb (data.corpora), groove, lakh (synth.corpora: the MIDI
# corpora of synth.sources) (DOWNLOAD_CORPORA).


rule downloads:
    input:
        download_targets(),


rule download_corpus:
    output:
        "resources/downloads/{corpus}/{file}",
    log:
        "logs/download/download_corpus/{corpus}/{file}.log",
    wildcard_constraints:
        corpus=DOWNLOAD_CORPUS_RE,
        file=DOWNLOAD_NAME_RE,
    localrule: True
    conda:
        "../../envs/core.yaml"
    params:
        args=download_corpus_args,
    shell:
        "python -m stemlab.download fetch {params.args} --out {output} > {log} 2>&1"


rule extract_corpus:
    input:
        extract_corpus_input,
    output:
        directory("resources/corpora/{corpus}"),
    log:
        "logs/download/extract_corpus/{corpus}.log",
    wildcard_constraints:
        corpus=DOWNLOAD_CORPUS_RE,
    conda:
        "../../envs/core.yaml"
    resources:
        mem_mb=mem_mb(2000),
        runtime=runtime_min(240),
        slurm_partition=cpu_partition(),
    params:
        args=extract_corpus_args,
        folder=extract_corpus_fingerprint,
    shell:
        "python -m stemlab.download corpus --name {wildcards.corpus} {params.args} --out {output} > {log} 2>&1"


rule download_pretrained:
    output:
        directory("resources/pretrained/{name}"),
    log:
        "logs/download/download_pretrained/{name}.log",
    wildcard_constraints:
        name=DOWNLOAD_NAME_RE,
    localrule: True
    conda:
        "../../envs/core.yaml"
    params:
        args=download_pretrained_args,
    shell:
        "python -m stemlab.download pretrained --name {wildcards.name} {params.args} --out {output} > {log} 2>&1"


rule download_soundfont:
    output:
        "resources/soundfonts/{name}.sf2",
    log:
        "logs/download/download_soundfont/{name}.log",
    wildcard_constraints:
        name=DOWNLOAD_NAME_RE,
    localrule: True
    conda:
        "../../envs/core.yaml"
    params:
        args=download_soundfont_args,
    shell:
        "python -m stemlab.download fetch {params.args} --out {output} > {log} 2>&1"
