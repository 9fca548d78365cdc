"""Training CLI: `python -m stemlab.train <model> ...` — one subcommand per model family."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from stemlab.errors import json_object_arg, run_cli
from stemlab.logs import setup_logging


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stemlab.train", description=__doc__)
    sub = parser.add_subparsers(dest="model", required=True)
    fx = sub.add_parser("fxprocessor", help="MEGAMI FxProcessor: dry stem + FX conditioning -> wet stem")
    fx.add_argument("--segments", nargs="+", required=True, help="segment tables (parquet), one per corpus")
    fx.add_argument("--stems-root", required=True, help="root of canonical song directories (results/data/stems)")
    fx.add_argument("--settings", required=True, help="JSON of config train.fxprocessor")
    fx.add_argument("--seed", type=int, required=True, help="global seed")
    fx.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    fx.add_argument("--cpu-threads", type=int, default=2, help="torch intra-op threads (CPU results depend on it)")
    fx.add_argument("--out", required=True, help="output directory (final.pt, train_log.csv, meta.json)")
    fx.add_argument("--checkpoints", default=None, help="checkpoint directory (default OUT/checkpoints)")
    fx.add_argument("--log", default=None, help="also log to this file")
    args = parser.parse_args(argv)
    setup_logging(args.log)
    if args.model == "fxprocessor":
        from stemlab.megami.fxprocessor_task import FxSettings, train_fxprocessor

        settings = FxSettings.from_config(
            json_object_arg(args.settings, "--settings", "pass the train.<model> config section"),
            seed=args.seed, device=args.device, cpu_threads=args.cpu_threads,
        )
        meta = train_fxprocessor(args.segments, args.stems_root, settings, args.out, args.checkpoints)
        print(json.dumps(meta, sort_keys=True), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
