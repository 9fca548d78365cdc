"""MEGAMI's CLAP domain adaptor and FxGenerator: the EDM schedule, loss and samplers on cases with known answers,
the DiT's shapes and masking, the multitrack data, the sampling API, and (slow) training through train_job
with a resume, the evaluation rows and the track-order invariance of a trained generator."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
import torch

from stemlab.device import torch_threads
from stemlab.encoders.cache import EmbeddingCache
from stemlab.errors import StemlabError
from stemlab.megami.adaptor import DomainAdaptor, cosine_loss
from stemlab.megami.edm import EDMConfig, edm_loss, precondition, sample
from stemlab.megami.generator import FxGenerator, GeneratorBundle, GeneratorConfig, sample_effect_embeddings, standardization
from stemlab.megami.multitrack import clap_pairs, multitracks, rows_of_split, segment_rows
from tests.embedding_fixture import write_embedding_corpus

EDM = EDMConfig()  # the paper's ve_karras: sigma_data 0.025, sigma 5e-4 -> 5, rho 10
TINY = {"depth": 2, "width": 32, "heads": 4, "mlp_hidden": 64, "token_dim": 16, "context_token_dim": 8}


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models: one torch thread (a second one only waits on a loaded machine)."""
    with torch_threads(1):
        yield


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict:
    return write_embedding_corpus(tmp_path_factory.mktemp("megami-embeddings"))


def _caches(corpus):
    return EmbeddingCache.read([corpus["clap"]]), EmbeddingCache.read([corpus["fx_encoder"]])


# ---------------------------------------------------------------------------- EDM


def test_sampling_schedule_runs_from_sigma_max_to_sigma_min_then_zero():
    sigmas = EDM.sampling_sigmas(30).double()
    assert len(sigmas) == 31 and float(sigmas[-1]) == 0.0
    assert float(sigmas[0]) == pytest.approx(5.0, rel=1e-6) and float(sigmas[-2]) == pytest.approx(5e-4, rel=1e-6)
    assert bool((sigmas[1:] < sigmas[:-1]).all())
    # Karras: sigma_i^(1/rho) is linear in i
    roots = sigmas[:-1] ** (1 / EDM.rho)
    assert torch.allclose(roots.diff(), roots.diff()[0].expand(29), rtol=1e-3)


@pytest.mark.parametrize("sampler", ["euler", "heun"])
def test_sampler_passes_every_noise_level_and_reaches_sigma_min(sampler):
    """With the exact denoiser of a point mass at mu, x_i - mu = sigma_i * (noise - mu / sigma_max) at every
    level (the sampler starts at sigma_max * noise): the last non-zero level is sigma_min and the final step
    lands on mu."""
    mu = torch.full((3, 4), 0.02)
    noise = torch.randn(3, 4, generator=torch.Generator().manual_seed(0))
    sigmas = EDM.sampling_sigmas(30)
    calls = []

    def denoise(x, s):
        calls.append(float(s[0]))
        return mu.expand_as(x)

    path: list[torch.Tensor] = []
    out = sample(denoise, noise, sigmas, sampler, trajectory=path)
    assert len(path) == 31
    residual = noise - mu / 5.0
    for x, s in zip(path[:-1], sigmas[:-1]):
        assert torch.allclose(x - mu, float(s) * residual, rtol=1e-4, atol=1e-7)
    assert torch.allclose(path[-2] - mu, 5e-4 * residual, rtol=1e-3, atol=1e-8)
    assert torch.allclose(out, mu, atol=1e-7)
    assert len(calls) == (30 if sampler == "euler" else 59) and calls[-1] == pytest.approx(5e-4)


