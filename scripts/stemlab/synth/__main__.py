"""CLI of the synthetic data engine.

    python -m stemlab.synth generate --seed 42 --count 10 --out DIR [--start N] [--genre jazz ...]
                                     [--workers N] [--outputs mix,stems,dry,midi] [...]
    python -m stemlab.synth generate --shard shard-00003 --songs 20000 --shard-size 100 --out DIR
    python -m stemlab.synth manifest --out results/synth/manifest.parquet SHARD_DIR ...
    python -m stemlab.synth validity | stats | export ...   (analysis of a generated set, analysis_cli)
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Sequence

from stemlab.errors import StemlabError, run_cli
from stemlab.synth.genres import GENRE_NAMES


def _csv(text: str) -> tuple[str, ...]:
    return tuple(x.strip() for x in text.split(",") if x.strip())


def _splits(text: str) -> tuple[tuple[str, float], ...]:
    out = []
    for item in _csv(text):
        name, _, frac = item.partition("=")
        try:
            out.append((name, float(frac)))
        except ValueError as exc:
            raise StemlabError(f"--splits: bad item {item!r}; write train=0.8,valid=0.1,test=0.1") from exc
    return tuple(out)


def _quality(text: str):
    from stemlab.synth.quality import QualityConfig

    fields = {f.name: f.type for f in dataclasses.fields(QualityConfig)}
    values = {}
    for item in _csv(text):
        key, _, value = item.partition("=")
        if key not in fields:
            raise StemlabError(f"--quality: unknown key {key!r}; known: {', '.join(fields)}")
        values[key] = int(value) if fields[key] in (int, "int") else float(value)
    return QualityConfig(**values)


def cmd_generate(args: argparse.Namespace) -> int:
    from stemlab import plan
    from stemlab.logs import setup_logging
    from stemlab.synth.shard import generate
    from stemlab.synth.song import SynthSettings

    setup_logging(args.log)
    if args.shard:
        if args.songs is None or args.shard_size is None:
            raise StemlabError("--shard needs --songs and --shard-size (synth.songs, synth.shard_size)")
        try:
            items = plan.shard_items(args.shard, args.songs, args.shard_size)
        except ValueError as exc:
            raise StemlabError(f"--shard: {exc}") from exc
        start, count = items.start, len(items)
    else:
        if args.count is None:
            raise StemlabError("give --count N (and optionally --start) or --shard NAME --songs N --shard-size M")
        start, count = args.start, args.count
    settings = SynthSettings(
        seed=args.seed,
        genres=tuple(args.genre) if args.genre else GENRE_NAMES,
        duration_s=(args.min_duration, args.max_duration),
        tail_s=args.tail,
        other_parts=(args.min_parts, args.max_parts),
        soundfonts=tuple(args.soundfont) if args.soundfont else SynthSettings.soundfonts,
        outputs=_csv(args.outputs),
        max_attempts=args.max_attempts,
        splits=_splits(args.splits),
        quality=_quality(args.quality),
    )
    generate(settings, args.out, start, count, args.workers)
    return 0


def cmd_manifest(args: argparse.Namespace) -> int:
    from stemlab.logs import setup_logging
    from stemlab.synth.shard import merge_manifests

    setup_logging(args.log)
    table = merge_manifests(args.shards, args.out)
    print(f"{args.out}: {len(table)} songs from {len(args.shards)} shards")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m stemlab.synth", description="synthetic multitrack data engine")
    sub = parser.add_subparsers(dest="command", required=True)

    g = sub.add_parser("generate", help="generate songs into a directory (one shard)")
    g.add_argument("--out", required=True, help="output directory; replaced as a whole when complete")
    from stemlab.synth.song import SynthSettings

    d = SynthSettings()  # the engine's defaults, shown by --help
    g.add_argument("--seed", type=int, default=d.seed)
    g.add_argument("--start", type=int, default=0, help="index of the first song (song ids are syn-<index>)")
    g.add_argument("--count", type=int, default=None, help="number of songs")
    g.add_argument("--shard", default=None, help="shard name (shard-NNNNN) instead of --start/--count")
    g.add_argument("--songs", type=int, default=None, help="total songs (with --shard)")
    g.add_argument("--shard-size", type=int, default=None, help="songs per shard (with --shard)")
    g.add_argument("--genre", nargs="+", choices=GENRE_NAMES, default=None, help="genres to draw from (default all)")
    g.add_argument("--workers", type=int, default=1, help="worker processes (each keeps its soundfonts loaded)")
    g.add_argument("--outputs", default=",".join(d.outputs), help="files to write: mix, stems (wet), dry, midi")
    g.add_argument("--min-duration", type=float, default=d.duration_s[0], help="shortest song (s, before the tail)")
    g.add_argument("--max-duration", type=float, default=d.duration_s[1], help="longest song (s, before the tail)")
    g.add_argument("--tail", type=float, default=d.tail_s, help="audio after the last bar for release and FX tails (s)")
    g.add_argument("--min-parts", type=int, default=d.other_parts[0], help="fewest parts besides drums and bass")
    g.add_argument("--max-parts", type=int, default=d.other_parts[1], help="most parts besides drums and bass")
    g.add_argument("--soundfont", nargs="+", default=None, help="SF2 files (default FluidR3_GM from fluid-soundfont-gm)")
    g.add_argument("--max-attempts", type=int, default=d.max_attempts, help="quality-gate attempts per song")
    g.add_argument("--splits", default=",".join(f"{k}={v}" for k, v in d.splits), help="split fractions")
    g.add_argument("--quality", default="", help="quality-gate thresholds, e.g. max_span=36,silence_dbfs=-60")
    g.add_argument("--log", default=None, help="also log to this file")
    g.set_defaults(handler=cmd_generate)

    m = sub.add_parser("manifest", help="merge shard manifests into one")
    m.add_argument("--out", required=True)
    m.add_argument("--log", default=None)
    m.add_argument("shards", nargs="+", help="shard directories")
    m.set_defaults(handler=cmd_manifest)

    from stemlab.synth import analysis_cli

    analysis_cli.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.handler(args) or 0)


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
