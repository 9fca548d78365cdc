"""Bad source audio: every failure is one line naming the file and the fix, and nothing half-written stays."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml

from stemlab.audio import audio_truncation, read_audio_complete
from stemlab.data.stems import build_corpus_shard
from stemlab.errors import StemlabError
from tests.data_fixtures import make_medleydb, make_moisesdb, make_musdb, tone, write_wav

SHARD = "shard-00000"


def _corpus(tmp_path: Path, seconds: float = 1.0) -> tuple[Path, Path]:
    root = make_musdb(tmp_path / "corpus", ["A - a"], [], seconds=seconds, wrap="")
    return root, root / "train" / "A - a"


def _build(root: Path, out: Path, corpus: str = "musdb18hq", cfg: dict | None = None, **audio) -> Path:
    build_corpus_shard(corpus, root, SHARD, 1, cfg or {}, audio, out)
    return out


def _fails(root: Path, out: Path, culprit: Path, *words: str, corpus: str = "musdb18hq", cfg: dict | None = None,
           **audio) -> str:
    with pytest.raises(StemlabError) as err:
        _build(root, out, corpus, cfg, **audio)
    msg = str(err.value)
    assert "\n" not in msg and str(culprit) in msg, msg
    for word in words:
        assert word in msg, msg
    # the job's output does not exist, and no temp folder is left beside it
    assert not out.exists()
    assert [p.name for p in out.parent.iterdir()] == [] if out.parent.exists() else True
    return msg


def test_corrupt_audio(tmp_path):
    root, song = _corpus(tmp_path)
    (song / "bass.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunk" * 4)
    _fails(root, tmp_path / "out" / SHARD, song / "bass.wav", "re-download")


def test_truncated_wav(tmp_path):
    root, song = _corpus(tmp_path)
    data = (song / "drums.wav").read_bytes()
    (song / "drums.wav").write_bytes(data[: len(data) // 2])
    assert "data chunk holds" in audio_truncation(song / "drums.wav")
    _fails(root, tmp_path / "out" / SHARD, song / "drums.wav", "truncated", "re-download")


def test_truncated_flac(tmp_path):
    root, song = _corpus(tmp_path)
    sf.write(song / "vocals.flac", tone(1.0, 440.0), 44100, subtype="PCM_24")
    (song / "vocals.wav").unlink()
    data = (song / "vocals.flac").read_bytes()
    (song / "vocals.flac").write_bytes(data[: len(data) // 2])
    _fails(root, tmp_path / "out" / SHARD, song / "vocals.flac", "re-download")


def test_zero_length_stem(tmp_path):
    root, song = _corpus(tmp_path)
    write_wav(song / "other.wav", np.zeros((0, 2), dtype=np.float32))
    _fails(root, tmp_path / "out" / SHARD, song / "other.wav", "zero samples")


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_and_inf_samples(tmp_path, bad):
    root, song = _corpus(tmp_path)
    audio = tone(1.0, 55.0)
    audio[1000, 0] = bad
    write_wav(song / "bass.wav", audio, subtype="FLOAT")
    _fails(root, tmp_path / "out" / SHARD, song / "bass.wav", "NaN or inf", "re-export")


def test_unexpected_sample_rate_rejected_or_resampled(tmp_path):
    root, song = _corpus(tmp_path)
    write_wav(song / "bass.wav", tone(1.0, 55.0, sr=48000), sr=48000)
    _fails(root, tmp_path / "out" / SHARD, song / "bass.wav", "48000 Hz", "sample_rate_mismatch: resample",
           sample_rate_mismatch="reject")
    out = _build(root, tmp_path / "ok" / SHARD, sample_rate_mismatch="resample")
    meta = json.loads((out / "A_-_a" / "song.json").read_text())
    assert meta["data"]["resampled_from"] == {"train/A - a/bass.wav": 48000}
    bass, sr = sf.read(out / "A_-_a" / "wet" / "bass.flac")
    assert sr == 44100 and bass.shape[0] == 44100 == meta["n_frames"]
    # soxr preserves the tone: 55 Hz stays the spectral peak
    spectrum = np.abs(np.fft.rfft(bass[:, 0]))
    assert abs(np.argmax(spectrum) * 44100 / bass.shape[0] - 55.0) < 2.0


@pytest.mark.parametrize("subtype", ["PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"])
def test_int_and_float_wavs_read_correctly(tmp_path, subtype):
    audio = tone(0.2, 440.0, amp=0.5)
    path = write_wav(tmp_path / f"x_{subtype}.wav", audio, subtype=subtype)
    read, sr = read_audio_complete(path)
    tolerance = {"PCM_16": 1e-4, "PCM_24": 1e-6}.get(subtype, 1e-7)
    assert sr == 44100 and read.dtype == np.float32 and np.max(np.abs(read - audio)) < tolerance


def test_24_and_32_bit_sources_give_the_same_stems(tmp_path):
    outs = []
    for subtype in ("PCM_24", "PCM_32", "FLOAT"):
        root = make_musdb(tmp_path / subtype, ["A - a"], [], seconds=0.5, wrap="")
        song = root / "train" / "A - a"
        for stem in ("drums", "bass", "other", "vocals", "mixture"):
            audio = sf.read(song / f"{stem}.wav", dtype="float32")[0]
            sf.write(song / f"{stem}.wav", audio, 44100, subtype=subtype)
        out = _build(root, tmp_path / f"out-{subtype}" / SHARD)
        outs.append(sf.read(out / "A_-_a" / "wet" / "bass.flac", dtype="int32")[0])
    assert np.array_equal(outs[0], outs[1]) and np.array_equal(outs[0], outs[2])


def test_stems_of_different_lengths_pad_trim_reject(tmp_path):
    root, song = _corpus(tmp_path, seconds=1.0)
    write_wav(song / "vocals.wav", tone(0.5, 440.0))
    _fails(root, tmp_path / "rej" / SHARD, song / "vocals.wav", "22050 frames", "length_mismatch",
           length_mismatch="reject")
    padded = _build(root, tmp_path / "pad" / SHARD, length_mismatch="pad")
    meta = json.loads((padded / "A_-_a" / "song.json").read_text())
    assert meta["n_frames"] == 44100 and meta["data"]["length_policy"] == "pad"
    assert meta["data"]["length_adjusted"] == {"train/A - a/vocals.wav": {"frames": 22050, "sample_rate": 44100}}
    vocals = sf.read(padded / "A_-_a" / "wet" / "vocals.flac")[0]
    assert vocals.shape[0] == 44100 and not np.any(vocals[22050:])
    trimmed = _build(root, tmp_path / "trim" / SHARD, length_mismatch="trim")
    meta = json.loads((trimmed / "A_-_a" / "song.json").read_text())
    assert meta["n_frames"] == 22050 and len(meta["data"]["length_adjusted"]) == 4  # the three other stems + mixture
    assert sf.info(str(trimmed / "A_-_a" / "mix.flac")).frames == 22050


def test_mono_and_multichannel_sources(tmp_path):
    root, song = _corpus(tmp_path)
    write_wav(song / "bass.wav", tone(1.0, 55.0, channels=1))
    out = _build(root, tmp_path / "st" / SHARD)
    bass = sf.read(out / "A_-_a" / "wet" / "bass.flac")[0]
    assert bass.shape == (44100, 2) and np.array_equal(bass[:, 0], bass[:, 1])
    mono = _build(root, tmp_path / "mono" / SHARD, channels="mono")
    assert sf.info(str(mono / "A_-_a" / "mix.flac")).channels == 1
    write_wav(song / "bass.wav", tone(1.0, 55.0, channels=6))
    _fails(root, tmp_path / "six" / SHARD, song / "bass.wav", "6 channels", "downmix")


def test_clipping_sum_scales_the_whole_song(tmp_path):
    root, song = _corpus(tmp_path)
    for stem in ("drums", "bass", "other", "vocals"):
        write_wav(song / f"{stem}.wav", tone(1.0, 110.0, amp=0.9), subtype="FLOAT")
    write_wav(song / "mixture.wav", 4 * tone(1.0, 110.0, amp=0.9), subtype="FLOAT")
    out = _build(root, tmp_path / "out" / SHARD)
    meta = json.loads((out / "A_-_a" / "song.json").read_text())
    assert meta["data"]["gain_db"] < -8
    mix = sf.read(out / "A_-_a" / "mix.flac")[0]
    stems = sum(sf.read(out / "A_-_a" / "wet" / f"{s}.flac")[0] for s in ("drums", "bass", "other", "vocals"))
    assert np.max(np.abs(mix)) <= 0.999 + 1e-6 and np.allclose(mix, stems, atol=1e-5)


def test_bad_song_skip_keeps_the_others(tmp_path):
    root = make_musdb(tmp_path / "corpus", ["A - a", "B - b"], [], seconds=0.5, wrap="")
    (root / "train" / "B - b" / "bass.wav").write_bytes(b"not audio")
    out = tmp_path / "out" / SHARD
    build_corpus_shard("musdb18hq", root, SHARD, 1, {}, {"bad_song": "skip"}, out)
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["A_-_a"]
    (skipped,) = json.loads((out / "skipped.json").read_text())
    assert skipped["song"] == "B_-_b" and "bass.wav" in skipped["error"]


# --------------------------------------------------------------------------- corpus metadata

MEDLEY_SONG = "Artist0_Song0"


def _medley(tmp_path: Path) -> tuple[Path, Path, Path]:
    """Two MedleyDB songs: (root, the first song's METADATA yaml, the corpus's coefficients yaml)."""
    root = make_medleydb(tmp_path / "corpus", n_songs=2, seconds=0.5)
    meta = root / "MedleyDB" / "Audio" / MEDLEY_SONG / f"{MEDLEY_SONG}_METADATA.yaml"
    return root, meta, root / "mixing_coefficients_version2.yaml"


def _edit_yaml(path: Path, edit) -> None:
    doc = yaml.safe_load(path.read_text())
    edit(doc)
    path.write_text(yaml.safe_dump(doc))


def _set(*keys, value):
    def edit(doc):
        for key in keys[:-1]:
            doc = doc[key]
        doc[keys[-1]] = value
    return edit


BAD_METADATA = {  # case -> (file, edit, words the message must hold)
    "coefficient n/a": ("meta", _set("stems", "S02", "mixing_coefficient", value="n/a"),
                        ["stems.S02.mixing_coefficient", "'n/a'", "not a finite number"]),
    "coefficient nan": ("meta", _set("stems", "S02", "mixing_coefficient", value=float("nan")),
                        ["stems.S02.mixing_coefficient", "nan", "not a finite number"]),
    "stem is a string": ("meta", _set("stems", "S02", value=f"{MEDLEY_SONG}_STEM_02.wav"),
                         ["stems.S02", f"'{MEDLEY_SONG}_STEM_02.wav'", "not a mapping"]),
    "raw is a list": ("meta", _set("stems", "S02", "raw", value=["R01"]), ["stems.S02.raw", "not a mapping"]),
    "table value n/a": ("coef", _set(MEDLEY_SONG, "audio", 2, value="n/a"), ["audio.2", "'n/a'", "not a finite number"]),
    "table value inf": ("coef", _set(MEDLEY_SONG, "audio", 2, value=float("inf")), ["audio.2", "inf"]),
    "table entry a string": ("coef", _set(MEDLEY_SONG, "audio", value="n/a"), ["audio", "not a mapping"]),
}


@pytest.mark.parametrize("case", sorted(BAD_METADATA))
def test_bad_medleydb_metadata_value_fails_or_skips_only_its_song(tmp_path, case):
    root, meta, coef = _medley(tmp_path)
    which, edit, words = BAD_METADATA[case]
    culprit = meta if which == "meta" else coef
    _edit_yaml(culprit, edit)
    msg = _fails(root, tmp_path / "out" / SHARD, culprit, MEDLEY_SONG, *words, corpus="medleydb")
    assert "fix the" in msg
    out = _build(root, tmp_path / "skip" / SHARD, "medleydb", bad_song="skip")
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["Artist1_Song1"]
    (skipped,) = json.loads((out / "skipped.json").read_text())
    assert skipped == {"song": MEDLEY_SONG, "error": msg}


def _moises(tmp_path: Path) -> tuple[Path, Path]:
    """One MoisesDB song; returns (root, its data.json)."""
    root = make_moisesdb(tmp_path / "corpus", n_songs=1, seconds=0.5, wrap="")
    return root, next(root.glob("*/data.json"))


def test_moisesdb_track_id_outside_the_song_folder_is_refused(tmp_path):
    root, meta_path = _moises(tmp_path)
    song = meta_path.parent
    write_wav(tmp_path / "x" / "outside.wav", tone(0.5, 440.0))  # a readable file the id points at
    meta = json.loads(meta_path.read_text())
    track = meta["stems"][0]["tracks"][0]
    track["id"] = "../../../x/outside"
    meta_path.write_text(json.dumps(meta))
    assert (song / meta["stems"][0]["stemName"] / "../../../x/outside.wav").is_file()
    _fails(root, tmp_path / "out" / SHARD, meta_path, song.name, "track id", "'../../../x/outside'", "fix the metadata",
           corpus="moisesdb")
    track.update(id="outside", extension="/../../../x/outside.wav")
    meta_path.write_text(json.dumps(meta))
    _fails(root, tmp_path / "out" / SHARD, meta_path, song.name, "track extension", corpus="moisesdb")


UP = "../../../../outside/" + MEDLEY_SONG  # from the song folder (corpus/MedleyDB/Audio/<song>) to its copy outside
MEDLEY_PATHS = {  # field -> (keys of the value in the METADATA yaml, a value naming the copy outside)
    "mix_filename": (("mix_filename",), f"{UP}/{MEDLEY_SONG}_MIX.wav"),
    "stem_dir": (("stem_dir",), f"{UP}/{MEDLEY_SONG}_STEMS"),
    "raw_dir": (("raw_dir",), f"{UP}/{MEDLEY_SONG}_RAW"),
    "stems.S01.filename": (("stems", "S01", "filename"), f"../{UP}/{MEDLEY_SONG}_STEMS/{MEDLEY_SONG}_STEM_01.wav"),
    "stems.S01.raw.R01.filename": (("stems", "S01", "raw", "R01", "filename"),
                                   f"../{UP}/{MEDLEY_SONG}_RAW/{MEDLEY_SONG}_RAW_01_01.wav"),
    "absolute mix_filename": (("mix_filename",), "ABSOLUTE"),
}


@pytest.mark.parametrize("case", sorted(MEDLEY_PATHS))
def test_medleydb_paths_outside_the_song_folder_are_refused(tmp_path, case):
    root, meta, _ = _medley(tmp_path)
    outside = tmp_path / "outside" / MEDLEY_SONG
    shutil.copytree(meta.parent, outside)  # the files the hostile paths name exist, outside the song folder
    keys, value = MEDLEY_PATHS[case]
    value = str(outside / f"{MEDLEY_SONG}_MIX.wav") if value == "ABSOLUTE" else value
    base = meta.parent / (f"{MEDLEY_SONG}_STEMS" if keys[0] == "stems" else "")
    assert (base / value).exists()
    _edit_yaml(meta, _set(*keys, value=value))
    _fails(root, tmp_path / "out" / SHARD, meta, MEDLEY_SONG, case.removeprefix("absolute "), repr(value),
           "inside the song folder", corpus="medleydb")


# --------------------------------------------------------------------------- containers

CONTAINERS = [("AIFF", "PCM_16", None), ("AIFF", "FLOAT", None), ("RF64", "PCM_24", None), ("W64", "PCM_16", None),
              ("WAV", "PCM_16", "BIG"), ("WAVEX", "PCM_24", None)]


@pytest.mark.parametrize(("fmt", "subtype", "endian"), CONTAINERS)
def test_truncated_container_is_refused(tmp_path, fmt, subtype, endian):
    root, song = _corpus(tmp_path)
    path = song / "drums.wav"  # the MUSDB adapter reads any container named .wav
    sf.write(path, tone(1.0, 80.0), 44100, format=fmt, subtype=subtype, endian=endian)
    assert audio_truncation(path) is None
    out = _build(root, tmp_path / "ok" / SHARD)
    assert sf.info(str(out / "A_-_a" / "wet" / "drums.flac")).frames == 44100
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 10_000])
    assert sf.info(str(path)).frames < 44100  # libsndfile itself reads it as a shorter file
    assert "holds" in audio_truncation(path)
    _fails(root, tmp_path / "out" / SHARD, path, f"truncated or corrupt {fmt.replace('WAVEX', 'WAV')}", "re-download")


@pytest.mark.parametrize("fmt", ["WAV", "RF64", "W64", "AIFF"])
def test_every_cut_of_a_header_is_one_line(tmp_path, fmt):
    path = tmp_path / "x.wav"
    sf.write(path, tone(0.01, 440.0), 44100, format=fmt, subtype="PCM_16")
    data = path.read_bytes()
    for cut in range(12, 120):
        path.write_bytes(data[:cut])
        with pytest.raises(StemlabError) as err:
            read_audio_complete(path)
        assert "\n" not in str(err.value) and str(path) in str(err.value), (cut, str(err.value))


def test_aiff_with_fewer_frames_than_its_header_declares(tmp_path):
    path = tmp_path / "x.aiff"
    sf.write(path, tone(0.1, 440.0), 44100, format="AIFF", subtype="PCM_16")
    data = bytearray(path.read_bytes())
    frames_at = data.index(b"COMM") + 8 + 2  # numSampleFrames follows numChannels
    data[frames_at:frames_at + 4] = (4410 + 1).to_bytes(4, "big")
    path.write_bytes(bytes(data))
    assert audio_truncation(path) == "COMM declares 4411 frames but the SSND chunk holds 4410"
    with pytest.raises(StemlabError, match="truncated or corrupt AIFF"):
        read_audio_complete(path)


def test_unchecked_container_is_refused(tmp_path):
    root, song = _corpus(tmp_path)
    path = song / "bass.wav"
    sf.write(path, tone(1.0, 55.0), 44100, format="CAF", subtype="PCM_16")
    _fails(root, tmp_path / "out" / SHARD, path, "not a WAV, RF64, W64, AIFF/AIFC or FLAC file", "re-export")


def test_message_keeps_the_spaces_of_a_path_and_stays_one_line(tmp_path):
    root = make_musdb(tmp_path / "my  corpus", ["A  -  a"], [], seconds=0.2, wrap="")
    song = root / "train" / "A  -  a"
    (song / "bass.wav").write_bytes(b"not audio")
    _fails(root, tmp_path / "out" / SHARD, song / "bass.wav")
    assert str(StemlabError("line one\n\tline two\r\nthree\u2028four")) == "line one line two three four"


def test_errors_about_a_linked_folder_name_the_users_file(tmp_path):
    from stemlab.download.corpus import prepare_corpus

    src = make_musdb(tmp_path / "my  music", ["A - a", "B - b"], [], seconds=0.2, wrap="")
    bad = src / "train" / "B - b" / "bass.wav"
    bad.write_bytes(bad.read_bytes()[:1000])  # truncated
    (src / "train" / "A - a" / "vocals.wav").unlink()
    root = tmp_path / "resources" / "corpora" / "musdb18hq"
    prepare_corpus("musdb18hq", root, path=str(src), show_progress=False)
    msg = _fails(root, tmp_path / "out" / SHARD, src.resolve() / "train" / "A - a" / "vocals.wav", "missing",
                 "fix it in your corpus folder (data.corpora.musdb18hq.path")
    assert str(root) not in msg and "re-extract" not in msg
    out = _build(root, tmp_path / "skip" / SHARD, bad_song="skip")
    errors = {s["song"]: s["error"] for s in json.loads((out / "skipped.json").read_text())}
    assert str(src.resolve() / "train" / "B - b" / "bass.wav") + ": truncated" in errors["B_-_b"], errors
    assert "re-download" not in errors["B_-_b"] and "fix it in your corpus folder" in errors["B_-_b"]
    # an extracted archive keeps its own paths and advice
    _fails(src, tmp_path / "plain" / SHARD, src / "train" / "A - a" / "vocals.wav", "re-extract the corpus")
