"""FxProcessor parts: the TCN (shapes, paper shape, receptive field, conditioning), FxNorm, the loss on
known cases, and process_track (blocks with crossfade equal one pass away from the seams)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.signal import lfilter

from stemlab.megami import fxnorm
from stemlab.megami.fxprocessor import FxProcessor, FxProcessorConfig, block_starts, crossfade_weights, process_track
from stemlab.megami.loss import FxProcessorLoss, SpectralLoss, mid_side

SR = 44_100


def _noise(n: int, seed: int = 0, scale: float = 0.1) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(n) * scale).astype(np.float32)


def _randomised(model: FxProcessor, seed: int = 0) -> FxProcessor:
    """Every parameter random (the zero-initialised output, FiLM and gain layers too), eval mode."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.3)
    return model.eval()


# ---------------------------------------------------------------------------- the TCN


def test_paper_shape_is_the_schema_default():
    cfg = FxProcessorConfig.from_dict({})
    assert (cfg.channels, cfg.blocks, cfg.kernel, cfg.input_channels, cfg.fxnorm, cfg.fxnorm_rms_db) == (128, 14, 15, 1, True, -16.0)
    assert cfg.dilations() == [2**i for i in range(14)] and cfg.dilations()[-1] == 8192
    assert cfg.receptive_field() == 229_363 and cfg.receptive_field() / SR == pytest.approx(5.2, abs=0.01)


def test_mono_in_stereo_out_and_identity_at_initialisation():
    cfg = FxProcessorConfig.from_dict({"channels": 8, "blocks": 3, "kernel": 5, "cond_dim": 5, "cond_parts": [3, 2]})
    model = FxProcessor(cfg).eval()
    dry = torch.from_numpy(np.stack([_noise(3000, 1), _noise(3000, 2)]))[None].repeat(2, 1, 1)
    cond = torch.randn(2, 5)
    out = model(dry, cond)
    assert out.shape == (2, 2, 3000)
    normalised = model.fxnorm(dry.mean(1))
    # residual with a zero output layer and a zero gain: the FxNorm-ed mono input on both channels
    torch.testing.assert_close(out, normalised[:, None].expand(-1, 2, -1))
    assert fxnorm.gated_rms_db(out[:, 0]).tolist() == pytest.approx([-16.0, -16.0], abs=1e-3)
    assert model(dry[:, :1], cond).shape == (2, 2, 3000), "a mono dry stem is accepted"
    with pytest.raises(ValueError, match="cond must be"):
        model(dry, torch.randn(2, 4))
    with pytest.raises(ValueError, match="dry must be"):
        model(torch.randn(2, 3, 100), cond)
    with pytest.raises(ValueError, match="odd"):
        FxProcessorConfig.from_dict({"kernel": 4})
    with pytest.raises(ValueError, match="add up"):
        FxProcessorConfig.from_dict({"cond_dim": 5, "cond_parts": [3, 3]})


def test_block_is_conv_batchnorm_leakyrelu_film():
    model = FxProcessor(FxProcessorConfig.from_dict({"channels": 4, "blocks": 1, "kernel": 3, "cond_dim": 2}))
    block = _randomised(model).blocks[0]
    x, c = torch.randn(2, 4, 50), torch.randn(2, model.config.cond_hidden)
    gamma, beta = block.film(c).chunk(2, dim=1)
    expected = x + torch.nn.functional.leaky_relu(block.norm(block.conv(x)), 0.2) * (1 + gamma[..., None]) + beta[..., None]
    torch.testing.assert_close(block(x, c), expected)


@pytest.mark.parametrize("kernel,blocks,growth,cycle", [(5, 4, 2, 0), (3, 6, 3, 3), (15, 3, 2, 0)])
def test_receptive_field_matches_the_gradient_support(kernel, blocks, growth, cycle):
    cfg = FxProcessorConfig.from_dict(
        {"channels": 4, "blocks": blocks, "kernel": kernel, "dilation_growth": growth, "dilation_cycle": cycle, "fxnorm": False}
    )  # fmt: skip
    model = _randomised(FxProcessor(cfg))
    n = cfg.receptive_field() + 200
    x = torch.randn(1, 1, n, requires_grad=True)
    centre = n // 2
    model(x)[0, 0, centre].backward()
    support = torch.nonzero(x.grad[0].abs().sum(0) > 0).flatten()
    assert support.max() - support.min() + 1 == cfg.receptive_field()
    assert support.min() == centre - (cfg.receptive_field() - 1) // 2


