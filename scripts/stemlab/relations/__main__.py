"""Relations CLI: recombine a memory track so that it follows a guide track, with a trained relations model.

    python -m stemlab.relations generate --guide G.wav --memory M.wav --model DIR --out OUT.wav

DIR is a trained model folder (results/models/relations/<cell>/seed-<s>, its final.pt). Any sample rate and
channel count: the output has the guide's rate, length and channel count. A codebook on the clap or
wav2vec2 encoder also needs --encoder (the CLAP final.pt, or the wav2vec 2.0 checkpoint folder).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from stemlab.errors import run_cli
from stemlab.logs import setup_logging


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stemlab.relations", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate", help="recombine --memory along --guide into --out")
    gen.add_argument("--guide", required=True, help="the guide track (any soundfile format)")
    gen.add_argument("--memory", required=True, help="the track whose segments are recombined")
    gen.add_argument("--model", required=True, help="trained relations model folder (or its final.pt)")
    gen.add_argument("--out", required=True, help="output audio (.wav, .flac)")
    gen.add_argument("--encoder", default=None, help="CLAP final.pt or wav2vec 2.0 folder (encoders other than mel)")
    gen.add_argument("--seed", type=int, default=0, help="decoding seed (same seed, same output)")
    gen.add_argument("--unconstrained", action="store_true", help="do not restrict the symbols to the memory's")
    gen.add_argument("--device", default="cpu")
    ex = sub.add_parser("examples", help="audio examples of test pairs for trained models (the workflow's rule)")
    ex.add_argument("--models", nargs="+", required=True, help="trained relations model folders, one per cell")
    ex.add_argument("--codebooks", nargs="+", required=True, help="the codebook final.pt of each model's cell")
    ex.add_argument("--stems-root", required=True, help="results/data/stems")
    ex.add_argument("--pairs", type=int, default=3, help="test pairs per cell")
    ex.add_argument("--out", required=True, help="output folder (replaced)")
    ex.add_argument("--encoder", default=None, help="CLAP final.pt or wav2vec 2.0 folder (encoders other than mel)")
    args = parser.parse_args(argv)
    setup_logging()
    if args.command == "examples":
        from stemlab.relations.examples import write_examples

        table = write_examples(args.models, args.codebooks, args.stems_root, args.pairs, args.out, args.encoder)
        print(table.to_string(index=False), file=sys.stderr)
        return 0
    from stemlab.relations.generate import generate_files

    info = generate_files(args.guide, args.memory, args.model, args.out, encoder=args.encoder, seed=args.seed,
                          constrained=not args.unconstrained, device=args.device)  # fmt: skip
    print(json.dumps({"out": args.out, **info}), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
