# Helpers shared by every stage: the stemlab import path, config checking, shard lists and
# the input functions of the target rules. Rules live in the per-stage files; logic in scripts/stemlab.
import functools
import json
import re
import shlex
import sys
from pathlib import Path

sys.path.insert(0, str(Path(workflow.basedir) / "scripts"))

from stemlab.config import check_config  # noqa: E402  (cheap: yaml + jsonschema)
from stemlab import modelplan, plan  # noqa: E402
from stemlab.download import sources as dl_sources  # noqa: E402

CONFIG_SCHEMA = Path(workflow.basedir) / "workflow" / "schemas" / "config.schema.yaml"

# Rules run `python -m stemlab.<stage> ...`; the shell prefix puts the package on PYTHONPATH, so it
# works inside a conda env that does not have stemlab installed. Without conda (profiles/local,
# tests), `python` is the interpreter that runs Snakemake (the project's .venv), whatever the
# caller's PATH; with conda it is the rule's env.
SCRIPTS_DIR = Path(workflow.basedir) / "scripts"


def _uses_conda():
    settings = workflow.deployment_settings
    return settings is not None and any(
        m.name == "CONDA" for m in settings.deployment_method
    )


shell.prefix(
    "set -euo pipefail; "
    # the prefix is formatted like a shell command: its own braces are doubled
    + f"export PYTHONPATH={SCRIPTS_DIR}"
    + "${{PYTHONPATH:+:$PYTHONPATH}}; "
    + ("" if _uses_conda() else f"export PATH={Path(sys.executable).parent}:$PATH; ")
)


# --------------------------------------------------------------------------- synthetic data


def synth_shards():
    s = config["synth"]
    return plan.shard_names(s["songs"], s["shard_size"])


def synth_targets():
    return [SYNTH_MANIFEST, *SYNTH_ANALYSIS_TARGETS]


def synth_shard_dirs():
    return [f"results/synth/shards/{s}" for s in synth_shards()]


def _synth_soundfont_names():
    return set(dl_sources.soundfont_names(config))


def _resolve_soundfonts(entries):
    """The name of a top-level `soundfonts` download means its file; anything else is a path."""
    names = _synth_soundfont_names()
    return [soundfont_file(s) if s in names else s for s in entries]


def synth_soundfonts():
    """synth.soundfonts resolved."""
    return _resolve_soundfonts(config["synth"]["soundfonts"])


def synth_soundfont_pools():
    """synth.soundfont_pools resolved."""
    pools = config["synth"]["soundfont_pools"]
    return {family: _resolve_soundfonts(pools[family]) for family in sorted(pools)}


def synth_soundfont_downloads():
    """Downloaded soundfonts a shard job needs (system soundfonts such as FluidR3_GM are not inputs)."""
    names = _synth_soundfont_names()
    entries = [
        *config["synth"]["soundfonts"],
        *(s for pool in config["synth"]["soundfont_pools"].values() for s in pool),
    ]
    return sorted({soundfont_file(s) for s in entries if s in names})


def synth_genre_files():
    """synth.genre_files as paths: relative ones from the working directory when they exist there,
    else from the repository (config/genres/...). Inputs of the shard jobs: an edited file re-runs them.
    """
    out = []
    for f in config["synth"]["genre_files"]:
        path = Path(f)
        if not path.is_absolute() and not path.exists():
            path = Path(workflow.basedir) / f
        out.append(str(path))
    return out


# composition sources and their MIDI corpora (stemlab.synth.sources.midisource.CORPUS_OF)
SYNTH_SOURCE_CORPUS = {"groove": "groove", "midi_song": "lakh", "midi_chords": "lakh"}


def synth_corpora():
    """The MIDI corpora of the composition sources with weight above 0."""
    weights = config["synth"]["sources"]
    return sorted({c for s, c in SYNTH_SOURCE_CORPUS.items() if weights[s] > 0})


def synth_corpus_dirs():
    """resources/corpora/<corpus> of each used MIDI corpus: inputs of the shard jobs."""
    return [corpus_dir(c) for c in synth_corpora()]


