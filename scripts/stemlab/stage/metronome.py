"""A deterministic metronome click track from beats and downbeats (Stage's metronome conditioning).

Every beat is a short tone burst with an exponential decay, starting exactly at the sample
round(t * sample_rate): 1,000 Hz at amplitude 0.5 on beats, 1,500 Hz at amplitude 0.9 on downbeats
(the accent). A downbeat that is not among the beats (within half a millisecond) still clicks. Bursts
last `CLICK_SECONDS` and are cut where the next click starts, so each click's onset is its first non-zero
sample after silence. No random draws: the same beats give the same samples.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

CLICK_SECONDS = 0.03
DECAY_SECONDS = 0.006
BEAT = (1000.0, 0.5)  # (frequency Hz, amplitude)
DOWNBEAT = (1500.0, 0.9)
SAME_S = 0.0005  # a downbeat this close to a beat is that beat


def click_times(beats: Sequence[float], downbeats: Sequence[float]) -> list[tuple[float, bool]]:
    """(time, accented) of every click, sorted: the beats, accented where a downbeat falls, plus lone downbeats."""
    beats = np.sort(np.asarray(beats, dtype=np.float64))
    downs = np.sort(np.asarray(downbeats, dtype=np.float64))
    clicks = []
    for t in beats:
        accented = bool(downs.size) and float(np.min(np.abs(downs - t))) <= SAME_S
        clicks.append((float(t), accented))
    for t in downs:
        if not beats.size or float(np.min(np.abs(beats - t))) > SAME_S:
            clicks.append((float(t), True))
    return sorted(clicks)


def click_track(beats: Sequence[float], downbeats: Sequence[float], n_samples: int, sample_rate: int) -> np.ndarray:
    """(n_samples,) float32 mono click track: a click at each beat, accented on downbeats."""
    out = np.zeros(int(n_samples), dtype=np.float32)
    clicks = [(int(round(t * sample_rate)), accented) for t, accented in click_times(beats, downbeats)]
    clicks = [(s, a) for s, a in clicks if 0 <= s < n_samples]
    length = max(1, int(round(CLICK_SECONDS * sample_rate)))
    t = np.arange(length) / sample_rate
    bursts = {
        accented: (amp * np.sin(2 * np.pi * freq * t + np.pi / 2) * np.exp(-t / DECAY_SECONDS)).astype(np.float32)
        for accented, (freq, amp) in ((False, BEAT), (True, DOWNBEAT))
    }  # cosine phase: the first sample of a click is its peak, never zero
    for i, (start, accented) in enumerate(clicks):
        stop = min(start + length, n_samples, clicks[i + 1][0] if i + 1 < len(clicks) else n_samples)
        out[start:stop] = bursts[accented][: stop - start]
    return out


def onsets(track: np.ndarray) -> np.ndarray:
    """Sample indices where a click starts: a non-zero sample after a zero one (or at index 0)."""
    nonzero = np.asarray(track) != 0
    starts = nonzero & ~np.concatenate([[False], nonzero[:-1]])
    return np.flatnonzero(starts)
