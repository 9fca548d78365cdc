"""Wall time of the test tiers against their targets, and the unmarked tests that make the fast tier slow.

    .venv/bin/python scripts/bench/test_tiers.py [--tier fast|full|both] [--threshold 5]

fast = `make test-fast` (pytest -m "not slow and not slurm"), target <= 240 s on 2 cores;
full = `make test` (pytest), target <= 1200 s. Prints each tier's wall time and ratio to its target, and
for the fast tier every test whose setup + call took longer than --threshold seconds (candidates for the
`slow` marker). Speed targets live here, never in timed assertions.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TIERS = {"fast": (["-m", "not slow and not slurm"], 240.0), "full": ([], 1200.0)}
_DURATION = re.compile(r"^\s*([\d.]+)s (setup|call|teardown)\s+(\S+)")


def run_tier(name: str) -> tuple[float, str, int]:
    args, _ = TIERS[name]
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--durations=0", "--durations-min=0.5", *args]
    start = time.perf_counter()
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    return time.perf_counter() - start, out.stdout + out.stderr, out.returncode


def slow_tests(text: str, threshold: float) -> list[tuple[float, str]]:
    per_test: dict[str, float] = defaultdict(float)
    for line in text.splitlines():
        m = _DURATION.match(line)
        if m:
            per_test[m.group(3)] += float(m.group(1))
    return sorted(((t, name) for name, t in per_test.items() if t > threshold), reverse=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tier", choices=["fast", "full", "both"], default="fast")
    parser.add_argument("--threshold", type=float, default=5.0, help="seconds; fast-tier tests above it are listed")
    args = parser.parse_args()
    failed = False
    for name in ("fast", "full") if args.tier == "both" else (args.tier,):
        wall, text, rc = run_tier(name)
        target = TIERS[name][1]
        summary = text.strip().splitlines()[-1] if text.strip() else ""
        print(f"{name:5s} tier  {wall:7.1f} s  (target <= {target:.0f} s, ratio {wall / target:.2f})  pytest: {summary}")
        if name == "fast":
            for seconds, test in slow_tests(text, args.threshold):
                print(f"      unmarked test over {args.threshold:g} s: {seconds:6.1f} s  {test}")
        failed |= rc != 0 or wall > target
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
