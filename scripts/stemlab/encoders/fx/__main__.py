"""Effect embeddings of your own audio files with a trained effect encoder.

    python -m stemlab.encoders.fx embed --model results/models/fx_encoder/seed-1/final.pt --out emb.parquet FILE...

Any sample rate (resampled to 44.1 kHz), mono (duplicated to stereo) or stereo (more channels: the first
two are used), any length. One row per file, or with --segment S one row per S-second segment (the last
one shorter): columns file, start_s, duration_s, sample_rate, channels (of the file), embedding (float32
list, unit norm). A file that cannot be read is reported on one line and skipped; the exit status is then 1.
A model of settings.source `pretrained` needs its snapshot folder (--pretrained, default
resources/pretrained/<name>).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from stemlab.errors import StemlabError, run_cli
from stemlab.logs import setup_logging

RATE = 44_100


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m stemlab.encoders.fx", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    sub = p.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("embed", help="embed audio files into a parquet table")
    e.add_argument("--model", required=True, help="final.pt of a fx_encoder run")
    e.add_argument("--out", required=True, help="output table (.parquet)")
    e.add_argument("--pretrained", default=None, help="snapshot folder of a pretrained-source model")
    e.add_argument("--segment", type=float, default=None, help="embed consecutive segments of this many seconds")
    e.add_argument("--batch-size", type=int, default=8)
    e.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    e.add_argument("files", nargs="+", help="audio files (anything libsndfile reads: wav, flac, aiff, ogg, ...)")
    return p


def load_audio(path: str) -> tuple[np.ndarray, int, int]:
    """(2, frames) float32 at 44.1 kHz, the file's sample rate and channel count; StemlabError if unreadable."""
    from stemlab.audio import read_audio, resample

    data, sr = read_audio(path)
    channels = data.shape[1]
    if channels == 1:
        data = np.repeat(data, 2, axis=1)
    elif channels > 2:
        data = data[:, :2]
    data = resample(np.ascontiguousarray(data, dtype=np.float32), sr, RATE)
    return np.ascontiguousarray(data.T, dtype=np.float32), sr, channels


def segments(audio: np.ndarray, seconds: float | None) -> list[tuple[int, np.ndarray]]:
    if seconds is None:
        return [(0, audio)]
    size = max(1, int(round(seconds * RATE)))
    return [(lo, audio[:, lo : lo + size]) for lo in range(0, audio.shape[1], size)]


def embed_files(args: argparse.Namespace) -> int:
    import pandas as pd
    import torch

    from stemlab.atomic import atomic_path
    from stemlab.train.task import load_trained, read_final

    if args.segment is not None and args.segment <= 0:
        raise StemlabError("--segment must be a positive number of seconds")
    if not str(args.out).endswith(".parquet"):
        raise StemlabError(f"--out {args.out}: write a .parquet table")
    payload = read_final(args.model)
    if payload.get("model") != "fx_encoder" and payload.get("task") != "stemlab.encoders.fx.task":
        raise StemlabError(f"{args.model}: holds model {payload.get('model')!r}, not an effect encoder (fx_encoder)")
    export = payload.get("export") or {}
    inputs = {}
    if export.get("source") == "pretrained":
        name = export["pretrained"]["name"]
        folder = args.pretrained or f"resources/pretrained/{name}"
        inputs = {"pretrained": {name: folder}}
    task, model, _ = load_trained(args.model, args.device, inputs)
    device = torch.device(args.device)
    rows, failed = [], 0
    for path in args.files:
        try:
            audio, sr, channels = load_audio(path)
        except StemlabError as exc:
            print(f"error: {exc}", file=sys.stderr)
            failed += 1
            continue
        parts = segments(audio, args.segment)
        for lo in range(0, len(parts), args.batch_size):
            chunk = parts[lo : lo + args.batch_size]
            by_length: dict[int, list[int]] = {}
            for k, (_, clip) in enumerate(chunk):
                by_length.setdefault(clip.shape[1], []).append(k)
            embedded: dict[int, np.ndarray] = {}
            for ks in by_length.values():
                x = torch.from_numpy(np.stack([chunk[k][1] for k in ks])).to(device)
                z = task.embed(model, x).cpu().numpy().astype(np.float32)
                embedded.update(zip(ks, z))
            for k, (start, clip) in enumerate(chunk):
                rows.append({"file": str(path), "start_s": start / RATE, "duration_s": clip.shape[1] / RATE,
                             "sample_rate": sr, "channels": channels, "embedding": embedded[k].tolist()})  # fmt: skip
    if not rows:
        raise StemlabError("no file could be read; nothing written")
    table = pd.DataFrame(rows)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        table.to_parquet(tmp, index=False)
    print(f"{len(rows)} embeddings ({task.embedding_dim()}-d) of {len(args.files) - failed} files -> {out}", file=sys.stderr)
    return 1 if failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    setup_logging()
    return embed_files(args)


if __name__ == "__main__":
    sys.exit(run_cli(main))
