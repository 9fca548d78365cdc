"""KAD against closed forms, and the mix/track features on signals whose values are known."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from stemlab.errors import StemlabError
from stemlab.megami import features, kad

SR = 44_100


def gaussian_mmd2(delta: float, s: float, h: float, d: int) -> float:
    """Population MMD² between N(0, s² I_d) and N(delta e_1, s² I_d) under exp(-|a-b|²/(2h²))."""
    c = (h * h / (h * h + 2 * s * s)) ** (d / 2)
    return 2 * c * (1 - math.exp(-delta * delta / (2 * (h * h + 2 * s * s))))


def test_kad_of_two_point_sets_is_the_formula():
    x = np.array([[0.0], [1.0]])
    y = np.array([[3.0], [5.0]])
    k = lambda a, b: math.exp(-((a - b) ** 2) / 2)  # noqa: E731  (h = 1: the median distance of x)
    expected = 100 * (k(0, 1) + k(3, 5) - 2 * np.mean([k(0, 3), k(0, 5), k(1, 3), k(1, 5)]))
    assert kad.kad(x, y) == pytest.approx(expected, rel=1e-12)


def test_median_bandwidth_is_over_reference_pairs():
    assert kad.median_pairwise_distance(np.array([[0.0], [1.0], [2.0], [3.0]])) == pytest.approx(1.5)  # 1,1,1,2,2,3


def test_kad_is_unbiased_against_the_gaussian_closed_form():
    """Small sets (n = 6): the mean over draws is the population MMD²; the biased (V-statistic) estimate
    would sit about 2(1 - c)/n above it."""
    g = np.random.default_rng(0)
    d, s, delta, h, n = 3, 1.0, 1.5, 2.0, 6
    values = [kad.kad(g.normal(0, s, (n, d)), g.normal(0, s, (n, d)) + [delta, 0, 0], bandwidth=h) for _ in range(3000)]
    truth = 100 * gaussian_mmd2(delta, s, h, d)
    stderr = np.std(values) / math.sqrt(len(values))
    assert abs(np.mean(values) - truth) < 4 * stderr
    c = (h * h / (h * h + 2 * s * s)) ** (d / 2)
    assert 100 * 2 * (1 - c) / n > 10 * stderr  # the test would see the bias


def test_kad_of_equal_distributions_is_zero_on_average_and_can_be_negative():
    g = np.random.default_rng(1)
    values = [kad.kad(g.normal(size=(8, 2)), g.normal(size=(8, 2))) for _ in range(400)]
    assert abs(np.mean(values)) < 4 * np.std(values) / math.sqrt(len(values))
    assert min(values) < 0


def test_jackknife_items_average_to_kad_and_give_its_standard_error():
    g = np.random.default_rng(2)
    draws, errors = [], []
    for _ in range(150):
        songs = [f"s{i}" for i in range(12) for _ in range(2)]  # two windows per song
        x, y = g.normal(size=(24, 3)), g.normal(size=(24, 3)) + [0.8, 0, 0]
        total, pseudo = kad.jackknife_items(x, y, songs, songs)
        assert np.mean(list(pseudo.values())) == pytest.approx(total, abs=1e-9)
        assert total == pytest.approx(kad.kad(x, y))
        draws.append(total)
        errors.append(np.std(list(pseudo.values()), ddof=1) / math.sqrt(len(pseudo)))
    assert 0.6 < np.mean(errors) / np.std(draws) < 1.6


def test_kad_refuses_degenerate_sets():
    with pytest.raises(StemlabError, match="at least 2"):
        kad.kad(np.zeros((1, 3)), np.zeros((4, 3)))
    with pytest.raises(StemlabError, match="same point"):
        kad.kad(np.zeros((4, 3)), np.ones((4, 3)))
    with pytest.raises(StemlabError, match="dimensions"):
        kad.kad(np.eye(3), np.eye(4))


# --------------------------------------------------------------------------- features


def sine(freq: float, amp: float, seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_features_of_a_centred_sine():
    x = np.stack([sine(997, 0.5), sine(997, 0.5)])
    f = features.signal_features(x)
    assert f["centroid_hz"] == pytest.approx(997, rel=0.02)
    assert f["stereo_width"] == pytest.approx(0.0, abs=1e-12)
    assert f["crest_db"] == pytest.approx(20 * math.log10(math.sqrt(2)), abs=0.01)
    assert f["loudness_lufs"] == pytest.approx(20 * math.log10(0.5), abs=0.1)  # 0 dBFS sine on both channels = 0 LUFS


def test_stereo_width_and_crest_of_known_signals():
    g = np.random.default_rng(0)
    noise = g.normal(size=(2, SR)).astype(np.float32)
    assert features.stereo_width(noise) == pytest.approx(0.5, abs=0.02)
    assert features.stereo_width(np.stack([noise[0], -noise[0]])) == pytest.approx(1.0)
    assert features.stereo_width(np.stack([noise[0], 0 * noise[0]])) == pytest.approx(0.5)
    square = np.sign(sine(100, 1.0) + 1e-9)
    assert features.crest_factor_db(np.stack([square, square])) == pytest.approx(0.0, abs=1e-6)
    assert features.spectral_centroid(np.stack([sine(4000, 0.1), sine(4000, 0.1)])) == pytest.approx(4000, rel=0.02)


def test_feature_distances_units():
    a = {"loudness_lufs": -10.0, "centroid_hz": 1000.0, "stereo_width": 0.2, "crest_db": 12.0}
    b = {"loudness_lufs": -13.0, "centroid_hz": 4000.0, "stereo_width": 0.5, "crest_db": 10.0}
    assert features.feature_distances(a, b) == pytest.approx({"dist_loudness": 3.0, "dist_centroid": 2.0, "dist_width": 0.3, "dist_crest": 2.0})


def test_effect_features_invert_the_fourier_features_of_an_embedding():
    from stemlab.encoders.fx.features import af_embedding, interpretable_features, join

    g = torch.Generator().manual_seed(0)
    audio = torch.randn(3, 2, SR, generator=g) * torch.tensor([0.3, 0.05, 0.01])[:, None, None]
    audio[1, 1] *= 0.5  # an imbalanced, wider one
    embedding = join(torch.randn(3, 16, generator=g), af_embedding(audio)).numpy()
    decoded = features.effect_features(embedding)
    assert decoded == pytest.approx(interpretable_features(audio).numpy(), abs=1e-3)
    level = features.effect_level_db(embedding)
    assert level[0] == pytest.approx(features.measured_level_db(audio[0].numpy()), abs=1e-3)
    assert level[0] - level[2] == pytest.approx(20 * math.log10(30), abs=0.2)
