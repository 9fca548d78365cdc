"""Parse cost of the DAG: wall time and job count of `snakemake -n all` on the paper config.

Every SLURM job re-parses the Snakefile, so this stays small. Targets: <= 10 s, <= 2,000 jobs
for 20,000 synthetic songs.

    .venv/bin/python scripts/bench/parse_cost.py [--configfile config/config.yaml] [--repeat 3]
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TARGET_SECONDS = 10.0
TARGET_JOBS = 2000


def dry_run(configfile: str, extra: list[str]) -> tuple[float, int, str]:
    with tempfile.TemporaryDirectory(prefix="stemlab-parse-") as workdir:
        cmd = [sys.executable, "-m", "snakemake", "all", "-n", "--quiet", "rules", "--snakefile",
               str(REPO / "Snakefile"), "--directory", workdir, "--configfile", str(REPO / configfile), *extra]
        start = time.perf_counter()
        out = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
        wall = time.perf_counter() - start
    text = out.stdout + out.stderr
    if out.returncode != 0:
        raise SystemExit(f"dry run failed:\n{text}")
    match = re.search(r"^total\s+(\d+)", text, flags=re.M)
    jobs = int(match.group(1)) if match else 0
    return wall, jobs, text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configfile", default="config/config.yaml")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--config", nargs="*", default=[], help="extra --config overrides")
    parser.add_argument("--show-rules", action="store_true")
    args = parser.parse_args()
    extra = ["--config", *args.config] if args.config else []
    walls, jobs, text = [], 0, ""
    for _ in range(args.repeat):
        wall, jobs, text = dry_run(args.configfile, extra)
        walls.append(wall)
    wall = statistics.median(walls)
    if args.show_rules:
        print(text)
    print(f"config            {args.configfile} {' '.join(args.config)}")
    print(f"dry-run wall time {wall:.2f} s (median of {args.repeat}; target <= {TARGET_SECONDS:.0f} s, "
          f"ratio {wall / TARGET_SECONDS:.2f})")
    print(f"jobs              {jobs} (target <= {TARGET_JOBS}, ratio {jobs / TARGET_JOBS:.2f})")
    return 0 if wall <= TARGET_SECONDS and jobs <= TARGET_JOBS else 1


if __name__ == "__main__":
    raise SystemExit(main())
