"""MEGAMI's FxGenerator: a diffusion transformer (DiT) over the effect embeddings of all tracks of a song,
conditioned on their (adapted) CLAP content embeddings, and the sampling API the mixing pipeline calls.

Tokens. A track's effect embedding (fx_dim, 2,112 in the paper) is cut into chunks of `token_dim` (64:
33 tokens; the last chunk zero-padded when fx_dim is not a multiple); each chunk is joined with a one-hot
of its position in the track and a one-hot of the track's slot (0 .. max_tracks - 1) and projected to
`width`. The noise level enters as one token prepended to the sequence (sinusoidal features of
c_noise -> MLP). Each track's CLAP embedding is cut the same way into chunks of `context_token_dim` with
one-hot position and slot, and every block cross-attends to these tokens of all tracks.

Block (pre-norm): self-attention over all tokens -> cross-attention to the context tokens -> SwiGLU
feed-forward (hidden `mlp_hidden`), each residual. Padded track slots are masked as keys in both
attentions and their outputs are zero, so they cannot influence a real track. The slot one-hots make the
tokens of one track (and its context) identifiable; that the output does not depend on which slot a
track occupies (permutation equivariance) is learned by shuffling the track order of every sample.

The sampling API the mixing pipeline calls is `sample_effect_embeddings` at the end.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from stemlab.encoders.fx.features import AF_DIM, join
from stemlab.errors import StemlabError
from stemlab.megami.edm import EDMConfig, precondition, sample

TIME_FEATURES = 256  # sinusoidal features of c_noise


@dataclass(frozen=True)
class GeneratorConfig:
    """The DiT's shape (models.fx_generator.settings.model) and the data dimensions it is built for."""

    depth: int = 16
    width: int = 512
    heads: int = 16
    mlp_hidden: int = 2048
    token_dim: int = 64
    context_token_dim: int = 64
    max_tracks: int = 14
    fx_dim: int = 2112
    context_dim: int = 512

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], where: str = "models.fx_generator.settings.model") -> GeneratorConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise StemlabError(f"{where}: unknown key {unknown[0]!r}; allowed: {', '.join(sorted(known))}")
        cfg = cls(**{k: int(v) for k, v in values.items()})
        if min(asdict(cfg).values()) < 1:
            raise StemlabError(f"{where}: every size must be >= 1")
        if cfg.width % cfg.heads:
            raise StemlabError(f"{where}: width {cfg.width} is not a multiple of heads {cfg.heads}")
        return cfg

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    @property
    def tokens_per_track(self) -> int:
        return math.ceil(self.fx_dim / self.token_dim)

    @property
    def context_tokens_per_track(self) -> int:
        return math.ceil(self.context_dim / self.context_token_dim)


def _chunk_tokens(x: torch.Tensor, chunk: int, n_chunks: int, max_tracks: int) -> torch.Tensor:
    """(batch, tracks, dim) -> (batch, tracks * n_chunks, chunk + n_chunks + max_tracks): zero-padded chunks
    joined with one-hots of their position and their track's slot."""
    b, n, d = x.shape
    x = F.pad(x, (0, n_chunks * chunk - d)).reshape(b, n, n_chunks, chunk)
    pos = torch.eye(n_chunks, dtype=x.dtype, device=x.device)[None, None].expand(b, n, -1, -1)
    slot = torch.eye(max_tracks, dtype=x.dtype, device=x.device)[:n, None].expand(b, -1, n_chunks, -1)
    return torch.cat([x, pos, slot], dim=-1).reshape(b, n * n_chunks, -1)


class Attention(nn.Module):
    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(width, width, bias=False)
        self.kv = nn.Linear(width, 2 * width, bias=False)
        self.out = nn.Linear(width, width)

    def forward(self, x: torch.Tensor, context: torch.Tensor, key_mask: torch.Tensor) -> torch.Tensor:
        b, s, w = x.shape
        q = self.q(x).reshape(b, s, self.heads, -1).transpose(1, 2)
        k, v = self.kv(context).reshape(b, context.shape[1], 2, self.heads, -1).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=key_mask[:, None, None, :])
        return self.out(y.transpose(1, 2).reshape(b, s, w))


