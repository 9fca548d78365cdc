"""The embedding cache: one file per (encoder, corpus, shard) holding the embedding of every window later
models read (wet, dry where present, mix), deterministic bytes, a reader with one-line errors, and one
cache job per (encoder, corpus, shard) in the workflow, for a tiny encoder of the tests (tests/cache_tasks.py)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import soundfile as sf
import torch
import yaml

import tests.cache_tasks  # noqa: F401  (registers tiny_encoder)
from stemlab.config import deep_merge, fill_defaults
from stemlab.data.segment_tables import read_window
from stemlab.device import torch_threads
from stemlab.encoders.cache import KEY_COLUMNS, META_KEY, CacheJob, EmbeddingCache, cache_job, read_cache
from stemlab.errors import StemlabError
from stemlab.train.job import Job, JobInputs
from stemlab.train.run import train_job
from stemlab.train.task import load_trained
from tests.fx_fixture import SR, write_corpus
from tests.workflow_utils import PY, REPO, SMOKE, copy_workflow, snakemake

SHARD = "shard-00000"
NO_DRY = ("song-0001", "drums")  # this stem has no dry file: its dry windows are not cached


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict:
    """Three 1-s songs (bass, drums; wet, dry and a mix), two windows, and a trained tiny encoder."""
    root = tmp_path_factory.mktemp("cache-corpus")
    megami = write_corpus(root, songs=3, seconds=1.0, window=8192)
    stems = root / "stems" / "synthetic" / SHARD
    for song_dir in sorted(stems.iterdir()):
        mix = sum(sf.read(f, dtype="float32")[0] for f in sorted((song_dir / "wet").glob("*.flac")))
        sf.write(song_dir / "mix.flac", mix, SR, subtype="PCM_24")
    song_json = stems / NO_DRY[0] / "song.json"
    meta = json.loads(song_json.read_text())
    for entry in meta["stems"]:
        if entry["name"] == NO_DRY[1]:
            entry["files"].pop("dry")
    song_json.write_text(json.dumps(meta))
    (stems / NO_DRY[0] / "dry" / f"{NO_DRY[1]}.flac").unlink()
    rows = pd.read_parquet(megami)
    # rows of another shard are not this job's (their songs are not in its folder)
    rows = pd.concat([rows, rows.head(3).assign(shard="shard-00001", song="elsewhere")], ignore_index=True)
    rows.to_parquet(megami)
    # a second window: one segment per stem covering the whole song (another length: its own batches)
    whole = rows[(rows["start"] == 0) & (rows["shard"] == SHARD)].assign(length=SR)
    whole.to_parquet(root / "whole.parquet")
    job = Job(model="tiny_encoder", task="tests.cache_tasks", seed=1, loop={"steps": 2, "batch_size": 2,
              "checkpoint_every": 0, "checkpoint_seconds": 0}, settings={"dim": 6}, eval={}, inputs=JobInputs(),
              device="cpu")  # fmt: skip
    train_job(job, root / "model")
    spec = {
        "encoder": "tiny_encoder", "seed": 1, "corpus": "synthetic", "shard": SHARD,
        "model": str(root / "model" / "final.pt"), "stems": str(stems), "batch_size": 4, "device": "cpu",
        "segments": {"megami": str(megami), "whole": str(root / "whole.parquet")}, "cpu_threads": 2,
    }  # fmt: skip
    out = root / "cache.parquet"
    cache_job(CacheJob.from_dict(spec), out, workers=2)
    return {"root": root, "spec": spec, "out": out, "stems": stems, "rows": rows[rows["shard"] == SHARD]}


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert "\n" not in text
    return text


# --------------------------------------------------------------------------- writing


def test_same_bytes_twice_and_for_any_number_of_decoding_threads(corpus, tmp_path):
    job = CacheJob.from_dict(corpus["spec"])
    for workers in (1, 3, 1):
        cache_job(job, tmp_path / f"w{workers}.parquet", workers=workers)
        assert _sha(tmp_path / f"w{workers}.parquet") == _sha(corpus["out"]), workers
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w1.parquet", "w3.parquet"]  # no temporaries left


def test_rows_cover_wet_dry_where_present_and_the_mix_once_per_span(corpus):
    keys, emb = read_cache([corpus["out"]])
    assert list(keys.columns) == list(KEY_COLUMNS)
    assert emb.dtype == np.float32 and emb.shape == (len(keys), 6)
    order = ["window", "song", "stem", "source", "start"]
    assert keys.equals(keys.sort_values(order, kind="stable").reset_index(drop=True))
    rows = corpus["rows"]
    spans = rows[["song", "start"]].drop_duplicates()
    n_dry = len(rows) - int(((rows["song"] == NO_DRY[0]) & (rows["stem"] == NO_DRY[1])).sum())
    megami = keys[keys["window"] == "megami"]
    assert megami["source"].value_counts().to_dict() == {"wet": len(rows), "dry": n_dry, "mix": len(spans)}
    assert set(megami.loc[megami["source"] == "mix", "stem"]) == {"mix"}
    assert not ((keys["song"] == NO_DRY[0]) & (keys["stem"] == NO_DRY[1]) & (keys["source"] == "dry")).any()
    whole = keys[keys["window"] == "whole"]
    assert set(whole["length"]) == {SR} and len(whole) == 3 * (2 + 2 + 1) - 1
    assert set(keys["shard"]) == {SHARD} and set(keys["corpus"]) == {"synthetic"}
    assert (keys.groupby("song")["split"].nunique() == 1).all()


def test_metadata_names_the_encoder_and_its_identity(corpus):
    meta = json.loads(pq.read_schema(corpus["out"]).metadata[META_KEY])
    payload = torch.load(corpus["spec"]["model"], map_location="cpu", weights_only=True)
    assert meta["identity_hash"] == payload["identity_hash"]
    assert meta["model_sha256"] == _sha(Path(corpus["spec"]["model"]))
    assert (meta["encoder"], meta["embedding_dim"], meta["windows"]) == ("tiny_encoder", 6, ["megami", "whole"])


def test_an_entry_equals_a_direct_embed_call_on_the_same_window(corpus):
    cache = EmbeddingCache.read([corpus["out"]])
    task, model, _ = load_trained(corpus["spec"]["model"], "cpu")
    song_dir = corpus["stems"] / "song-0000"
    cases = [
        ("bass", "wet", "megami", 4096, 8192, song_dir / "wet" / "bass.flac"),
        ("drums", "dry", "megami", 8192, 8192, song_dir / "dry" / "drums.flac"),
        ("mix", "mix", "megami", 0, 8192, song_dir / "mix.flac"),
        ("mix", "mix", "whole", 0, SR, song_dir / "mix.flac"),
    ]
    with torch_threads(2), torch.inference_mode():
        for stem, source, window, start, length, path in cases:
            audio = torch.from_numpy(read_window(path, start, length))[None]
            direct = task.embed(model, audio)[0].numpy()
            cached = cache.lookup("song-0000", stem, source, window, start, length=length)
            np.testing.assert_allclose(cached, direct, rtol=1e-5, atol=1e-6, err_msg=f"{stem} {source} {window}")
    # wet, dry and mix of one span are different embeddings
    wet, dry, mix = (cache.lookup("song-0000", s, src, "megami", 0) for s, src in
                     (("bass", "wet"), ("bass", "dry"), ("mix", "mix")))  # fmt: skip
    assert not np.allclose(wet, dry) and not np.allclose(wet, mix)


@pytest.mark.slow  # a model trained end to end (seconds to tens of seconds on 2 cores)
def test_cli_writes_the_same_bytes_and_reports_a_bad_job_in_one_line(corpus, tmp_path):
    out = tmp_path / "cli.parquet"
    env = {**os.environ, "PYTHONPATH": f"{REPO / 'scripts'}:{REPO}"}
    cmd = [PY, "-m", "stemlab.encoders.cache", "--config", json.dumps(corpus["spec"]), "--workers", "3", "--out", str(out)]
    run = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr
    assert _sha(out) == _sha(corpus["out"])
    assert re.search(r"tiny_encoder synthetic/shard-00000: 100%", run.stderr)  # the progress bar
    bad = {**corpus["spec"], "stems": str(tmp_path / "nowhere")}
    run = subprocess.run([*cmd[:4], json.dumps(bad), "--out", str(tmp_path / "bad.parquet")], cwd=REPO,
                         capture_output=True, text=True, env=env, timeout=300)  # fmt: skip
    assert run.returncode == 1
    assert run.stderr.strip().splitlines()[-1].startswith("error: ") and "snakemake data" in run.stderr
    assert not (tmp_path / "bad.parquet").exists()


def test_a_model_that_is_not_an_encoder_is_refused(corpus, tmp_path):
    loop = {"steps": 1, "batch_size": 2, "checkpoint_every": 0, "checkpoint_seconds": 0}
    plain = Job(model="plain_test", task="tests.cache_tasks", seed=1, loop=loop, settings={}, eval={},
                inputs=JobInputs(), device="cpu")  # fmt: skip
    train_job(plain, tmp_path / "plain")
    spec = {**corpus["spec"], "encoder": "plain_test", "model": str(tmp_path / "plain" / "final.pt")}
    with pytest.raises(StemlabError, match="not an encoder") as exc:
        cache_job(CacheJob.from_dict(spec), tmp_path / "k.parquet")
    assert "cache.encoders" in _one_line(exc)
    with pytest.raises(StemlabError, match="not encoder 'tiny_encoder'"):
        cache_job(CacheJob.from_dict({**spec, "encoder": "tiny_encoder"}), tmp_path / "k.parquet")


# --------------------------------------------------------------------------- reading


def test_lookup_and_take(corpus):
    cache = EmbeddingCache.read([corpus["out"]])
    keys, emb = read_cache([corpus["out"]])
    i = int(np.flatnonzero((keys["song"] == "song-0002") & (keys["stem"] == "bass") & (keys["source"] == "dry")
                           & (keys["window"] == "megami") & (keys["start"] == 12288))[0])  # fmt: skip
    assert np.array_equal(cache.lookup("song-0002", "bass", "dry", "megami", 12288), emb[i])
    wanted = corpus["rows"].assign(source="wet", window="megami").iloc[::-1]
    got = cache.take(wanted)
    assert got.shape == (len(wanted), 6)
    for k, row in enumerate(wanted.head(4).itertuples()):
        assert np.array_equal(got[k], cache.lookup(row.song, row.stem, "wet", "megami", row.start, row.length))


def test_missing_and_stale_entries_are_one_line_errors(corpus):
    cache = EmbeddingCache.read([corpus["out"]])
    with pytest.raises(StemlabError, match="no tiny_encoder embedding of song 'song-0000' stem 'bass'") as exc:
        cache.lookup("song-0000", "bass", "wet", "megami", 99)
    assert "snakemake cache" in _one_line(exc)
    with pytest.raises(StemlabError, match="no tiny_encoder embedding") as exc:
        cache.lookup("song-0001", "drums", "dry", "megami", 0)  # no dry file: never cached
    with pytest.raises(StemlabError, match="covers 8192 samples, not 9000; the cache is stale") as exc:
        cache.lookup("song-0000", "bass", "wet", "megami", 0, length=9000)
    _one_line(exc)
    frame = pd.DataFrame([{"song": "song-0000", "stem": "bass", "source": "wet", "window": "megami", "start": 0},
                          {"song": "song-0009", "stem": "bass", "source": "wet", "window": "megami", "start": 0}])  # fmt: skip
    with pytest.raises(StemlabError, match="song 'song-0009'"):
        cache.take(frame)
    with pytest.raises(StemlabError, match="not 1; the cache is stale"):
        cache.take(frame.head(1).assign(length=1))


def test_reader_refuses_stale_missing_and_foreign_files(corpus, tmp_path):
    meta = json.loads(pq.read_schema(corpus["out"]).metadata[META_KEY])
    with pytest.raises(StemlabError, match="the cache is stale") as exc:
        read_cache([corpus["out"]], identity_hash="0" * 16)
    assert meta["identity_hash"][:12] in _one_line(exc)
    assert len(read_cache([corpus["out"]], identity_hash=meta["identity_hash"])[0]) == meta["rows"]
    table = pq.read_table(corpus["out"])
    other = tmp_path / "other.parquet"
    pq.write_table(table.replace_schema_metadata({META_KEY: json.dumps({**meta, "identity_hash": "f" * 16})}), other)
    with pytest.raises(StemlabError, match="identity_hash 'ffffffffffffffff' differs") as exc:
        read_cache([corpus["out"], other])
    assert "stale" in _one_line(exc)
    with pytest.raises(StemlabError, match="embedding cache not found; run `snakemake cache`"):
        read_cache([tmp_path / "absent.parquet"])
    foreign = tmp_path / "foreign.parquet"
    pd.DataFrame({"a": [1]}).to_parquet(foreign)
    with pytest.raises(StemlabError, match="not a stemlab embedding cache"):
        read_cache([foreign])
    junk = tmp_path / "junk.parquet"
    junk.write_bytes(b"not parquet")
    with pytest.raises(StemlabError, match="cannot read the embedding cache"):
        read_cache([junk])
    with pytest.raises(StemlabError, match="no embedding cache files given"):
        read_cache([])


def test_a_bad_job_config_is_named_in_one_line(corpus):
    with pytest.raises(StemlabError, match="lacks 'stems'"):
        CacheJob.from_dict({k: v for k, v in corpus["spec"].items() if k != "stems"})
    with pytest.raises(StemlabError, match="unknown key 'workers'"):
        CacheJob.from_dict({**corpus["spec"], "workers": 2})
    with pytest.raises(StemlabError, match="unknown source 'stereo'"):
        CacheJob.from_dict({**corpus["spec"], "sources": ["stereo"]})


# --------------------------------------------------------------------------- planning


def _smoke_models() -> dict:
    paper = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    return deep_merge(paper, yaml.safe_load(SMOKE.read_text()))["models"]


def without_cache_readers() -> dict:
    """models: overlay that disables the config's models reading an embedding cache, and those downstream of
    them, so that a test may name its own cache.encoders."""
    models = _smoke_models()
    off = {m for m, s in models.items() if (s.get("inputs") or {}).get("cache")}
    grew = True
    while grew:
        more = {m for m, s in models.items() if set((s.get("inputs") or {}).get("upstream") or ()) & off} - off
        off |= more
        grew = bool(more)
    return {m: {"enabled": False} for m in sorted(off)}


def _config(overlay: dict) -> dict:
    paper = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    base = deep_merge(paper, yaml.safe_load(SMOKE.read_text()))
    return fill_defaults(deep_merge(deep_merge(base, {"models": without_cache_readers()}), overlay))


ENCODER = {"task": "stemlab.toyencoder", "seeds": [3, 4], "inputs": {"windows": ["megami"], "corpora": ["synthetic"]},
           "resources": {"eval": {"threads": 1, "mem_mb": 1000, "runtime_min": 5}}}  # fmt: skip


def test_cache_plan_rows_inputs_and_errors():
    from stemlab import cacheplan, modelplan

    config = _config({"models": {"tiny_encoder": ENCODER}, "cache": {"encoders": ["no_such_encoder", "tiny_encoder"]}})
    plans = modelplan.model_plans(config, ["synthetic", "musdb18hq"])
    cplans = cacheplan.cache_plans(config, plans, ["synthetic", "musdb18hq"])
    assert list(cplans) == ["tiny_encoder"]  # no model of that name: skipped
    assert cplans["tiny_encoder"].seed == 3 and cplans["tiny_encoder"].corpora == ("synthetic", "musdb18hq")
    shards = {"synthetic": ["shard-00000", "shard-00001"], "musdb18hq": ["shard-00000"]}
    assert cacheplan.cache_files(cplans, shards.get) == [
        "results/cache/tiny_encoder/synthetic/shard-00000.parquet",
        "results/cache/tiny_encoder/synthetic/shard-00001.parquet",
        "results/cache/tiny_encoder/musdb18hq/shard-00000.parquet",
    ]
    inputs = cacheplan.cache_inputs(cplans, plans, "tiny_encoder", "musdb18hq", "shard-00000")
    assert cacheplan.input_files(inputs) == {
        "model": "results/models/tiny_encoder/seed-3/final.pt",
        "segments": ["results/data/segments/musdb18hq/megami.parquet"],
        "stems": "results/data/stems/musdb18hq/shard-00000",
        "upstream": [],
        "pretrained": [],
    }
    job = CacheJob.from_dict(json.loads(cacheplan.cache_job_config(config, cplans["tiny_encoder"], "musdb18hq", "shard-00000", inputs)))
    assert (job.batch_size, job.cpu_threads, job.sources) == (8, 1, ("wet", "dry", "mix"))  # smoke: train.cpu_threads 1
    only = _config({"models": {"tiny_encoder": ENCODER}, "cache": {"encoders": ["tiny_encoder"], "corpora": ["musdb18hq"], "seed": 4}})
    cplan = cacheplan.cache_plans(only, plans, ["synthetic", "musdb18hq"])["tiny_encoder"]
    assert (cplan.corpora, cplan.seed) == (("musdb18hq",), 4)
    off = _config({"models": {"tiny_encoder": {**ENCODER, "enabled": False}}, "cache": {"encoders": ["tiny_encoder"]}})
    assert cacheplan.cache_plans(off, modelplan.model_plans(off, ["synthetic"]), ["synthetic"]) == {}
    for overlay, message in [({"seed": 7}, r"cache.seed: encoder tiny_encoder has no seed 7 \(its seeds: 3, 4\)"),
                             ({"windows": ["nope"]}, "cache.windows: no segment window 'nope' in data.segments")]:  # fmt: skip
        bad = _config({"models": {"tiny_encoder": ENCODER}, "cache": {"encoders": ["tiny_encoder"], **overlay}})
        with pytest.raises(StemlabError, match=message):
            cacheplan.cache_plans(bad, plans, ["synthetic"])


READER = {"task": "stemlab.toyreader", "inputs": {"windows": ["megami"], "corpora": ["synthetic", "musdb18hq"],
          "cache": ["tiny_encoder"]}}  # fmt: skip


def test_a_model_reads_an_encoders_cache_as_declared_inputs():
    from stemlab import modelplan

    config = _config({"models": {"tiny_encoder": ENCODER, "reader": READER}, "cache": {"encoders": ["tiny_encoder"]}})
    plans = modelplan.model_plans(config, ["synthetic", "musdb18hq"])
    assert plans["reader"].cache == ("tiny_encoder",)
    shards = {"synthetic": ["shard-00000", "shard-00001"], "musdb18hq": ["shard-00000"]}
    inputs = modelplan.job_inputs(plans, "reader", 1, shards.get)
    expected = [
        "results/cache/tiny_encoder/synthetic/shard-00000.parquet",
        "results/cache/tiny_encoder/synthetic/shard-00001.parquet",
        "results/cache/tiny_encoder/musdb18hq/shard-00000.parquet",
    ]
    assert inputs["cache"] == {"tiny_encoder": expected}
    assert modelplan.input_files(inputs)["cache"] == expected
    job = Job.from_dict(json.loads(modelplan.job_config(config, plans["reader"], 1, inputs, "train")))
    assert job.inputs.cache == {"tiny_encoder": expected}


@pytest.mark.parametrize(
    ("overlay", "message"),
    [
        ({"cache": {"encoders": []}}, "models.reader.inputs.cache: encoder 'tiny_encoder' is not in cache.encoders"),
        ({"cache": {"encoders": ["tiny_encoder"], "corpora": ["synthetic"]}},
         "models.reader.inputs.cache: corpus musdb18hq is not cached; add it to cache.corpora"),
        ({"cache": {"encoders": ["tiny_encoder"]}, "models": {"tiny_encoder": {"enabled": False}}},
         "models.reader.inputs.cache: encoder 'tiny_encoder' is not enabled"),
        ({"cache": {"encoders": ["tiny_encoder"]}, "models": {"tiny_encoder": {"inputs": {"upstream": ["reader"]}}}},
         r"form a cycle \((reader -> tiny_encoder -> reader|tiny_encoder -> reader -> tiny_encoder)\)"),
    ],
)  # fmt: skip
def test_a_bad_cache_input_is_one_line(overlay, message):
    from stemlab import modelplan

    config = _config(deep_merge({"models": {"tiny_encoder": ENCODER, "reader": READER}}, overlay))
    with pytest.raises(StemlabError, match=message):
        modelplan.model_plans(config, ["synthetic", "musdb18hq"])


def test_a_task_reads_its_cache_and_the_encoder_enters_its_identity(corpus):
    from stemlab.train.run import input_digests
    from stemlab.train.task import Task

    job = Job(model="reader", task="x", seed=1, loop={}, settings={}, eval={},
              inputs=JobInputs(cache={"tiny_encoder": [str(corpus["out"])]}))  # fmt: skip
    task = Task(job)
    cache = task.embedding_cache("tiny_encoder")
    assert cache is task.embedding_cache("tiny_encoder")  # read once
    direct = EmbeddingCache.read([corpus["out"]])
    assert np.array_equal(cache.embeddings, direct.embeddings)
    with pytest.raises(StemlabError, match="needs the clap embedding cache; add clap to models.reader.inputs.cache"):
        task.embedding_cache("clap")
    digests = input_digests(job)["cache"]["tiny_encoder"]
    assert digests == [[corpus["out"].parent.name + "/cache.parquet",
                        _sha(corpus["root"] / "model" / "final.pt"), str(len(direct.keys))]]  # fmt: skip
    assert "cache" not in input_digests(Job(model="m", task="x", seed=1, loop={}, settings={}, eval={}, inputs=JobInputs()))


@pytest.fixture(scope="module")
def workflow_copy(tmp_path_factory) -> Path:
    """The repository's workflow copied, plus the tiny encoder as a task module and a config overlay."""
    copy = copy_workflow(tmp_path_factory.mktemp("cache-workflow"))
    shutil.copy2(REPO / "tests" / "cache_tasks.py", copy / "scripts" / "stemlab" / "toyencoder.py")
    (copy / "moisesdb").mkdir()
    overlay = {
        "models": {**without_cache_readers(), "tiny_encoder": ENCODER},
        "cache": {"encoders": ["tiny_encoder", "no_such_encoder"]},
        "data": {"corpora": {"moisesdb": {"enabled": True, "path": str(copy / "moisesdb")}}},
    }
    (copy / "encoder.yaml").write_text(yaml.safe_dump(overlay))
    return copy