def test_heun_and_euler_sample_a_gaussian_with_its_variance():
    s = 0.03
    noise = torch.randn(20000, 1, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    sigmas = EDM.sampling_sigmas(30).double()
    stds = {name: float(sample(lambda x, sig: s**2 / (s**2 + sig[:, None] ** 2) * x, noise, sigmas, name).std())
            for name in ("euler", "heun")}  # fmt: skip
    assert stds["heun"] == pytest.approx(s, rel=0.03)
    assert stds["euler"] == pytest.approx(s, rel=0.15)
    # the exact ODE solution x(0) = x(sigma_max) s / sqrt(s^2 + sigma_max^2): Heun is the closer one
    exact = float((noise * 5.0 * s / math.sqrt(s**2 + 25.0)).std())
    assert abs(stds["heun"] - exact) < abs(stds["euler"] - exact)


def test_training_sigmas_are_uniform_along_the_rho_schedule():
    sigma = EDM.training_sigmas(20000, torch.Generator().manual_seed(2)).double()
    assert float(sigma.min()) >= 5e-4 * (1 - 1e-5) and float(sigma.max()) <= 5.0 * (1 + 1e-5)
    lo, hi = 5e-4 ** (1 / 10), 5.0 ** (1 / 10)
    u = (sigma ** (1 / 10) - hi) / (lo - hi)
    assert float(u.mean()) == pytest.approx(0.5, abs=0.01)
    assert np.quantile(u.numpy(), [0.1, 0.5, 0.9]) == pytest.approx([0.1, 0.5, 0.9], abs=0.015)


def test_edm_loss_known_cases_and_masking():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(4, 3, 8, generator=g) * 0.02
    noise = torch.randn(4, 3, 8, generator=g)
    sigma = torch.tensor([1e-3, 0.025, 0.3, 5.0])
    # F = 0: the target is -sigma_data n / sqrt(sigma^2 + sigma_data^2) when x = 0
    zero = edm_loss(lambda xi, cn, **_: torch.zeros_like(xi), EDM, torch.zeros_like(x), sigma, noise)
    expected = (EDM.sigma_data**2 / (sigma**2 + EDM.sigma_data**2))[:, None, None] * noise.square()
    assert float(zero) == pytest.approx(float(expected.mean()), rel=1e-5)
    # the exact denoiser of the known clean x has zero loss; lambda |D - x|^2 is what the loss measures
    def oracle(x_in, c_noise, *, clean=x):
        s = torch.exp(4 * c_noise)[:, None, None]
        x_noisy = x_in / EDM.c_in(s)
        return (clean - EDM.c_skip(s) * x_noisy) / EDM.c_out(s)

    assert float(edm_loss(oracle, EDM, x, sigma, noise)) < 1e-8
    d = precondition(oracle, EDM, x + sigma[:, None, None] * noise, sigma)
    assert torch.allclose(d, x, atol=1e-6)
    # masked entries never count, whatever the network outputs there
    mask = torch.tensor([[1, 1, 0], [1, 0, 0], [1, 1, 1], [1, 0, 0]], dtype=torch.bool)

    def off_by_one_on_padding(x_in, c_noise):
        out = oracle(x_in, c_noise)
        return torch.where(mask[..., None], out, out + 1.0)

    assert float(edm_loss(off_by_one_on_padding, EDM, x, sigma, noise, mask[..., None])) < 1e-8
    assert float(edm_loss(off_by_one_on_padding, EDM, x, sigma, noise)) > 0.1


# ---------------------------------------------------------------------------- DiT


def _net(max_tracks=5, fx_dim=40, context_dim=12, **kw) -> FxGenerator:
    torch.manual_seed(0)
    return FxGenerator(GeneratorConfig.from_dict({**TINY, **kw, "max_tracks": max_tracks, "fx_dim": fx_dim, "context_dim": context_dim}))


def test_dit_shapes_tokens_and_padded_tracks_never_influence_real_ones():
    net = _net()
    torch.nn.init.normal_(net.head.weight, std=0.1)  # the zero-initialised head would hide everything
    assert net.cfg.tokens_per_track == 3 and net.cfg.context_tokens_per_track == 2  # 40 = 16 + 16 + 8 (padded)
    g = torch.Generator().manual_seed(4)
    x, ctx = torch.randn(2, 5, 40, generator=g), torch.randn(2, 5, 12, generator=g)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 0, 0, 0]], dtype=torch.bool)
    c_noise = torch.tensor([0.1, -1.0])
    with torch.no_grad():
        out = net(x, c_noise, ctx, mask)
        assert out.shape == (2, 5, 40) and bool((out[~mask] == 0).all())
        x2, ctx2 = x.clone(), ctx.clone()
        x2[~mask] = torch.randn(int((~mask).sum()), 40, generator=g) * 100
        ctx2[~mask] = torch.randn(int((~mask).sum()), 12, generator=g) * 100
        again = net(x2, c_noise, ctx2, mask)
        assert torch.allclose(again[mask], out[mask], atol=1e-6)
        # a real track does influence the others (self- and cross-attention are live)
        x3 = x.clone()
        x3[0, 1] += 1.0
        assert not torch.allclose(net(x3, c_noise, ctx, mask)[0, 0], out[0, 0])
        ctx3 = ctx.clone()
        ctx3[0, 2] += 1.0
        assert not torch.allclose(net(x, c_noise, ctx3, mask)[0, 0], out[0, 0])
        assert not torch.allclose(net(x, c_noise + 1, ctx, mask), out)  # the time token matters
    with pytest.raises(ValueError, match="5 tracks"):
        net(torch.zeros(1, 6, 40), c_noise[:1], torch.zeros(1, 6, 12), torch.ones(1, 6, dtype=torch.bool))


