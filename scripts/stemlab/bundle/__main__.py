"""CLI of the bundle rules: python -m stemlab.bundle {pack,fetch,restore,compare} ..."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from stemlab.errors import json_config_arg, run_cli
from stemlab.logs import setup_logging


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m stemlab.bundle", description=__doc__)
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    sub = p.add_subparsers(dest="cmd", required=True)
    k = sub.add_parser("pack", help="a deterministic tar of trained models and tables, with manifest.json")
    k.add_argument("--out", required=True, help="the bundle (.tar); its sha256 goes to <out>.sha256")
    k.add_argument("--config-digest", default="", help="sha256 of the run's config, recorded in the manifest")
    k.add_argument("files", nargs="+", help="model files (results/models/...) and tables (results/tables/*.csv)")
    f = sub.add_parser("fetch", help="download a bundle (resumable, sha256-checked) and verify every member")
    f.add_argument("--url", required=True)
    f.add_argument("--sha256", required=True)
    f.add_argument("--staging", required=True, help="where the bytes arrive (kept for resuming)")
    f.add_argument("--out", required=True)
    r = sub.add_parser("restore", help="extract one (model, seed) of a verified bundle")
    r.add_argument("--bundle", required=True)
    r.add_argument("--model", required=True, help="model row (a model name, or <name>/<cell>)")
    r.add_argument("--seed", required=True, type=int)
    r.add_argument("--job", required=True, help="this config's train job (JSON): the bundled model must match it")
    r.add_argument("--out", required=True)
    c = sub.add_parser("compare", help="the bundled tables against the ones regenerated here")
    c.add_argument("--bundle", required=True)
    c.add_argument("--out", required=True)
    c.add_argument("tables", nargs="*")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    setup_logging()
    if args.cmd == "pack":
        from stemlab.bundle.pack import pack

        pack(args.files, args.out, args.config_digest)
    elif args.cmd == "fetch":
        from stemlab.bundle.archive import fetch_bundle

        fetch_bundle(args.url, args.sha256, args.out, args.staging, show_progress=not args.quiet)
    elif args.cmd == "restore":
        from stemlab.bundle.restore import restore_model

        job = json_config_arg(args.job, "--job", "pass the train job config the workflow writes")
        restore_model(args.bundle, args.model, args.seed, job, args.out)
    else:
        from stemlab.bundle.compare import compare_tables

        compare_tables(args.bundle, args.tables, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
