"""Evaluation CLI: `python -m stemlab.evaluate <model> ...` — one subcommand per model family."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from stemlab.errors import run_cli
from stemlab.logs import setup_logging


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stemlab.evaluate", description=__doc__)
    sub = parser.add_subparsers(dest="model", required=True)
    fx = sub.add_parser("fxprocessor", help="FxProcessor vs identity, loudness-matched dry and mean-FX chain")
    fx.add_argument("--model-file", required=True, help="final.pt of train_fxprocessor")
    fx.add_argument("--segments", nargs="+", required=True, help="segment tables (parquet), one per corpus")
    fx.add_argument("--stems-root", required=True, help="root of canonical song directories")
    fx.add_argument("--out-items", required=True, help="per-window metrics (parquet)")
    fx.add_argument("--out-summary", required=True, help="summary per system (CSV)")
    fx.add_argument("--out-meta", default=None, help="device and run information (JSON)")
    fx.add_argument("--max-items", type=int, default=None, help="evaluate at most this many test windows")
    fx.add_argument("--max-samples", type=int, default=None, help="truncate windows to this many samples")
    fx.add_argument("--fft-sizes", type=int, nargs="+", default=[512, 1024, 2048], help="MR-STFT metric resolutions")
    fx.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    fx.add_argument("--cpu-threads", type=int, default=2, help="torch intra-op threads (0: torch's default)")
    fx.add_argument("--log", default=None, help="also log to this file")
    args = parser.parse_args(argv)
    setup_logging(args.log)
    if args.model == "fxprocessor":
        from stemlab.megami.evaluate_fxprocessor import evaluate_fxprocessor

        evaluate_fxprocessor(
            args.model_file,
            args.segments,
            args.stems_root,
            args.out_items,
            args.out_summary,
            max_items=args.max_items,
            max_samples=args.max_samples,
            fft_sizes=args.fft_sizes,
            device=args.device,
            out_meta=args.out_meta,
            cpu_threads=args.cpu_threads,
        )
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
