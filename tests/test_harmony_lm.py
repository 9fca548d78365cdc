"""The learned composer backend: vocabulary, the frame model harmony_lm (training, resume, evaluation),
the torch-free weight reader and numpy sampler, deterministic sampling, songs composed with it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from stemlab.errors import StemlabError
from stemlab.seeding import rng as seeded
from stemlab.synth.compose import ComposeParams, compose
from stemlab.synth.genres import GENRE_NAMES
from stemlab.synth.learned.composer import ComposerConfig, LearnedComposer, load_composer
from stemlab.synth.learned.corpus import corpus_sequences, melody_steps
from stemlab.synth.learned.lm import HarmonyLM, LMSize, masked_nll
from stemlab.synth.learned.sampler import NumpyLM
from stemlab.synth.learned.task import batch_tensors
from stemlab.synth.learned.vocab import grammar_tokens, vocabulary
from stemlab.synth.learned.weights import read_final_numpy
from stemlab.synth.midi import part_midi
from stemlab.synth.song import annotate
from stemlab.synth.genres import GENRES
from stemlab.train.job import Job, JobInputs
from stemlab.train.run import train_job
from tests.workflow_utils import REPO

SF = "sf.sf2"
PARAMS = ComposeParams((20.0, 30.0), (2, 3))
SPLITS = ("train", "train", "valid", "test")


def _score(index: int, composer=None, seed: int = 3):
    genre = GENRE_NAMES[index % len(GENRE_NAMES)]
    return compose(genre, PARAMS, [SF], lambda *k: seeded(seed, index, *k), None, composer=composer)


def write_corpus(root: Path, n_songs: int) -> Path:
    """A shard folder of symbolic songs (song.json with the composition annotations, melody MIDI)."""
    shard = root / "shard-00000"
    for i in range(n_songs):
        score = _score(i)
        song = shard / f"syn-{i:06d}"
        (song / "midi").mkdir(parents=True)
        stems = []
        for part in score.parts:
            (song / "midi" / f"{part.name}.mid").write_bytes(part_midi(score, part, part.name))
            stems.append({"name": part.name, "role": part.role, "files": {"midi": f"midi/{part.name}.mid"}})
        meta = {"id": song.name, "split": SPLITS[i % len(SPLITS)], **annotate(score), "stems": stems}
        (song / "song.json").write_text(json.dumps(meta))
    return shard


def lm_job(shard: Path, steps: int, size=(8, 32, 1, 0.1)) -> Job:
    loop = {"steps": steps, "batch_size": 16, "lr": 0.01, "warmup_steps": 1, "checkpoint_every": 10,
            "checkpoint_seconds": 0, "keep_checkpoints": 5, "eval_every": 0}  # fmt: skip
    settings = {"model": dict(zip(("embed", "hidden", "layers", "dropout"), size)), "max_tokens": 48}
    return Job(model="harmony_lm", task="stemlab.synth.learned.task", seed=1, loop=loop, settings=settings,
               eval={}, inputs=JobInputs(stems=[str(shard)]), device="cpu", cpu_threads=1)  # fmt: skip


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("harmony_lm")
    shard = write_corpus(root, 18)
    train_job(lm_job(shard, 40), root / "model")
    return shard, root / "model" / "final.pt"


def test_vocabulary_round_trip_holds_every_grammar_chord_and_step():
    vocab = vocabulary()
    assert vocab.decode(vocab.encode(vocab.tokens)) == list(vocab.tokens)
    assert len(set(vocab.tokens)) == len(vocab)
    for genre in GENRES.values():
        for mode, grammar in genre.grammars.items():
            chords = vocab.decode(vocab.chord_ids(genre.name, mode))
            assert set(chords) == set(grammar_tokens(grammar)) and grammar.tonic in chords
    assert vocab.decode(vocab.step_ids) == [f"step{s:+d}" for s in range(-7, 8)]
    with pytest.raises(KeyError, match="not in the harmony LM vocabulary"):
        vocab.id("bIII#11")


def test_melody_steps_follow_the_scale():
    # C major: C4 D4 G4 F4 C5 -> scale indices apart by 1, 3, -1, 4
    assert melody_steps([60, 62, 67, 65, 72], 0, "major")[1] == [1, 3, -1, 4]
    assert melody_steps([60, 61], 0, "major")[1] in ([0], [1])  # a chromatic note snaps to a neighbour


def test_corpus_sequences_are_read_from_song_folders(tmp_path):
    shard = write_corpus(tmp_path, 4)
    seqs = corpus_sequences([shard])
    kinds = {s.kind for s in seqs}
    assert kinds == {"chords", "melody"}
    first = json.loads((shard / "syn-000000" / "song.json").read_text())
    chords = [s for s in seqs if s.song == "syn-000000" and s.kind == "chords"]
    assert chords[0].tokens == tuple(first["arrangement"][0]["progression"])
    assert {s.split for s in seqs} == {"train", "valid", "test"}
    with pytest.raises(StemlabError, match="stem shard folder not found"):
        corpus_sequences([tmp_path / "missing"])
    from stemlab.train.registry import task_class

    job = lm_job(shard, 1)
    task = task_class(job.model, job.task)(Job(**{**job.__dict__, "inputs": JobInputs()}))
    with pytest.raises(StemlabError, match="needs corpora \\[synthetic\\] and a window"):
        task.setup()


def test_a_few_training_steps_reduce_the_loss_on_toy_sequences():
    torch.manual_seed(0)
    vocab = vocabulary()
    # two fixed loops: after the prefix every chord is predictable
    ids = torch.tensor([vocab.chord_prefix("pop", "major", "verse") + vocab.encode(["I", "V", "vi", "IV"] * 3)] * 4)
    targets = torch.zeros_like(ids, dtype=torch.bool)
    targets[:, 4:] = True
    model = HarmonyLM(len(vocab), LMSize(8, 16, 1, 0.0))
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    first = None
    for _ in range(30):
        loss, _ = masked_nll(model(ids), ids, targets)
        first = float(loss.detach()) if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss.detach()) < 0.5 * first


def test_numpy_sampler_matches_the_torch_model():
    torch.manual_seed(1)
    model = HarmonyLM(len(vocabulary()), LMSize(6, 10, 2, 0.1)).eval()
    ids = torch.tensor([[1, 3, 12, 15, 21, 31, 27]])
    with torch.no_grad():
        expect = model(ids)[0, -1].double().numpy()
    lm = NumpyLM({k: v.numpy() for k, v in model.state_dict().items()})
    assert np.allclose(lm.run(ids[0].tolist()).logits, expect, atol=1e-5)


def test_training_writes_a_model_the_torch_free_reader_loads(trained):
    shard, final = trained
    payload = read_final_numpy(final)
    reference = torch.load(final, map_location="cpu", weights_only=True)
    assert payload["model"] == "harmony_lm" and payload["export"]["vocabulary"] == list(vocabulary().tokens)
    for key, tensor in reference["state_dict"].items():
        assert np.array_equal(payload["state_dict"][key], tensor.numpy()), key
    log = (final.parent / "train_log.csv").read_text().splitlines()
    header = log[0].split(",")
    nll = [float(row.split(",")[header.index("nll")]) for row in log[1:] if row.split(",")[header.index("nll")]]
    assert nll[-1] < nll[0]
    with pytest.raises(StemlabError, match="not found"):
        read_final_numpy(final.parent / "nope.pt")
    (final.parent / "bad.pt").write_bytes(b"not a zip")
    with pytest.raises(StemlabError, match="cannot read the model file"):
        read_final_numpy(final.parent / "bad.pt")


def test_a_resumed_run_ends_where_an_unbroken_one_does(trained, tmp_path):
    shard, final = trained
    job = lm_job(shard, 40)
    # the first 20 steps, then the same job to 40 from the step-20 checkpoint
    short = Job(**{**job.__dict__, "loop": {**job.loop, "steps": 20}})
    train_job(short, tmp_path / "run", tmp_path / "ckpt")
    train_job(job, tmp_path / "run", tmp_path / "ckpt")
    a = torch.load(final, weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "run" / "final.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_sampling_is_a_function_of_the_seed(trained):
    composer = load_composer(ComposerConfig("learned", str(trained[1])))
    grammar = GENRES["jazz"].grammars["major"]
    chain = composer.chain("jazz", "major", "chorus")
    draws = [chain(grammar, 24, seeded(9, "x", k), start="ii7") for k in (0, 0, 1)]
    assert draws[0] == draws[1] and draws[0] != draws[2]
    assert set(draws[0]) <= set(grammar_tokens(grammar))  # only the genre's own chords
    a, b = _score(5, composer), _score(5, composer)
    assert a.chords == b.chords and [p.notes for p in a.parts] == [p.notes for p in b.parts]
    assert _score(6, composer).chords != a.chords


def test_a_learned_song_stays_in_key_and_differs_from_the_markov_one(trained):
    composer = load_composer(ComposerConfig("learned", str(trained[1])))
    from stemlab.synth.theory import SCALES

    markov, learned = _score(2), _score(2, composer)
    assert [c.chord.roman for c in markov.chords] != [c.chord.roman for c in learned.chords] or [
        p.notes for p in markov.parts if p.role == "melody"
    ] != [p.notes for p in learned.parts if p.role == "melody"]
    melody = [p for p in learned.parts if p.role == "melody"]
    assert melody, "song 2 has a melody part"
    scale = {(learned.tonic + s) % 12 for s in SCALES[learned.mode]}
    chord_pcs = {pc for c in learned.chords for pc in c.chord.pitch_classes(learned.tonic)}
    assert all(n.pitch % 12 in scale | chord_pcs for n in melody[0].notes)  # scale notes, or chord tones on beats


def test_a_learned_composer_needs_a_harmony_lm_file(trained, tmp_path):
    with pytest.raises(StemlabError, match="needs a harmony_lm final.pt"):
        load_composer(ComposerConfig("learned", None))
    with pytest.raises(StemlabError, match="unknown backend"):
        ComposerConfig("neural")
    assert load_composer(ComposerConfig()).record["backend"] == "markov"
    torch.save({"format": 1, "model": "codec", "state_dict": {"w": torch.zeros(2)}}, tmp_path / "other.pt")
    with pytest.raises(StemlabError, match="holds model 'codec', not harmony_lm"):
        load_composer(ComposerConfig("learned", str(tmp_path / "other.pt")))
    payload = torch.load(trained[1], weights_only=True)
    torch.save({**payload, "export": {"vocabulary": ["<pad>", "I"]}}, tmp_path / "old.pt")
    with pytest.raises(StemlabError, match="another token vocabulary"):
        load_composer(ComposerConfig("learned", str(tmp_path / "old.pt")))


def test_sampling_gives_the_same_song_in_another_process(trained):
    # the engine's imports only (no torch): what a synth worker process loads
    code = (
        "import json, sys; from stemlab.seeding import rng; from stemlab.synth.compose import ComposeParams, compose; "
        "from stemlab.synth.learned.composer import ComposerConfig, load_composer; "
        "c = load_composer(ComposerConfig('learned', sys.argv[1])); "
        f"s = compose({GENRE_NAMES[7]!r}, ComposeParams((20.0, 30.0), (2, 3)), ['sf.sf2'], lambda *k: rng(3, 7, *k), None, composer=c); "
        "assert 'torch' not in sys.modules; "
        "print(json.dumps([[x.chord.roman for x in s.chords], [[n.pitch for n in p.notes] for p in s.parts]]))"
    )
    outs = []
    for threads in ("1", "3"):
        env = {
            **os.environ,
            "PYTHONPATH": str(REPO / "scripts"),
            "OMP_NUM_THREADS": threads,
            "OPENBLAS_NUM_THREADS": threads,
        }
        proc = subprocess.run(
            [sys.executable, "-c", code, str(trained[1])], env=env, capture_output=True, text=True, cwd=REPO
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        outs.append(proc.stdout)
    s = _score(7, load_composer(ComposerConfig("learned", str(trained[1]))))
    assert (
        outs[0]
        == outs[1]
        == json.dumps([[x.chord.roman for x in s.chords], [[n.pitch for n in p.notes] for p in s.parts]]) + "\n"
    )


def test_evaluation_rows_compare_the_lm_markov_and_unigram(trained, tmp_path):
    from stemlab.evaluate.run import evaluate_job

    shard, final = trained
    job = lm_job(shard, 40)
    rows = evaluate_job(Job(**{**job.__dict__, "eval": {"max_items": None}}), final.parent, tmp_path)
    assert set(rows["system"]) == {"harmony_lm", "markov", "unigram"}
    assert set(rows["metric"]) == {"chord_nll", "chord_acc", "melody_nll", "melody_acc"}
    assert np.isfinite(rows["value"]).all() and (rows["value"] >= 0).all()
    acc = rows[rows["metric"].str.endswith("_acc")]
    assert (acc["value"] <= 1).all()
    nll = rows[rows["metric"] == "chord_nll"].groupby("system")["value"].mean()
    assert nll["markov"] < nll["unigram"]  # the generating chain explains its own chords better


def test_batches_mask_the_context_tokens():
    from stemlab.synth.learned.corpus import Sequence

    seq = Sequence("chords", "s", "train", "pop", "major", 0, "verse", ("I", "V"))
    ids, targets = batch_tensors([seq, Sequence("melody", "s", "train", "pop", "major", 0, "verse", ("step+1",))], 10)
    assert ids.shape == (2, 6) and targets[0].tolist() == [False] * 4 + [True] * 2
    assert targets[1].tolist() == [False] * 3 + [True] + [False] * 2


@pytest.mark.slow
@pytest.mark.skipif(
    not Path("/usr/share/sounds/sf2/FluidR3_GM.sf2").is_file(), reason="needs Debian fluid-soundfont-gm"
)
def test_learned_songs_record_their_composer_and_keep_their_bytes_across_workers(trained, tmp_path):
    import jsonschema

    from stemlab.synth.schema import SONG_SCHEMA

    fast = ["--seed", "5", "--min-duration", "3", "--max-duration", "4", "--tail", "1", "--min-parts", "2", "--max-parts", "3",
            "--composer", "learned", "--composer-model", str(trained[1])]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO / "scripts")}
    for out, extra in (("one", ["--start", "0", "--count", "2"]), ("two", ["--start", "0", "--count", "2", "--workers", "2"]),
                       ("shard", ["--start", "1", "--count", "1"])):  # fmt: skip
        cmd = [sys.executable, "-m", "stemlab.synth", "generate", *fast, *extra, "--out", str(tmp_path / out)]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr[-2000:]
    import pandas as pd

    assert set(pd.read_parquet(tmp_path / "one" / "manifest.parquet")["composer"]) == {"learned"}
    for sid in ("syn-000000", "syn-000001"):
        meta = json.loads((tmp_path / "one" / sid / "song.json").read_text())
        jsonschema.validate(meta, SONG_SCHEMA)
        assert meta["composer"]["backend"] == "learned" and meta["composer"]["model"] == "final.pt"
        assert len(meta["composer"]["sha256"]) == 64
        for other in ("two", "shard") if sid == "syn-000001" else ("two",):
            files = sorted(
                p.relative_to(tmp_path / "one" / sid) for p in (tmp_path / "one" / sid).rglob("*") if p.is_file()
            )
            for f in files:
                assert (tmp_path / "one" / sid / f).read_bytes() == (tmp_path / other / sid / f).read_bytes(), (
                    other,
                    sid,
                    f,
                )


@pytest.mark.slow
def test_the_composer_model_is_a_shard_input_and_not_one_of_this_run(tmp_path):
    from tests.workflow_utils import snakemake_in

    learned = {"synth": {"composer": {"backend": "learned", "model": "resources/lm/final.pt"}}}
    out = snakemake_in(tmp_path, learned, "synth", "-n")
    assert out.returncode != 0 and "resources/lm/final.pt" in out.stdout + out.stderr  # missing: an input
    (tmp_path / "resources" / "lm").mkdir(parents=True)
    (tmp_path / "resources" / "lm" / "final.pt").write_bytes(b"x")
    assert snakemake_in(tmp_path, learned, "synth", "-n").returncode == 0
    own = {"synth": {"composer": {"backend": "learned", "model": "results/models/harmony_lm/seed-1/final.pt"}}}
    out = snakemake_in(tmp_path, own, "synth", "-n")
    assert (
        out.returncode != 0
        and "a model of this run is trained on the corpus it would compose" in out.stdout + out.stderr
    )


def test_the_validity_table_has_a_row_per_composer_backend():
    import pandas as pd

    from stemlab.synth import validity

    roles = validity.ValidityParams().roles
    rows = []
    for k, backend in enumerate(["markov", "learned", "learned"]):
        row = {"genre": "pop", "time_signature": "4/4", "composer": backend, "beat_f": 0.5 + 0.2 * k}
        row |= {f"{r}_{c}": 4 for r in roles for c in ("notes", "correct")} | {f"{r}_unvoiced": 0 for r in roles}
        rows.append(row)
    table = validity.summarize(pd.DataFrame(rows), roles).set_index("group")
    assert table.loc["composer=learned", "n_songs"] == 2 and table.loc["composer=markov", "n_songs"] == 1
    assert table.loc["composer=learned", "beat_f"] == pytest.approx(0.8)