def _planned(text: str) -> list[tuple[str, str]]:
    jobs = []
    for line in text.splitlines():
        m = re.match(r"^\s*(?:local)?rule (\w+):", line)
        if m:
            jobs.append((m.group(1), ""))
        m = re.match(r"^\s+wildcards: (.+)$", line)
        if m and jobs:
            jobs[-1] = (jobs[-1][0], m.group(1))
    return jobs


def test_dry_run_plans_one_cache_job_per_encoder_corpus_and_shard(workflow_copy, tmp_path):
    out = snakemake(
        "all", "-n", "--snakefile", str(workflow_copy / "Snakefile"), "--directory", str(tmp_path),
        "--configfile", str(SMOKE), str(workflow_copy / "encoder.yaml"), cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    jobs = _planned(out.stdout + out.stderr)
    cache = sorted(w for rule, w in jobs if rule == "cache_embeddings")
    assert cache == [
        f"encoder=tiny_encoder, corpus={c}, shard=shard-0000{s}" for c in ("moisesdb", "synthetic") for s in (0, 1)
    ]  # smoke: 2 shards of each corpus; an encoder that is no model has no jobs
    assert ("train_model", "model=tiny_encoder, seed=3") in jobs  # the cache reads the first seed
    text = out.stdout + out.stderr
    assert "logs/cache/cache_embeddings/tiny_encoder/synthetic/shard-00001.log" in text


def test_the_cache_target_and_its_resources(workflow_copy, tmp_path):
    def dry(*configs: Path, target: str = "cache"):
        out = snakemake(
            target, "-n", "-p", "--cores", "4", "--snakefile", str(workflow_copy / "Snakefile"), "--directory", str(tmp_path),
            "--configfile", *map(str, configs), cwd=tmp_path,
        )  # fmt: skip
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
        return out.stdout + out.stderr

    text = dry(SMOKE, workflow_copy / "encoder.yaml")
    assert re.search(r"^cache_embeddings\s+4$", text, flags=re.M), text[-2000:]
    assert "python -m stemlab.encoders.cache --config" in text and "--workers 1" in text  # models.tiny_encoder.resources.eval.threads
    assert "gpu=0" in text and "slurm_partition=cpu" in text  # smoke: cluster.gpus_per_job is 0
    # paper config: the encoder's evaluate resources ask for a GPU, so its cache jobs do too
    gpu = workflow_copy / "gpu.yaml"
    gpu.write_text(yaml.safe_dump({"models": {"tiny_encoder": {"resources": {"eval": {"gpu": True, "threads": 3}}}}}))
    text = dry(workflow_copy / "encoder.yaml", gpu, target="results/cache/tiny_encoder/synthetic/shard-00007.parquet")
    job = text[text.index("rule cache_embeddings:") :]
    assert "gpu=1" in job and "slurm_partition=gpu" in job and "--workers 3" in job, job[:2000]
    assert '"batch_size":64' in job  # the paper batch


@pytest.mark.slow
def test_smoke_run_caches_every_shard_of_the_new_encoder(workflow_copy, smoke_run, tmp_path):
    # the smoke run's data stage, hard-linked: only the encoder's training and its cache jobs are left
    shutil.copytree(smoke_run / "results", tmp_path / "results", copy_function=os.link)
    overlay = workflow_copy / "encoder-synthetic.yaml"
    overlay.write_text(yaml.safe_dump({"models": {**without_cache_readers(), "tiny_encoder": ENCODER}, "cache": {"encoders": ["tiny_encoder"]}}))
    out = snakemake(
        "cache", "--cores", "2", "--snakefile", str(workflow_copy / "Snakefile"), "--directory", str(tmp_path),
        "--configfile", str(SMOKE), str(overlay), cwd=tmp_path, timeout=900,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert {rule for rule, _ in _planned(out.stdout + out.stderr)} == {"train_model", "cache_embeddings", "cache"}
    files = sorted((tmp_path / "results" / "cache" / "tiny_encoder" / "synthetic").glob("*.parquet"))
    assert [f.name for f in files] == ["shard-00000.parquet", "shard-00001.parquet"]
    cache = EmbeddingCache.read(files)
    segments = pd.read_parquet(tmp_path / "results" / "data" / "segments" / "synthetic" / "megami.parquet")
    wet = cache.take(segments.assign(source="wet", window="megami"))
    assert wet.shape == (len(segments), 6) and np.isfinite(wet).all()
    assert set(cache.keys["source"]) == {"wet", "dry", "mix"}
    log = tmp_path / "logs" / "cache" / "cache_embeddings" / "tiny_encoder" / "synthetic" / "shard-00000.log"
    assert "100%" in log.read_text()
