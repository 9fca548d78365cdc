"""The `codec` model on the frame (models.codec): the tokenizer of Stage, `rvq` trained here or `encodec` frozen.

settings.kind `rvq`: an RVQCodec (stemlab.stage.codec) trained per seed on random crops of the train split's
active wet stem windows (every stem, mixed to mono, resampled to the codec's rate) of the `settings.window`
segment tables, loss MR-STFT (spectral convergence + log magnitude, stemlab.train.losses) + the residual VQ's
commitment loss + `loss.waveform_weight` x the waveform's L1 error relative to the batch's L1 norm (scale-free, like
the spectral convergence; without it the decoder matches magnitudes but not the waveform, so SI-SDR stays far below 0). settings.kind `encodec`: EnCodec from the
pretrained snapshot `settings.encodec.snapshot` (inputs.pretrained), frozen: the loop runs one no-op step and
final.pt holds no weights, only the snapshot folder it reads (stemlab.stage.codec.load_codec opens it).

Evaluation (results/tables/codec.csv): each active test-split stem window (at most `eval.max_items`, evenly
spaced; quieter than `settings.min_rms_db` skipped), its first `eval.seconds` in mono at the codec's rate, is
encoded and decoded (excerpts quieter than `settings.min_rms_db` are skipped); rows `si_sdr` (dB, higher is better) and `mrstft` (stemlab.metrics.mrstft_distance,
lower is better) of the reconstruction against that input, system = the codec kind.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from stemlab.audio import SAMPLE_RATE, resample
from stemlab.data.segment_tables import read_window, song_dir, song_json, stem_entry, stem_files
from stemlab.errors import StemlabError
from stemlab.logs import log, progress
from stemlab.metrics import mrstft_distance, si_sdr
from stemlab.seeding import rng
from stemlab.stage.codec import Codec, EncodecCodec, RVQCodec, RVQConfig
from stemlab.train.loop import StepContext
from stemlab.train.registry import register
from stemlab.train.sampling import prefetched, step_indices
from stemlab.train.task import Task

@dataclass(frozen=True)
class CodecSettings:
    kind: str
    window: str
    segment_samples: int
    min_rms_db: float
    rvq: RVQConfig
    fft_sizes: tuple[int, ...]
    waveform_weight: float
    snapshot: str
    bandwidth: float | None

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> CodecSettings:
        from stemlab.config import settings_section

        v = settings_section("models", "codec", "settings", section=section)
        model, quant, loss = v["model"], v["quantizer"], v["loss"]
        rvq = RVQConfig(
            sample_rate=int(v["sample_rate"]), channels=int(model["channels"]), max_channels=int(model["max_channels"]),
            strides=tuple(model["strides"]), latent_dim=int(model["latent_dim"]), res_units=int(model["res_units"]),
            codebooks=int(quant["codebooks"]), codebook_size=int(quant["codebook_size"]), decay=float(quant["decay"]),
            commitment_weight=float(quant["commitment_weight"]), dead_code_threshold=float(quant["dead_code_threshold"]),
        )  # fmt: skip
        settings = cls(
            kind=str(v["kind"]), window=str(v["window"]), segment_samples=int(v["segment_samples"]),
            min_rms_db=float(v["min_rms_db"]), rvq=rvq, fft_sizes=tuple(int(n) for n in loss["fft_sizes"]),
            waveform_weight=float(loss["waveform_weight"]), snapshot=str(v["encodec"]["snapshot"]),
            bandwidth=None if v["encodec"]["bandwidth"] is None else float(v["encodec"]["bandwidth"]),
        )  # fmt: skip
        if settings.kind == "rvq" and settings.segment_samples % rvq.hop:
            raise StemlabError(
                f"models.codec.settings.segment_samples {settings.segment_samples} is not a multiple of the codec's hop "
                f"{rvq.hop} (the product of model.strides); use {settings.segment_samples // rvq.hop * rvq.hop or rvq.hop}"
            )
        return settings


@dataclass(frozen=True)
class EvalSettings:
    max_items: int | None
    seconds: float | None
    batch_size: int
    fft_sizes: tuple[int, ...]

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> EvalSettings:
        from stemlab.config import settings_section

        v = settings_section("models", "codec", "eval", section=section)
        return cls(max_items=v["max_items"], seconds=v["seconds"], batch_size=int(v["batch_size"]),
                   fft_sizes=tuple(int(n) for n in v["fft_sizes"]))  # fmt: skip


@dataclass(frozen=True)
class StemWindow:
    corpus: str
    shard: str
    song: str
    stem: str
    category: str
    start: int  # at 44.1 kHz
    length: int
    path: Path  # the wet stem file

    @property
    def item(self) -> str:
        return f"{self.corpus}/{self.song}/{self.stem}@{self.start}"


def stem_windows(tables: Sequence[str], stems_root: Path, split: str, min_rms_db: float) -> list[StemWindow]:
    """Active windows of `split` in the segment tables, louder than `min_rms_db` where the table measures it."""
    frames = []
    for path in tables:
        frame = pd.read_parquet(path)
        frames.append(frame[frame["split"] == split])
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if table.empty:
        return []
    keep = table["active"].astype(bool)
    if "rms_db" in table.columns:
        keep &= table["rms_db"].astype(float) >= min_rms_db
    table = table[keep].sort_values(["corpus", "shard", "song", "stem", "start"], kind="stable")
    out = []
    for row in table.itertuples(index=False):
        directory = song_dir(stems_root, row.corpus, row.shard, row.song)
        entry = stem_entry(song_json(str(directory / "song.json")), row.stem, directory)
        category = str(getattr(row, "category", None) or entry.get("category") or row.stem)
        out.append(StemWindow(row.corpus, row.shard, row.song, row.stem, category, int(row.start), int(row.length), stem_files(directory, entry)[1]))
    return out


def read_mono(path: Path, start: int, samples: int, sample_rate: int) -> np.ndarray:
    """(samples,) float32: the stem from `start` (44.1 kHz samples), mono, at `sample_rate`, zero-padded."""
    need = int(np.ceil(samples * SAMPLE_RATE / sample_rate)) + 64
    audio = read_window(path, start, need).mean(axis=0, dtype=np.float32)
    if sample_rate != SAMPLE_RATE:
        audio = resample(audio[:, None], SAMPLE_RATE, sample_rate)[:, 0]
    out = np.zeros(samples, dtype=np.float32)
    out[: min(samples, audio.shape[0])] = audio[:samples]
    return out


def windows_digest(items: Sequence[StemWindow]) -> str:
    h = hashlib.sha256()
    for it in items:
        h.update(f"{it.item}\x1f{it.length}\n".encode())
    return h.hexdigest()[:16]


class CodecLoss(nn.Module):
    def __init__(self, fft_sizes: Sequence[int], waveform_weight: float) -> None:
        super().__init__()
        from stemlab.train.losses import MultiResolutionSTFTLoss

        self.spectral = MultiResolutionSTFTLoss(fft_sizes)
        self.waveform_weight = float(waveform_weight)

    def forward(self, model: RVQCodec, wave: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        recon, _, commit = model(wave)
        recon = recon[..., : wave.shape[-1]]
        spectral = self.spectral(recon, wave)
        l1 = (recon - wave).abs().sum() / wave.abs().sum().clamp_min(1e-8)  # relative to the batch's level, like the MR-STFT's spectral convergence
        loss = spectral + commit + self.waveform_weight * l1
        return loss, {"mrstft": float(spectral.detach()), "commit": float(commit.detach()), "l1": float(l1.detach())}


@register
class CodecTask(Task):
    name = "codec"
    metric_directions = {"si_sdr": "higher", "mrstft": "lower"}

    def __init__(self, job: Any) -> None:
        super().__init__(job)
        if self.settings.kind == "encodec":  # frozen: one no-op step makes final.pt, train_log.csv and meta.json
            self.loop = dataclasses.replace(self.loop, steps=1, warmup_steps=0)

    def parse_settings(self, section: Mapping[str, Any]) -> CodecSettings:
        return CodecSettings.from_config(section)

    @property
    def frozen(self) -> bool:
        return self.settings.kind == "encodec"

    def _snapshot(self) -> Path:
        return self.pretrained_dir(self.settings.snapshot)

    # ------------------------------------------------------------------ training
    def setup(self) -> None:
        if self.frozen:
            self._snapshot()
            self.train_items: list[StemWindow] = []
            self.valid_items: list[StemWindow] = []
            return
        tables = self.segment_tables(self.settings.window)
        self.train_items = stem_windows(tables, self.stems_root, "train", self.settings.min_rms_db)
        self.valid_items = stem_windows(tables, self.stems_root, "valid", self.settings.min_rms_db)
        if not self.train_items:
            raise StemlabError(f"{', '.join(tables)}: no active train-split stem windows; build the data stage with a train split")
        self.criterion = CodecLoss(self.settings.fft_sizes, self.settings.waveform_weight)
        self.valid = self._valid_batch()
        log.info("codec rvq: %d train / %d valid stem windows, crops of %d samples at %d Hz, %d codebooks x %d at %.1f Hz",
                 len(self.train_items), len(self.valid_items), self.settings.segment_samples, self.settings.rvq.sample_rate,
                 self.settings.rvq.codebooks, self.settings.rvq.codebook_size, self.settings.rvq.sample_rate / self.settings.rvq.hop)  # fmt: skip

    def _valid_batch(self) -> torch.Tensor | None:
        n = min(len(self.valid_items), self.loop.valid_batches * self.loop.batch_size)
        if n == 0:
            return None
        picks = np.unique(np.linspace(0, len(self.valid_items) - 1, n).round().astype(int))
        sr, seg = self.settings.rvq.sample_rate, self.settings.segment_samples
        crops = []
        for i in picks:
            it = self.valid_items[int(i)]
            middle = it.start + max(0, it.length - int(seg * SAMPLE_RATE / sr)) // 2
            crops.append(read_mono(it.path, middle, seg, sr))
        return torch.from_numpy(np.stack(crops))[:, None]

    def build_model(self) -> nn.Module:
        if self.frozen:
            return EncodecCodec(self._snapshot(), self.settings.bandwidth)
        return RVQCodec(self.settings.rvq)

    def frozen_modules(self, model: nn.Module) -> dict[str, nn.Module]:
        return {"model": model.model} if isinstance(model, EncodecCodec) else {}

    def optimizers(self, model: nn.Module, cfg: Any) -> dict[str, torch.optim.Optimizer]:
        return {} if self.frozen else super().optimizers(model, cfg)

    def owns_step(self) -> bool:
        return self.frozen

    def train_step(self, model: nn.Module, micro_batches: list[Any], ctx: StepContext) -> tuple[torch.Tensor, Mapping[str, float]]:
        return torch.zeros(()), {}

    def batch(self, step: int) -> torch.Tensor:
        """Batch `step`: crops of train windows at offsets drawn from (seed, step)."""
        sr, seg = self.settings.rvq.sample_rate, self.settings.segment_samples
        span = int(np.ceil(seg * SAMPLE_RATE / sr))
        indices = step_indices(len(self.train_items), self.loop.batch_size, self.loop.seed, step)
        offsets = rng(self.loop.seed, "codec-crop", step)
        crops = []
        for index in indices:
            it = self.train_items[int(index)]
            start = it.start + int(offsets.integers(0, max(0, it.length - span) + 1))
            crops.append(read_mono(it.path, start, seg, sr))
        return torch.from_numpy(np.stack(crops))[:, None]

    def data(self, start: int) -> Iterator[Any]:
        if self.frozen:
            return itertools.repeat(None)
        return prefetched(self.batch, start, workers=self.loop.workers)

    def loss(self, model: nn.Module, batch: torch.Tensor, generator: torch.Generator):  # noqa: ARG002
        return self.criterion(model, batch)

    def validate(self, model: nn.Module) -> dict[str, float]:
        if self.frozen or self.valid is None:
            return {}
        device = next(model.parameters()).device
        totals = {"loss": 0.0, "mrstft": 0.0, "si_sdr": 0.0}
        n = len(self.valid)
        for lo in range(0, n, self.loop.batch_size):
            part = self.valid[lo : lo + self.loop.batch_size].to(device)
            loss, metrics = self.criterion(model, part)
            recon = model.decode(model.encode(part))[..., : part.shape[-1]]
            w = len(part) / n
            totals["loss"] += w * float(loss)
            totals["mrstft"] += w * metrics["mrstft"]
            totals["si_sdr"] += w * float(np.mean([si_sdr(e.numpy(), r.numpy()) for e, r in zip(recon.cpu(), part.cpu())]))
        return totals

    def identity(self) -> dict[str, Any]:
        if self.frozen:
            return {"kind": "encodec", "bandwidth": self.settings.bandwidth}
        return {"kind": "rvq", "model": self.settings.rvq.to_dict(), "segment_samples": self.settings.segment_samples,
                "data": {"train_items": len(self.train_items), "digest": windows_digest(self.train_items)}}  # fmt: skip

    def export(self, model: nn.Module) -> dict[str, Any]:
        info = model.describe() if isinstance(model, Codec) else {}
        if self.frozen:
            return {"kind": "encodec", "codec": info, "bandwidth": self.settings.bandwidth, "pretrained": dict(self.job.inputs.pretrained)}
        return {"kind": "rvq", "codec": info, "config": self.settings.rvq.to_dict()}

    def restore(self, export: Mapping[str, Any]) -> None:
        kind = export.get("kind")
        if kind != self.settings.kind:
            raise StemlabError(f"the codec model file holds a {kind!r} codec, the settings say {self.settings.kind!r}; re-run its train_model job")
        if kind == "rvq":
            try:
                config = RVQConfig.from_dict(dict(export["config"]))
            except (KeyError, TypeError, ValueError) as exc:
                raise StemlabError(f"not a codec model file of this version ({type(exc).__name__}: {exc}); re-run its train_model job") from exc
            self.settings = dataclasses.replace(self.settings, rvq=config)

    def meta(self, model: nn.Module) -> dict[str, Any]:
        info = model.describe() if isinstance(model, Codec) else {}
        return {**info, "train_items": len(self.train_items), "valid_items": len(self.valid_items)}

    # ------------------------------------------------------------------ evaluation
    @torch.no_grad()
    def evaluate(self, model: nn.Module, payload: Mapping[str, Any], out_dir: Path) -> pd.DataFrame:
        from stemlab.megami.evaluate_fxprocessor import select_items

        cfg = EvalSettings.from_config(self.job.eval)
        items = stem_windows(self.segment_tables(self.settings.window), self.stems_root, "test", self.settings.min_rms_db)
        items = select_items(items, cfg.max_items)
        if not items:
            raise StemlabError(f"model {self.job.model}: no active test-split stem windows in the {self.settings.window} segment tables; build a test split")
        codec: Codec = model
        device = next(itertools.chain(codec.parameters(), codec.buffers())).device
        sr = codec.sample_rate
        rows = []
        batches = [items[i : i + cfg.batch_size] for i in range(0, len(items), cfg.batch_size)]
        log.info("codec %s: %d test stem windows at %d Hz", codec.kind, len(items), sr)
        for batch in progress(batches, desc=f"codec {codec.kind} reconstruction"):
            seconds = [it.length / SAMPLE_RATE if cfg.seconds is None else min(cfg.seconds, it.length / SAMPLE_RATE) for it in batch]
            n = int(round(max(seconds) * sr))
            ref = torch.from_numpy(np.stack([read_mono(it.path, it.start, n, sr) for it in batch]))[:, None]
            recon = codec.decode(codec.encode(ref.to(device))).cpu()[..., :n]
            for it, sec, r, e in zip(batch, seconds, ref, recon):
                m = int(round(sec * sr))
                r, e = r[:, :m].numpy(), e[:, :m].numpy()
                if 10 * np.log10(float(np.mean(np.square(r, dtype=np.float64))) + 1e-20) < self.settings.min_rms_db:
                    continue  # an excerpt this quiet has no meaningful SI-SDR or spectral convergence
                base = {"system": codec.kind, "item": it.item, "corpus": it.corpus, "song": it.song, "stem": it.stem,
                        "category": it.category, "start": it.start}  # fmt: skip
                rows.append({**base, "metric": "si_sdr", "value": si_sdr(e, r)})
                rows.append({**base, "metric": "mrstft", "value": mrstft_distance(e, r, cfg.fft_sizes)})
        return pd.DataFrame(rows)