def synth_corpus_args():
    """--corpus name=dir,... for the shard job ("" without MIDI sources)."""
    pairs = ",".join(f"{c}={corpus_dir(c)}" for c in synth_corpora())
    return f"--corpus {shlex.quote(pairs)}" if pairs else ""


def synth_composer_model():
    """The learned composer's final.pt (synth.composer.model), an input of every shard job. A model
    this run trains lies under results/models/ and reads this run's synthetic corpus: a cycle.
    """
    c = config["synth"]["composer"]
    if c["backend"] != "learned" or not c["model"]:
        return []
    if Path(c["model"]).parts[:2] == ("results", "models"):
        raise ValueError(
            f"synth.composer.model {c['model']}: a model of this run is trained on the corpus it would "
            "compose (a cycle); copy a final.pt of an earlier run elsewhere (e.g. resources/) and point at it"
        )
    return [c["model"]]


def synth_workers():
    return int(config["synth"]["workers"])


# The config is validated with the schema's defaults filled in (Snakefile), so the helpers below
# index it directly: a default lives in workflow/schemas/config.schema.yaml only.
def json_word(value):
    """A job's config as one shell word of JSON (`--config {params.config}`). Keys are sorted, so the
    params trigger sees only changes of value; pass only what can change the job's output.
    """
    return shlex.quote(json.dumps(value, sort_keys=True))


def synth_shard_config():
    """The synth_shard job's config: the synth section with the global seed and the soundfonts resolved,
    less what cannot change a song (workers: the job's threads; validity: synth_validity's section;
    corpora: where the MIDI corpora come from, the job's inputs).
    """
    s = config["synth"]
    section = {
        k: v for k, v in s.items() if k not in ("workers", "validity", "corpora")
    }
    return json_word(
        {
            **section,
            "seed": config["seed"],
            "soundfonts": synth_soundfonts(),
            "soundfont_pools": synth_soundfont_pools(),
            "genre_files": synth_genre_files(),
        }
    )


def synth_shard_runtime_min():
    """Minutes for one shard at a conservative 3x real time per worker, plus start-up."""
    s = config["synth"]
    seconds = s["duration"]["max_s"] + s["tail_s"]
    return int(10 + s["shard_size"] * seconds / 3 / synth_workers() / 60)


# ---- validity, figures, export
SYNTH_MANIFEST = "results/synth/manifest.parquet"
SYNTH_ANALYSIS_TARGETS = [
    "results/tables/synth_validity.csv",
    "results/figures/synth_distributions.pdf",
    "results/figures/synth_distributions.png",
]


def synth_validity_config():
    """The synth_validity job's config: synth.validity."""
    return json_word(config["synth"]["validity"])


# --------------------------------------------------------------------------- corpora + preprocessing


# (data.smk) Real corpora are read from resources/corpora/<corpus> (download.smk) and sharded by
# sha256(song id) mod data.corpora.<corpus>.shards; the synthetic corpus keeps the synth shards.
DATA_REAL_RE = "|".join(dl_sources.CORPORA)
DATA_CORPUS_RE = f"{DATA_REAL_RE}|synthetic"
DATA_SHARD_RE = "shard-[0-9]+"
DATA_WINDOW_RE = "[a-z][a-z_]*"


def data_targets():
    """Features, segment tables and song tables of every data corpus, plus the corpus table and figure."""
    targets = []
    for corpus in data_corpora():
        targets += [
            f"results/data/features/{corpus}/{s}.parquet" for s in data_shards(corpus)
        ]
        targets += [
            f"results/data/segments/{corpus}/{w}.parquet" for w in segment_windows()
        ]
        targets.append(f"results/data/splits/{corpus}.parquet")
    if targets:
        targets += [
            "results/tables/corpora.csv",
            "results/figures/corpora.pdf",
            "results/figures/corpora.png",
        ]
    return targets


def data_config():
    return config.get("data") or {}


def data_corpora():
    """The data stage's corpora: the enabled real ones, then synthetic (data.synthetic.enabled)."""
    corpora = list(enabled_corpora())
    if (data_config().get("synthetic") or {}).get("enabled", True):
        corpora.append("synthetic")
    return corpora


def data_corpus_config(corpus):
    return (data_config().get("corpora") or {}).get(corpus) or {}