def test_conditioning_changes_the_output_and_each_part_is_scaled_by_its_size():
    cfg = FxProcessorConfig.from_dict({"channels": 8, "blocks": 2, "kernel": 3, "cond_dim": 20, "cond_parts": [16, 4], "residual": False})
    model = _randomised(FxProcessor(cfg))
    assert model.cond_scale.tolist() == [4.0] * 16 + [2.0] * 4
    dry = torch.randn(1, 1, 256)
    assert not torch.allclose(model(dry, torch.zeros(1, 20)), model(dry, torch.ones(1, 20)))


def test_direct_gain_starts_at_the_level_offset_and_is_bounded():
    from stemlab.megami.fxprocessor import MAX_GAIN_DB

    model = FxProcessor(FxProcessorConfig.from_dict({"channels": 4, "blocks": 1, "kernel": 3, "cond_dim": 2, "fxnorm": False})).eval()
    model.set_level_offset(-12.0)
    dry = torch.from_numpy(_noise(2000))[None, None]
    out = model(dry, torch.zeros(1, 2))
    torch.testing.assert_close(out[0, 0], dry[0, 0] * 10 ** (-12 / 20))
    with torch.no_grad():
        model.gain.weight.fill_(50.0)
    out = model(torch.ones(1, 1, 64), torch.full((1, 2), 1e3))
    assert torch.isfinite(out).all() and out.abs().max() <= 10 ** (MAX_GAIN_DB / 20) * 1.0001


# ---------------------------------------------------------------------------- FxNorm


def _tilted(n: int, pole: float, seed: int = 0) -> np.ndarray:
    return lfilter([1.0], [1.0, -pole], _noise(n, seed)).astype(np.float32)


