"""CLI of the download rules: python -m stemlab.download {fetch,extract,corpus,pretrained} ..."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from stemlab.errors import run_cli
from stemlab.logs import setup_logging


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m stemlab.download", description=__doc__)
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    sub = p.add_subparsers(dest="cmd", required=True)

    f = sub.add_parser("fetch", help="download a URL (http(s)://, file:// or a path) to a file, verified and resumable")
    f.add_argument("--url", required=True)
    f.add_argument("--out", required=True, help="destination file (bytes go to <out>.part until verified)")
    f.add_argument("--sha256", default=None, help="expected sha256 (hex); omitted: not checked, printed")
    f.add_argument("--key", default="the config", help="config key of this source, named in error messages")
    f.add_argument("--retries", type=int, default=5, help="consecutive attempts without progress before giving up")
    f.add_argument("--backoff", type=float, default=2.0, help="first wait between attempts, seconds (doubles)")
    f.add_argument("--timeout", type=float, default=60.0, help="socket timeout, seconds")

    e = sub.add_parser("extract", help="extract a zip/tar archive into a folder, refusing unsafe members")
    e.add_argument("--archive", required=True)
    e.add_argument("--out", required=True)

    c = sub.add_parser("corpus", help="resources/corpora/<name>/ from a local path or a downloaded archive")
    c.add_argument("--name", required=True)
    c.add_argument("--out", required=True)
    c.add_argument("--path", default=None, help="local archive or extracted folder (data.corpora.<name>.path)")
    c.add_argument("--archive", default=None, help="downloaded archive (already verified)")
    c.add_argument("--url", default=None, help="where the archive came from (provenance only)")
    c.add_argument("--sha256", default=None)
    r = sub.add_parser("pretrained", help="resources/pretrained/<name>/ from its files (each downloaded, verified)")
    r.add_argument("--name", required=True)
    r.add_argument("--files", required=True, help="JSON list of {path, url, sha256, key} (from pretrained.<name>.files)")
    r.add_argument("--cache", required=True, help="folder the bytes of each file arrive in (resumable)")
    r.add_argument("--out", required=True)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    setup_logging()
    show = not args.quiet
    if args.cmd == "fetch":
        from stemlab.download.fetch import fetch

        fetch(args.url, args.out, args.sha256 or None, key=args.key, retries=args.retries, backoff=args.backoff,
              timeout=args.timeout, show_progress=show)
    elif args.cmd == "extract":
        from stemlab.download.extract import extract

        extract(args.archive, args.out, show_progress=show)
    elif args.cmd == "pretrained":
        import json

        from stemlab.download.pretrained import fetch_snapshot

        fetch_snapshot(args.name, json.loads(args.files), args.out, args.cache, show_progress=show)
    else:
        from stemlab.download.corpus import prepare_corpus

        prepare_corpus(args.name, args.out, path=args.path or None, archive=args.archive or None,
                       url=args.url or None, sha256=args.sha256 or None, show_progress=show)
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