def data_shards(corpus):
    if corpus == "synthetic":
        return synth_shards()
    return plan.shard_names(int(data_corpus_config(corpus).get("shards", 1)), 1)


def segment_windows():
    return sorted(data_config().get("segments") or {})


def data_corpus_root(wildcards):
    return corpus_dir(wildcards.corpus)


def data_stems_config(wildcards):
    """The canonical_stems job's config: its shard count, the corpus section less the keys that only say
    where the corpus comes from (those are extract_corpus's), and data.audio."""
    corpus_cfg = {
        k: v
        for k, v in data_corpus_config(wildcards.corpus).items()
        if k not in ("enabled", "path", "url", "sha256")
    }
    return json_word(
        {
            "shards": len(data_shards(wildcards.corpus)),
            "corpus": corpus_cfg,
            "audio": data_config()["audio"],
        }
    )


def data_synthetic_config(wildcards):
    """The canonical_stems_synthetic job's config: only data.audio.bad_song applies to linked shards."""
    return json_word({"bad_song": data_config()["audio"]["bad_song"]})


def data_features_config(wildcards):
    return json_word(data_config()["features"])


def data_segments_config(wildcards):
    return json_word(
        {"segments": data_config()["segments"], "activity": data_config()["activity"]}
    )


def data_stems_dirs(wildcards):
    c = wildcards.corpus
    return [f"results/data/stems/{c}/{s}" for s in data_shards(c)]


def data_segment_shard_tables(wildcards):
    c = wildcards.corpus
    return [f"results/data/segments/{c}/shards/{s}.parquet" for s in data_shards(c)]


def data_split_tables():
    return [f"results/data/splits/{c}.parquet" for c in data_corpora()]


# --------------------------------------------------------------------------- downloads
# (download.smk) Sources come from data.corpora.<corpus>.{path,url,sha256}, pretrained.<name>.files and
# soundfonts[]; stemlab.download.sources reads them (stdlib only, cheap at parse time).


dl_sources.check_splits(config)  # train + valid <= 1, beyond what the schema can say

DOWNLOAD_CORPORA = tuple(dl_sources.ALL_CORPORA)
DOWNLOAD_CORPUS_RE = "|".join(DOWNLOAD_CORPORA)
DOWNLOAD_NAME_RE = "[A-Za-z0-9][A-Za-z0-9_.-]*"


def _fetch_args(src):
    args = ["--url", src.url, "--key", src.key]
    if src.sha256:
        args += ["--sha256", src.sha256]
    return " ".join(shlex.quote(a) for a in args)


def corpus_dir(corpus):
    """resources/corpora/<corpus>: the corpus as extracted (or linked), the input of the corpus adapters."""
    return f"{dl_sources.CORPORA_DIR}/{corpus}"


def enabled_corpora():
    return dl_sources.enabled_corpora(config)


def _checked_fetch_args(requested, expected, key, source):
    """Fetch flags of `source`, once the requested file is the one the config names under `key`."""
    if expected != requested:
        raise ValueError(
            f"{requested} is not the configured download of {key} (expected {expected})"
        )
    return _fetch_args(source)


def download_corpus_args(wildcards):
    return _checked_fetch_args(
        f"{dl_sources.DOWNLOADS_DIR}/{wildcards.corpus}/{wildcards.file}",
        dl_sources.corpus_download_path(config, wildcards.corpus),
        f"data.corpora.{wildcards.corpus}",
        dl_sources.corpus_source(config, wildcards.corpus),
    )


def extract_corpus_input(wildcards):
    """The downloaded archive when the corpus comes from a URL; nothing for a local path (or no source)."""
    download = dl_sources.corpus_download_path(config, wildcards.corpus)
    return [download] if download else []


def extract_corpus_fingerprint(wildcards):
    """A fingerprint of a local source (a folder's file names, sizes, mtimes; an archive's size and
    mtime), "" for a download (an input). A changed source re-runs extract_corpus (params trigger) and
    everything built from the corpus.
    """
    return dl_sources.corpus_fingerprint(config, wildcards.corpus)


