"""The mixer's tools do what their documentation says; the grammar round-trips and refuses bad chains in one line."""

from __future__ import annotations

import random

import numpy as np
import pytest

from stemlab.metrics import integrated_loudness
from stemlab.mixer.grammar import ChainSyntaxError, format_chain, parse_chain
from stemlab.mixer.tools import TOOLS, Call, execute

SR = 44_100


def tone(freq: float, seconds: float = 1.0, amp: float = 0.1, channels: int = 2) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return np.repeat((amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)[None], channels, axis=0)


def level_db(x: np.ndarray, skip: float = 0.25) -> float:
    x = x[..., int(skip * SR) :]
    return float(10 * np.log10(np.mean(np.square(x, dtype=np.float64)) + 1e-20))


def change(call: Call, x: np.ndarray) -> float:
    return level_db(execute([call], x, SR)) - level_db(x)


def random_chain(rng: random.Random) -> list[Call]:
    calls = []
    for _ in range(rng.randint(0, 5)):
        tool = rng.choice(TOOLS)
        calls.append(Call(tool.name, tuple(rng.choice(a.grid) for a in tool.args)))
    return calls


def test_round_trip_of_random_chains() -> None:
    rng = random.Random(7)
    for _ in range(500):
        chain = random_chain(rng)
        assert parse_chain(format_chain(chain)) == chain


def test_parse_accepts_spacing_and_order_and_quantises() -> None:
    assert parse_chain("  apply_eq( high_gain=1.5 ,low_gain=2, mid_gain=-1.24 )\n") == [Call.make("apply_eq", low_gain=2, mid_gain=-1.0, high_gain=1.5)]
    assert parse_chain("") == []


@pytest.mark.parametrize(
    "text, words",
    [
        ("boost(db=1)", "unknown tool 'boost'"),
        ("change_volume(gain=1)", "no argument 'gain'"),
        ("change_volume(db=31)", "out of range -30.0..30.0"),
        ("apply_eq(low_gain=1, mid_gain=2)", "missing argument high_gain"),
        ("change_volume(db=loud)", "needs a number"),
        ("change_volume(db=1, db=2)", "given twice"),
        ("change_volume(db=1", "found the end"),
    ],
)
def test_parse_errors_are_one_line(text: str, words: str) -> None:
    with pytest.raises(ChainSyntaxError) as info:
        parse_chain(text)
    assert words in str(info.value) and "\n" not in str(info.value) and "column" in str(info.value)


def test_change_volume_moves_rms_by_its_db() -> None:
    assert change(Call.make("change_volume", db=-6), tone(440)) == pytest.approx(-6.0, abs=0.1)
    assert change(Call.make("change_volume", db=4.5), tone(440)) == pytest.approx(4.5, abs=0.1)


def test_pan_is_a_balance_in_db_that_composes() -> None:
    x = tone(440)
    y = execute([Call.make("pan", position=0.5)], x, SR)
    assert level_db(y[1:]) - level_db(y[:1]) == pytest.approx(12.0, abs=0.1)
    assert np.allclose(execute([Call.make("pan", position=0.5), Call.make("pan", position=-0.5)], x, SR), x, atol=1e-6)


def test_eq_bands_and_inverse() -> None:
    assert change(Call.make("apply_eq", low_gain=6), tone(50)) == pytest.approx(6.0, abs=0.5)
    assert change(Call.make("apply_eq", low_gain=6), tone(8000)) == pytest.approx(0.0, abs=0.3)
    assert change(Call.make("apply_eq", high_gain=-6), tone(12000)) == pytest.approx(-6.0, abs=0.5)
    assert change(Call.make("apply_eq", high_gain=-6), tone(100)) == pytest.approx(0.0, abs=0.3)
    assert change(Call.make("apply_eq", mid_gain=6), tone(775)) == pytest.approx(6.0, abs=0.3)
    noise = np.random.default_rng(0).normal(0, 0.1, (2, SR)).astype(np.float32)
    back = execute([Call.make("apply_eq", low_gain=9, mid_gain=-7, high_gain=5), Call.make("apply_eq", low_gain=-9, mid_gain=7, high_gain=-5)], noise, SR)
    assert np.max(np.abs(back - noise)) < 1e-3


def test_low_and_high_pass() -> None:
    assert change(Call.make("apply_low_pass", cutoff=2000), tone(500)) == pytest.approx(0.0, abs=0.5)
    assert change(Call.make("apply_low_pass", cutoff=2000), tone(8000)) < -40
    assert change(Call.make("apply_low_pass", cutoff=2000), tone(2000)) == pytest.approx(-3.0, abs=0.5)
    assert change(Call.make("apply_high_pass", cutoff=400), tone(1600)) == pytest.approx(0.0, abs=0.5)
    assert change(Call.make("apply_high_pass", cutoff=400), tone(100)) < -40


def test_compression_follows_its_static_curve() -> None:
    # a -6 dBFS sine into threshold -20 dB, ratio 4: 14 dB over the threshold come out as 3.5 dB
    call = Call.make("apply_compression", threshold=-20, ratio=4, attack=1, release=50)
    assert change(call, tone(440, amp=0.5)) == pytest.approx(-(14 - 3.5), abs=1.5)
    assert change(call, tone(440, amp=0.01)) == pytest.approx(0.0, abs=0.2)  # below the threshold


def test_reverb_adds_a_tail_and_wet_zero_is_dry() -> None:
    impulse = np.zeros((2, SR), dtype=np.float32)
    impulse[:, 100] = 1.0
    wet = execute([Call.make("apply_reverb", room_size=0.8, wet=0.5)], impulse, SR)
    assert np.sqrt(np.mean(wet[:, SR // 4 :] ** 2)) > 1e-4
    assert np.allclose(execute([Call.make("apply_reverb", room_size=0.8, wet=0.0)], impulse, SR), impulse, atol=1e-5)


def test_delay_echoes_after_its_time() -> None:
    impulse = np.zeros((2, SR), dtype=np.float32)
    impulse[:, 0] = 1.0
    out = execute([Call.make("apply_delay", time=0.25, feedback=0.0, mix=0.5)], impulse, SR)
    echo = int(0.25 * SR)
    assert abs(out[0, echo] - 0.5) < 0.05 and abs(out[0, 0] - 0.5) < 0.05
    assert np.max(np.abs(out[0, 10 : echo - 10])) < 1e-3


def test_normalize_reaches_its_loudness() -> None:
    x = np.random.default_rng(1).normal(0, 0.05, (2, 2 * SR)).astype(np.float32)
    y = execute([Call.make("normalize", lufs=-20)], x, SR)
    assert integrated_loudness(y, SR) == pytest.approx(-20.0, abs=0.1)
