"""Evaluation CLI: `python -m stemlab.evaluate MODEL --config JOB --model-dir DIR --out DIR`, for every
registered model; the summary over seeds is `python -m stemlab.evaluate.summary`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from stemlab.errors import StemlabError, run_cli
from stemlab.logs import setup_logging


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stemlab.evaluate", description=__doc__)
    parser.add_argument("model", help="model name (a section of models: in the config)")
    parser.add_argument("--config", required=True, help="job config: inline JSON or a JSON file")
    parser.add_argument("--model-dir", required=True, help="results/models/<model>/seed-<s> (its final.pt)")
    parser.add_argument("--out", required=True, help="output directory (items.parquet, meta.json)")
    parser.add_argument("--log", default=None, help="also log to this file")
    args = parser.parse_args(argv)
    setup_logging(args.log)
    from stemlab.evaluate.run import evaluate_job
    from stemlab.train.job import read_job

    job = read_job(args.config)
    if job.model != args.model:
        raise StemlabError(f"--config is the job of model {job.model!r}, not {args.model!r}; pass that model's job")
    rows = evaluate_job(job, args.model_dir, args.out)
    print(f"{args.out}: {len(rows)} rows", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
