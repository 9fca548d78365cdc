"""CLI of the data stage (what the rules in workflow/rules/data.smk call).

  stems      one shard of a real corpus -> canonical song folders + manifest.parquet
  synthetic  one synthetic shard -> the same layout (hard links, validated song.json)
  features   essentia + loudness features of one canonical shard
  segments   segment rows of every model window for one canonical shard
  merge-segments  one window's rows from every shard of a corpus
  splits     song table (song -> split, duration, categories) of a corpus from its shard manifests
  summary    results/tables/corpora.csv from the song tables
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from stemlab.errors import json_object_arg, run_cli
from stemlab.logs import setup_logging

log = logging.getLogger("stemlab.data")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m stemlab.data", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("stems", help="canonical stems of one real-corpus shard")
    s.add_argument("--corpus", required=True)
    s.add_argument("--root", required=True, help="the extracted corpus folder")
    s.add_argument("--shard", required=True, help="shard-NNNNN")
    s.add_argument("--shards", type=int, required=True, help="number of shards of the corpus")
    s.add_argument("--corpus-config", default="{}", help="data.corpora.<corpus> as JSON")
    s.add_argument("--audio-config", default="{}", help="data.audio as JSON")
    s.add_argument("--out", required=True)

    y = sub.add_parser("synthetic", help="link one synthetic shard into the canonical layout")
    y.add_argument("--src", required=True, help="results/synth/shards/<shard>")
    y.add_argument("--shard", required=True)
    y.add_argument("--bad-song", choices=["fail", "skip"], default="fail")
    y.add_argument("--out", required=True)

    f = sub.add_parser("features", help="per-song features of one canonical shard")
    f.add_argument("--stems", required=True, help="results/data/stems/<corpus>/<shard>")
    f.add_argument("--rhythm-method", default="multifeature", choices=["multifeature", "degara"])
    f.add_argument("--key-profile", default="bgate")
    f.add_argument("--out", required=True)

    g = sub.add_parser("segments", help="segment rows of every model window for one canonical shard")
    g.add_argument("--stems", required=True)
    g.add_argument("--segments-config", required=True, help="data.segments as JSON")
    g.add_argument("--activity-config", default="{}", help="data.activity as JSON")
    g.add_argument("--out", required=True)

    m = sub.add_parser("merge-segments", help="one window's segment table of a corpus")
    m.add_argument("--window", required=True, help="a window of data.segments (megami, stage, ...)")
    m.add_argument("--out", required=True)
    m.add_argument("tables", nargs="*", help="per-shard segment tables")

    t = sub.add_parser("splits", help="song table of a corpus from its shard manifests")
    t.add_argument("--out", required=True)
    t.add_argument("stems", nargs="*", help="results/data/stems/<corpus>/<shard> folders")

    c = sub.add_parser("summary", help="results/tables/corpora.csv from the song tables")
    c.add_argument("--out", required=True)
    c.add_argument("splits", nargs="*", help="results/data/splits/<corpus>.parquet files")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    setup_logging()
    if args.command == "stems":
        from stemlab.data.stems import build_corpus_shard

        n = build_corpus_shard(
            args.corpus, Path(args.root), args.shard, args.shards,
            json_object_arg(args.corpus_config, "--corpus-config"),
            json_object_arg(args.audio_config, "--audio-config"),
            Path(args.out),
        )
        log.info("%s %s: %d songs written to %s", args.corpus, args.shard, n, args.out)
    elif args.command == "synthetic":
        from stemlab.data.stems import link_synthetic_shard

        n = link_synthetic_shard(Path(args.src), args.shard, Path(args.out), args.bad_song)
        log.info("synthetic %s: %d songs linked into %s", args.shard, n, args.out)
    elif args.command == "features":
        from stemlab.data.features import shard_features

        n = shard_features(Path(args.stems), Path(args.out), args.rhythm_method, args.key_profile)
        log.info("features of %d songs written to %s", n, args.out)
    elif args.command == "segments":
        from stemlab.data.segments import Activity, shard_segments, windows_from_config

        windows = windows_from_config(json_object_arg(args.segments_config, "--segments-config"))
        activity = Activity(**json_object_arg(args.activity_config, "--activity-config"))
        n = shard_segments(Path(args.stems), Path(args.out), windows, activity)
        log.info("%d segment rows written to %s", n, args.out)
    elif args.command == "merge-segments":
        from stemlab.data.segments import merge_segments

        n = merge_segments([Path(t) for t in args.tables], args.window, Path(args.out))
        log.info("%s: %d segment rows written to %s", args.window, n, args.out)
    elif args.command == "splits":
        from stemlab.data.summary import write_splits

        songs = write_splits(args.stems, args.out)
        log.info("%d songs: %s", len(songs), songs["split"].value_counts().sort_index().to_dict())
    elif args.command == "summary":
        from stemlab.data.summary import corpora_table

        table = corpora_table(args.splits, args.out)
        log.info("corpus table:\n%s", table.to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