def test_generator_config_refuses_bad_shapes():
    with pytest.raises(StemlabError, match="multiple of heads"):
        GeneratorConfig.from_dict({**TINY, "width": 30})
    with pytest.raises(StemlabError, match="unknown key 'layers'"):
        GeneratorConfig.from_dict({"layers": 3})


def test_sampling_api_shapes_seeds_normalisation_and_many_tracks():
    bundle = GeneratorBundle(_net(max_tracks=3, fx_dim=80, context_dim=12), EDM).eval()
    torch.nn.init.normal_(bundle.net.head.weight, std=0.1)
    clap = torch.randn(5, 12, generator=torch.Generator().manual_seed(5))
    a = sample_effect_embeddings(bundle, None, clap, n_samples=3, seed=7, steps=4)
    assert a.shape == (3, 5, 80) and a.dtype == torch.float32
    assert torch.allclose(a.norm(dim=-1), torch.ones(3, 5), atol=1e-5)
    assert torch.allclose(a[..., -64:].norm(dim=-1), torch.full((3, 5), math.sqrt(64 / 80)), atol=1e-5)
    assert torch.equal(a, sample_effect_embeddings(bundle, None, clap, n_samples=3, seed=7, steps=4))
    assert not torch.allclose(a, sample_effect_embeddings(bundle, None, clap, n_samples=3, seed=8, steps=4))
    heun = sample_effect_embeddings(bundle, None, clap, n_samples=3, seed=7, steps=4, sampler="heun", normalize=False)
    assert heun.shape == (3, 5, 80) and not torch.allclose(heun.norm(dim=-1), torch.ones(3, 5))
    adaptor = DomainAdaptor(12, 8)
    wet = sample_effect_embeddings(bundle, adaptor, clap, n_samples=3, seed=7, steps=4, source="wet")
    assert not torch.allclose(wet, a)
    with pytest.raises(StemlabError, match="needs the domain adaptor"):
        sample_effect_embeddings(bundle, None, clap, 1, 0, source="wet")
    with pytest.raises(StemlabError, match=r"\(tracks >= 1, 12\)"):
        sample_effect_embeddings(bundle, None, torch.zeros(2, 7), 1, 0)


def test_per_dim_standardisation_centres_and_scales_to_sigma_data():
    g = torch.Generator().manual_seed(3)
    fx = torch.randn(400, 6, generator=g) * torch.tensor([0.5, 0.1, 0.02, 1.0, 0.3, 0.0]) + torch.arange(6.0)
    shift, scale = standardization(fx, "none", 0.05)
    assert torch.equal(shift, torch.zeros(6)) and torch.equal(scale, torch.ones(6))
    shift, scale = standardization(fx, "per_dim", 0.05)
    z = (fx - shift) / scale
    assert torch.allclose(z.mean(0), torch.zeros(6), atol=1e-5)
    assert torch.allclose(z[:, :5].std(0), torch.full((5,), 0.05), rtol=1e-4)
    assert float(scale[5]) == pytest.approx(1e-3 * float(fx.std(0).max()) / 0.05, rel=1e-4)  # a constant dim: floored, z = 0
    assert torch.equal(z[:, 5], torch.zeros(400))
    with pytest.raises(StemlabError, match="standardize: 'zscore'"):
        standardization(fx, "zscore", 0.05)


