"""Linear probes of FX parameters: targets from chain annotations and a ridge regression whose penalty is
chosen by cross-validation over songs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from stemlab.megami.fxparams import flatten_fx

# probe name -> (key of stemlab.megami.fxparams.flatten_fx, value when the stage is absent from a chain:
# the setting that makes the effect a no-op; None = every chain has it)
PARAMETERS: dict[str, tuple[str, float | None]] = {
    "fader_db": ("fader_db", None),
    "pan": ("pan", None),
    "eq_low_shelf_db": ("chain.eq:LowShelfFilter.gain_db", 0.0),
    "eq_peak_db": ("chain.eq:PeakFilter.gain_db", 0.0),
    "eq_high_shelf_db": ("chain.eq:HighShelfFilter.gain_db", 0.0),
    "comp_threshold_db": ("chain.compressor:Compressor.threshold_db", 0.0),
    "comp_ratio": ("chain.compressor:Compressor.ratio", 1.0),
    "saturation_drive_db": ("chain.saturation:Distortion.drive_db", 0.0),
    "chorus_mix": ("chain.chorus:Chorus.mix", 0.0),
    "delay_mix": ("chain.delay:Delay.mix", 0.0),
    "delay_feedback": ("chain.delay:Delay.feedback", 0.0),
    "reverb_wet": ("chain.reverb:Reverb.wet_level", 0.0),
}


def present_parameters(annotations: Sequence[Any]) -> list[str]:
    """Probe names whose key occurs in at least one annotation (the synth's chains decide the list)."""
    keys = set()
    for fx in annotations:
        keys.update(k for k, v in flatten_fx(fx).items() if isinstance(v, float))
    return [name for name, (key, _) in PARAMETERS.items() if key in keys]


def targets(annotations: Sequence[Any], names: Sequence[str]) -> np.ndarray:
    """(items, parameters) float64; NaN where a parameter without an absent value is missing."""
    out = np.full((len(annotations), len(names)), np.nan)
    for i, fx in enumerate(annotations):
        flat = flatten_fx(fx)
        for j, name in enumerate(names):
            key, absent = PARAMETERS[name]
            value = flat.get(key)
            if isinstance(value, float):
                out[i, j] = value
            elif absent is not None:
                out[i, j] = absent
    return out


def _solve(u: np.ndarray, s: np.ndarray, vt: np.ndarray, y: np.ndarray, alpha: float) -> np.ndarray:
    return vt.T @ ((s / (s**2 + alpha))[:, None] * (u.T @ y))


class RidgeProbe:
    """Ridge regression on standardised features, one penalty per target chosen by grouped K-fold CV
    (groups = songs, so windows of one stem never sit on both sides of a fold)."""

    def __init__(self, folds: int = 5, grid: Sequence[float] = tuple(10.0 ** np.arange(-4, 2.5, 0.5))) -> None:
        self.folds, self.grid = int(folds), tuple(grid)

    def fit(self, x: np.ndarray, y: np.ndarray, groups: Sequence[str]) -> RidgeProbe:
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        self.x_mean, self.x_std = x.mean(0), x.std(0)
        self.x_std[self.x_std < 1e-12] = 1.0
        xs = (x - self.x_mean) / self.x_std
        self.y_mean = y.mean(0)
        yc = y - self.y_mean
        s_all = np.linalg.svd(xs, compute_uv=False)
        alphas = float(np.mean(s_all**2)) * np.array(self.grid)
        unique = sorted(set(groups))
        fold_of = {g: i % self.folds for i, g in enumerate(unique)}
        fold = np.array([fold_of[g] for g in groups])
        errors = np.zeros((len(alphas), y.shape[1]))
        for f in range(min(self.folds, len(unique))):
            train, test = fold != f, fold == f
            if not test.any() or train.sum() < 2:
                continue
            mu_x, mu_y = xs[train].mean(0), yc[train].mean(0)
            u, s, vt = np.linalg.svd(xs[train] - mu_x, full_matrices=False)
            for a, alpha in enumerate(alphas):
                w = _solve(u, s, vt, yc[train] - mu_y, alpha)
                pred = (xs[test] - mu_x) @ w + mu_y
                errors[a] += ((pred - yc[test]) ** 2).sum(0)
        best = np.argmin(errors, axis=0)
        self.alpha = alphas[best]  # per target
        # cross-validated R^2 at the chosen penalty (a diagnostic: how much of each target the features hold)
        self.cv_r2 = 1.0 - errors[best, np.arange(y.shape[1])] / np.maximum(((yc - yc.mean(0)) ** 2).sum(0), 1e-12)
        u, s, vt = np.linalg.svd(xs, full_matrices=False)
        self.w = np.stack([_solve(u, s, vt, yc[:, j : j + 1], float(self.alpha[j]))[:, 0] for j in range(y.shape[1])], axis=1)
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        return ((np.asarray(x, dtype=np.float64) - self.x_mean) / self.x_std) @ self.w + self.y_mean


def r2_terms(y: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Per-item terms 1 - e_i^2 / var(y) (var over the evaluated items): their mean is R^2 of the set."""
    var = np.var(y)
    return 1.0 - (pred - y) ** 2 / var


def describe(names: Sequence[str]) -> Mapping[str, str]:
    return {name: PARAMETERS[name][0] for name in names}
