"""Subcommands of `python -m stemlab.synth` that read a generated set:

    validity  beat/pitch analysis of held-out songs -> per-genre table + per-song table (CSV)
    stats     per-song and per-stem tables from song.json (what the distribution figure plots)
    export    Hugging Face audiofolder layout + songs.parquet

`register(subparsers)` adds them to the synth CLI; each handler returns an exit code.
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

import pandas as pd

from stemlab.atomic import atomic_path
from stemlab.errors import StemlabError

log = logging.getLogger("stemlab.synth")


def manifest_songs(manifest: str | os.PathLike[str]) -> pd.DataFrame:
    """The merged (or per-shard) manifest with a `song_dir` column: the canonical song directories
    lie at <manifest dir>/shards/<shard>/<song_id> (merged) or <manifest dir>/<song_id> (per shard)."""
    manifest = Path(manifest)
    if not manifest.is_file():
        raise StemlabError(f"{manifest}: manifest not found; run the synth_manifest rule (or `python -m stemlab.synth generate`) first")
    try:
        table = pd.read_parquet(manifest)
    except Exception as exc:  # pyarrow raises several types for a corrupt file
        raise StemlabError(f"{manifest}: cannot read the manifest ({type(exc).__name__}); delete it and re-run synth_manifest") from exc
    missing = [c for c in ("song_id", "split", "genre") if c not in table.columns]
    if missing:
        raise StemlabError(f"{manifest}: manifest lacks columns {', '.join(missing)}; re-run synth_manifest")
    base = manifest.parent
    if "shard" in table.columns and (base / "shards").is_dir():
        dirs = [base / "shards" / str(s) / str(i) for s, i in zip(table["shard"], table["song_id"])]
    else:
        dirs = [base / str(i) for i in table["song_id"]]
    table = table.assign(song_dir=[str(d) for d in dirs])
    absent = [d for d in dirs if not (d / "song.json").is_file()]
    if absent:
        raise StemlabError(f"{absent[0]}: listed in {manifest} but has no song.json ({len(absent)} such songs); re-run the synth shards")
    return table


def _write_csv(table: pd.DataFrame, path: str | os.PathLike[str]) -> None:
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False, float_format="%.4f")


# --------------------------------------------------------------------------- validity


# validity flags -> their synth.validity keys
VALIDITY_FLAGS = {
    "splits": "splits",
    "max_songs_per_genre": "max_songs_per_genre",
    "beat_tracker": "beat_tracker",
    "tempo_prior": "tempo_prior",
    "tempo_prior_margin": "tempo_prior_margin",
    "beat_window": "beat_window_s",
    "beat_trim": "beat_trim_s",
    "stem_audio": "stem_audio",
    "pitch_tolerance": "pitch_tolerance_semitones",
}


def validity_config(args: argparse.Namespace) -> dict:
    """synth.validity from `--config` (the synth_validity rule's), each flag that was given written over it."""
    from stemlab.errors import json_config_arg

    section = json_config_arg(args.config, "--config", "pass the synth.validity config section as JSON")
    section.update({key: getattr(args, dest) for dest, key in VALIDITY_FLAGS.items() if getattr(args, dest) is not None})
    return section


def cmd_validity(args: argparse.Namespace) -> int:
    from stemlab.logs import setup_logging
    from stemlab.synth import validity

    setup_logging(args.log)
    section = validity_config(args)
    params = validity.ValidityParams.from_config(section)
    selection = validity.Selection.from_config(section)
    songs = manifest_songs(args.manifest)
    chosen = validity.select_songs(songs, selection.splits, selection.max_songs_per_genre)
    if chosen.empty:
        raise StemlabError(
            f"{args.manifest}: no songs in splits {', '.join(selection.splits)}; add splits to synth.validity.splits "
            "or generate more songs (synth.songs)"
        )
    log.info("validity: %d of %d songs (splits %s), params %s", len(chosen), len(songs), ",".join(selection.splits), validity.params_to_json(params))
    rows, stems = validity.analyze_songs(chosen["song_dir"].tolist(), params, workers=args.workers)
    summary = validity.summarize(rows, params.roles, stems)
    _write_csv(rows, args.songs_out)
    _write_csv(summary, args.out)
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        print(summary.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    for line in validity.acceptance(rows, params.roles):
        print(line)
    return 0


# --------------------------------------------------------------------------- stats


def cmd_stats(args: argparse.Namespace) -> int:
    from stemlab.synth.stats import song_tables

    songs, stems = song_tables(manifest_songs(args.manifest)["song_dir"])
    with atomic_path(args.songs_out) as tmp:
        songs.to_parquet(tmp, index=False)
    with atomic_path(args.stems_out) as tmp:
        stems.to_parquet(tmp, index=False)
    print(f"{len(songs)} songs, {len(stems)} stems")
    return 0


# --------------------------------------------------------------------------- export


def cmd_export(args: argparse.Namespace) -> int:
    from stemlab.logs import setup_logging
    from stemlab.synth.export import export_audiofolder

    setup_logging(None)
    songs = manifest_songs(args.manifest)
    stems = [s for s in args.stems.split(",") if s and s != "none"]
    table = export_audiofolder(songs["song_dir"], args.out, stems=stems, splits=args.splits, copy=args.copy)
    counts = table.groupby("split").size().to_dict()
    print(f"exported {len(table)} songs to {args.out} ({', '.join(f'{k}: {v}' for k, v in sorted(counts.items()))})")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    from stemlab.synth.validity import Selection, ValidityParams

    v, sel = ValidityParams(), Selection()  # the analysis defaults, shown by --help
    p = sub.add_parser("validity", help="beat and pitch analysis of held-out songs -> validity table")
    p.add_argument("--manifest", required=True, help="merged manifest (results/synth/manifest.parquet)")
    p.add_argument("--out", required=True, help="summary CSV (per genre, per time signature, overall)")
    p.add_argument("--songs-out", required=True, help="per-song CSV")
    p.add_argument("--config", default=None,
                   help="synth.validity as inline JSON or a JSON file (what the synth_validity rule passes); "
                        "the flags below override its values when given")  # fmt: skip
    p.add_argument("--splits", nargs="+", default=None, help=f"splits to analyse (default {' '.join(sel.splits)})")
    p.add_argument("--max-songs-per-genre", type=int, default=None, help="at most this many songs per genre (default 0 = all)")
    p.add_argument("--beat-tracker", default=None, help=f"essentia or librosa (default {v.beat_tracker})")
    p.add_argument("--tempo-prior", default=None,
                   help=f"genre: the tracker gets the genre preset's tempo range; none: no bound (default {v.tempo_prior})")  # fmt: skip
    p.add_argument("--tempo-prior-margin", type=float, default=None,
                   help=f"widen the genre range by this fraction each way (default {v.tempo_prior_margin})")  # fmt: skip
    p.add_argument("--beat-window", type=float, default=None, help=f"hit window half-width, s (default {v.beat_window_s})")
    p.add_argument("--beat-trim", type=float, default=None, help=f"beats before this time are not scored, s (default {v.beat_trim_s})")
    p.add_argument("--stem-audio", default=None, help=f"dry or wet (default {v.stem_audio})")
    p.add_argument("--pitch-tolerance", type=float, default=None, help=f"semitones (default {v.pitch_tolerance_semitones})")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--log", default=None, help="also log to this file")
    p.set_defaults(handler=cmd_validity)

    p = sub.add_parser("stats", help="per-song and per-stem tables of a generated set (parquet)")
    p.add_argument("--manifest", required=True)
    p.add_argument("--songs-out", required=True)
    p.add_argument("--stems-out", required=True)
    p.set_defaults(handler=cmd_stats)

    p = sub.add_parser("export", help="Hugging Face audiofolder layout + songs.parquet")
    p.add_argument("--manifest", required=True)
    p.add_argument("--out", required=True, help="export directory (replaced atomically)")
    p.add_argument("--stems", default="none", help="comma list of stem renderings to include: wet, dry (default none: mixes only)")
    p.add_argument("--splits", nargs="+", default=None, help="only these splits (default all)")
    p.add_argument("--copy", action="store_true", help="copy audio instead of hard-linking it")
    p.set_defaults(handler=cmd_export)
