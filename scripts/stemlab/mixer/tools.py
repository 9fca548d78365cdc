"""The mixing tools: what each call does to a (channels, time) float32 stem, its arguments and their ranges.

Every argument has a range and a quantum; a value is stored as the float nearest to its decimal text, so a
formatted call parses back to the same value (stemlab.mixer.grammar). The effects:

change_volume(db)                      gain of `db` dB on every channel
pan(position)                          balance in dB: left x 10^(-p*12/20), right x 10^(p*12/20); position ±1
                                       is a 24 dB inter-channel difference, pan(a) then pan(b) = pan(a + b)
apply_eq(low_gain, mid_gain, high_gain) low shelf at 200 Hz, peak at 775 Hz (Q 0.28, the 200 Hz-3 kHz band),
                                       high shelf at 3 kHz (pedalboard's RBJ biquads: gain -g undoes gain g)
apply_low_pass(cutoff)                 4th-order Butterworth low-pass (24 dB/octave), -3 dB at `cutoff` Hz
apply_high_pass(cutoff)                4th-order Butterworth high-pass (24 dB/octave), -3 dB at `cutoff` Hz
apply_compression(threshold, ratio, attack, release)  pedalboard's Compressor (dB, x:1, ms, ms)
apply_reverb(room_size, wet)           pedalboard's Reverb: wet level `wet`, dry level 1 - wet, damping 0.5, full width
apply_delay(time, feedback, mix)       pedalboard's Delay (seconds, 0-1, 0-1)
normalize(lufs)                        gain to an integrated loudness (ITU-R BS.1770-4) of `lufs`

Low- and high-pass are scipy Butterworth sections: pedalboard's own are first-order (6 dB/octave), too gentle
to remove hiss or rumble, and its ladder filter is level-dependent.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache

import numpy as np

PAN_RANGE_DB = 12.0  # gain of each side at position ±1
EQ_LOW_HZ, EQ_HIGH_HZ = 200.0, 3000.0
EQ_MID_HZ = math.sqrt(EQ_LOW_HZ * EQ_HIGH_HZ)
EQ_MID_Q = EQ_MID_HZ / (EQ_HIGH_HZ - EQ_LOW_HZ)
SHELF_Q = 1.0 / math.sqrt(2.0)


@dataclass(frozen=True)
class Arg:
    name: str
    low: float
    high: float
    quantum: float

    @property
    def decimals(self) -> int:
        text = f"{self.quantum:.6f}".rstrip("0")
        return len(text.split(".")[1]) if "." in text else 0

    def quantise(self, value: float) -> float:
        """The nearest grid value inside the range, as the float of its decimal text."""
        steps = round((float(value) - self.low) / self.quantum)
        steps = min(max(steps, 0), round((self.high - self.low) / self.quantum))
        return round(self.low + steps * self.quantum, self.decimals) + 0.0  # + 0.0: no -0.0

    def text(self, value: float) -> str:
        return f"{self.quantise(value):.{self.decimals}f}"

    @cached_property
    def grid(self) -> tuple[float, ...]:
        """Every value of the argument, ascending."""
        n = round((self.high - self.low) / self.quantum)
        return tuple(self.quantise(self.low + i * self.quantum) for i in range(n + 1))


@dataclass(frozen=True)
class Tool:
    name: str
    args: tuple[Arg, ...]
    doc: str

    def arg(self, name: str) -> Arg:
        for arg in self.args:
            if arg.name == name:
                return arg
        raise KeyError(name)


TOOLS: tuple[Tool, ...] = (
    Tool("change_volume", (Arg("db", -30.0, 30.0, 0.5),), "gain in dB"),
    Tool("pan", (Arg("position", -1.0, 1.0, 0.05),), "balance, -1 left .. 1 right"),
    Tool("apply_eq", (Arg("low_gain", -12.0, 12.0, 0.5), Arg("mid_gain", -12.0, 12.0, 0.5), Arg("high_gain", -12.0, 12.0, 0.5)), "3-band EQ in dB"),
    Tool("apply_low_pass", (Arg("cutoff", 500.0, 20000.0, 50.0),), "low-pass cutoff in Hz"),
    Tool("apply_high_pass", (Arg("cutoff", 20.0, 2000.0, 10.0),), "high-pass cutoff in Hz"),
    Tool(
        "apply_compression",
        (Arg("threshold", -60.0, 0.0, 1.0), Arg("ratio", 1.0, 20.0, 0.5), Arg("attack", 0.1, 100.0, 0.1), Arg("release", 10.0, 1000.0, 10.0)),
        "compressor: threshold dB, ratio, attack ms, release ms",
    ),
    Tool("apply_reverb", (Arg("room_size", 0.0, 1.0, 0.05), Arg("wet", 0.0, 1.0, 0.05)), "reverb: room size, wet level"),
    Tool("apply_delay", (Arg("time", 0.01, 2.0, 0.01), Arg("feedback", 0.0, 0.95, 0.05), Arg("mix", 0.0, 1.0, 0.05)), "delay: seconds, feedback, mix"),
    Tool("normalize", (Arg("lufs", -40.0, -6.0, 0.5),), "loudness target in LUFS"),
)
TOOL_BY_NAME = {tool.name: tool for tool in TOOLS}
TOOL_NAMES = tuple(tool.name for tool in TOOLS)
CANONICAL_ORDER = (
    "apply_high_pass", "apply_low_pass", "apply_eq", "apply_compression", "pan", "change_volume",
    "apply_delay", "apply_reverb", "normalize",
)  # fmt: skip  # filters, tone, dynamics, placement, level, then time effects and loudness


@dataclass(frozen=True)
class Call:
    """One tool call: the tool's name and its argument values in the tool's argument order."""

    tool: str
    values: tuple[float, ...]

    @classmethod
    def make(cls, tool: str, **values: float) -> Call:
        """A call with quantised values; arguments left out take their neutral value (0, or the low end)."""
        spec = TOOL_BY_NAME[tool]
        unknown = set(values) - {a.name for a in spec.args}
        if unknown:
            raise KeyError(f"{tool} has no argument {sorted(unknown)[0]}")
        return cls(tool, tuple(a.quantise(values.get(a.name, neutral(a))) for a in spec.args))

    def get(self, name: str) -> float:
        spec = TOOL_BY_NAME[self.tool]
        return self.values[[a.name for a in spec.args].index(name)]

    def as_dict(self) -> dict[str, float]:
        return {a.name: v for a, v in zip(TOOL_BY_NAME[self.tool].args, self.values)}


def neutral(arg: Arg) -> float:
    return 0.0 if arg.low <= 0.0 <= arg.high else arg.low


def canonical(calls: Sequence[Call]) -> list[Call]:
    """The calls sorted into the canonical order (stable among calls of one tool)."""
    return sorted(calls, key=lambda c: CANONICAL_ORDER.index(c.tool))


# --------------------------------------------------------------------------- the effects


def _db(gain_db: float) -> float:
    return float(10.0 ** (gain_db / 20.0))


def change_volume(audio: np.ndarray, sr: int, db: float) -> np.ndarray:
    return audio * np.float32(_db(db))


def pan(audio: np.ndarray, sr: int, position: float) -> np.ndarray:
    out = np.array(audio, dtype=np.float32, copy=True)
    if out.shape[0] < 2:
        return out
    out[0] *= _db(-position * PAN_RANGE_DB)
    out[1] *= _db(position * PAN_RANGE_DB)
    return out


def _pedal(board: Sequence, audio: np.ndarray, sr: int) -> np.ndarray:
    import pedalboard

    return pedalboard.Pedalboard(list(board))(np.ascontiguousarray(audio, dtype=np.float32), sr, reset=True)


def apply_eq(audio: np.ndarray, sr: int, low_gain: float, mid_gain: float, high_gain: float) -> np.ndarray:
    import pedalboard

    board = []
    if low_gain:
        board.append(pedalboard.LowShelfFilter(cutoff_frequency_hz=EQ_LOW_HZ, gain_db=low_gain, q=SHELF_Q))
    if mid_gain:
        board.append(pedalboard.PeakFilter(cutoff_frequency_hz=EQ_MID_HZ, gain_db=mid_gain, q=EQ_MID_Q))
    if high_gain:
        board.append(pedalboard.HighShelfFilter(cutoff_frequency_hz=EQ_HIGH_HZ, gain_db=high_gain, q=SHELF_Q))
    return _pedal(board, audio, sr) if board else np.array(audio, dtype=np.float32)


@lru_cache(maxsize=64)
def _butter(kind: str, cutoff: float, sr: int) -> np.ndarray:
    from scipy.signal import butter

    return butter(4, min(cutoff, 0.49 * sr), btype=kind, fs=sr, output="sos")


def butter_filter(kind: str, audio: np.ndarray, sr: int, cutoff: float) -> np.ndarray:
    from scipy.signal import sosfilt

    return sosfilt(_butter(kind, float(cutoff), int(sr)), audio, axis=-1).astype(np.float32)


def apply_low_pass(audio: np.ndarray, sr: int, cutoff: float) -> np.ndarray:
    return butter_filter("lowpass", audio, sr, cutoff)


def apply_high_pass(audio: np.ndarray, sr: int, cutoff: float) -> np.ndarray:
    return butter_filter("highpass", audio, sr, cutoff)


def apply_compression(audio: np.ndarray, sr: int, threshold: float, ratio: float, attack: float, release: float) -> np.ndarray:
    import pedalboard

    return _pedal([pedalboard.Compressor(threshold_db=threshold, ratio=ratio, attack_ms=attack, release_ms=release)], audio, sr)


def apply_reverb(audio: np.ndarray, sr: int, room_size: float, wet: float) -> np.ndarray:
    import pedalboard

    # JUCE's reverb scales the dry level by 2 and the wet level by 3
    board = [pedalboard.Reverb(room_size=room_size, damping=0.5, wet_level=wet / 3.0, dry_level=(1.0 - wet) / 2.0, width=1.0)]
    return _pedal(board, audio, sr)


def apply_delay(audio: np.ndarray, sr: int, time: float, feedback: float, mix: float) -> np.ndarray:
    import pedalboard

    return _pedal([pedalboard.Delay(delay_seconds=time, feedback=feedback, mix=mix)], audio, sr)


def normalize(audio: np.ndarray, sr: int, lufs: float) -> np.ndarray:
    from stemlab.metrics import SILENCE_LUFS, integrated_loudness

    level = integrated_loudness(audio, sr)
    if level <= SILENCE_LUFS:
        return np.array(audio, dtype=np.float32)
    return audio * np.float32(_db(lufs - level))


EFFECTS: dict[str, Callable[..., np.ndarray]] = {
    "change_volume": change_volume, "pan": pan, "apply_eq": apply_eq, "apply_low_pass": apply_low_pass,
    "apply_high_pass": apply_high_pass, "apply_compression": apply_compression, "apply_reverb": apply_reverb,
    "apply_delay": apply_delay, "normalize": normalize,
}  # fmt: skip


def execute(calls: Sequence[Call], audio: np.ndarray, sr: int) -> np.ndarray:
    """The (channels, time) float32 stem after every call, in the given order."""
    out = np.asarray(audio, dtype=np.float32)
    for call in calls:
        out = EFFECTS[call.tool](out, sr, **call.as_dict())
    return np.asarray(out, dtype=np.float32)
