"""Compile the paper (workflow/paper/main.tex) into results/paper/paper.pdf with latexmk (Debian's TeX).

The text, the numbers (numbers.tex and numbers/<table>.tex), the benchmark table and the figures are
staged in a scratch directory under fixed names (figures/<name>.pdf, numbers/..., benchmark.tex), so
main.tex names them the same way whatever the run's directory; the PDF is moved into place atomically.
SOURCE_DATE_EPOCH=0 and FORCE_SOURCE_DATE=1 (with \\pdftrailerid{} in main.tex) make the same inputs give
the same bytes.

    python -m stemlab.paper.compile --tex workflow/paper/main.tex --index results/paper/numbers.tex \
        --numbers results/paper/numbers/*.tex --benchmark results/tables/benchmark.tex \
        --figures results/figures/*.pdf --out results/paper/paper.pdf
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from stemlab.atomic import atomic_path
from stemlab.errors import StemlabError, run_cli
from stemlab.logs import log, setup_logging

TEX_PACKAGES = "latexmk texlive-latex-base texlive-latex-recommended texlive-fonts-recommended"


def stage(scratch: Path, tex: str, index: str, numbers: Sequence[str], benchmark: str, figures: Sequence[str]) -> Path:
    """Copy every input into `scratch` under the names main.tex uses; return the staged main.tex."""
    for path in (tex, index, benchmark, *numbers, *figures):
        if not Path(path).is_file():
            raise StemlabError(f"{path}: an input of the paper is missing; run snakemake results/paper/paper.pdf")
    main = scratch / "main.tex"
    shutil.copyfile(tex, main)
    shutil.copyfile(index, scratch / "numbers.tex")
    shutil.copyfile(benchmark, scratch / "benchmark.tex")
    (scratch / "numbers").mkdir()
    for path in numbers:
        shutil.copyfile(path, scratch / "numbers" / Path(path).name)
    (scratch / "figures").mkdir()
    for path in figures:
        shutil.copyfile(path, scratch / "figures" / Path(path).name)
    return main


def latexmk(main: Path) -> Path:
    exe = shutil.which("latexmk")
    if exe is None or shutil.which("pdflatex") is None:
        raise StemlabError(f"latexmk/pdflatex not found; apt-get install {TEX_PACKAGES} (make run does)")
    env = {**os.environ, "SOURCE_DATE_EPOCH": "0", "FORCE_SOURCE_DATE": "1", "TZ": "UTC"}
    cmd = [exe, "-pdf", "-interaction=nonstopmode", "-halt-on-error", "-file-line-error", main.name]
    done = subprocess.run(cmd, cwd=main.parent, env=env, capture_output=True, text=True)
    sys.stdout.write(done.stdout[-20000:])
    if done.returncode != 0:
        errors = [line for line in done.stdout.splitlines() if ":" in line and ("error" in line.lower() or line.startswith("./"))]
        raise StemlabError(f"{main.name}: latexmk failed ({(errors or ['see the log'])[0][:300]}); fix workflow/paper/main.tex")
    return main.with_suffix(".pdf")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stemlab.paper.compile", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--tex", required=True, help="workflow/paper/main.tex")
    parser.add_argument("--index", required=True, help="results/paper/numbers.tex")
    parser.add_argument("--numbers", nargs="*", default=[], help="results/paper/numbers/<table>.tex")
    parser.add_argument("--benchmark", required=True, help="results/tables/benchmark.tex")
    parser.add_argument("--figures", nargs="*", default=[], help="figure PDFs (by file name in the text)")
    parser.add_argument("--out", required=True, help="results/paper/paper.pdf")
    args = parser.parse_args(argv)
    setup_logging()
    with tempfile.TemporaryDirectory(prefix="stemlab-paper-") as scratch:
        main_tex = stage(Path(scratch), args.tex, args.index, args.numbers, args.benchmark, args.figures)
        pdf = latexmk(main_tex)
        with atomic_path(args.out) as tmp:
            shutil.copyfile(pdf, tmp)
    log.info("wrote %s", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
