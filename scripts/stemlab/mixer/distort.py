"""Distort-and-fix examples: a clean wet stem window is distorted, the target is the chain that fixes it.

An example draws k distortions (1..max_distortions, categories without replacement by their weights) and
renders them in the order that the canonical fix order undoes exactly:

    clean -> volume -> pan -> dynamics (an upward expander) -> eq -> + hiss + rumble    = distorted
    distorted -> high_pass, low_pass, eq^-1, compression, pan^-1, volume^-1            = fixed

category   distortion                                             fix (quantised, sign-correct)
volume     gain d in volume_db (paper: -25..+8 dB), |d| >= 1.5     change_volume(db=-d)
pan        balance p in -1..1, |p| >= 0.15                         pan(position=-p)
eq         3-band gains g in eq_db (±12 dB), the largest >= 3      apply_eq(-g_low, -g_mid, -g_high)
hiss       white noise above 1.2 c, c in hiss_cutoff_hz (1-5 kHz)  apply_low_pass(cutoff=c)
rumble     a sine of f in rumble_hz (20-80 Hz) + sub-bass noise    apply_high_pass(cutoff: f mapped onto 150-800 Hz)
dynamics   upward expansion by s (1.5-4) above the threshold T     apply_compression(threshold=T, ratio=s, 5 ms, 100 ms)

T sits 6-18 dB below the stem's loudest 10 ms; the expander is a feed-forward gain on a 5 ms / 100 ms
envelope, so the compressor with the same threshold and ratio is its inverse up to the detectors. Reverb
wash is not a category: no tool of the set removes reverb. Every random draw comes from a numpy generator
seeded by (seed, example), so an example is a function of both.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from stemlab.errors import StemlabError
from stemlab.mixer.tools import Call, apply_eq, butter_filter, canonical, change_volume, pan

CATEGORIES = ("volume", "pan", "eq", "hiss", "rumble", "dynamics")
COMP_ATTACK_MS, COMP_RELEASE_MS = 5.0, 100.0


PAIRS = ("volume_db", "hiss_cutoff_hz", "hiss_db", "rumble_hz", "rumble_cutoff_hz", "rumble_db", "expand_ratio", "expand_below_peak_db")


@dataclass(frozen=True)
class DistortSettings:
    """models.mixer.settings.distortions (defaults: the schema's)."""

    weights: Mapping[str, float]
    max_distortions: int
    volume_db: tuple[float, float]
    eq_db: float
    hiss_cutoff_hz: tuple[float, float]
    hiss_db: tuple[float, float]  # relative to the stem's RMS
    rumble_hz: tuple[float, float]
    rumble_cutoff_hz: tuple[float, float]
    rumble_db: tuple[float, float]  # relative to the stem's RMS
    expand_ratio: tuple[float, float]
    expand_below_peak_db: tuple[float, float]

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> DistortSettings:
        """From the section as settings_section fills it (every key present)."""
        weights = {str(k): float(v) for k, v in dict(section["weights"]).items()}
        unknown = sorted(set(weights) - set(CATEGORIES))
        if unknown:
            raise StemlabError(f"models.mixer.settings.distortions.weights: unknown category {unknown[0]!r}; categories: {', '.join(CATEGORIES)}")
        if not any(w > 0 for w in weights.values()):
            raise StemlabError("models.mixer.settings.distortions.weights: give at least one category a positive weight")
        pairs = {k: (float(section[k][0]), float(section[k][1])) for k in PAIRS}
        for k, (lo, hi) in pairs.items():
            if lo > hi:
                raise StemlabError(f"models.mixer.settings.distortions.{k}: [{lo}, {hi}] is not a range; give [low, high]")
        return cls(weights=weights, max_distortions=int(section["max_distortions"]), eq_db=float(section["eq_db"]), **pairs)


@dataclass(frozen=True)
class Distortion:
    """What was done to a stem (the draw) and the chain that undoes it."""

    categories: tuple[str, ...]
    params: dict[str, tuple[float, ...]]
    fix: tuple[Call, ...]


def rumble_cutoff(freq: float, settings: DistortSettings) -> float:
    """The fix's high-pass cutoff: the rumble frequency range mapped linearly onto the cutoff range."""
    (f0, f1), (c0, c1) = settings.rumble_hz, settings.rumble_cutoff_hz
    return c0 if f1 <= f0 else c0 + (freq - f0) / (f1 - f0) * (c1 - c0)


def draw(rng: np.random.Generator, settings: DistortSettings) -> Distortion:
    """Categories and parameters of one example, and its canonical, quantised fix chain (the dynamics
    threshold is an offset below the peak here; `render` measures the peak and sets it)."""
    cats = [c for c in CATEGORIES if settings.weights.get(c, 0.0) > 0]
    w = np.array([settings.weights[c] for c in cats])
    k = int(rng.integers(1, min(settings.max_distortions, len(cats)) + 1))
    chosen = sorted(rng.choice(len(cats), size=k, replace=False, p=w / w.sum()).tolist(), key=lambda i: CATEGORIES.index(cats[i]))
    params: dict[str, tuple[float, ...]] = {}
    fix: list[Call] = []
    for i in chosen:
        cat = cats[i]
        if cat == "volume":
            lo, hi = settings.volume_db
            d = 0.0
            while abs(d) < 1.5:
                d = float(rng.uniform(lo, hi))
            call = Call.make("change_volume", db=-d)
            params[cat] = (-call.get("db"),)
        elif cat == "pan":
            p = 0.0
            while abs(p) < 0.15:
                p = float(rng.uniform(-1.0, 1.0))
            call = Call.make("pan", position=-p)
            params[cat] = (-call.get("position"),)
        elif cat == "eq":
            g = np.zeros(3)
            while np.max(np.abs(g)) < 3.0:
                g = rng.uniform(-settings.eq_db, settings.eq_db, 3)
            call = Call.make("apply_eq", low_gain=-g[0], mid_gain=-g[1], high_gain=-g[2])
            params[cat] = tuple(-v for v in call.values)
        elif cat == "hiss":
            call = Call.make("apply_low_pass", cutoff=float(rng.uniform(*settings.hiss_cutoff_hz)))
            params[cat] = (call.get("cutoff"), float(rng.uniform(*settings.hiss_db)))
        elif cat == "rumble":
            f = float(rng.uniform(*settings.rumble_hz))
            call = Call.make("apply_high_pass", cutoff=rumble_cutoff(f, settings))
            params[cat] = (f, float(rng.uniform(*settings.rumble_db)))
        else:  # dynamics
            ratio = float(rng.uniform(*settings.expand_ratio))
            call = Call.make("apply_compression", threshold=0.0, ratio=ratio, attack=COMP_ATTACK_MS, release=COMP_RELEASE_MS)
            params[cat] = (-float(rng.uniform(*settings.expand_below_peak_db)), call.get("ratio"))
        fix.append(call)
    return Distortion(tuple(cats[i] for i in chosen), params, tuple(canonical(fix)))


def envelope_db(audio: np.ndarray, sr: int, attack_ms: float = COMP_ATTACK_MS, release_ms: float = COMP_RELEASE_MS) -> np.ndarray:
    """A peak-following level (dB) of the channels' maximum: one-pole attack and release."""
    from scipy.signal import lfilter

    x = np.max(np.abs(audio), axis=0).astype(np.float64)
    a = np.exp(-1.0 / (attack_ms * 1e-3 * sr))
    r = np.exp(-1.0 / (release_ms * 1e-3 * sr))
    # attack-smoothed rectified signal, then a release-limited decay (the max of the two followers)
    fast = lfilter([1 - a], [1, -a], x)
    slow = lfilter([1 - r], [1, -r], x)
    return 20.0 * np.log10(np.maximum(np.maximum(fast, slow), 1e-7))


def peak_level_db(audio: np.ndarray, sr: int) -> float:
    return float(np.max(envelope_db(audio, sr)))


def expand(audio: np.ndarray, sr: int, threshold: float, ratio: float) -> np.ndarray:
    """Upward expansion: above `threshold` each dB of level becomes `ratio` dB (a compressor's inverse)."""
    env = envelope_db(audio, sr)
    gain_db = np.where(env > threshold, (ratio - 1.0) * (env - threshold), 0.0)
    return (audio * (10.0 ** (gain_db / 20.0))[None]).astype(np.float32)


def render(clean: np.ndarray, sr: int, distortion: Distortion, rng: np.random.Generator) -> tuple[np.ndarray, Distortion]:
    """The distorted stem (the distortions applied to `clean` in the documented order) and the draw with
    the dynamics threshold set from the peak level the expander sees."""
    x = np.asarray(clean, dtype=np.float32)
    p = distortion.params
    if "volume" in p:
        x = change_volume(x, sr, p["volume"][0])
    if "pan" in p:
        x = pan(x, sr, p["pan"][0])
    if "dynamics" in p:
        below, ratio = p["dynamics"]
        threshold = Call.make("apply_compression", threshold=peak_level_db(x, sr) + below).get("threshold")
        x = expand(x, sr, threshold, ratio)
        calls = [Call.make("apply_compression", threshold=threshold, ratio=ratio, attack=COMP_ATTACK_MS, release=COMP_RELEASE_MS)
                 if c.tool == "apply_compression" else c for c in distortion.fix]  # fmt: skip
        distortion = Distortion(distortion.categories, {**p, "dynamics": (threshold, ratio)}, tuple(calls))
    if "eq" in p:
        x = apply_eq(x, sr, *p["eq"])
    level = float(np.sqrt(np.mean(np.square(x, dtype=np.float64)) + 1e-12))
    if "hiss" in p:
        cutoff, rel_db = p["hiss"]
        noise = butter_filter("highpass", rng.standard_normal(x.shape).astype(np.float32), sr, 1.2 * cutoff)
        noise *= level * 10 ** (rel_db / 20) / (np.sqrt(np.mean(noise.astype(np.float64) ** 2)) + 1e-12)
        x = x + noise
    if "rumble" in p:
        freq, rel_db = p["rumble"]
        t = np.arange(x.shape[-1]) / sr
        sub = np.sin(2 * np.pi * freq * t + rng.uniform(0, 2 * np.pi)) + 0.3 * _lowpassed_noise(rng, x.shape[-1], sr, 1.2 * freq)
        sub = sub * (level * 10 ** (rel_db / 20) / (np.sqrt(np.mean(sub**2)) + 1e-12))
        x = x + sub[None].astype(np.float32)
    return x.astype(np.float32), distortion


def _lowpassed_noise(rng: np.random.Generator, n: int, sr: int, cutoff: float) -> np.ndarray:
    return butter_filter("lowpass", rng.standard_normal(n).astype(np.float32), sr, cutoff).astype(np.float64)


def distort(clean: np.ndarray, sr: int, settings: DistortSettings, rng: np.random.Generator) -> tuple[np.ndarray, Distortion]:
    """(distorted stem, the draw with its fix chain) of one example."""
    return render(clean, sr, draw(rng, settings), rng)