def test_sampling_undoes_the_standardisation_stored_with_the_model():
    """A network with F = 0 denoises to c_skip x: its draws are N(0, sigma_data^2) in the standardised space,
    so in embedding space they must have mean `shift` and std sigma_data * `scale` per dimension."""
    edm = EDMConfig(sigma_data=0.5, sigma_max=80.0, sigma_min=0.002, rho=7.0)
    shift = torch.linspace(-1.0, 1.0, 80)
    scale = torch.linspace(0.1, 2.0, 80)
    bundle = GeneratorBundle(_net(max_tracks=3, fx_dim=80, context_dim=12), edm, shift, scale).eval()
    clap = torch.randn(2, 12, generator=torch.Generator().manual_seed(5))
    z = sample_effect_embeddings(bundle, None, clap, n_samples=400, seed=1, steps=40, normalize=False).reshape(-1, 80)
    assert torch.allclose(z.mean(0), shift, atol=0.15)
    assert torch.allclose(z.std(0) / (0.5 * scale), torch.ones(80), atol=0.15)
    fresh = GeneratorBundle(_net(max_tracks=3, fx_dim=80, context_dim=12), edm)
    fresh.load_state_dict(bundle.state_dict())  # final.pt carries the standardisation
    assert torch.equal(fresh.shift, shift) and torch.equal(fresh.scale, scale)
    assert torch.allclose(fresh.unstandardize(fresh.standardize(z)), z, atol=1e-5)


# ---------------------------------------------------------------------------- adaptor and data


def test_adaptor_is_unit_norm_and_the_loss_is_one_minus_cos():
    torch.manual_seed(0)
    adaptor = DomainAdaptor(6, 10)
    out = adaptor(torch.randn(4, 6) * 3)
    assert out.shape == (4, 6) and torch.allclose(out.norm(dim=-1), torch.ones(4), atol=1e-6)
    a = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    b = torch.tensor([[1.0, 1.0], [0.0, -1.0]])
    assert float(cosine_loss(a, b)) == pytest.approx(((1 - 1 / math.sqrt(2)) + 2) / 2)


def test_clap_pairs_are_the_active_windows_with_a_dry_embedding(corpus, tmp_path):
    clap, _ = _caches(corpus)
    rows = segment_rows([corpus["segments"]])
    assert bool(rows["active"].all()) and set(rows["window"]) == {"megami"}
    train = clap_pairs(rows, clap, "train")
    assert len(train) == int((rows["split"] == "train").sum()) and train.wet.shape == (len(train), 16)
    assert not np.allclose(train.wet, train.dry)
    batch = train.batch(3, 8, seed=1)
    assert batch["wet"].shape == (8, 16)
    wet_only = write_embedding_corpus(tmp_path / "wet-only", songs=6, dry=False)
    assert len(clap_pairs(segment_rows([wet_only["segments"]]), EmbeddingCache.read([wet_only["clap"]]), None)) == 0


def test_multitrack_batches_shuffle_each_window_and_mask_the_padding(corpus):
    clap, fx = _caches(corpus)
    rows = rows_of_split(segment_rows([corpus["segments"]]), "train")
    data = multitracks(rows, fx, clap.take(rows.assign(source="wet")))
    assert len(data) == 12 * 3 and int(data.windows["tracks"].sum()) == len(rows)
    assert (data.tracks.groupby(["song", "start"]).size().to_numpy() == data.windows["tracks"].to_numpy()).all()
    batch = data.batch(5, 8, seed=1, max_tracks=4)
    assert batch["x"].shape == (8, 4, 80) and batch["context"].shape == (8, 4, 16) and batch["mask"].shape == (8, 4)
    again = data.batch(5, 8, seed=1, max_tracks=4)
    assert all(np.array_equal(batch[k], again[k]) for k in batch)
    assert bool((batch["x"][~batch["mask"]] == 0).all())
    # every sample holds distinct tracks of one window; over steps a window's order changes
    fx_rows = {tuple(np.round(r, 6)) for r in data.fx}
    assert all(tuple(np.round(r, 6)) in fx_rows for r in batch["x"][batch["mask"]])
    orders = set()
    for step in range(0, 200):
        b = data.batch(step, 4, seed=1, max_tracks=5)
        for j in range(4):
            n = int(b["mask"][j].sum())
            if n >= 3:
                orders.add(tuple(np.round(b["x"][j, :n, 0], 5)))
    assert len(orders) > len(data.windows[data.windows["tracks"] >= 3])  # the same window in several orders


# ---------------------------------------------------------------------------- training through the frame (slow)


class Crash(Exception):
    pass


