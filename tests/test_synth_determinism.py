"""Determinism of the CLI: (seed, song index) -> identical bytes whatever the shard size, worker count
or process; a killed shard job leaves nothing that looks finished and a re-run gives the same bytes;
no global random state anywhere in the package."""

from __future__ import annotations

import ast
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.workflow_utils import REPO

PACKAGE = REPO / "scripts" / "stemlab" / "synth"
SF2 = "/usr/share/sounds/sf2/FluidR3_GM.sf2"
needs_sf2 = pytest.mark.skipif(not Path(SF2).is_file(), reason="needs Debian fluid-soundfont-gm")
FAST = ["--seed", "5", "--min-duration", "3", "--max-duration", "4", "--tail", "1", "--min-parts", "2", "--max-parts", "3"]


def _cli(*args: str, **kw) -> subprocess.Popen | subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO / "scripts")}
    cmd = [sys.executable, "-m", "stemlab.synth", "generate", *FAST, *args]
    if kw.get("background"):
        return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


def _files(song_dir: Path) -> dict[str, bytes]:
    return {str(p.relative_to(song_dir)): p.read_bytes() for p in sorted(song_dir.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """Songs 0-3 from one process, one worker, one shard."""
    out = tmp_path_factory.mktemp("ref") / "shard-00000"
    _cli("--start", "0", "--count", "4", "--out", str(out))
    return out


@pytest.mark.slow
@needs_sf2
def test_same_bytes_across_shard_sizes_workers_and_processes(reference, tmp_path):
    # the same songs as shards of 1 and 3 songs, the second with two worker processes
    _cli("--start", "0", "--count", "1", "--out", str(tmp_path / "a"))
    _cli("--start", "1", "--count", "3", "--workers", "2", "--out", str(tmp_path / "b"))
    ids = sorted(p.name for p in reference.iterdir() if p.is_dir())
    assert ids == [f"syn-{i:06d}" for i in range(4)]
    for sid in ids:
        other = tmp_path / ("a" if sid == "syn-000000" else "b") / sid
        ref_files, other_files = _files(reference / sid), _files(other)
        assert ref_files.keys() == other_files.keys()
        for name in ref_files:
            assert ref_files[name] == other_files[name], f"{sid}/{name} differs"
    # merged manifest of the two shards == the one-shard manifest except for the shard column
    from stemlab.synth.shard import merge_manifests

    merged = merge_manifests([tmp_path / "a", tmp_path / "b"], tmp_path / "manifest.parquet")
    ref = pd.read_parquet(reference / "manifest.parquet")
    pd.testing.assert_frame_equal(merged.drop(columns="shard"), ref.drop(columns="shard"))
    assert list(merged["shard"]) == ["a", "b", "b", "b"]


TIM = "/usr/share/sounds/sf2/TimGM6mb.sf2"


@pytest.mark.slow
@needs_sf2
@pytest.mark.skipif(not Path(TIM).is_file(), reason="needs Debian timgm6mb-soundfont")
def test_every_source_gives_the_same_bytes_across_shard_sizes_and_workers(tmp_path):
    """MIDI sources, a genre file, a soundfont pool and sample layers: songs 0-3 in one shard of one
    worker, and as shards of 1 and 3 songs, the second with two workers, are the same bytes."""
    import json

    import numpy as np
    import soundfile as sf

    from tests.midi_corpus_fixture import groove_corpus, lakh_corpus

    corpus = f"groove={groove_corpus(tmp_path / 'groove')},lakh={lakh_corpus(tmp_path / 'lakh')}"
    lib = tmp_path / "samples"
    lib.mkdir()
    noise = np.random.Generator(np.random.PCG64(1)).standard_normal((4000, 2)).astype(np.float32) * 0.3
    for name in ("kick.wav", "snare.wav", "hat.wav", "shaker_loop_100bpm.wav"):
        sf.write(lib / name, noise if "loop" not in name else np.tile(noise[:600], (44, 1)), 44100)
    samples = {"samples": {"path": str(lib), "drums": 0.5, "loops": 0.5}}
    extra = ["--config", json.dumps(samples), "--seed", "24", "--sources", "generated=1,groove=1,midi_song=1,midi_chords=1", "--corpus", corpus,
             "--genre-file", str(REPO / "config" / "genres" / "chamber.yaml"), "--genre", "pop", "chamber",
             "--soundfont", SF2, TIM, "--outputs", "stems,midi"]  # fmt: skip
    _cli("--start", "0", "--count", "4", "--out", str(tmp_path / "ref"), *extra)
    _cli("--start", "0", "--count", "1", "--out", str(tmp_path / "a"), *extra)
    _cli("--start", "1", "--count", "3", "--workers", "2", "--out", str(tmp_path / "b"), *extra)
    for i in range(4):
        sid = f"syn-{i:06d}"
        assert _files(tmp_path / "ref" / sid) == _files(tmp_path / ("a" if i < 1 else "b") / sid), f"{sid} differs"
    sources = pd.read_parquet(tmp_path / "ref" / "manifest.parquet")["source"]
    assert set(sources) == {"generated", "groove", "midi_song", "midi_chords"}, list(sources)  # seed 24: one of each
    metas = [json.loads(p.read_text()) for p in sorted((tmp_path / "ref").glob("syn-*/song.json"))]
    played = {st["samples"]["kind"] for m in metas for st in m["stems"] if st["samples"]}
    assert played == {"one_shots", "loop"}, played  # both kinds of sample layer are in the compared songs


@pytest.mark.slow
@needs_sf2
def test_killed_shard_job_then_rerun_gives_the_same_bytes(reference, tmp_path):
    out = tmp_path / "shard-00000"
    proc = _cli("--start", "0", "--count", "4", "--out", str(out), background=True)
    deadline = time.time() + 120
    try:
        while time.time() < deadline and proc.poll() is None:
            temps = list(tmp_path.glob(".shard-00000.*.part"))
            if temps and any(temps[0].glob("syn-*/song.json")):
                break  # at least one song finished, the shard is not
            time.sleep(0.05)
        assert proc.poll() is None, "the job finished before it could be killed; make the songs longer"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not out.exists()  # nothing that looks finished
    assert list(tmp_path.glob(".shard-00000.*.part"))  # only the temp directory of the dead job
    _cli("--start", "0", "--count", "4", "--out", str(out))
    assert not list(tmp_path.glob(".shard-00000.*.part"))  # the re-run cleaned up
    assert _files(out) == _files(reference)


@needs_sf2
def test_rule_style_shard_arguments_pick_the_right_songs(tmp_path):
    _cli("--shard", "shard-00002", "--songs", "5", "--shard-size", "2", "--out", str(tmp_path / "s"), "--outputs", "midi")
    table = pd.read_parquet(tmp_path / "s" / "manifest.parquet")
    assert list(table["song_id"]) == ["syn-000004"] and list(table["shard"]) == ["s"]
    assert not (tmp_path / "s" / "syn-000004" / "mix.flac").exists()
    assert (tmp_path / "s" / "syn-000004" / "song.json").is_file()


FORBIDDEN_CALLS = {
    # numpy's legacy global generator
    ("np", "random", "seed"), ("np", "random", "rand"), ("np", "random", "randn"), ("np", "random", "randint"),
    ("np", "random", "random"), ("np", "random", "choice"), ("np", "random", "shuffle"), ("np", "random", "permutation"),
    ("np", "random", "uniform"), ("np", "random", "normal"), ("np", "random", "random_sample"), ("np", "random", "RandomState"),
    ("np", "random", "default_rng"),  # unseeded or ad-hoc seeds: use stemlab.seeding.rng
    ("numpy", "random", "seed"), ("numpy", "random", "rand"), ("numpy", "random", "randint"), ("numpy", "random", "choice"),
    ("torch", "manual_seed"), ("torch", "seed"), ("torch", "rand"), ("torch", "randn"), ("torch", "randint"),
    ("tf", "random", "set_seed"),
}


# torch samplers are fine with an explicit, seeded torch.Generator (generator=...)
TORCH_SAMPLERS = {("torch", "rand"), ("torch", "randn"), ("torch", "randint")}


def _dotted(node: ast.AST) -> tuple[str, ...]:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return tuple(reversed(parts))


def global_random_uses(source: str) -> list[str]:
    """Imports of `random`/`secrets`, legacy numpy random calls, torch global seeding, hash()-based seeds."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [f"import {a.name}" for a in node.names if a.name.split(".")[0] in ("random", "secrets")]
        elif isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            if mod.split(".")[0] in ("random", "secrets") or mod in ("numpy.random", "torch.random"):
                found.append(f"from {mod} import ...")
        elif isinstance(node, ast.Call):
            name = _dotted(node.func)
            explicit = name in TORCH_SAMPLERS and any(k.arg == "generator" for k in node.keywords)
            if name in FORBIDDEN_CALLS and not explicit:
                found.append(".".join(name))
            if name == ("hash",):
                found.append("hash() (salted per process)")
            # numpy: Generator() needs a seeded bit generator; torch.Generator objects are created
            # unseeded and seeded explicitly (the training loop seeds its generator every step)
            if name[-1:] == ("Generator",) and name[0] != "torch" and not node.args:
                found.append("Generator() without a seeded bit generator")
    return found


def test_scanner_catches_global_random_state():
    bad = "import random\nimport numpy as np\nnp.random.seed(1)\nx = np.random.rand(3)\nimport torch\ntorch.manual_seed(0)\nhash('a')\n"
    assert len(global_random_uses(bad)) == 5
    assert global_random_uses("from stemlab.seeding import rng\nr = rng(1, 'x')\nr.random()\n") == []
    assert global_random_uses("import numpy as np\ng = np.random.Generator()\n") == ["Generator() without a seeded bit generator"]
    assert global_random_uses("import torch\ng = torch.Generator(device='cpu')\ng.manual_seed(3)\n") == []
    assert global_random_uses("import torch\nx = torch.randn(3, generator=g)\ny = torch.randn(3)\n") == ["torch.randn"]


def test_package_has_no_global_random_state():
    """The whole stemlab package: synth, data, training, evaluation."""
    files = sorted((REPO / "scripts" / "stemlab").rglob("*.py"))
    assert len(files) > 50 and PACKAGE / "song.py" in files
    problems = {str(f.relative_to(REPO)): global_random_uses(f.read_text()) for f in files}
    assert not {k: v for k, v in problems.items() if v}