class SwiGLU(nn.Module):
    def __init__(self, width: int, hidden: int) -> None:
        super().__init__()
        self.gate_up = nn.Linear(width, 2 * hidden, bias=False)
        self.down = nn.Linear(hidden, width, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, up = self.gate_up(x).chunk(2, dim=-1)
        return self.down(F.silu(gate) * up)


class Block(nn.Module):
    def __init__(self, width: int, heads: int, mlp_hidden: int) -> None:
        super().__init__()
        self.norm_self, self.self_attn = nn.LayerNorm(width), Attention(width, heads)
        self.norm_cross, self.cross_attn = nn.LayerNorm(width), Attention(width, heads)
        self.norm_ff, self.ff = nn.LayerNorm(width), SwiGLU(width, mlp_hidden)

    def forward(self, x: torch.Tensor, x_mask: torch.Tensor, context: torch.Tensor, context_mask: torch.Tensor) -> torch.Tensor:
        h = self.norm_self(x)
        x = x + self.self_attn(h, h, x_mask)
        x = x + self.cross_attn(self.norm_cross(x), context, context_mask)
        return x + self.ff(self.norm_ff(x))


class FxGenerator(nn.Module):
    """F(c_in x, c_noise, context, mask): the network inside the EDM preconditioning (stemlab.megami.edm)."""

    def __init__(self, cfg: GeneratorConfig) -> None:
        super().__init__()
        self.cfg = cfg
        k, kc = cfg.tokens_per_track, cfg.context_tokens_per_track
        self.embed = nn.Linear(cfg.token_dim + k + cfg.max_tracks, cfg.width)
        self.embed_context = nn.Linear(cfg.context_token_dim + kc + cfg.max_tracks, cfg.width)
        self.norm_context = nn.LayerNorm(cfg.width)
        self.register_buffer("freqs", torch.exp(torch.linspace(0.0, math.log(1000.0), TIME_FEATURES // 2)), persistent=False)
        self.time = nn.Sequential(nn.Linear(TIME_FEATURES, cfg.width), nn.SiLU(), nn.Linear(cfg.width, cfg.width))
        self.blocks = nn.ModuleList(Block(cfg.width, cfg.heads, cfg.mlp_hidden) for _ in range(cfg.depth))
        self.norm_out = nn.LayerNorm(cfg.width)
        self.head = nn.Linear(cfg.width, cfg.token_dim)
        nn.init.zeros_(self.head.weight)  # starts as F = 0: D(x) = c_skip x, the data-free optimum at large sigma
        nn.init.zeros_(self.head.bias)

    def forward(self, x: torch.Tensor, c_noise: torch.Tensor, context: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x (batch, tracks, fx_dim), c_noise (batch,), context (batch, tracks, context_dim), mask (batch,
        tracks) bool (True = a real track) -> (batch, tracks, fx_dim), zero on padded tracks."""
        cfg = self.cfg
        b, n, d = x.shape
        if d != cfg.fx_dim or context.shape != (b, n, cfg.context_dim) or mask.shape != (b, n) or n > cfg.max_tracks:
            raise ValueError(
                f"FxGenerator for {cfg.max_tracks} tracks of {cfg.fx_dim}-d embeddings and {cfg.context_dim}-d context "
                f"got x {tuple(x.shape)}, context {tuple(context.shape)}, mask {tuple(mask.shape)}"
            )
        mask = mask.bool()
        k, kc = cfg.tokens_per_track, cfg.context_tokens_per_track
        angles = c_noise.float().reshape(b, 1) * self.freqs
        t = self.time(torch.cat([angles.cos(), angles.sin()], dim=-1))[:, None]
        tokens = torch.cat([t, self.embed(_chunk_tokens(x.float(), cfg.token_dim, k, cfg.max_tracks))], dim=1)
        token_mask = torch.cat([mask.new_ones(b, 1), mask.repeat_interleave(k, dim=1)], dim=1)
        ctx = self.norm_context(self.embed_context(_chunk_tokens(context.float(), cfg.context_token_dim, kc, cfg.max_tracks)))
        ctx_mask = mask.repeat_interleave(kc, dim=1)
        for block in self.blocks:
            tokens = block(tokens, token_mask, ctx, ctx_mask)
        out = self.head(self.norm_out(tokens[:, 1:])).reshape(b, n, k * cfg.token_dim)[..., : cfg.fx_dim]
        return out * mask[..., None].to(out.dtype)


# --------------------------------------------------------------------------- sampling API


STANDARDIZE = ("none", "per_dim")


def standardization(fx: torch.Tensor, mode: str, sigma_data: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(shift, scale), both (fx_dim,), of the map z = (x - shift) / scale into the space the diffusion runs
    in, fitted on the training embeddings fx (tracks, fx_dim). "none": shift 0, scale 1 (MEGAMI's raw
    embeddings). "per_dim": the per-dimension mean and std / sigma_data, so every dimension of z has mean 0
    and std sigma_data (the EDM constants keep their meaning); a dimension's std is floored at 1e-3 of the
    largest one, so a (near-)constant dimension is not blown up."""
    if mode not in STANDARDIZE:
        raise StemlabError(f"models.fx_generator.settings.standardize: {mode!r} is not one of {', '.join(STANDARDIZE)}")
    fx = fx.double()
    if mode == "none" or len(fx) < 2:
        return torch.zeros(fx.shape[-1]), torch.ones(fx.shape[-1])
    std = fx.std(0)
    std = std.clamp(min=1e-3 * float(std.max()) if float(std.max()) > 0 else 1.0)
    return fx.mean(0).float(), (std / sigma_data).float()


class GeneratorBundle(nn.Module):
    """What a trained fx_generator final.pt rebuilds to: the network, its EDM settings and the data
    standardisation (buffers `shift`, `scale`: the network denoises z = (x - shift) / scale; identity unless
    the model was trained with settings.standardize)."""

    def __init__(self, net: FxGenerator, edm: EDMConfig, shift: torch.Tensor | None = None, scale: torch.Tensor | None = None) -> None:
        super().__init__()
        self.net = net
        self.edm = edm
        d = net.cfg.fx_dim
        self.register_buffer("shift", torch.zeros(d) if shift is None else shift.detach().float().reshape(d).clone())
        self.register_buffer("scale", torch.ones(d) if scale is None else scale.detach().float().reshape(d).clone())

    def standardize(self, x: torch.Tensor) -> torch.Tensor:
        """Effect embeddings -> the space the network denoises."""
        return (x - self.shift) / self.scale

    def unstandardize(self, z: torch.Tensor) -> torch.Tensor:
        return z * self.scale + self.shift

    def denoise(self, x: torch.Tensor, sigma: torch.Tensor, context: torch.Tensor, mask: torch.Tensor, cfg_scale: float = 1.0) -> torch.Tensor:
        """D(x, sigma) in the standardised space; cfg_scale != 1 mixes in the unconditional estimate (zero
        context) classifier-free."""
        cond = precondition(self.net, self.edm, x, sigma, context=context, mask=mask)
        if cfg_scale == 1.0:
            return cond
        uncond = precondition(self.net, self.edm, x, sigma, context=torch.zeros_like(context), mask=mask)
        return uncond + cfg_scale * (cond - uncond)


def _track_groups(n_tracks: int, max_tracks: int) -> list[list[int]]:
    """Tracks split round-robin into the fewest groups of at most max_tracks (one group when they fit)."""
    groups = math.ceil(n_tracks / max_tracks)
    return [list(range(g, n_tracks, groups)) for g in range(groups)]


@torch.no_grad()
def sample_effect_embeddings(
    model: GeneratorBundle,
    adaptor: nn.Module | None,
    clap_embeddings: torch.Tensor,
    n_samples: int,
    seed: int,
    steps: int = 30,
    sampler: str = "euler",
    *,
    source: str = "dry",
    cfg_scale: float = 1.0,
    normalize: bool = True,
) -> torch.Tensor:
    """Effect embeddings of every track of one song, sampled jointly: (n_samples, tracks, fx_dim) float32.

    model            the trained FxGenerator bundle: `load_trained(".../fx_generator/seed-<s>/final.pt")[1]`
    adaptor          the trained CLAP domain adaptor (`load_trained(".../domain_adaptor/seed-<s>/final.pt")[1]`);
                     applied only when `source="wet"` (it maps CLAP(wet) towards CLAP(dry), which is the
                     context the generator was trained on); may be None for `source="dry"`
    clap_embeddings  (tracks, d_clap): CLAP embedding of each track (the clap encoder's `embed` of the track's
                     window; the cache's `clap` rows), in any order: row i of the output belongs to row i here.
                     L2-normalised here. `source="dry"`: CLAP of the dry tracks, used as they are.
    n_samples        independent mixes to draw; seed: all noise comes from torch.Generator().manual_seed(seed)
                     on the CPU, so the result depends only on (model, inputs, seed, steps, sampler), not on the
                     device's random state
    steps            noise levels T of the Karras schedule sigma_max -> sigma_min (then 0); `sampler` "euler"
                     (T denoiser calls) or "heun" (2T - 1)
    cfg_scale        classifier-free guidance (1 = plain conditional sampling, as MEGAMI samples)
    normalize        re-normalise each sample as the effect encoder's embeddings are (learned part and the
                     64 interpretable-feature dims each at unit norm, weighted by sqrt(dim), whole at unit norm:
                     stemlab.encoders.fx.features.join), so it is in the space the FxProcessor is conditioned on

    More tracks than the model's max_tracks are split round-robin into groups of at most max_tracks, each
    sampled jointly (with its own noise).

    Per-track gains: the last 64 dims of each sample are MEGAMI's interpretable features (Fourier-embedded);
    features 0 and 1 are the log-RMS of L and R (loudest 400-ms frame), which
    stemlab.megami.features.effect_level_db decodes; the gain of a processed track is that level minus the
    same feature measured on the FxProcessor's output (stemlab.megami.features.measured_level_db).
    """
    if source not in ("dry", "wet"):
        raise StemlabError(f"sample_effect_embeddings: source {source!r} is not 'dry' or 'wet'")
    if source == "wet" and adaptor is None:
        raise StemlabError("sample_effect_embeddings: source 'wet' needs the domain adaptor")
    cfg = model.net.cfg
    if clap_embeddings.ndim != 2 or clap_embeddings.shape[1] != cfg.context_dim or len(clap_embeddings) == 0:
        raise StemlabError(
            f"sample_effect_embeddings: CLAP embeddings must be (tracks >= 1, {cfg.context_dim}), got {tuple(clap_embeddings.shape)}"
        )
    if n_samples < 1:
        raise StemlabError("sample_effect_embeddings: n_samples must be >= 1")
    device = next(model.parameters()).device
    context = F.normalize(clap_embeddings.float().to(device), dim=-1)
    if source == "wet":
        context = adaptor(context).float()
    generator = torch.Generator().manual_seed(int(seed))
    sigmas = model.edm.sampling_sigmas(steps, device)
    out = torch.zeros(n_samples, len(context), cfg.fx_dim, device=device)
    for group in _track_groups(len(context), cfg.max_tracks):
        n = len(group)
        ctx = context[group][None].expand(n_samples, -1, -1)
        mask = torch.ones(n_samples, n, dtype=torch.bool, device=device)
        noise = torch.randn(n_samples, n, cfg.fx_dim, generator=generator).to(device)
        z = sample(lambda x, s: model.denoise(x, s, ctx, mask, cfg_scale), noise, sigmas, sampler)  # noqa: B023
        out[:, group] = model.unstandardize(z)
    if normalize:
        out = join(out[..., :-AF_DIM], out[..., -AF_DIM:])
    return out.float()

