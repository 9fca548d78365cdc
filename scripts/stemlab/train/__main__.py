"""Training CLI: `python -m stemlab.train MODEL --config JOB --out DIR`, for every registered model.

JOB is the job config the train_model rule passes (inline JSON or a JSON file; stemlab.train.job): the
model's config section and its input paths. The task comes from the job's `task` module.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from stemlab.errors import StemlabError, run_cli
from stemlab.logs import setup_logging


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stemlab.train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("model", help="model name (a section of models: in the config)")
    parser.add_argument("--config", required=True, help="job config: inline JSON or a JSON file")
    parser.add_argument("--out", required=True, help="output directory (final.pt, train_log.csv, meta.json)")
    parser.add_argument("--checkpoints", default=None, help="checkpoint directory (default OUT/checkpoints)")
    parser.add_argument("--log", default=None, help="also log to this file")
    args = parser.parse_args(argv)
    setup_logging(args.log)
    from stemlab.train.job import read_job
    from stemlab.train.run import train_job

    job = read_job(args.config)
    if job.model != args.model:
        raise StemlabError(f"--config is the job of model {job.model!r}, not {args.model!r}; pass that model's job")
    meta = train_job(job, args.out, args.checkpoints)
    print(json.dumps(meta, sort_keys=True), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
