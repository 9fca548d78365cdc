"""CLI of the data stage (what the rules in workflow/rules/data.smk call).

  stems      one shard of a real corpus -> canonical song folders + manifest.parquet
  synthetic  one synthetic shard -> the same layout (hard links, validated song.json)
  features   essentia + loudness features of one canonical shard
  segments   segment rows of every model window for one canonical shard
  merge-segments  one window's rows from every shard of a corpus
  splits     song table (song -> split, duration, categories) of a corpus from its shard manifests
  summary    results/tables/corpora.csv from the song tables

Each job's settings come in one `--config` (inline JSON, what the rules pass, or a JSON file):
  stems      {"shards": N, "corpus": data.corpora.<corpus> less enabled/path/url/sha256, "audio": data.audio}
  synthetic  {"bad_song": data.audio.bad_song}
  features   data.features
  segments   {"segments": data.segments, "activity": data.activity}
A key left out keeps its default (the schema's); an unknown key is an error.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from stemlab.errors import StemlabError, check_section_keys, json_config_arg, run_cli
from stemlab.logs import setup_logging

log = logging.getLogger("stemlab.data")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m stemlab.data", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("stems", help="canonical stems of one real-corpus shard")
    s.add_argument("--corpus", required=True)
    s.add_argument("--root", required=True, help="the extracted corpus folder")
    s.add_argument("--shard", required=True, help="shard-NNNNN")
    s.add_argument("--config", required=True, help='{"shards": N, "corpus": {...}, "audio": {...}} (inline JSON or a file)')
    s.add_argument("--out", required=True)

    y = sub.add_parser("synthetic", help="link one synthetic shard into the canonical layout")
    y.add_argument("--src", required=True, help="results/synth/shards/<shard>")
    y.add_argument("--shard", required=True)
    y.add_argument("--config", default=None, help='{"bad_song": "fail" | "skip"} (inline JSON or a file; default fail)')
    y.add_argument("--out", required=True)

    f = sub.add_parser("features", help="per-song features of one canonical shard")
    f.add_argument("--stems", required=True, help="results/data/stems/<corpus>/<shard>")
    f.add_argument("--config", default=None, help="data.features (inline JSON or a file; default the schema's)")
    f.add_argument("--out", required=True)

    g = sub.add_parser("segments", help="segment rows of every model window for one canonical shard")
    g.add_argument("--stems", required=True)
    g.add_argument("--config", required=True, help='{"segments": data.segments, "activity": data.activity} (inline JSON or a file)')
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


def _config(args: argparse.Namespace) -> dict:
    return json_config_arg(args.config, "--config", f"pass the {args.command} job's config as JSON (see --help)")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    setup_logging()
    if args.command == "stems":
        from stemlab.data.stems import build_corpus_shard

        cfg = check_section_keys(_config(args), ("shards", "corpus", "audio"), "--config")
        if not isinstance(cfg.get("shards"), int) or cfg["shards"] < 1:
            raise StemlabError('--config needs "shards": the number of shards of the corpus (data.corpora.<corpus>.shards)')
        n = build_corpus_shard(
            args.corpus, Path(args.root), args.shard, cfg["shards"], cfg.get("corpus") or {}, cfg.get("audio") or {}, Path(args.out)
        )
        log.info("%s %s: %d songs written to %s", args.corpus, args.shard, n, args.out)
    elif args.command == "synthetic":
        from stemlab.data.conform import AudioPolicy
        from stemlab.data.stems import link_synthetic_shard

        cfg = check_section_keys(_config(args), ("bad_song",), "--config")
        bad_song = AudioPolicy.from_config(cfg).bad_song
        n = link_synthetic_shard(Path(args.src), args.shard, Path(args.out), bad_song)
        log.info("synthetic %s: %d songs linked into %s", args.shard, n, args.out)
    elif args.command == "features":
        from stemlab.data.features import FeatureSettings, shard_features

        n = shard_features(Path(args.stems), Path(args.out), FeatureSettings.from_config(_config(args)))
        log.info("features of %d songs written to %s", n, args.out)
    elif args.command == "segments":
        from stemlab.data.segments import segments_config, shard_segments

        windows, activity = segments_config(_config(args))
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