def _job(corpus, root, model, loop, settings, eval_settings=None, upstream=None):
    from stemlab.train.job import Job, JobInputs

    inputs = JobInputs(segments={"megami": [str(corpus["segments"])]}, stems_root=str(root),
                       cache={"clap": [str(corpus["clap"])], "fx_encoder": [str(corpus["fx_encoder"])]}, upstream=upstream or {})  # fmt: skip
    task = {"domain_adaptor": "stemlab.megami.adaptor_task", "fx_generator": "stemlab.megami.generator_task"}[model]
    base = {"checkpoint_seconds": 0, "workers": 0, "valid_batches": 2}
    return Job(model=model, task=task, seed=1, loop={**base, **loop}, settings=settings, eval=eval_settings or {}, inputs=inputs,
               device="cpu", cpu_threads=1)  # fmt: skip


def _crash_and_resume(monkeypatch, data_class, crash_step, job, out, checkpoints) -> None:
    """Train `job` into `out` with the data failing at batch `crash_step`, check the checkpoints left, resume."""
    from stemlab.train.checkpoint import list_checkpoints
    from stemlab.train.run import train_job

    batch = data_class.batch

    def crashing(self, step, *args, **kwargs):
        if step == crash_step:
            raise Crash
        return batch(self, step, *args, **kwargs)

    with monkeypatch.context() as m:
        m.setattr(data_class, "batch", crashing)
        with pytest.raises(Crash):
            train_job(job, out)
    assert [s for s, _ in list_checkpoints(out / "checkpoints")] == checkpoints
    train_job(job, out)


def _same_weights(a, b) -> bool:
    sa = torch.load(a, weights_only=True)["state_dict"]
    sb = torch.load(b, weights_only=True)["state_dict"]
    return set(sa) == set(sb) and all(torch.equal(sa[k], sb[k]) for k in sa)


ADAPTOR_LOOP = {"steps": 200, "batch_size": 32, "lr": 0.003, "checkpoint_every": 100, "eval_every": 100}
# the smallest DiT that learns the fixture's conditioning (and the order invariance) within 1,000 steps
GENERATOR_SETTINGS = {"model": {**TINY, "width": 96, "mlp_hidden": 192}, "max_tracks": 5, "edm": {"sigma_data": 0.11}}


@pytest.fixture(scope="module")
def adaptor_model(corpus, tmp_path_factory):
    from stemlab.train.run import train_job

    root = tmp_path_factory.mktemp("adaptor")
    job = _job(corpus, root, "domain_adaptor", ADAPTOR_LOOP, {"model": {"hidden": 32}})
    train_job(job, root / "ref")
    return {"job": job, "root": root, "final": root / "ref" / "final.pt"}


@pytest.mark.slow  # trains the adaptor end to end (seconds)
def test_adaptor_trains_resumes_to_identical_weights_and_beats_identity(corpus, adaptor_model, monkeypatch):
    from stemlab.evaluate.run import evaluate_job
    from stemlab.megami import multitrack
    from stemlab.train.run import train_job

    job, root = adaptor_model["job"], adaptor_model["root"]
    _crash_and_resume(monkeypatch, multitrack.ClapPairs, 150, job, root / "run", checkpoints=[100])
    assert _same_weights(root / "ref" / "final.pt", root / "run" / "final.pt")
    log = pd.read_csv(root / "ref" / "train_log.csv")
    valid = log[log["split"] == "valid"]
    assert len(valid) == 2 and valid["loss"].iloc[-1] < 0.5 * valid["identity_loss"].iloc[-1]
    rows = evaluate_job(job, root / "ref", root / "eval")
    means = rows.groupby(["system", "metric"])["value"].mean()
    assert set(means.index) == {("adaptor", "cosine_to_dry"), ("identity", "cosine_to_dry"), ("mean_dry", "cosine_to_dry"),
                                ("adaptor", "dry_top1"), ("identity", "dry_top1"), ("chance", "dry_top1")}  # fmt: skip
    n_test = len(segment_rows([corpus["segments"]]).query("split == 'test'"))
    assert rows["item"].nunique() == n_test
    assert means["adaptor", "cosine_to_dry"] > means["identity", "cosine_to_dry"] + 0.2
    assert means["adaptor", "cosine_to_dry"] > means["mean_dry", "cosine_to_dry"]
    assert means["adaptor", "dry_top1"] > means["chance", "dry_top1"]


