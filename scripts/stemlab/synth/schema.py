"""The song.json contract of synthetic songs, as a JSON schema (tests validate generated songs with it).

Times are seconds from the start of the audio, derived from MIDI ticks once (Tempo.seconds);
`*_tick` fields are the same instants in ticks of `midi.ticks_per_beat`. File paths are relative to the
song directory and null when that output was not requested (synth.outputs).
"""

from __future__ import annotations

_num = {"type": "number"}
_int = {"type": "integer"}
_str = {"type": "string"}
_num_or_null = {"type": ["number", "null"]}
_str_or_null = {"type": ["string", "null"]}


def _obj(props: dict, required: list[str] | None = None) -> dict:
    return {"type": "object", "properties": props, "required": required or list(props)}


def _list(items: dict) -> dict:
    return {"type": "array", "items": items}


FX_STEP = _obj({"stage": _str, "type": _str}, ["stage", "type"])  # + the plugin's keyword arguments

SONG_SCHEMA: dict = _obj(
    {
        "id": {"type": "string", "pattern": "^syn-[0-9]{6}$"},
        "corpus": {"const": "synthetic"},
        "index": _int,  # global song index; the id is syn-<index>
        "seed": _int,  # global seed
        "attempt": _int,  # quality-gate attempt that passed (0 = first draw)
        "split": {"enum": ["train", "valid", "test"]},
        "sample_rate": {"const": 44100},
        "channels": {"const": 2},
        "n_frames": _int,  # frames of every audio file of the song
        "duration_s": _num,  # n_frames / sample_rate
        "genre": {"type": "string", "pattern": "^[a-z][a-z0-9_-]*$"},  # a built-in preset or a genre of synth.genre_files
        # how the song was composed (stemlab.synth.sources.SOURCES)
        "composition_source": {"enum": ["generated", "groove", "midi_song", "midi_chords"]},
        # the genre's tempo ranges (bpm of the annotated beat) and drum probability; builtin = a preset
        # the corpus file a MIDI source used (corpus, path inside it, sha256, chords: estimated | generated,
        # skipped: files drawn before it that the engine cannot play); null for generated songs
        "composition_file": {"type": ["object", "null"]},
        "genre_preset": _obj({"builtin": {"type": "boolean"}, "tempo": _list(_num), "compound_tempo": _list(_num), "drums_prob": _num}),
        "key": _str,  # tonic spelling: C, F#, Bb, ...
        "mode": {"enum": ["major", "minor"]},
        "tonic_pc": _int,  # 0 = C
        "tempo_bpm": _num,  # annotated beats per minute (beat = beat_unit)
        "beat_unit": {"enum": ["quarter", "dotted_quarter", "eighth"]},
        "time_signature": {"type": "array", "items": _int, "minItems": 2, "maxItems": 2},  # [4, 4]
        "beats_per_bar": _int,
        "swing": _obj({"ratio": _num, "unit": {"enum": ["none", "8th", "16th"]}, "unit_ticks": _int}),
        "midi": _obj({"ticks_per_beat": _int, "us_per_quarter": _int, "end_tick": _int}),
        "music_end_s": _num,  # end of the last bar; the audio continues for the tail
        "beats": _list(_num),
        "downbeats": _list(_num),
        # the metrical hierarchy (stemlab.synth.timing.METRICAL_LEVELS): 1-based position of each beat in
        # its bar; the tatum grid (sixteenths, swung like the notes); per level its note value, ticks and
        # tatums per unit (level instants = tatums[::tatums]); the level a listener taps (the beat)
        "beat_positions": _list(_int),
        "tatums": _list(_num),
        "metrical_levels": _list(
            _obj({"level": {"enum": ["tatum", "division", "beat", "bar"]}, "unit": _str, "ticks": _int, "tatums": _int})
        ),
        "tap_pulse": {"enum": ["tatum", "division", "beat", "bar"]},
        "arrangement": _list(
            _obj(
                {
                    "index": _int,
                    "section": {"enum": ["intro", "verse", "chorus", "bridge", "outro"]},
                    "occurrence": _int,  # 0 = first verse, 1 = second verse, ...
                    "start_bar": _int,
                    "bars": _int,
                    "start_s": _num,
                    "end_s": _num,
                    "start_tick": _int,
                    "end_tick": _int,
                    "progression": _list(_str),  # roman numerals of the section type
                    "chords": _list(_obj({"start_s": _num, "symbol": _str, "roman": _str})),
                    "active_stems": _list(_str),
                }
            )
        ),
        "chords": _list(
            _obj(
                {
                    "start_s": _num,
                    "end_s": _num,
                    "start_tick": _int,
                    "end_tick": _int,
                    "symbol": _str,  # Dm7, Bb, F#m7b5
                    "roman": _str,  # ii7, bVII, iiø7
                    "root_pc": _int,
                    "quality": _str,  # stemlab.synth.theory.QUALITIES
                    "pitch_classes": _list(_int),
                    "section": _int,  # arrangement index
                }
            )
        ),
        "stems": _list(
            _obj(
                {
                    "name": _str,  # file name under wet/, dry/, midi/; = category (one stem per category)
                    "category": _str,  # stemlab.taxonomy.STEMS
                    "role": {"enum": ["drums", "bass", "harmony", "melody", "counter", "percussion"]},
                    "style": _str,  # playing style (walking, strum, pad, ...) or the meter for drums
                    "instrument": _obj({"name": _str, "program": _int, "bank": _int, "is_drum": {"type": "boolean"}, "channel": _int}),
                    "program": _int,  # GM program (bank 128 kit for drums)
                    "soundfont": _str,  # file name; versions.soundfonts has its path
                    "soundfont_sha256": {"type": ["string", "null"], "pattern": "^[0-9a-f]{64}$"},  # null: samples
                    # a part the sample library plays (soundfont "samples"): {kind: one_shots, classes: {class:
                    # {file, sha256}}} or {kind: loop, file, sha256, bpm, beats}; null for a FluidSynth part
                    "samples": {"type": ["object", "null"]},
                    "monophonic": {"type": "boolean"},  # bass, melody, counter: one note at a time
                    "n_notes": _int,
                    "pitch_range": _list(_int),
                    "active_sections": _list(_int),  # arrangement indices where the part plays
                    "files": _obj({"wet": _str_or_null, "dry": _str_or_null, "midi": _str_or_null}),
                    "loudness_lufs": _num_or_null,  # wet stem, BS.1770 integrated
                    "dry_loudness_lufs": _num_or_null,
                    # wet = fader+pan(pedalboard(chain)(dry)); fader_db includes master_fx.stem_fader_shift_db
                    "fx": _obj({"chain": _list(FX_STEP), "fader_db": _num, "pan": _num, "pan_law": _str, "buffer_size": _int}),
                }
            )
        ),
        "mix": _str_or_null,  # "mix.flac"
        "mix_loudness_lufs": _num_or_null,
        "mix_peak_dbfs": _num_or_null,
        # mix = pedalboard(chain)(sum of the wet stems in `stems` order)
        "master_fx": _obj(
            {"chain": _list(FX_STEP), "target_lufs": _num, "buffer_size": _int, "bus_loudness_lufs": _num, "stem_fader_shift_db": _num}
        ),
        "generator": _obj({"genres": _list(_str), "genre_files": _list(_str), "duration_s": _list(_num), "other_parts": _list(_int), "tail_s": _num, "max_attempts": _int}),
        # which backend drew the chords and the melody walk (stemlab.synth.learned.composer)
        "composer": _obj({"backend": {"enum": ["markov", "learned"]}, "model": _str_or_null, "sha256": _str_or_null}),
        "render": {"type": "object"},
        "quality": _obj(
            {
                "attempt": _int,
                "rejected": _list(_obj({"attempt": _int, "stage": {"enum": ["symbolic", "audio", "source"]}, "reasons": _list(_str)})),
                "symbolic": {"type": "object"},
                "audio": {"type": "object"},
                "musicality": {"type": "object"},
            }
        ),
        "versions": {"type": "object"},
    }
)
