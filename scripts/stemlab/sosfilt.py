"""scipy's second-order-sections filter applied in place, without the per-call work of scipy.signal.sosfilt.

scipy.signal.sosfilt validates its arguments, moves axes and copies the input before it calls its
compiled loop (scipy.signal._sosfilt._sosfilt, the same in scipy 1.x). Filters run chunk by chunk (the
loudness meter, the DC blocker) pay that per chunk: about a third of their time. `sosfilt_inplace`
calls the compiled loop directly on a contiguous buffer: the same numbers as sosfilt (a test checks
bit equality), no copy. The envs pin scipy (envs/*.yaml); a scipy whose private loop moved fails the test.
"""

from __future__ import annotations

import numpy as np


def _loop():
    from scipy.signal._sosfilt import _sosfilt

    return _sosfilt


def sosfilt_inplace(sos: np.ndarray, x: np.ndarray, zi: np.ndarray) -> None:
    """Filter the rows of `x` (rows, samples), C-contiguous, in place; `zi` (rows, sections, 2) holds the
    state on entry and is updated (what scipy.signal.sosfilt returns as zf, as (sections, rows, 2)).
    `sos`, `x` and `zi` must share one floating or complex dtype."""
    if not (x.flags.c_contiguous and zi.flags.c_contiguous and sos.flags.c_contiguous):
        raise ValueError("sosfilt_inplace takes C-contiguous sos, x and zi")
    if not sos.dtype == x.dtype == zi.dtype:
        raise ValueError(f"sosfilt_inplace: sos, x and zi must share one dtype (got {sos.dtype}, {x.dtype}, {zi.dtype})")
    if x.ndim != 2 or zi.shape != (x.shape[0], sos.shape[0], 2):
        raise ValueError(f"sosfilt_inplace: x (rows, samples) and zi (rows, {sos.shape[0]}, 2), got {x.shape} and {zi.shape}")
    _loop()(sos, x, zi)
