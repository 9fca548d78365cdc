"""The workflow's rule graph (results/figures/rulegraph.pdf and .png): `snakemake --rulegraph` of the same
Snakefile and configfiles as the run, drawn by graphviz's `dot` (Debian's graphviz package).

The inner snakemake only prints the graph (no job runs, no lock taken: `--nolock`), in an empty scratch
directory so the graph is the same whatever the run has already built. The DOT text is normalised (rule
colours by name, not by parse order) and the PDF is written with SOURCE_DATE_EPOCH, so the same workflow
gives the same files.

    python -m stemlab.paper.rulegraph --snakefile /path/to/Snakefile --configfile config/smoke.yaml \
        --target all --out results/figures/rulegraph.pdf
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from stemlab.atomic import atomic_path, write_text
from stemlab.errors import StemlabError, run_cli
from stemlab.logs import log, setup_logging

_CREATION = re.compile(rb"(/CreationDate \(D:)\d{14}")
_NODE = re.compile(r'^(\s*\d+\[label = "([^"]+)", color = ")[^"]*(".*)$')


def rule_dot(snakefile: str, configfiles: Sequence[str], target: str) -> str:
    """The DOT text of `snakemake --rulegraph target`, run in a scratch directory."""
    with tempfile.TemporaryDirectory(prefix="stemlab-rulegraph-") as scratch:
        cmd = [sys.executable, "-m", "snakemake", target, "--rulegraph", "--nolock",
               "--snakefile", str(Path(snakefile).resolve()), "--directory", scratch]  # fmt: skip
        if configfiles:
            cmd += ["--configfile", *[str(Path(c).resolve()) for c in configfiles]]
        env = {**os.environ, "PYTHONHASHSEED": "0"}
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=scratch)
    if done.returncode != 0 or "digraph" not in done.stdout:
        raise StemlabError(f"{snakefile}: snakemake --rulegraph failed ({done.stderr.strip()[-400:]}); run it by hand to see why")
    return done.stdout[done.stdout.index("digraph") :]


def normalise(dot: str) -> str:
    """Colour every rule by a hash of its name (snakemake colours by parse order)."""
    lines = []
    for line in dot.splitlines():
        m = _NODE.match(line)
        if m:
            hue = int(hashlib.sha256(m.group(2).encode()).hexdigest()[:4], 16) / 0xFFFF
            line = f"{m.group(1)}{hue:.3f} 0.6 0.85{m.group(3)}"
        lines.append(line)
    return "\n".join(lines) + "\n"


def draw(dot: str, out: str | os.PathLike[str]) -> None:
    """`dot -Tpdf` and `dot -Tpng` of the DOT text, both written atomically."""
    exe = shutil.which("dot")
    if exe is None:
        raise StemlabError("dot (graphviz) is not installed; apt-get install graphviz (make run does)")
    env = {**os.environ, "SOURCE_DATE_EPOCH": "0"}
    for fmt, path in (("png", Path(out).with_suffix(".png")), ("pdf", Path(out))):
        with atomic_path(path) as tmp:
            done = subprocess.run([exe, f"-T{fmt}", "-o", str(tmp)], input=dot, text=True, capture_output=True, env=env)
            if done.returncode != 0:
                raise StemlabError(f"dot -T{fmt} failed ({done.stderr.strip()[-300:]}); check the DOT text in {Path(out).with_suffix('.dot')}")
            if fmt == "pdf":
                fix_creation_date(tmp)
        log.info("wrote %s", path)


def fix_creation_date(pdf: Path) -> None:
    """Cairo stamps the PDF with the current time (and ignores SOURCE_DATE_EPOCH): replace it by the epoch,
    a string of the same length, so the cross-reference offsets stay right."""
    data = pdf.read_bytes()
    fixed = _CREATION.sub(rb"\g<1>19700101000000", data)
    pdf.write_bytes(fixed)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stemlab.paper.rulegraph", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--snakefile", required=True)
    parser.add_argument("--configfile", nargs="*", default=[], help="the run's configfiles, in order")
    parser.add_argument("--target", default="all")
    parser.add_argument("--out", required=True, help="PDF to write (the PNG and the .dot go beside it)")
    args = parser.parse_args(argv)
    setup_logging()
    dot = normalise(rule_dot(args.snakefile, args.configfile, args.target))
    write_text(Path(args.out).with_suffix(".dot"), dot)
    draw(dot, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
