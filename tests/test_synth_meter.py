"""The metrical hierarchy of song.json (tatums, beats with their bar positions, downbeats, levels, tap
pulse) checked against the song's own MIDI files, read back with mido, for a simple and a compound
meter. Composition only (no rendering): fast."""

from __future__ import annotations

import io

import mido
import numpy as np
import pytest

from stemlab import seeding
from stemlab.synth.compose import ComposeParams, compose
from stemlab.synth.genres import GENRES
from stemlab.synth.midi import part_midi
from stemlab.synth.song import annotate

PARAMS = ComposeParams(duration_s=(20.0, 30.0), other_parts=(3, 5))
SF2 = "/usr/share/sounds/sf2/FluidR3_GM.sf2"  # a name only: compose never opens it without presets


def _score(genre: str, meter: str, swung: bool, fill16: bool = False):
    """The first test composition of `genre` in `meter` (swung or straight); with `fill16`, one whose
    drums play a sixteenth note off the eighth-note grid (a fill)."""
    for i in range(200):
        score = compose(genre, PARAMS, [SF2], lambda *k, i=i: seeding.rng(7, "test-meter", i, *k))
        m = score.meter
        if str(m) != meter or (score.swing.ratio != 0.5) != swung:
            continue
        drums = next((p for p in score.parts if p.instrument.is_drum), None)
        if fill16 and (drums is None or not any(n.start % (2 * m.step_ticks) for n in drums.notes)):
            continue
        return score
    raise AssertionError(f"no {meter} {genre} composition in 200 draws")


def _read_midi(data: bytes) -> dict:
    """What the MIDI file itself says: resolution, tempo, time signature, end and note-on ticks."""
    mid = mido.MidiFile(file=io.BytesIO(data))
    out: dict = {"tpq": mid.ticks_per_beat, "onsets": []}
    conductor, track = mid.tracks
    now = 0
    for msg in conductor:
        now += msg.time
        if msg.type == "set_tempo":
            out["tempo"] = msg.tempo
        elif msg.type == "time_signature":
            out["signature"] = (msg.numerator, msg.denominator)
    out["end"] = now
    now = 0
    for msg in track:
        now += msg.time
        if msg.type == "note_on" and msg.velocity > 0:
            out["onsets"].append(now)
    return out


def _check_against_midi(score) -> tuple[dict, list[dict]]:
    meta = annotate(score)
    files = [(p, _read_midi(part_midi(score, p, "test"))) for p in score.parts]
    midi = files[0][1]
    tpq, (num, den), end = midi["tpq"], midi["signature"], midi["end"]
    assert [num, den] == meta["time_signature"]
    sec = lambda tick: tick * midi["tempo"] / tpq / 1e6  # noqa: E731
    unit = 4 * tpq // den  # the denominator's note
    compound = den == 8 and num % 3 == 0 and num > 3  # 6/8, 9/8, 12/8: beats of three eighths
    beat = 3 * unit if compound else unit
    bar = num * unit
    assert end % bar == 0  # whole bars

    # beats, their positions in the bar, downbeats
    np.testing.assert_allclose(meta["beats"], [sec(t) for t in range(0, end, beat)], atol=1e-6)
    assert meta["beat_positions"] == [t % bar // beat + 1 for t in range(0, end, beat)]
    assert max(meta["beat_positions"]) == meta["beats_per_bar"] == bar // beat
    downs = {round(t, 6) for t in meta["downbeats"]}
    assert [p == 1 for p in meta["beat_positions"]] == [round(b, 6) in downs for b in meta["beats"]]
    np.testing.assert_allclose(meta["downbeats"], [sec(t) for t in range(0, end, bar)], atol=1e-6)

    # the levels: tatum = sixteenth, division = eighth, beat, bar; every level is a stride of the tatums
    levels = {lv["level"]: lv for lv in meta["metrical_levels"]}
    assert list(levels) == ["tatum", "division", "beat", "bar"]
    assert levels["tatum"]["ticks"] == tpq // 4 and levels["tatum"]["unit"] == "sixteenth"
    assert levels["division"]["ticks"] == tpq // 2 and levels["division"]["unit"] == "eighth"
    assert levels["beat"]["ticks"] == beat and levels["bar"]["ticks"] == bar
    assert levels["beat"]["unit"] == meta["beat_unit"] == ("dotted_quarter" if compound else "quarter")
    tatums = np.asarray(meta["tatums"])
    assert len(tatums) == end // (tpq // 4) and np.all(np.diff(tatums) > 0)
    for name, times in (("beat", meta["beats"]), ("bar", meta["downbeats"])):
        np.testing.assert_allclose(tatums[:: levels[name]["tatums"]], times, atol=1e-6)
    assert meta["tap_pulse"] == "beat"

    # every onset of every part lies on a tatum: drums exactly, the other parts within their humanising
    humanize = GENRES[score.genre].humanize_ticks
    off_division = 0
    for part, data in files:
        onsets = np.asarray([sec(t) for t in data["onsets"]])
        nearest = np.abs(onsets[:, None] - tatums[None, :]).argmin(axis=1)
        error = np.abs(onsets - tatums[nearest])
        limit = 1e-6 if part.instrument.is_drum else sec(humanize) + 1e-6
        assert error.max() <= limit, (part.name, error.max())
        off_division += int(np.sum(nearest % levels["division"]["tatums"] != 0))
    return meta, files, off_division


def test_simple_meter_hierarchy_matches_the_midi():
    """A swung 4/4 blues: beats are quarters, 4 to the bar; tatums are the swung sixteenths the notes
    sit on, and notes do use the sixteenths between the eighths (the tatum is the finest level)."""
    score = _score("blues", "4/4", swung=True)
    meta, files, off_division = _check_against_midi(score)
    assert off_division > 0
    drums_onsets = {t for t in files[0][1]["onsets"]}
    straight = set(range(0, files[0][1]["end"], score.meter.step_ticks))
    assert drums_onsets - straight  # swing moved some drum notes off the straight grid, onto the tatums


def test_compound_meter_hierarchy_matches_the_midi():
    """A 12/8 blues: beats are dotted quarters, 4 to the bar (not the 12 eighths); the eighths are the
    division level (every second tatum); a drum fill plays sixteenths, so the tatum is the sixteenth."""
    score = _score("blues", "12/8", swung=False, fill16=True)
    meta, _, off_division = _check_against_midi(score)
    assert meta["beats_per_bar"] == 4 and meta["time_signature"] == [12, 8]
    assert off_division > 0
    levels = {lv["level"]: lv for lv in meta["metrical_levels"]}
    assert levels["division"]["tatums"] == 2 and levels["beat"]["tatums"] == 6 and levels["bar"]["tatums"] == 24
    eighths = np.asarray(meta["tatums"])[::2]
    np.testing.assert_allclose(eighths[::3], meta["beats"], atol=1e-6)  # three eighths a beat


@pytest.mark.parametrize("meter", ["6/8", "3/4"])
def test_other_meters_hierarchy_matches_the_midi(meter):
    score = _score("classical", meter, swung=False)
    meta, _, _ = _check_against_midi(score)
    assert meta["beats_per_bar"] == (2 if meter == "6/8" else 3)
