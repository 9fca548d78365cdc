"""Mix every held-out song with a trained megami model (rule mix_megami):

    python -m stemlab.megami.mix_songs --config JOB --model-dir results/models/megami/seed-<s> --out results/mixes/megami/seed-<s>

JOB is megami's evaluate job config; the songs are those of the test split that have dry and wet tracks,
each mixed whole into <out>/<corpus>/<song>.flac, with index.csv (stemlab.megami.mix_task.MegamiTask.mix_songs).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from stemlab.errors import StemlabError, run_cli
from stemlab.logs import setup_logging


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stemlab.megami.mix_songs", description="Mix every held-out song with MEGAMI.")
    parser.add_argument("--config", required=True, help="the megami evaluate job config (inline JSON or a file)")
    parser.add_argument("--model-dir", required=True, help="results/models/megami/seed-<s> (its final.pt)")
    parser.add_argument("--out", required=True, help="folder of the mixes (results/mixes/megami/seed-<s>)")
    args = parser.parse_args(argv)
    setup_logging()
    from stemlab.device import resolve_device, torch_threads
    from stemlab.megami.mix_task import MegamiTask
    from stemlab.train.job import read_job
    from stemlab.train.registry import task_class

    job = read_job(args.config)
    task = task_class(job.model, job.task)(job)
    if not isinstance(task, MegamiTask):
        raise StemlabError(f"--config is the job of model {job.model!r} ({job.task}), not of a megami model")
    with torch_threads(job.cpu_threads):
        model, _ = task.load(Path(args.model_dir) / "final.pt", resolve_device(job.device))
        index = task.mix_songs(model, args.out)
    print(f"{args.out}: {len(index)} mixes", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