def extract_corpus_args(wildcards):
    src = dl_sources.corpus_source(config, wildcards.corpus)
    args = []
    if src.kind == "path":
        args += ["--path", src.path]
    elif src.kind == "url":
        args += [
            "--archive",
            dl_sources.corpus_download_path(config, wildcards.corpus),
            "--url",
            src.url,
        ]
    if src.sha256:
        args += ["--sha256", src.sha256]
    return " ".join(shlex.quote(a) for a in args)


def pretrained_folder(name):
    """resources/pretrained/<name>/: the snapshot a model listing <name> in inputs.pretrained reads."""
    return dl_sources.pretrained_dir(name)


def download_pretrained_args(wildcards):
    """The snapshot's files as one JSON word, and the folder their bytes arrive in."""
    files = [
        {
            "path": f.path,
            "url": f.source.url,
            "sha256": f.source.sha256,
            "key": f.source.key,
        }
        for f in dl_sources.pretrained_files(config, wildcards.name)
    ]
    cache = str(Path(dl_sources.pretrained_cache(wildcards.name, "x")).parent)
    return f"--files {shlex.quote(json.dumps(files, sort_keys=True))} --cache {shlex.quote(cache)}"


def soundfont_file(name):
    """resources/soundfonts/<name>.sf2 for an entry of `soundfonts`."""
    return dl_sources.soundfont_path(name)


def download_soundfont_args(wildcards):
    return _fetch_args(dl_sources.soundfont_source(config, wildcards.name))


def pretrained_in_use():
    """The pretrained snapshots some enabled model reads (inputs.pretrained); others only on request."""
    return sorted({p for plan in model_plans().values() for p in plan.pretrained})


def download_targets():
    """Every enabled corpus folder, pretrained snapshot an enabled model reads and listed soundfont
    (target rule `downloads`); any other snapshot by its folder, resources/pretrained/<name>.
    """
    return (
        [corpus_dir(c) for c in enabled_corpora()]
        + synth_corpus_dirs()
        + [pretrained_folder(n) for n in pretrained_in_use()]
        + [soundfont_file(n) for n in dl_sources.soundfont_names(config)]
    )


# --------------------------------------------------------------------------- models
# (train.smk, evaluate.smk, figures.smk) Models are rows of a table derived from config `models:`
# (stemlab.modelplan); the generic rules train_model / evaluate_model / summarize_model run every row
# per seed. Checkpoints live beside the outputs but are not outputs, so a failed or preempted job keeps them.
SEED_RE = "[0-9]+"
# figures of a model that have their own rule in figures.smk, and other outputs of its own rules
# ({seed}: one per seed of the model, {first_seed}: its first seed; megami's mixes of the first seed: mixes.smk)
MODEL_FIGURES = {
    "fxprocessor": [
        "results/figures/fxprocessor_eval.pdf",
        "results/figures/fxprocessor_eval.png",
    ],
    "relations": [
        "results/figures/relations.pdf",
        "results/figures/relations.png",
        "results/generated/relations",
    ],
    "megami": [
        "results/figures/megami_mix.pdf",
        "results/mixes/megami/seed-{first_seed}",
    ],
    "mixer": ["results/figures/mixer.pdf", "results/figures/mixer.png"],
    "stage": ["results/figures/stage.pdf", "results/figures/stage.png"],
    "clap": [
        "results/figures/clap_retrieval.pdf",
        "results/figures/clap_retrieval.png",
    ],
    "fx_encoder": [
        "results/figures/fx_encoder_probe.pdf",
        "results/figures/fx_encoder_probe.png",
    ],
}


@functools.cache
def model_plans():
    """The enabled models with data, by name (read once, after the Snakefile validated the config)."""
    return modelplan.model_plans(config, data_corpora())


def model_re():
    """The rows of the model table: model names, and <name>/<cell> for each cell of a model's grid."""
    keys = [k for plan in model_plans().values() for k in plan.keys()]
    return "|".join(re.escape(k) for k in keys) or "(?!)"


def model_name_re():
    return "|".join(re.escape(name) for name in model_plans()) or "(?!)"


def model_plan(wildcards):
    """The plan of a job's {model} wildcard (a model name or <name>/<cell>)."""
    return modelplan.split_key(model_plans(), wildcards.model)[0]


def model_name(wildcards):
    return model_plan(wildcards).name


def _job_inputs(wildcards):
    return modelplan.job_inputs(
        model_plans(), wildcards.model, int(wildcards.seed), data_shards
    )