@pytest.fixture(scope="module")
def generator_model(corpus, adaptor_model, tmp_path_factory):
    from stemlab.train.run import train_job

    root = tmp_path_factory.mktemp("generator")
    loop = {"steps": 1000, "batch_size": 16, "lr": 0.002, "warmup_steps": 20, "checkpoint_every": 500, "eval_every": 250, "ema_decay": 0.99}
    job = _job(corpus, root, "fx_generator", loop, GENERATOR_SETTINGS, {"samples": 2, "steps": 8},
               upstream={"domain_adaptor": str(adaptor_model["final"])})  # fmt: skip
    train_job(job, root / "ref")
    return {"job": job, "root": root, "final": root / "ref" / "final.pt"}


@pytest.mark.slow  # trains the generator end to end (tens of seconds)
def test_generator_trains_resumes_to_identical_weights_and_evaluates(corpus, generator_model, monkeypatch):
    from stemlab.evaluate.run import evaluate_job
    from stemlab.megami import multitrack
    from stemlab.train.run import train_job

    job, root = generator_model["job"], generator_model["root"]
    short = dataclasses.replace(job, loop={**job.loop, "steps": 6, "warmup_steps": 2, "checkpoint_every": 3, "eval_every": 3})
    train_job(short, root / "short-ref")
    _crash_and_resume(monkeypatch, multitrack.Multitracks, 4, short, root / "short-run", checkpoints=[3])
    assert _same_weights(root / "short-ref" / "final.pt", root / "short-run" / "final.pt")  # EMA weights included

    log = pd.read_csv(root / "ref" / "train_log.csv")
    valid = log[log["split"] == "valid"]["loss"].to_numpy()
    assert len(valid) == 4 and valid[-1] < valid[0]
    rows = evaluate_job(job, root / "ref", root / "eval")
    assert set(rows["system"]) == {"fx_generator", "unconditional", "random_train", "category_mean"}
    assert set(rows["metric"]) == {"cos_to_target", "level_error_db"}
    n_test = len(segment_rows([corpus["segments"]]).query("split == 'test'"))
    assert rows.groupby(["system", "metric"]).size().eq(n_test).all()
    assert rows["value"].notna().all()
    means = rows.groupby(["system", "metric"])["value"].mean()
    assert means["fx_generator", "cos_to_target"] > means["unconditional", "cos_to_target"] + 0.03  # the context is used


@pytest.mark.slow  # samples a trained generator many times (seconds)
def test_generated_distribution_does_not_depend_on_the_track_order(corpus, generator_model):
    """Energy-distance permutation tests with a fixed seed: each track's draws with the tracks in one order
    and in another are not distinguishable, while the draws of two different tracks are (the test's power)."""
    from stemlab.train.task import load_trained

    _, bundle, _ = load_trained(generator_model["final"])
    clap, _ = _caches(corpus)
    rows = rows_of_split(segment_rows([corpus["segments"]]), "test")
    window = rows[(rows["song"] == rows["song"].iloc[0]) & (rows["start"] == 0)]
    assert len(window) >= 2
    context = torch.from_numpy(clap.take(window.assign(source="dry")))
    order = torch.arange(len(window)).flip(0)
    a = sample_effect_embeddings(bundle, None, context, n_samples=48, seed=11, steps=12)
    b = sample_effect_embeddings(bundle, None, context[order], n_samples=48, seed=12, steps=12)[:, torch.argsort(order)]
    r = np.random.default_rng(0)
    for t in range(len(window)):
        assert _energy_p_value(a[:, t], b[:, t], r) > 0.01, f"track {t} depends on its slot"
    assert _energy_p_value(a[:, 0], a[:, 1], r) < 0.01


def _energy_p_value(x: torch.Tensor, y: torch.Tensor, r: np.random.Generator, permutations: int = 300) -> float:
    z = torch.cat([x, y]).double()
    d = torch.cdist(z, z).numpy()
    n = len(x)

    def stat(idx):
        i, j = idx[:n], idx[n:]
        return 2 * d[np.ix_(i, j)].mean() - d[np.ix_(i, i)].mean() - d[np.ix_(j, j)].mean()

    observed = stat(np.arange(2 * n))
    null = [stat(r.permutation(2 * n)) for _ in range(permutations)]
    return (1 + sum(s >= observed for s in null)) / (1 + permutations)
