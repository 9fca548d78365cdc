"""CLAP: laion-clap's code imported offline, captions from annotations, retrieval metrics in closed form,
training and evaluation through the frame, and the pretrained path (download -> sha256 -> key adaptation
-> load -> embed) with a checkpoint the test writes in the stock key layout and serves on 127.0.0.1."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

from stemlab.encoders.clap import captions as cap
from stemlab.encoders.clap import laion
from stemlab.encoders.clap.task import retrieval_rows
from stemlab.seeding import rng
from stemlab.train.job import Job, JobInputs

SR = 44_100
GENRES = ("jazz", "electronic", "rock", "pop")
TINY = {
    "source": "trained", "clip_seconds": 1.0, "joint_dim": 16, "audio": {"mel_bins": 32},
    "htsat": {"name": "custom", "spec_size": 64, "embed_dim": 8, "depths": [1, 1], "num_heads": [1, 2], "window_size": 4},
    "text": {"context_length": 16, "width": 16, "heads": 2, "layers": 1},
    "spec_augment": {"time_drop_width": 8, "time_stripes_num": 2, "freq_drop_width": 4, "freq_stripes_num": 2},
}  # fmt: skip


def _song(i: int, genre: str) -> dict:
    return {
        "id": f"syn-{i:06d}", "genre": genre, "tempo_bpm": 90.0 + 10 * i, "key": "C", "mode": "major" if i % 2 else "minor",
        "time_signature": [4, 4], "mix": "mix.flac", "split": "train",
        "arrangement": [{"section": "intro", "start_s": 0.0, "end_s": 1.0, "active_stems": ["drums"]},
                        {"section": "chorus", "start_s": 1.0, "end_s": 10.0, "active_stems": ["drums", "bass"]}],
        "stems": [
            {"name": "drums", "category": "drums", "instrument": {"name": "Standard Kit", "is_drum": True}, "files": {"wet": "wet/drums.flac"}},
            {"name": "bass", "category": "bass", "instrument": {"name": "Fretless Bass", "is_drum": False}, "files": {"wet": "wet/bass.flac"}},
        ],
    }  # fmt: skip


def write_clap_corpus(root: Path, songs: int = 8, seconds: float = 3.0) -> Path:
    """Songs whose audio depends on their genre (tone height, pulse rate), a clap segment table of 1 s windows."""
    rows = []
    splits = ["train"] * (songs - 3) + ["valid", "test", "test"]
    n = int(seconds * SR)
    t = np.arange(n) / SR
    for i in range(songs):
        genre = GENRES[i % len(GENRES)]
        song = _song(i, genre) | {"split": splits[i]}
        d = root / "stems" / "synthetic" / "shard-00000" / song["id"]
        (d / "wet").mkdir(parents=True)
        g = GENRES.index(genre)
        r = rng(0, "clap-fixture", i)
        drums = (np.exp(-((t * (2 + g)) % 1) * 30) * r.standard_normal(n) * 0.3).astype(np.float32)
        bass = (0.3 * np.sin(2 * np.pi * (55 * 2 ** (g / 2)) * t)).astype(np.float32)
        for name, x in (("drums", drums), ("bass", bass)):
            sf.write(d / "wet" / f"{name}.flac", np.stack([x, x], 1), SR, subtype="PCM_24")
        mix = drums + bass
        sf.write(d / "mix.flac", np.stack([mix, mix], 1), SR, subtype="PCM_24")
        (d / "song.json").write_text(json.dumps(song))
        for start in range(0, n - SR + 1, SR):
            for stem in ("drums", "bass"):
                rows.append({"song": song["id"], "stem": stem, "start": start, "length": SR, "active": True,
                             "corpus": "synthetic", "shard": "shard-00000", "split": splits[i]})  # fmt: skip
    pd.DataFrame(rows).to_parquet(root / "clap.parquet")
    return root


def clap_job(root: Path, settings: dict, *, steps: int = 3, pretrained: dict | None = None, eval_settings: dict | None = None) -> Job:
    inputs = JobInputs(segments={"clap": [str(root / "clap.parquet")]}, stems_root=str(root / "stems"),
                       pretrained=pretrained or {})  # fmt: skip
    loop = {"steps": steps, "batch_size": 4, "lr": 1e-3, "checkpoint_every": 0, "checkpoint_seconds": 0, "workers": 0,
            "valid_batches": 1}  # fmt: skip
    return Job(model="clap", task="stemlab.encoders.clap.task", seed=1, loop=loop, settings=settings,
               eval=eval_settings or {"genres": list(GENRES)}, inputs=inputs, device="cpu")  # fmt: skip


# ---------------------------------------------------------------------------- laion-clap, captions, metrics


def test_laion_model_code_imports_offline_and_leaves_no_torchvision():
    module = laion.clap_module()
    assert hasattr(module, "create_model") and hasattr(module, "ClipLoss")
    assert "torchvision" not in sys.modules
    tokens = laion.tokenize(["a jazz song", "drums"], 12)
    assert tokens.shape == (2, 12) and int(tokens.max()) == laion.VOCAB_SIZE - 1  # end-of-text is the highest id
    assert int(tokens[0].argmax()) == 4  # <start> a jazz song <end>


def test_captions_say_what_the_annotations_know():
    song = _song(3, "jazz")
    facts = cap.window_facts(song, 0.0, 0.8)
    assert facts.section == "intro" and facts.instruments == ("standard kit",) and facts.genre == "jazz"
    chorus = cap.window_facts(song, 2.0, 1.0)
    assert set(chorus.instruments) == {"standard kit", "fretless bass"} and chorus.section == "chorus"
    texts = cap.captions(chorus)
    assert len(set(texts)) == len(texts) >= 4 and all("jazz" in t.lower() for t in texts)
    assert "120 bpm" in texts[0] and "C major" in texts[0]
    stem = cap.captions(cap.window_facts(song, 2.0, 1.0, stem="bass"))
    assert all("fretless bass" in t.lower() for t in stem)
    assert cap.zero_shot_prompts(["rock"]) == ["This audio is a rock song."]


def test_window_captions_tell_the_windows_of_one_song_apart():
    song = _song(3, "jazz") | {"chords": [{"symbol": "C", "start_s": 0.0, "end_s": 2.0}, {"symbol": "Am", "start_s": 2.0, "end_s": 4.0},
                                          {"symbol": "Am", "start_s": 4.0, "end_s": 6.0}, {"symbol": "F", "start_s": 6.0, "end_s": 8.0}]}  # fmt: skip
    assert cap.window_facts(song, 1.0, 4.0).chords == ("C", "Am")  # overlapping chords in order, a repeat merged
    # the segment table's active stems of the window, not the section's arrangement, say who is heard
    quiet = cap.window_facts(song, 6.0, 2.0, playing=["bass"])
    assert quiet.instruments == ("fretless bass",) and cap.window_facts(song, 6.0, 2.0, playing=[]).instruments == ()
    texts = [cap.captions(cap.window_facts(song, start, 2.0, playing=["drums", "bass"]))[0] for start in (2.0, 6.0)]
    assert texts[0] != texts[1] and "chorus" in texts[0] and "over Am." in texts[0] and "over F." in texts[1]
    assert "jazz" in texts[0] and "120 bpm" in texts[0] and "fretless bass" in texts[0]


def test_retrieval_scores_the_pairs_the_loss_trains():
    from stemlab.encoders.clap import model as clap_model
    from stemlab.encoders.clap.task import ClapSettings

    torch.manual_seed(0)
    model = clap_model.build(ClapSettings.from_config(TINY)).eval()
    waveform = torch.randn(3, 48_000) * 0.1
    tokens = laion.tokenize(["a jazz song", "drums", "a rock song with bass"], 16)
    with torch.no_grad():
        a, t, a_mlp, t_mlp, scale_a, scale_t = model({"waveform": waveform}, tokens, device=torch.device("cpu"))
        audio, text = clap_model.audio_embedding(model, waveform), clap_model.text_embedding(model, tokens)
        paired = clap_model.scores(model, audio, text, mlp_pairs=True)
        plain = clap_model.scores(model, audio, text, mlp_pairs=False)
    torch.testing.assert_close(audio, a)
    torch.testing.assert_close(text, t)
    # laion-clap's mlp-loss logits (audio vs text MLP head, audio MLP head vs text), averaged
    torch.testing.assert_close(paired, (scale_a * a @ t_mlp.T + scale_t * a_mlp @ t.T) / 2)
    torch.testing.assert_close(plain, a @ t.T)
    assert not torch.allclose(paired / scale_a, plain, atol=1e-3)


def test_caption_dropout_leaves_out_facts_one_by_one():
    song = _song(3, "jazz") | {"chords": [{"symbol": "C", "start_s": 0.0, "end_s": 4.0}]}
    facts = cap.window_facts(song, 2.0, 1.0, playing=["drums", "bass"])
    assert cap.drop_facts(facts, 0.0, rng(0, "x")) is facts
    bare = cap.drop_facts(facts, 1.0, rng(0, "x"))
    assert (bare.genre, bare.tempo_bpm, bare.key, bare.mode, bare.section, bare.instruments, bare.chords) == (None,) * 5 + ((), ())
    assert cap.captions(bare)[0] == "A passage of a piece of music."
    stem = cap.drop_facts(cap.window_facts(song, 2.0, 1.0, stem="bass"), 1.0, rng(0, "x"))
    assert stem.stem == "fretless bass" and cap.captions(stem)[0].startswith("fretless bass playing in a piece of music")
    # at rate 0.5 the captions are the full one's facts, each present in about half of them
    kept = [cap.drop_facts(facts, 0.5, rng(0, "x", i)) for i in range(400)]
    for field in ("genre", "tempo_bpm", "key", "section", "instruments", "chords"):
        share = np.mean([bool(getattr(k, field)) for k in kept])
        assert 0.4 < share < 0.6, field
    assert all((k.key is None) == (k.mode is None) for k in kept)
    texts = {cap.pick_caption(facts, rng(0, "pick", i), 0.5) for i in range(50)}
    assert len(texts) > 20  # paraphrases of different subsets of the facts
    assert cap.pick_caption(facts, rng(1, "p"), 0.0) in cap.captions(facts)


def test_a_cut_caption_keeps_its_end_of_text_token():
    tokens = laion.tokenize(["a b c d e f g h i j k l", "a b"], 6)
    assert tokens[0, -1] == laion.VOCAB_SIZE - 1 and int(tokens[0].argmax()) == 5
    assert tokens[1].tolist()[3:] == [laion.VOCAB_SIZE - 1, 0, 0]


def test_spec_augment_is_configured():
    model = torch.nn.Module()
    model.audio_branch = torch.nn.Module()
    laion.set_spec_augment(model, {"time_drop_width": 5, "time_stripes_num": 1, "freq_drop_width": 3, "freq_stripes_num": 0})
    spec = model.audio_branch.spec_augmenter
    assert (spec.time_dropper.drop_width, spec.time_dropper.stripes_num) == (5, 1)
    assert (spec.freq_dropper.drop_width, spec.freq_dropper.stripes_num) == (3, 0)


def test_retrieval_metrics_in_closed_form():
    # 4 windows with distinct captions: audio 0 and 1 find their text first; audio 2's text ranks 3rd; audio 3's 2nd
    sim = np.array([[0.9, 0.1, 0.0, 0.0],
                    [0.2, 0.8, 0.1, 0.0],
                    [0.5, 0.6, 0.3, 0.0],
                    [0.0, 0.1, 0.7, 0.6]])  # fmt: skip
    rows = pd.DataFrame(retrieval_rows(sim, ["a", "b", "c", "d"]))
    mine = rows[rows["system"] == "clap"].set_index(["metric", "item"])["value"]
    assert [mine[("a2t_r1", k)] for k in "abcd"] == [1, 1, 0, 0]
    # text -> audio: text c (column 2) finds audio 3 (0.7) before audio 2 (0.3): rank 2; text d: rank 1
    assert [mine[("t2a_r1", k)] for k in "abcd"] == [1, 1, 0, 1]
    assert all(mine[("a2t_r10", k)] == 1 for k in "abcd")  # N < 10: every match is within 10
    assert mine[("t2a_median_rank", "all")] == 1.0
    chance = rows[rows["system"] == "chance"].set_index(["metric", "item"])["value"]
    assert chance[("t2a_r1", "a")] == 0.25 and chance[("t2a_r10", "a")] == 1.0 and chance[("a2t_r1", "a")] == 0.25
    assert chance[("t2a_median_rank", "all")] == 2.5  # (N + 1) / (P + 1) with one positive


def test_shared_captions_are_one_query_with_several_positives():
    # windows 0 and 1 share caption "x": text x hits if either audio is first; a2t ranks 2 distinct captions
    sim = np.array([[0.1, 0.1, 0.9],
                    [0.8, 0.8, 0.2],
                    [0.3, 0.3, 0.4]])  # fmt: skip
    rows = pd.DataFrame(retrieval_rows(sim, ["w0", "w1", "w2"], ["x", "x", "y"]))
    mine = rows[rows["system"] == "clap"].set_index(["metric", "item"])["value"]
    assert mine[("t2a_r1", "x")] == 1.0 and mine[("t2a_r1", "y")] == 0.0  # y's best window is w0 (0.9), not w2
    assert [mine[("a2t_r1", w)] for w in ("w0", "w1", "w2")] == [0.0, 1.0, 1.0]
    chance = rows[rows["system"] == "chance"].set_index(["metric", "item"])["value"]
    assert chance[("t2a_r1", "x")] == pytest.approx(2 / 3) and chance[("t2a_r1", "y")] == pytest.approx(1 / 3)
    assert chance[("a2t_r1", "w0")] == 0.5


# ---------------------------------------------------------------------------- training and evaluation


@pytest.mark.slow  # a model trained end to end (seconds to tens of seconds on 2 cores)
def test_training_and_evaluation_through_the_frame(tmp_path):
    from stemlab.evaluate.run import evaluate_job
    from stemlab.train.run import train_job
    from stemlab.train.task import load_trained

    root = write_clap_corpus(tmp_path / "corpus")
    meta = train_job(clap_job(root, TINY), tmp_path / "model")
    assert meta["train_items"] == 5 * 3 * 3 and meta["parameters"] > 0  # 5 songs x 3 windows x (mix + 2 stems)
    log = pd.read_csv(tmp_path / "model" / "train_log.csv")
    assert list(log[log["split"] == "train"]["step"]) == [1, 2, 3] and log["loss"].notna().all()
    assert "a2t_r1_batch" in log.columns
    rows = evaluate_job(clap_job(root, TINY), tmp_path / "model", tmp_path / "eval")
    assert set(rows["system"]) == {"clap", "chance"}
    assert set(rows["metric"]) == {"t2a_r1", "t2a_r10", "a2t_r1", "a2t_r10", "t2a_median_rank", "zeroshot_genre_acc"}
    assert len(rows[(rows["system"] == "clap") & (rows["metric"] == "a2t_r1")]) == 6  # 2 test songs x 3 windows
    # embed() of a window equals the model's own embedding of its one clip
    task, model, _ = load_trained(tmp_path / "model" / "final.pt", "cpu", {"segments": {"clap": [str(root / "clap.parquet")]}})
    assert model.audio_branch.spec_augmenter.freq_dropper.drop_width == TINY["spec_augment"]["freq_drop_width"]
    song = root / "stems" / "synthetic" / "shard-00000" / "syn-000006"
    audio = sf.read(song / "mix.flac", dtype="float32")[0][:SR].T
    emb = task.embed(model, torch.from_numpy(audio)[None])
    from stemlab.encoders.clap.model import audio_embedding
    from stemlab.encoders.clap.windows import to_clap_audio

    with torch.no_grad():
        direct = audio_embedding(model, torch.from_numpy(to_clap_audio(audio, 48_000))[None])
    torch.testing.assert_close(emb, direct)
    assert emb.shape == (1, 16) and float(emb.norm()) == pytest.approx(1.0, abs=1e-5)


# ---------------------------------------------------------------------------- pretrained path


def _byte_vocab() -> dict[str, int]:
    """Specials plus GPT-2's 256 byte-level symbols: a byte-level BPE vocabulary without merges."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    symbols, extra = [], 0
    for b in range(256):
        if b in printable:
            symbols.append(chr(b))
        else:
            symbols.append(chr(256 + extra))
            extra += 1
    vocab = {t: i for i, t in enumerate(["<s>", "<pad>", "</s>", "<unk>"])}
    for ch in symbols:
        vocab.setdefault(ch, len(vocab))
    vocab["<mask>"] = len(vocab)
    return vocab