def model_train_inputs(wildcards):
    """Segment tables, stem shards, upstream final.pt and pretrained folders of one (model, seed)."""
    return modelplan.input_files(_job_inputs(wildcards))


def model_eval_inputs(wildcards):
    return {
        "model": f"{modelplan.model_dir(wildcards.model, wildcards.seed)}/final.pt",
        **model_train_inputs(wildcards),
    }


def model_job(kind):
    """The job config (JSON, one shell word) of a train or eval job."""

    def job(wildcards):
        plan, cell = modelplan.split_key(model_plans(), wildcards.model)
        text = modelplan.job_config(
            config, plan, int(wildcards.seed), _job_inputs(wildcards), kind, cell
        )
        return shlex.quote(text)

    return job


def model_summary_job(wildcards):
    plan = model_plans()[wildcards.model]
    return shlex.quote(modelplan.job_config(config, plan, plan.seeds[0], {}, "summary"))


def model_summary_inputs(wildcards):
    """items.parquet of every seed (and grid cell) of a model."""
    return eval_items(wildcards.model)


def model_caption(wildcards):
    """The model's own caption text (workflow/report/models/<model>.rst), shown in its table's report entry."""
    path = (
        Path(workflow.basedir)
        / "workflow"
        / "report"
        / "models"
        / f"{wildcards.model}.rst"
    )
    return path.read_text(encoding="utf-8") if path.is_file() else ""


def model_resource(job, key):
    """A resource of models.<model>.resources.<job> (train or eval); memory and time grow per attempt."""

    def value(wildcards, attempt):
        res = model_plan(wildcards).section["resources"][job]
        if key in ("mem_mb", "runtime"):
            return int(res["mem_mb" if key == "mem_mb" else "runtime_min"]) * attempt
        uses_gpu = bool(res["gpu"]) and config["cluster"]["gpus_per_job"] > 0
        if key == "gpu":
            return config["cluster"]["gpus_per_job"] if uses_gpu else 0
        if key == "gpu_model":
            return config["cluster"]["gpu_model"] if uses_gpu else ""
        if key == "slurm_partition":
            return gpu_partition() if uses_gpu else cpu_partition()
        raise ValueError(f"unknown model resource {key}")

    return value


def model_threads(job):
    return lambda wildcards: modelplan.job_threads(config, model_plan(wildcards), job)


def output_dir(wildcards, output):
    """The directory of a rule's first output (training and evaluation write several files there)."""
    return str(Path(output[0]).parent)


def train_targets():
    return [
        f"{modelplan.model_dir(key, seed)}/{out}"
        for plan in model_plans().values()
        for key in plan.keys()
        for seed in plan.seeds
        for out in modelplan.TRAIN_OUTPUTS
    ]


def evaluate_targets():
    targets = []
    for name in model_plans():
        targets += eval_items(name)
        targets.append(modelplan.summary_table(name))
    return targets


def eval_items(model):
    """items.parquet of every seed (and grid cell) of `model` (the input of its summary and figures)."""
    plan = model_plans().get(model)
    if plan is None:
        return []
    return [
        f"{modelplan.eval_dir(key, s)}/items.parquet"
        for key in plan.keys()
        for s in plan.seeds
    ]


def relations_example_inputs(wildcards):
    """The first seed's relations model of every grid cell, its cell's codebook and their stems."""
    plan = model_plans()["relations"]
    seed = plan.seeds[0]
    codebook = plan.section["settings"]["codebook"]
    inputs = [
        modelplan.job_inputs(model_plans(), key, seed, data_shards)
        for key in plan.keys()
    ]
    return {
        "models": [f"{modelplan.model_dir(key, seed)}/final.pt" for key in plan.keys()],
        "codebooks": [i["upstream"][codebook] for i in inputs],
        "stems": sorted({s for i in inputs for s in i["stems"]}),
        "encoder": [p for p in [relations_encoder_path()] if p],
    }


def relations_example_models(wildcards, input):
    return " ".join(str(Path(p).parent) for p in input.models)


