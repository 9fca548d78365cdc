"""Stage accompaniment generation.

    python -m stemlab.stage generate CONTEXT_DIR OUT.flac [--target drums] [--seconds 10] [--cfg 3.0]
        [--model results/models/stage/target~drums/seed-1/final.pt] [--codec CODEC_FINAL.pt] [--seed 0] [--prompt TEXT]
    python -m stemlab.stage heldout --config JOB --model-dir DIR --out DIR     (rule generate_stage)

`generate` reads every audio file of CONTEXT_DIR (any format soundfile reads, any rate, mono or stereo, any
length; mixed to mono, resampled to the codec's rate, padded to the longest) as the context stems and writes a
generated stem of exactly --seconds (mono, the codec's rate).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from stemlab.errors import run_cli


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stemlab.stage", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate", help="generate a stem for a folder of context stems")
    gen.add_argument("context_dir", type=Path)
    gen.add_argument("out", type=Path)
    gen.add_argument("--target", default="drums", choices=["drums", "bass"])
    gen.add_argument("--seconds", type=float, default=10.0)
    gen.add_argument("--cfg", type=float, default=3.0)
    gen.add_argument("--top-k", type=int, default=250)
    gen.add_argument("--model", type=Path, default=None)
    gen.add_argument("--codec", type=Path, default=None)
    gen.add_argument("--pretrained", type=Path, default=None, help="the T5 snapshot folder of a paper-config model")
    gen.add_argument("--prompt", default="", help='e.g. "Genres: rock. Moods: energetic."')
    gen.add_argument("--seed", type=int, default=0)
    held = sub.add_parser("heldout", help="rule generate_stage: generated stems of held-out songs")
    held.add_argument("--config", required=True)
    held.add_argument("--model-dir", required=True)
    held.add_argument("--out", required=True)
    args = parser.parse_args(argv)

    import torch

    from stemlab.logs import setup_logging

    setup_logging()
    if args.command == "generate":
        from stemlab.stage.generate import generate_from_folder

        torch.set_num_threads(max(1, min(4, torch.get_num_threads())))
        generate_from_folder(args.context_dir, args.out, target=args.target, seconds=args.seconds, cfg=args.cfg,
                             model_path=args.model, codec_path=args.codec, pretrained=args.pretrained, seed=args.seed,
                             prompt=args.prompt, top_k=args.top_k)  # fmt: skip
        print(args.out)
        return 0
    from stemlab.stage.generate import heldout_examples
    from stemlab.train.job import read_job

    heldout_examples(read_job(args.config), args.model_dir, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
