"""EDM diffusion in MEGAMI's "ve_karras" form (Karras et al. 2022): the noise schedule, the preconditioning
of the denoiser, the training loss and its weighting, and the Euler / Heun samplers of the probability-flow
ODE.

Variance exploding: x_sigma = x + sigma * n. The network F sees c_in(sigma) x_sigma and c_noise(sigma) and
the denoiser is D(x_sigma, sigma) = c_skip x_sigma + c_out F, with

    c_skip = sigma_data^2 / (sigma^2 + sigma_data^2)     c_out = sigma sigma_data / sqrt(sigma^2 + sigma_data^2)
    c_in   = 1 / sqrt(sigma^2 + sigma_data^2)            c_noise = log(sigma) / 4

The loss weighting lambda(sigma) = 1 / c_out^2 makes lambda |D - x|^2 = |F - (x - c_skip x_sigma) / c_out|^2,
the form that is computed. Training sigmas are drawn along the sampling schedule: u ~ U(0, 1),
sigma = (sigma_max^(1/rho) + u (sigma_min^(1/rho) - sigma_max^(1/rho)))^rho, as MEGAMI does. The sampling
schedule has `steps` noise levels from sigma_max down to sigma_min (the same formula at u = i / (steps - 1))
followed by 0, so a sampler of T steps evaluates the denoiser T times (Euler) or 2T - 1 times (Heun: no
correction on the last step to sigma = 0).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import torch

from stemlab.errors import StemlabError

SAMPLERS = ("euler", "heun")
Denoiser = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (x_sigma, sigma (batch,)) -> D(x_sigma, sigma)


@dataclass(frozen=True)
class EDMConfig:
    sigma_data: float = 0.025
    sigma_min: float = 5e-4
    sigma_max: float = 5.0
    rho: float = 10.0

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], where: str = "edm") -> EDMConfig:
        unknown = sorted(set(values) - set(cls.__dataclass_fields__))
        if unknown:
            raise StemlabError(f"{where}: unknown key {unknown[0]!r}; allowed: {', '.join(cls.__dataclass_fields__)}")
        cfg = cls(**{k: float(v) for k, v in values.items()})
        if not 0 < cfg.sigma_min < cfg.sigma_max or cfg.sigma_data <= 0 or cfg.rho <= 0:
            raise StemlabError(f"{where}: need 0 < sigma_min < sigma_max, sigma_data > 0 and rho > 0")
        return cfg

    def to_dict(self) -> dict[str, float]:
        return asdict(self)

    # ------------------------------------------------------------------ preconditioning
    def c_skip(self, sigma: torch.Tensor) -> torch.Tensor:
        return self.sigma_data**2 / (sigma**2 + self.sigma_data**2)

    def c_out(self, sigma: torch.Tensor) -> torch.Tensor:
        return sigma * self.sigma_data / (sigma**2 + self.sigma_data**2).sqrt()

    def c_in(self, sigma: torch.Tensor) -> torch.Tensor:
        return 1.0 / (sigma**2 + self.sigma_data**2).sqrt()

    def c_noise(self, sigma: torch.Tensor) -> torch.Tensor:
        return sigma.log() / 4.0

    def loss_weight(self, sigma: torch.Tensor) -> torch.Tensor:
        """lambda(sigma) = (sigma^2 + sigma_data^2) / (sigma sigma_data)^2 = 1 / c_out^2."""
        return (sigma**2 + self.sigma_data**2) / (sigma * self.sigma_data) ** 2

    # ------------------------------------------------------------------ noise levels
    def ramp(self, u: torch.Tensor) -> torch.Tensor:
        """The rho-schedule at u in [0, 1]: sigma_max at 0, sigma_min at 1."""
        lo, hi = self.sigma_min ** (1.0 / self.rho), self.sigma_max ** (1.0 / self.rho)
        return (hi + u * (lo - hi)) ** self.rho

    def training_sigmas(self, n: int, generator: torch.Generator | None = None, device: torch.device | str = "cpu") -> torch.Tensor:
        """(n,) training noise levels drawn along the rho-schedule (u uniform)."""
        u = torch.rand(n, generator=generator, device=generator.device if generator is not None else device)
        return self.ramp(u.double()).float().to(device)

    def sampling_sigmas(self, steps: int, device: torch.device | str = "cpu") -> torch.Tensor:
        """(steps + 1,) noise levels sigma_max = s_0 > ... > s_{steps-1} = sigma_min, then s_steps = 0."""
        if steps < 1:
            raise StemlabError(f"sampling steps must be >= 1, got {steps}")
        u = torch.linspace(0.0, 1.0, steps, dtype=torch.float64) if steps > 1 else torch.ones(1, dtype=torch.float64)
        sigmas = self.ramp(u)
        sigmas[-1] = self.sigma_min  # exactly, not up to the rounding of the power
        return torch.cat([sigmas, torch.zeros(1, dtype=torch.float64)]).float().to(device)


def _expand(sigma: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return sigma.reshape(-1, *([1] * (like.ndim - 1))).to(like.dtype)


def precondition(net: Callable[..., torch.Tensor], cfg: EDMConfig, x: torch.Tensor, sigma: torch.Tensor, **cond: Any) -> torch.Tensor:
    """D(x, sigma) = c_skip x + c_out F(c_in x, c_noise, **cond) for a batch; sigma is (batch,)."""
    s = _expand(sigma, x)
    return cfg.c_skip(s) * x + cfg.c_out(s) * net(cfg.c_in(s) * x, cfg.c_noise(sigma), **cond)


def edm_loss(
    net: Callable[..., torch.Tensor],
    cfg: EDMConfig,
    x: torch.Tensor,
    sigma: torch.Tensor,
    noise: torch.Tensor,
    weight: torch.Tensor | None = None,
    **cond: Any,
) -> torch.Tensor:
    """lambda(sigma)-weighted denoising loss |F - (x - c_skip x_sigma) / c_out|^2, averaged over the elements
    where `weight` (broadcast to x; e.g. the real-track mask (batch, tracks, 1)) is non-zero."""
    s = _expand(sigma, x)
    x_noisy = x + s * noise
    target = (x - cfg.c_skip(s) * x_noisy) / cfg.c_out(s)
    out = net(cfg.c_in(s) * x_noisy, cfg.c_noise(sigma), **cond)
    error = (out.float() - target.float()).square()
    if weight is None:
        return error.mean()
    w = weight.to(error.dtype).expand_as(error)
    return (error * w).sum() / w.sum().clamp(min=1.0)


@torch.no_grad()
def sample(
    denoise: Denoiser,
    noise: torch.Tensor,
    sigmas: torch.Tensor,
    sampler: str = "euler",
    trajectory: list[torch.Tensor] | None = None,
) -> torch.Tensor:
    """Integrate the probability-flow ODE dx/dsigma = (x - D(x, sigma)) / sigma from x = sigmas[0] * noise
    along `sigmas` (decreasing, ending at 0). `trajectory`, when given, receives x at every noise level."""
    if sampler not in SAMPLERS:
        raise StemlabError(f"sampler {sampler!r} is not one of {', '.join(SAMPLERS)}")
    if sigmas.ndim != 1 or len(sigmas) < 2 or float(sigmas[-1]) != 0.0 or bool((sigmas[1:] >= sigmas[:-1]).any()):
        raise StemlabError("sampling noise levels must decrease strictly and end at 0 (EDMConfig.sampling_sigmas)")
    batch = noise.shape[0]
    x = noise * sigmas[0]
    if trajectory is not None:
        trajectory.append(x.clone())
    for i in range(len(sigmas) - 1):
        s, s_next = sigmas[i], sigmas[i + 1]
        d = (x - denoise(x, s.expand(batch))) / s
        x_next = x + (s_next - s) * d
        if sampler == "heun" and float(s_next) > 0:
            d_next = (x_next - denoise(x_next, s_next.expand(batch))) / s_next
            x_next = x + (s_next - s) * 0.5 * (d + d_next)
        x = x_next
        if trajectory is not None:
            trajectory.append(x.clone())
    return x