def relations_encoder_path():
    """The codebook's CLAP final.pt or wav2vec 2.0 folder, or None for log-mel (the examples' --encoder)."""
    plan = model_plans()["relations"]
    codebook = model_plans()[plan.section["settings"]["codebook"]]
    encoder = codebook.section["settings"]["encoder"]
    inputs = modelplan.job_inputs(
        model_plans(), codebook.keys()[0], codebook.seeds[0], data_shards
    )
    if encoder["name"] == "clap":
        return inputs["upstream"][encoder["clap"]["model"]]
    if encoder["name"] == "wav2vec2":
        w2v = encoder["wav2vec2"]
        return str(Path(inputs["pretrained"][w2v["snapshot"]]) / w2v["subdir"])
    return None


def relations_example_encoder(wildcards):
    path = relations_encoder_path()
    return "" if path is None else f"--encoder {shlex.quote(path)}"


def figure_targets():
    return (
        list(
            dict.fromkeys(
                f.format(seed=seed, first_seed=plan.seeds[0])
                for name, plan in model_plans().items()
                for f in MODEL_FIGURES.get(name, [])
                for seed in plan.seeds
            )
        )
        + stage_generated_targets()
        + PAPER_FIGURES
    )


def _megami(wildcards):
    """The wildcards of megami's evaluate job of one seed (mix_megami runs with its inputs and resources)."""
    return types.SimpleNamespace(model="megami", seed=wildcards.seed)


def megami_mix_inputs(wildcards):
    return model_eval_inputs(_megami(wildcards))


def megami_mix_job(wildcards):
    return model_job("eval")(_megami(wildcards))


def megami_mix_threads(wildcards):
    return model_threads("eval")(_megami(wildcards))


def megami_mix_resource(key):
    value = model_resource("eval", key)
    return lambda wildcards, attempt: value(_megami(wildcards), attempt)


def all_targets():
    return (
        synth_targets()
        + data_targets()
        + train_targets()
        + evaluate_targets()
        + figure_targets()
        + cache_targets()
        + stage_token_targets()
        + paper_targets()
        + restore_targets()
    )


# --------------------------------------------------------------------------- cache
# (cache.smk) Embeddings of every window later models read, one file per (encoder, corpus, shard): rows
# of a table derived from config `cache:` and the model table (stemlab.cacheplan). A cache job runs
# with the encoder's evaluate resources (GPU where models.<encoder>.resources.eval.gpu asks for one).
import types  # noqa: E402

from stemlab import cacheplan  # noqa: E402


@functools.cache
def cache_plans():
    """The cached encoders: those of cache.encoders that are enabled models with data."""
    return cacheplan.cache_plans(config, model_plans(), data_corpora())


def cache_encoder_re():
    return "|".join(cache_plans()) or "(?!)"


def _cache_inputs(wildcards):
    return cacheplan.cache_inputs(
        cache_plans(),
        model_plans(),
        wildcards.encoder,
        wildcards.corpus,
        wildcards.shard,
    )


def cache_job_inputs(wildcards):
    """The encoder's final.pt, the corpus's segment tables of cache.windows, the stem shard folder and
    whatever the encoder loads besides (upstream final.pt, pretrained folders)."""
    return cacheplan.input_files(_cache_inputs(wildcards))


def cache_job(wildcards):
    """The job config (JSON, one shell word) of one cache job."""
    text = cacheplan.cache_job_config(
        config,
        cache_plans()[wildcards.encoder],
        wildcards.corpus,
        wildcards.shard,
        _cache_inputs(wildcards),
    )
    return shlex.quote(text)


def cache_resource(key):
    """model_resource of the encoder's evaluate job, for a job whose wildcard is {encoder}."""
    value = model_resource("eval", key)
    return lambda wildcards, attempt: value(
        types.SimpleNamespace(model=wildcards.encoder), attempt
    )


def cache_threads(wildcards):
    return modelplan.job_threads(config, model_plans()[wildcards.encoder], "eval")


def cache_targets():
    return cacheplan.cache_files(cache_plans(), data_shards)


# --------------------------------------------------------------------------- cluster resources
# Memory and runtime grow with the attempt, so a retried job asks SLURM for more.


def mem_mb(base):
    return lambda wildcards, attempt: int(base) * attempt


def runtime_min(base):
    return lambda wildcards, attempt: int(base) * attempt