@pytest.mark.slow  # a model trained end to end (seconds to tens of seconds on 2 cores)
def test_pretrained_checkpoint_downloads_adapts_keys_loads_and_embeds(tmp_path):
    from stemlab.download.pretrained import fetch_snapshot
    from stemlab.encoders.clap import model as clap_model
    from stemlab.encoders.clap.pretrained import adapt_stock_state_dict
    from stemlab.encoders.clap.task import ClapSettings
    from stemlab.train.run import train_job
    from stemlab.train.task import load_trained
    from tests.download_server import FileServer

    vocab = _byte_vocab()
    roberta = {"vocab_size": len(vocab), "hidden_size": 768, "num_hidden_layers": 1, "num_attention_heads": 12,
               "intermediate_size": 32, "max_position_embeddings": 40, "type_vocab_size": 1, "layer_norm_eps": 1e-5,
               "pad_token_id": 1, "bos_token_id": 0, "eos_token_id": 2}  # fmt: skip
    settings = TINY | {"source": "pretrained", "text": {"context_length": 16}, "pretrained": {"snapshot": "laion", "checkpoint": "music.pt"}}
    torch.manual_seed(0)  # the test's stand-in for LAION's weights
    reference = clap_model.build(ClapSettings.from_config(settings), "roberta", roberta)
    # the stock layout: weights under state_dict, a DDP `module.` prefix, the position_ids buffer older transformers saved
    stock = {f"module.{k}": v for k, v in reference.state_dict().items()}
    stock["module.text_branch.embeddings.position_ids"] = torch.arange(40)[None]
    blobs = {"music.pt": None, "vocab.json": json.dumps(vocab).encode(), "merges.txt": b"#version: 0.2\n",
             "roberta_config.json": json.dumps(roberta).encode()}  # fmt: skip
    buffer = tmp_path / "music.pt"
    torch.save({"epoch": 15, "state_dict": stock}, buffer)
    blobs["music.pt"] = buffer.read_bytes()
    assert set(adapt_stock_state_dict(torch.load(buffer, weights_only=True))) == set(reference.state_dict())
    with FileServer() as server:
        for name, data in blobs.items():
            server.state.files[f"/laion/{name}"] = data
        files = [{"path": n, "url": server.url(f"/laion/{n}"), "sha256": hashlib.sha256(d).hexdigest(), "key": f"pretrained.laion.files[{i}]"}
                 for i, (n, d) in enumerate(blobs.items())]  # fmt: skip
        fetch_snapshot("laion", files, tmp_path / "snapshot", tmp_path / "cache", show_progress=False)
    root = write_clap_corpus(tmp_path / "corpus", songs=4)
    job = clap_job(root, settings, steps=1, pretrained={"laion": str(tmp_path / "snapshot")})
    train_job(job, tmp_path / "model")
    task, model, _ = load_trained(tmp_path / "model" / "final.pt", "cpu", {"pretrained": {"laion": str(tmp_path / "snapshot")}})
    saved = model.state_dict()
    assert all(torch.equal(saved[k], v) for k, v in reference.state_dict().items()), "the stock weights must load unchanged"
    audio = torch.from_numpy(sf.read(root / "stems" / "synthetic" / "shard-00000" / "syn-000000" / "mix.flac", dtype="float32")[0][:SR].T)
    reference.eval()
    with torch.no_grad():
        from stemlab.encoders.clap.windows import to_clap_audio

        direct = clap_model.audio_embedding(reference, torch.from_numpy(to_clap_audio(audio.numpy(), 48_000))[None])
    torch.testing.assert_close(task.embed(model, audio[None]), direct)
    tokens = task.tokenize(["This audio is a jazz song."])
    assert tokens["input_ids"].shape == (1, 16) and int(tokens["input_ids"][0, 0]) == 0  # <s> first
    assert clap_model.text_embedding(model, tokens).shape == (1, 16)


def test_a_clip_that_does_not_fit_htsat_is_refused_in_one_line():
    from stemlab.encoders.clap.task import ClapSettings
    from stemlab.errors import StemlabError

    with pytest.raises(StemlabError, match="201 frames but HTSAT .* fits 128"):
        ClapSettings.from_config(TINY | {"clip_seconds": 2.0})
    assert ClapSettings.from_config(TINY).clip_samples == 48_000