def test_fxnorm_peak_eq_and_gated_rms():
    white = [_noise(2 * SR, s) for s in range(3)]
    target = fxnorm.fit_spectrum(white)
    norm = fxnorm.FxNorm(-16.0)
    norm.set_spectrum(target)
    dark = torch.from_numpy(_tilted(2 * SR, 0.95))[None]
    out = norm(dark)
    assert fxnorm.gated_rms_db(out).item() == pytest.approx(-16.0, abs=1e-3)
    before, _ = fxnorm.band_spectrum_db(dark, norm.filters)
    after, _ = fxnorm.band_spectrum_db(out, norm.filters)
    err_before = np.abs(before[0].numpy() - target).mean()
    err_after = np.abs(after[0].numpy() - target).mean()
    assert err_before > 5 and err_after < 0.5, (err_before, err_after)
    # the level and the sign of the input do not matter (peak normalisation first, zero-phase EQ)
    torch.testing.assert_close(norm(dark * 0.01), out, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(norm(-dark), -out, atol=1e-6, rtol=1e-5)
    # a clip that already has the target spectrum is only scaled
    flat = torch.from_numpy(white[0])[None]
    scaled = flat * 10 ** (-16 / 20) / flat.square().mean().sqrt()
    assert (norm(flat) - scaled).abs().max().item() < 0.02 * scaled.abs().max().item()


def test_fxnorm_gate_ignores_silence_and_keeps_silent_clips():
    burst = np.zeros(3 * SR, np.float32)
    burst[SR : 2 * SR] = _noise(SR, 3)
    rms_of_burst = 10 * math.log10(np.mean(burst[SR : 2 * SR].astype(np.float64) ** 2))
    assert fxnorm.gated_rms_db(torch.from_numpy(burst)[None]).item() == pytest.approx(rms_of_burst, abs=0.05)
    norm = fxnorm.FxNorm(-16.0)
    norm.set_spectrum(fxnorm.fit_spectrum([_noise(SR)]))
    silent = torch.zeros(1, 5000)
    assert torch.equal(norm(silent), silent)
    assert fxnorm.gated_rms_db(silent).item() == -math.inf
    with pytest.raises(ValueError, match="silent"):
        fxnorm.fit_spectrum([np.zeros(SR, np.float32)])


def test_fxnorm_spectrum_is_the_mean_of_shape_normalised_spectra_and_is_saved_with_the_model():
    a, b = _noise(SR, 1), _tilted(SR, 0.9, 2)
    filters = fxnorm.band_filters()
    da = fxnorm.band_spectrum_db(torch.from_numpy(a)[None], filters)[0][0].numpy()
    db = fxnorm.band_spectrum_db(torch.from_numpy(100 * b)[None], filters)[0][0].numpy()
    np.testing.assert_allclose(fxnorm.fit_spectrum([a, b]), (da + db) / 2, atol=1e-4)
    np.testing.assert_allclose((10 ** (da / 10)).sum(), 1.0, rtol=1e-5)  # band powers sum to 1
    model = FxProcessor(FxProcessorConfig.from_dict({"channels": 4, "blocks": 1, "kernel": 3}))
    model.fxnorm.set_spectrum(fxnorm.fit_spectrum([a, b]))
    assert "fxnorm.target_db" in model.state_dict()


# ---------------------------------------------------------------------------- the loss


def test_spectral_loss_known_values():
    loss = SpectralLoss((512, 256))
    x = torch.from_numpy(np.stack([_noise(8192, 1), _noise(8192, 2)]))[None]
    assert loss(x, x).item() == pytest.approx(0.0, abs=1e-7)
    # a gain a: L1 magnitude = (a - 1) mean|M|, log term = (ln a)^2 on every bin above the floor
    mags = [loss.magnitude(x.reshape(-1, 8192), n) for n in (512, 256)]
    expected = np.mean([0.9 * m.mean().item() + 0.1 * math.log(2.0) ** 2 for m in mags])
    assert loss(2 * x, x).item() == pytest.approx(expected, rel=1e-4)
    silent = torch.zeros(1, 2, 2048, requires_grad=True)
    loss(silent, torch.zeros(1, 2, 2048)).backward()
    assert torch.isfinite(silent.grad).all()
    with pytest.raises(ValueError):
        loss(x, x[..., :100])


def test_mid_side_and_left_right_terms():
    loss = FxProcessorLoss((512, 256), embedding_weight=0.0)
    left, right = torch.from_numpy(_noise(8192, 1)), torch.from_numpy(_noise(8192, 2))
    x = torch.stack([left, right])[None]
    swapped = torch.stack([right, left])[None]
    torch.testing.assert_close(mid_side(x)[0, 0], (left + right) / 2)
    value, metrics = loss(swapped, x)
    # swapping L and R keeps the mid, flips the side (same magnitudes): only the L/R term sees it
    assert metrics["mrstft_ms"] == pytest.approx(0.0, abs=1e-6) and metrics["mrstft_lr"] > 0.1
    assert value.item() == pytest.approx(metrics["mrstft_lr"], rel=1e-6)
    mono = torch.stack([left, left])[None]
    _, m2 = loss(mono, x)
    assert m2["mrstft_ms"] > 0 and m2["mrstft_lr"] > 0


class _Direction(torch.nn.Module):
    """A stand-in effect encoder: the unit vector of (RMS of L, RMS of R)."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(1), requires_grad=False)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.normalize((audio.square().mean(-1) + 1e-12).sqrt() * self.scale, dim=-1)


def test_embedding_term_is_weighted_one_minus_cosine_and_differentiable():
    loss = FxProcessorLoss((256,), embedding_weight=1.5, embedder=_Direction())
    left = torch.from_numpy(_noise(4096, 1))
    only_left = torch.stack([left, torch.zeros_like(left)])[None]
    only_right = torch.stack([torch.zeros_like(left), left])[None]
    _, same = loss(only_left, only_left)
    assert same["embedding_distance"] == pytest.approx(0.0, abs=1e-6)
    pred = only_right.clone().requires_grad_(True)
    value, metrics = loss(pred, only_left)  # orthogonal embeddings: 1 - cos = 1
    assert metrics["embedding_distance"] == pytest.approx(1.0, abs=1e-4)
    assert value.item() == pytest.approx(metrics["mrstft_ms"] + metrics["mrstft_lr"] + 1.5 * metrics["embedding_distance"], rel=1e-6)
    value.backward()
    assert pred.grad is not None and torch.isfinite(pred.grad).all()
    assert not list(loss.parameters()), "the frozen encoder is not part of the loss's parameters"
    with pytest.raises(ValueError, match="embedder"):
        FxProcessorLoss((256,), embedding_weight=1.0)


# ---------------------------------------------------------------------------- process_track


def _track_model() -> FxProcessor:
    cfg = FxProcessorConfig.from_dict({"channels": 6, "blocks": 4, "kernel": 5, "cond_dim": 7, "cond_parts": [4, 3]})
    model = _randomised(FxProcessor(cfg), seed=3)
    model.fxnorm.set_spectrum(fxnorm.fit_spectrum([_noise(SR)]))
    return model


def test_blocks_and_crossfade_cover_the_track_with_weights_that_sum_to_one():
    n, block, overlap = 10_000, 3000, 700
    starts = block_starts(n, block, overlap)
    assert starts[0] == 0 and starts[-1] + block >= n and all(b - a == block - overlap for a, b in zip(starts, starts[1:]))
    total = np.zeros(n)
    for i, s in enumerate(starts):
        stop = min(n, s + block)
        total[s:stop] += crossfade_weights(stop - s, overlap if i else 0, overlap if i + 1 < len(starts) else 0)
    np.testing.assert_allclose(total, 1.0, atol=1e-12)


def test_process_track_in_blocks_equals_one_pass_away_from_the_seams():
    model = _track_model()
    rf = model.receptive_field()  # 1 + 4 x 15 = 61
    dry = np.stack([_noise(20_000, 5), _noise(20_000, 6) * 0.5])
    fx, clap = np.random.default_rng(1).standard_normal(4), np.random.default_rng(2).standard_normal(3)
    whole = process_track(model, dry, fx, clap, block_samples=40_000)
    with torch.no_grad():
        ref = model(torch.from_numpy(dry)[None], torch.from_numpy(np.concatenate([fx, clap]).astype(np.float32))[None])[0].numpy()
    np.testing.assert_allclose(whole, ref, atol=1e-5)
    blocked = process_track(model, dry, fx, clap, block_samples=3000)
    assert blocked.shape == (2, 20_000) and blocked.dtype == np.float32
    starts = block_starts(20_000, 3000, rf)
    seams = np.zeros(20_000, bool)
    for s in starts[1:]:
        seams[s : s + rf] = True
    scale = np.abs(ref).max()
    np.testing.assert_allclose(blocked[:, ~seams], ref[:, ~seams], atol=1e-5 * scale)
    assert np.abs(blocked[:, seams] - ref[:, seams]).max() < 0.05 * scale
    np.testing.assert_array_equal(blocked, process_track(model, dry, fx, clap, block_samples=3000))  # deterministic
    assert not model.training


def test_process_track_refuses_bad_arguments_in_one_line():
    model = _track_model()
    dry = _noise(5000)
    fx, clap = np.zeros(4), np.zeros(3)
    with pytest.raises(ValueError, match="receptive field"):
        process_track(model, dry, fx, clap, block_samples=4000, overlap=10)
    with pytest.raises(ValueError, match="twice the overlap"):
        process_track(model, dry, fx, clap, block_samples=100)
    with pytest.raises(ValueError, match=r"model takes \(4, 3\)"):
        process_track(model, dry, np.zeros(5), clap, block_samples=4000)
    assert process_track(model, dry, fx, clap, block_samples=4000).shape == (2, 5000)  # (n,) mono accepted
    ablation = FxProcessor(FxProcessorConfig.from_dict({"channels": 4, "blocks": 1, "kernel": 3, "cond_dim": 7}))
    with pytest.raises(ValueError, match="effect embedding, CLAP"):
        process_track(ablation, dry, fx, clap, block_samples=4000)