def cpu_partition():
    return config["cluster"]["cpu_partition"]


def gpu_partition():
    return config["cluster"]["gpu_partition"]


# --------------------------------------------------------------------------- stage
# (stage.smk) Token shards of every corpus, one file per (corpus, shard), written by the codec model
# (stemlab.stage.tokenplan); a tokenize_stage job runs with the codec's evaluate resources.
from stemlab.stage import tokenplan  # noqa: E402


@functools.cache
def stage_token_plan():
    """The token jobs' plan (None when the codec model is not planned)."""
    return tokenplan.token_plan(config, model_plans(), data_corpora())


def _stage_token_inputs(wildcards):
    return tokenplan.token_inputs(
        stage_token_plan(), model_plans(), wildcards.corpus, wildcards.shard
    )


def stage_token_inputs(wildcards):
    """The codec's final.pt and pretrained folders, the shard's segment table, stems and features."""
    if stage_token_plan() is None:
        raise ValueError("no token shards: the stage_tokens.codec model is not enabled")
    return tokenplan.input_files(_stage_token_inputs(wildcards))


def stage_token_job(wildcards):
    """The job config (JSON, one shell word) of one tokenize_stage job."""
    text = tokenplan.token_job_config(
        config,
        stage_token_plan(),
        wildcards.corpus,
        wildcards.shard,
        _stage_token_inputs(wildcards),
    )
    return shlex.quote(text)


def stage_token_resource(key):
    """model_resource of the codec's evaluate job."""
    value = model_resource("eval", key)
    return lambda wildcards, attempt: value(
        types.SimpleNamespace(model=stage_token_plan().codec), attempt
    )


def stage_token_threads(wildcards):
    return modelplan.job_threads(
        config, model_plans()[stage_token_plan().codec], "eval"
    )


def stage_token_targets():
    return tokenplan.token_files(stage_token_plan(), data_shards)


# (evaluate.smk) generate_stage: the stage model's generated stems for held-out songs, one folder per
# (target, seed): results/generated/stage/<target>/seed-<s>/ (first seed in the figure targets).
STAGE_TARGET_RE = "drums|bass"


def _stage_key(target):
    """The stage model row generating `target`: its grid cell target~<target>, or the model itself."""
    plan = model_plans()["stage"]
    for key, cell in zip(plan.keys(), plan.cells):
        values = (plan.cell_settings or {}).get(cell) or {}
        if str(values.get("target", plan.section["settings"].get("target"))) == target:
            return key
    raise ValueError(
        f"the stage model has no target {target}; list it in models.stage.grid.target"
    )


def _stage_generate(wildcards):
    return types.SimpleNamespace(
        model=_stage_key(wildcards.target), seed=wildcards.seed
    )


def stage_generate_inputs(wildcards):
    return model_eval_inputs(_stage_generate(wildcards))


def stage_generate_job(wildcards):
    return model_job("eval")(_stage_generate(wildcards))


def stage_generate_threads(wildcards):
    return model_threads("eval")(_stage_generate(wildcards))


def stage_generate_resource(key):
    value = model_resource("eval", key)
    return lambda wildcards, attempt: value(_stage_generate(wildcards), attempt)


def stage_generated_targets():
    """The first seed's generated-stem folder of every stage target."""
    plan = model_plans().get("stage")
    if plan is None:
        return []
    targets = [
        ((plan.cell_settings or {}).get(cell) or {}).get(
            "target", plan.section["settings"].get("target")
        )
        for cell in plan.cells
    ]
    return [f"results/generated/stage/{t}/seed-{plan.seeds[0]}" for t in targets]


# --------------------------------------------------------------------------- paper
# (figures.smk, paper.smk) The benchmark table, the numbers the text quotes (one file per result table, so
# that editing a table rebuilds only its numbers and the PDF), the paper's own figures and the PDF.
PAPER_FIGURES = [
    "results/figures/synth_validity.pdf",
    "results/figures/synth_validity.png",
    "results/figures/training_curves.pdf",
    "results/figures/training_curves.png",
    "results/figures/rulegraph.pdf",
    "results/figures/rulegraph.png",
]
PAPER_DIR = Path(workflow.basedir) / "workflow" / "paper"


