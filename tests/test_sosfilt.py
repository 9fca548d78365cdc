import numpy as np
import pytest
from scipy.signal import butter, sosfilt

from stemlab.sosfilt import sosfilt_inplace


@pytest.mark.parametrize("dtype", [np.float64, np.complex128, np.float32, np.complex64])
def test_inplace_filter_equals_scipy_sosfilt_bit_for_bit_across_chunks(dtype):
    rng = np.random.default_rng(7)
    sos = butter(4, 0.05, btype="highpass", output="sos").astype(dtype)
    x = rng.standard_normal((3, 10_007))
    if np.iscomplexobj(sos):
        x = x + 1j * rng.standard_normal(x.shape)
    x = x.astype(dtype)
    ref, zf = sosfilt(sos, x, axis=-1, zi=np.zeros((sos.shape[0], 3, 2), dtype))
    y = x.copy()
    zi = np.zeros((3, sos.shape[0], 2), dtype)
    for start in (0, 1, 4096, 4097, 9000):  # uneven chunks, the state carried over
        stop = {0: 1, 1: 4096, 4096: 4097, 4097: 9000, 9000: x.shape[1]}[start]
        part = np.ascontiguousarray(y[:, start:stop])
        sosfilt_inplace(sos, part, zi)
        y[:, start:stop] = part
    assert np.array_equal(y, ref)
    assert np.array_equal(zi, np.moveaxis(zf, 0, 1))


def test_inplace_filter_refuses_mixed_dtypes_and_strided_input():
    sos = butter(2, 0.1, output="sos")
    with pytest.raises(ValueError, match="dtype"):
        sosfilt_inplace(sos, np.zeros((1, 8), np.float32), np.zeros((1, 1, 2)))
    with pytest.raises(ValueError, match="contiguous"):
        sosfilt_inplace(sos, np.zeros((1, 16))[:, ::2], np.zeros((1, 1, 2)))
    with pytest.raises(ValueError, match="rows"):
        sosfilt_inplace(sos, np.zeros((2, 8)), np.zeros((1, 1, 2)))
