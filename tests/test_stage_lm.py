"""The stage LM (stemlab.stage.lm, task, evaluate): delay pattern, loss mask, CFG, training with resume,
evaluation rows, the generate CLI."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from stemlab.stage import lm
from tests import stage_lm_fixture as fx


@pytest.fixture(autouse=True)
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _tiny(card: int = 16, k: int = 3) -> lm.StageLM:
    torch.manual_seed(0)
    return lm.StageLM(k, card, 8, lm.LMSize(d_model=32, layers=2, heads=4, ffn=64, dropout=0.0))


def test_delay_pattern_shifts_codebook_k_by_k_and_inverts_exactly():
    codes = torch.arange(2 * 3 * 5).view(2, 3, 5)
    delayed = lm.delay(codes, -7)
    assert delayed.shape == (2, 3, 7)
    assert delayed[0, 0].tolist() == [0, 1, 2, 3, 4, -7, -7]
    assert delayed[0, 2].tolist() == [-7, -7, 10, 11, 12, 13, 14]
    assert torch.equal(lm.undelay(delayed), codes)


def test_loss_mask_covers_exactly_the_target_tokens():
    k, fc, ft = 4, 6, 5
    mask = lm.target_mask(k, fc, ft)
    assert int(mask.sum()) == k * ft
    seq = lm.build_sequence(torch.full((1, 1, k, fc), 3), torch.full((1, k, ft), 9), 16)[0, 0]
    assert torch.equal(mask, seq == 9)  # every target token and nothing else
    assert int((seq == 17).sum()) == k  # one separator frame


def test_cfg_at_scale_one_is_the_conditional_logits_and_sampling_is_seeded():
    model = _tiny().eval()
    cond, uncond = torch.randn(2, 3, 16), torch.randn(2, 3, 16)
    assert torch.equal(lm.cfg_logits(cond, uncond, 1.0), cond)
    assert torch.equal(lm.cfg_logits(cond, uncond, 0.0), uncond)  # scale 0: the unconditional branch alone
    assert torch.allclose(lm.cfg_logits(cond, uncond, 3.0), 3.0 * cond - 2.0 * uncond, atol=1e-6)
    assert torch.allclose(lm.cfg_logits(cond, uncond, 1.0 + 1e-9), cond, atol=1e-6)  # the guided path agrees with the shortcut
    ctx = torch.randint(0, 16, (2, 2, 3, 4))
    states, mask = torch.randn(2, 3, 8), torch.ones(2, 3, dtype=torch.bool)
    draws = [lm.sample(model, ctx, 5, states, mask, cfg_scale=3.0, top_k=4, generator=torch.Generator().manual_seed(1)) for _ in range(2)]
    assert draws[0].shape == (2, 3, 5) and torch.equal(draws[0], draws[1])
    assert int(draws[0].max()) < 16
    # Conditioned on exactly the unconditional inputs (all-PAD context, empty prompt), the guided sampler's
    # two halves give the same logits, so any scale draws what the unguided sampler draws.
    pad_ctx = torch.full_like(ctx, lm.ABSENT)
    pad_ctx[:, 0] = model.pad
    empty, no_text = torch.zeros(2, 1, 8), torch.zeros(2, 1, dtype=torch.bool)
    unguided, guided = (
        lm.sample(model, pad_ctx, 5, empty, no_text, cfg_scale=s, top_k=4, generator=torch.Generator().manual_seed(2))
        for s in (1.0, 3.0)
    )
    assert torch.equal(unguided, guided)


def test_cached_decoding_equals_the_full_forward():
    model = _tiny().eval()
    seq = lm.build_sequence(torch.randint(0, 16, (1, 2, 3, 4)), torch.randint(0, 16, (1, 3, 5)), 16)
    states, mask = torch.randn(1, 2, 8), torch.ones(1, 2, dtype=torch.bool)
    full = model(seq, states, mask)
    caches = [{} for _ in model.blocks]
    parts = [model(seq[..., :3], states, mask, caches, 0)]
    parts += [model(seq[..., p : p + 1], states, mask, caches, p) for p in range(3, seq.shape[-1])]
    assert torch.allclose(torch.cat(parts, dim=2), full, atol=1e-5)


def test_text_dropout_is_seeded_and_drops_whole_prompts():
    g = np.random.default_rng(0)
    texts = lm.drop_texts(["Genres: rock. Moods: calm."] * 200, 0.3, 0.5, g)
    empty = sum(t == "" for t in texts)
    assert 70 < empty < 130
    kept = [t for t in texts if t]
    assert any(len(t.split()) < 4 for t in kept)


def test_a_tiny_t5_snapshot_gives_token_states(tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast, T5Config, T5EncoderModel

    from stemlab.stage.text import text_encoder

    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2, **{w: i + 3 for i, w in enumerate("genres moods rock calm".split())}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>").save_pretrained(tmp_path)
    cfg = T5Config(vocab_size=16, d_model=16, d_kv=4, d_ff=32, num_layers=1, num_heads=2)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        T5EncoderModel(cfg).save_pretrained(tmp_path)
    enc = text_encoder("pretrained", tmp_path)
    states, mask = enc(["genres rock", ""])
    assert states.shape[0] == 2 and states.shape[-1] == 16 == enc.dim
    assert mask[0].any() and not mask[1].any()


def _crash_at(monkeypatch, index: int):
    from stemlab.stage.task import StageTask

    original = StageTask.data

    def data(self, start):
        for i, batch in enumerate(original(self, start), start=start):
            if i == index:
                raise RuntimeError("killed")
            yield batch

    monkeypatch.setattr(StageTask, "data", data)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from stemlab.train.run import train_job

    mp = pytest.MonkeyPatch()
    root = tmp_path_factory.mktemp("stage")
    fx.install(mp)
    job = fx.stage_job(root)
    train_job(job, root / "model")
    yield root, job, mp
    mp.undo()


def test_training_resumes_to_the_same_weights(trained, tmp_path, monkeypatch):
    from stemlab.train.run import train_job

    root, job, _ = trained
    full = torch.load(root / "model" / "final.pt", weights_only=True)["state_dict"]
    assert not any(k.startswith("text.") for k in full)  # the frozen text encoder is not saved
    with monkeypatch.context() as m:
        _crash_at(m, 3)
        with pytest.raises(RuntimeError, match="killed"):
            train_job(job, tmp_path / "run")
    train_job(job, tmp_path / "run")
    again = torch.load(tmp_path / "run" / "final.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(full[k], again[k]) for k in full)


def test_evaluation_rows_have_every_system_and_metric(trained, tmp_path):
    from stemlab.evaluate.run import evaluate_job

    root, job, _ = trained
    rows = evaluate_job(job, root / "model", tmp_path)
    scored = rows[rows["metric"] != "spectrogram"]
    systems = {"stage", "stage_metronome", "stage_cfg1", "stage_metronome_cfg1", "ground_truth", "random_stem", "tempo_loop", "noise"}
    assert set(scored["system"]) == systems
    for metric in ("beat_f", "kad_clap", "fd_clap"):
        assert set(scored.loc[scored["metric"] == metric, "system"]) == systems
    assert np.isfinite(scored["value"]).all()
    beat = scored[scored["metric"] == "beat_f"]
    assert beat["value"].between(0, 1).all()
    assert set(rows.loc[rows["metric"] == "spectrogram", "system"]) == {"context", "stage", "stage_metronome", "ground_truth"}
    assert (rows["target"] == "drums").all()
    again = evaluate_job(job, root / "model", tmp_path / "again")
    assert scored["value"].tolist() == again.loc[again["metric"] != "spectrogram", "value"].tolist()


def test_cli_generates_a_stem_of_the_requested_length_from_mixed_formats(trained, tmp_path, monkeypatch):
    import soundfile as sf

    from stemlab.stage import codec as codec_mod
    from stemlab.stage.__main__ import main

    root, _, _ = trained
    monkeypatch.setattr(codec_mod, "load_codec", lambda path, *a, **k: fx.ToyCodec())
    folder = tmp_path / "context"
    folder.mkdir()
    t = np.arange(int(3.0 * 48_000)) / 48_000
    sf.write(folder / "keys.wav", np.stack([np.sin(2 * np.pi * 220 * t), np.sin(2 * np.pi * 330 * t)], axis=1) * 0.3, 48_000)
    t = np.arange(int(2.0 * 22_050)) / 22_050
    sf.write(folder / "bass.flac", np.sin(2 * np.pi * 55 * t) * 0.5, 22_050)
    (folder / "notes.txt").write_text("not audio")
    out = tmp_path / "out" / "drums.flac"
    out.parent.mkdir()
    assert main(["generate", str(folder), str(out), "--seconds", "1.5", "--cfg", "3", "--model", str(root / "model" / "final.pt")]) == 0
    audio, sr = sf.read(out)
    assert sr == fx.SR and len(audio) == int(1.5 * fx.SR)
    assert not list(out.parent.glob("*.tmp*"))


def test_cli_errors_are_one_line(trained, tmp_path, capsys):
    from stemlab.errors import run_cli
    from stemlab.stage.__main__ import main

    root, _, _ = trained
    (tmp_path / "empty").mkdir()
    code = run_cli(main, ["generate", str(tmp_path / "empty"), str(tmp_path / "x.flac"), "--model", str(root / "model" / "final.pt")])
    err = capsys.readouterr().err.strip()
    assert code == 1 and "\n" not in err and "no audio files" in err and str(tmp_path / "empty") in err
    assert not (tmp_path / "x.flac").exists()


def test_heldout_examples_write_one_stem_per_song(trained, tmp_path):
    import soundfile as sf

    from stemlab.stage.generate import heldout_examples

    root, job, _ = trained
    heldout_examples(job, root / "model", tmp_path / "gen")
    index = (tmp_path / "gen" / "index.csv").read_text().splitlines()
    assert len(index) == 1 + 3  # the fixture's three test songs
    first = index[1].split(",")[1]
    audio, sr = sf.read(tmp_path / "gen" / first)
    assert sr == fx.SR and len(audio) == int(2.0 * fx.SR)


def test_figure_is_byte_deterministic_from_the_rows(trained, tmp_path):
    from stemlab.evaluate.run import evaluate_job
    from stemlab.evaluate.summary import summarize
    from stemlab.stage.figure import plot

    root, job, _ = trained
    rows = evaluate_job(job, root / "model", tmp_path / "eval")
    table = summarize(rows, ("target",), draws=100, directions={"beat_f": "higher"})
    for name in ("a", "b"):
        plot(table, rows, tmp_path / f"{name}.pdf")
    assert (tmp_path / "a.pdf").read_bytes() == (tmp_path / "b.pdf").read_bytes()
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