def paper_file(name):
    """A file of workflow/paper/ (the text, the targets), wherever the run's --directory is."""
    return str(PAPER_DIR / name)


def paper_tables():
    """The result tables the benchmark reads: the annotation validity and every model's summary."""
    return ["results/tables/synth_validity.csv"] + [
        modelplan.summary_table(name) for name in model_plans()
    ]


def paper_number_tables():
    """Names of the tables whose numbers the text quotes (results/paper/numbers/<name>.tex)."""
    names = [Path(t).stem for t in paper_tables()]
    return names + (["corpora"] if data_corpora() else [])


def paper_corpora():
    """JSON word: table -> the corpus (and split) its rows were measured on."""
    validity = config["synth"]["validity"]["splits"]
    corpora = {"synth_validity": f"synthetic ({'+'.join(validity)})"}
    for name, plan in model_plans().items():
        corpora[name] = "+".join(plan.corpora) + " (test)"
    return json_word(corpora)


def training_logs():
    """train_log.csv of every (model, grid cell, seed)."""
    return [
        f"{modelplan.model_dir(key, seed)}/train_log.csv"
        for plan in model_plans().values()
        for key in plan.keys()
        for seed in plan.seeds
    ]


def rulegraph_configfiles():
    """The run's --configfile files (absolute), for the rule graph's own snakemake call."""
    return " ".join(
        shlex.quote(str(Path(f).resolve())) for f in workflow.overwrite_configfiles
    )


def paper_figures():
    """Every figure PDF of this configuration (the paper includes those it names)."""
    figures = [t for t in figure_targets() if t.endswith(".pdf")]
    figures += [t for t in synth_targets() + data_targets() if t.endswith(".pdf")]
    return list(dict.fromkeys(figures))


def paper_targets():
    return [
        "results/tables/benchmark.csv",
        "results/tables/benchmark.tex",
        "results/paper/numbers.tex",
        "results/paper/paper.pdf",
    ]


def figure_code(module):
    """A figure's plotting module and the style module (inputs: editing either reruns the figure)."""
    scripts = Path(workflow.basedir) / "scripts" / "stemlab"
    return [str(scripts / module), str(scripts / "plotting.py")]


def workflow_snakefile():
    return str(Path(workflow.basedir) / "Snakefile")


def rulegraph_sources():
    """The rule files (editing one can change the rule graph)."""
    rules = Path(workflow.basedir) / "workflow" / "rules"
    return sorted(str(p) for p in rules.glob("*.smk"))


# --------------------------------------------------------------------------- bundle, restore
# (bundle.smk, restore.smk) `snakemake bundle` packs the trained models and the tables; with restore.url
# set the Snakefile includes restore.smk instead of train.smk, so no model is trained: restore_model
# writes each model's files from the downloaded bundle and every other rule runs as usual.
import hashlib  # noqa: E402

from stemlab.bundle import source as bundle_source  # noqa: E402

BUNDLE_TAR = bundle_source.BUNDLE
BUNDLE_TAR_SHA256 = bundle_source.BUNDLE_SHA256
RESTORED_TAR = bundle_source.RESTORED
RESTORE_TABLES_CHECK = bundle_source.TABLES_CHECK


def restore_plan():
    """The bundle to restore (url, sha256) from the validated config, or None: train the models."""
    return bundle_source.restore_source(config)


def restoring():
    return restore_plan() is not None


def restore_targets():
    return [RESTORE_TABLES_CHECK] if restoring() else []


def bundle_tables(wildcards=None):
    """Every table of results/tables the DAG makes (the bundled ones, and those a restored run compares)."""
    return [
        t
        for t in all_targets()
        if t.startswith("results/tables/") and t.endswith(".csv")
    ]


def bundle_inputs(wildcards):
    return {"models": train_targets(), "tables": bundle_tables()}


def config_digest(wildcards):
    """sha256 of the validated config (recorded in the bundle's manifest)."""
    text = json.dumps(config, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def download_bundle_args(wildcards):
    src = restore_plan()
    args = [
        "--url",
        src.url,
        "--sha256",
        src.sha256,
        "--staging",
        bundle_source.STAGING,
    ]
    return " ".join(shlex.quote(a) for a in args)
