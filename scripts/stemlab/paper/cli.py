"""The command line every paper figure shares: named input tables, `--out PDF` (the PNG goes beside it)."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping, Sequence

from stemlab.logs import setup_logging


def figure_main(argv: Sequence[str] | None, *, prog: str, doc: str | None, inputs: Mapping[str, str],
                plot: Callable[..., None], many: Sequence[str] = ()) -> int:  # fmt: skip
    """Parse `--<name> PATH` for each of `inputs` (name -> help; names in `many` take several paths) and
    `--out`, then call `plot(**paths, out=out)`."""
    parser = argparse.ArgumentParser(prog=prog, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    for name, help_text in inputs.items():
        parser.add_argument(f"--{name}", required=True, nargs="+" if name in many else None, help=help_text)
    parser.add_argument("--out", required=True, help="PDF to write (the PNG goes beside it)")
    args = vars(parser.parse_args(argv))
    setup_logging()
    plot(**args)
    return 0
