"""Rendering a sequence of memory segment indices as audio: runs of consecutive segments are copied as they
are, and every jump (or silence) is a sin²/cos² crossfade: the outgoing run continues `fade` samples past
the boundary under cos², the incoming one starts at the boundary under sin², so the timing stays on the
segment grid and the gains of the two sum to one.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from stemlab.relations.oracle import SILENCE


def fade_curves(n: int) -> tuple[np.ndarray, np.ndarray]:
    """(fade-in sin², fade-out cos²) of `n` samples; they sum to one at every sample."""
    x = (np.arange(n, dtype=np.float64) + 0.5) / max(n, 1)
    fade_in = np.sin(0.5 * np.pi * x) ** 2
    return fade_in.astype(np.float32), (1.0 - fade_in).astype(np.float32)


def runs(indices: Sequence[int]) -> list[tuple[int, int, int]]:
    """(output slot, first memory index, length) of each run of consecutive indices (silence excluded)."""
    out: list[tuple[int, int, int]] = []
    for slot, index in enumerate(indices):
        if index == SILENCE:
            continue
        if out and out[-1][0] + out[-1][2] == slot and out[-1][1] + out[-1][2] == index:
            out[-1] = (out[-1][0], out[-1][1], out[-1][2] + 1)
        else:
            out.append((slot, int(index), 1))
    return out


def render(
    memory: np.ndarray, indices: Sequence[int], segment: float, fade: int, length: int | None = None
) -> np.ndarray:
    """(channels, length) audio: slot t of the output plays memory segment indices[t] (`segment` samples
    each, fractional allowed: segment j spans [round(j s), round((j + 1) s)); SILENCE plays nothing);
    `length` defaults to the slots' span."""
    memory = np.asarray(memory, dtype=np.float32)
    if memory.ndim == 1:
        memory = memory[None, :]
    channels, total = memory.shape
    length = int(round(len(indices) * segment)) if length is None else int(length)
    out = np.zeros((channels, length + int(np.ceil(segment)) + fade), dtype=np.float32)
    fade_in, fade_out = fade_curves(fade)
    for slot, first, count in runs(indices):
        begin = int(round(first * segment))
        span = int(round((slot + count) * segment)) - int(round(slot * segment))
        piece = memory[:, begin : min(total, begin + span + fade)].copy()
        body = min(span, piece.shape[1])
        if piece.shape[1] > body:  # the tail past the run's end fades out
            piece[:, body:] *= fade_out[: piece.shape[1] - body]
        elif fade > 0 and body > 0:  # the memory ends with the run: fade its own last samples
            k = min(fade, body)
            piece[:, body - k : body] *= fade_curves(k)[1]
        if fade > 0 and slot > 0 and body > 0:  # after a jump or a silence
            k = min(fade, body)
            piece[:, :k] *= fade_in[:k] if k == fade else fade_curves(k)[0]
        at = int(round(slot * segment))
        end = min(out.shape[1], at + piece.shape[1])
        out[:, at:end] += piece[:, : end - at]
    return out[:, :length]
