"""CLI of the synthetic data engine.

    python -m stemlab.synth generate --seed 42 --count 10 --out DIR [--start N] [--genre jazz ...]
                                     [--workers N] [--outputs mix,stems,dry,midi] [...]
                                     [--composer learned --composer-model results/models/harmony_lm/seed-1/final.pt]
    python -m stemlab.synth generate --shard shard-00003 --songs 20000 --shard-size 100 --out DIR
    python -m stemlab.synth generate --config SYNTH_JSON --shard shard-00003 --out DIR   (the synth_shard rule)
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


def _key_values(text: str, flag: str, example: str) -> dict[str, str]:
    out = {}
    for item in _csv(text):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise StemlabError(f"{flag}: bad item {item!r}; write {example}")
        out[key.strip()] = value.strip()
    return out


def _number(value: str, flag: str, key: str) -> float:
    try:
        return float(value)
    except ValueError as exc:
        raise StemlabError(f"{flag}: {key}={value!r} is not a number") from exc


def _splits(text: str) -> dict[str, float]:
    example = "train=0.8,valid=0.1,test=0.1"
    return {k: _number(v, "--splits", k) for k, v in _key_values(text, "--splits", example).items()}


def _quality(text: str) -> dict[str, float]:
    from stemlab.synth.quality import QualityConfig

    known = [f.name for f in dataclasses.fields(QualityConfig) if f.name != "clip_level"]
    values = _key_values(text, "--quality", "max_span=36,silence_dbfs=-60")
    for key in values:
        if key not in known:
            raise StemlabError(f"--quality: unknown key {key!r}; known: {', '.join(known)}")
    return {k: _number(v, "--quality", k) for k, v in values.items()}


def generate_config(args: argparse.Namespace) -> dict:
    """The synth section of `--config` (the synth_shard rule's; `seed` beside it), with every flag that
    was given written over it: a flag left out keeps the config's value, or the engine's default."""
    from stemlab.errors import json_config_arg

    cfg = json_config_arg(args.config, "--config", "pass the synth config section (plus seed) as JSON")
    flags = {
        "seed": args.seed,
        "songs": args.songs,
        "shard_size": args.shard_size,
        "genres": list(args.genre) if args.genre else None,
        "tail_s": args.tail,
        "soundfonts": list(args.soundfont) if args.soundfont else None,
        "genre_files": list(args.genre_file) if args.genre_file else None,
        "outputs": list(_csv(args.outputs)) if args.outputs is not None else None,
        "max_attempts": args.max_attempts,
    }
    cfg.update({k: v for k, v in flags.items() if v is not None})
    nested = {
        "duration": {"min_s": args.min_duration, "max_s": args.max_duration},
        "other_parts": {"min": args.min_parts, "max": args.max_parts},
        "quality": _quality(args.quality) if args.quality else {},
        "composer": {"backend": args.composer, "model": args.composer_model},
    }
    for key, values in nested.items():
        given = {k: v for k, v in values.items() if v is not None}
        if given:
            base = cfg.get(key) if isinstance(cfg.get(key), dict) else {}
            cfg[key] = {**base, **given}
    if args.splits is not None:
        cfg["splits"] = _splits(args.splits)  # a split left out of --splits is not in the run
    if args.sources is not None:
        example = "generated=1,groove=1"
        cfg["sources"] = {k: _number(v, "--sources", k) for k, v in _key_values(args.sources, "--sources", example).items()}
    return cfg


def cmd_generate(args: argparse.Namespace) -> int:
    from stemlab import plan
    from stemlab.logs import setup_logging
    from stemlab.synth.shard import generate
    from stemlab.synth.song import SynthSettings

    setup_logging(args.log)
    cfg = generate_config(args)
    seed = cfg.pop("seed", None)
    if args.shard:
        songs, shard_size = cfg.get("songs"), cfg.get("shard_size")
        if songs is None or shard_size is None:
            raise StemlabError("--shard needs --songs and --shard-size (synth.songs, synth.shard_size)")
        try:
            items = plan.shard_items(args.shard, int(songs), int(shard_size))
        except ValueError as exc:
            raise StemlabError(f"--shard: {exc}") from exc
        start, count = items.start, len(items)
    else:
        if args.count is None:
            raise StemlabError("give --count N (and optionally --start) or --shard NAME --songs N --shard-size M")
        start, count = args.start, args.count
    corpora = _key_values(args.corpus, "--corpus", "groove=resources/corpora/groove") if args.corpus else {}
    settings = SynthSettings.from_config(cfg, seed, corpora)
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
    g.add_argument("--config", default=None,
                   help="the synth config section (plus seed) as inline JSON or a JSON file, what the synth_shard "
                        "rule passes; the flags below override its values when given")  # fmt: skip
    g.add_argument("--seed", type=int, default=None, help=f"global seed (default {d.seed})")
    g.add_argument("--start", type=int, default=0, help="index of the first song (song ids are syn-<index>)")
    g.add_argument("--count", type=int, default=None, help="number of songs")
    g.add_argument("--shard", default=None, help="shard name (shard-NNNNN) instead of --start/--count")
    g.add_argument("--songs", type=int, default=None, help="total songs (with --shard; synth.songs)")
    g.add_argument("--shard-size", type=int, default=None, help="songs per shard (with --shard; synth.shard_size)")
    g.add_argument("--genre", nargs="+", default=None,
                   help=f"genres to draw from: {', '.join(GENRE_NAMES)} or genres of --genre-file (default the nine presets)")  # fmt: skip
    g.add_argument("--genre-file", nargs="+", default=None, help="YAML files of user-defined genres (synth.genre_files)")
    g.add_argument("--workers", type=int, default=1, help="worker processes (each keeps its soundfonts loaded)")
    g.add_argument("--outputs", default=None, help=f"files to write: mix, stems (wet), dry, midi (default {','.join(d.outputs)})")
    g.add_argument("--min-duration", type=float, default=None, help=f"shortest song (s, before the tail; default {d.duration_s[0]})")
    g.add_argument("--max-duration", type=float, default=None, help=f"longest song (s, before the tail; default {d.duration_s[1]})")
    g.add_argument("--tail", type=float, default=None, help=f"audio after the last bar for release and FX tails (s; default {d.tail_s})")
    g.add_argument("--min-parts", type=int, default=None, help=f"fewest parts besides drums and bass (default {d.other_parts[0]})")
    g.add_argument("--max-parts", type=int, default=None, help=f"most parts besides drums and bass (default {d.other_parts[1]})")
    g.add_argument("--soundfont", nargs="+", default=None, help="SF2 files (default FluidR3_GM from fluid-soundfont-gm)")
    g.add_argument("--max-attempts", type=int, default=None, help=f"quality-gate attempts per song (default {d.max_attempts})")
    g.add_argument("--splits", default=None,
                   help=f"split fractions (default {','.join(f'{k}={v}' for k, v in d.splits)})")  # fmt: skip
    g.add_argument("--quality", default=None, help="quality-gate thresholds, e.g. max_span=36,silence_dbfs=-60 (the rest keep theirs)")
    g.add_argument("--composer", choices=("markov", "learned"), default=None,
                   help=f"backend drawing chords and melody walks (synth.composer.backend; default {d.composer.backend})")  # fmt: skip
    g.add_argument("--composer-model", default=None, help="the learned backend's harmony_lm final.pt (synth.composer.model)")
    g.add_argument("--sources", default=None,
                   help="composition source weights, e.g. generated=1,groove=1 (synth.sources; generated, groove, midi_song, midi_chords)")  # fmt: skip
    g.add_argument("--corpus", default=None,
                   help="MIDI corpus folders of the sources, e.g. groove=DIR,lakh=DIR (the workflow's resources/corpora/<corpus>)")  # fmt: skip
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
