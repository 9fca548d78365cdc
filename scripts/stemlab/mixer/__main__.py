"""Fix one stem with the trained mixer: print the tool calls it writes and write the processed stem.

    python -m stemlab.mixer fix STEM.wav --prompt "Fix this bass stem for a jazz mix." --out OUT.wav
        [--context DIR] [--category NAME] [--model FINAL.pt] [--unconstrained] [--device D]

The stem (any rate and channel count; resampled to 44.1 kHz stereo) is embedded on its loudest crop of the
model's segment length; --context names a folder of the song's other stems (their sum with the stem is the
mix, as in training); without it the stem stands alone. The calls run on the whole stem.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from stemlab.audio import SAMPLE_RATE, read_audio, resample, write_audio
from stemlab.errors import StemlabError, run_cli
from stemlab.logs import setup_logging

AUDIO_SUFFIXES = (".wav", ".flac", ".aif", ".aiff", ".ogg")


def read_stem(path: str | Path) -> np.ndarray:
    """(2, time) float32 at 44.1 kHz of any readable file."""
    data, sr = read_audio(path)
    data = resample(data, sr, SAMPLE_RATE)
    if data.shape[1] == 1:
        data = np.repeat(data, 2, axis=1)
    return np.ascontiguousarray(data[:, :2].T, dtype=np.float32)


def fit(audio: np.ndarray, frames: int) -> np.ndarray:
    out = np.zeros((2, frames), np.float32)
    n = min(frames, audio.shape[1])
    out[:, :n] = audio[:, :n]
    return out


def fix_stem(model_path: str | Path, stem_path: str | Path, prompt: str, out: str | Path, context: str | Path | None = None,
             category: str = "other", constrained: bool = True, device: str = "cpu") -> str:  # fmt: skip
    """The chain the mixer writes for the stem and prompt (as text); the processed stem is written to `out`."""
    from stemlab.mixer.evaluate import generate
    from stemlab.mixer.examples import category_ids, crop, embed_audio, loudest_start
    from stemlab.mixer.grammar import format_chain, try_parse
    from stemlab.mixer.task import Inputs
    from stemlab.mixer.tools import execute
    from stemlab.train.task import load_trained, read_final

    if Path(out).suffix.lower() not in (".wav", ".flac"):
        raise StemlabError(f"{out}: the stem is written as FLAC or WAV; name it .flac or .wav")
    export = read_final(model_path, "mixer").get("export") or {}
    inputs = {"upstream": dict(export.get("upstream") or {}), "pretrained": dict(export.get("pretrained") or {})}
    task, model, _ = load_trained(model_path, device, inputs)
    stem = read_stem(stem_path)
    others = []
    if context is not None:
        folder = Path(context)
        if not folder.is_dir():
            raise StemlabError(f"{folder}: --context is not a folder; pass the folder of the song's other stems")
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in AUDIO_SUFFIXES and p.resolve() != Path(stem_path).resolve())
        others = [fit(read_stem(p), stem.shape[1]) for p in files]
    n = int(task.settings["segment_samples"])
    start = loudest_start(stem, n)
    own = crop(stem, start, n)
    parts = [crop(o, start, n) for o in others]
    encoders = task.audio_encoders()
    slots = [task.text_encoder().encode([prompt]), *embed_audio(encoders, [own], 1, "cpu")]
    if task.dims.context:
        mix = embed_audio(encoders[:1], [own + sum(parts, np.zeros_like(own))], 1, "cpu")[0]
        rest = np.mean(embed_audio(encoders[:1], parts, 4, "cpu")[0], axis=0, keepdims=True) if parts else np.zeros_like(mix)
        slots += [mix, rest]
    batch = Inputs([torch.from_numpy(np.asarray(s, np.float32)) for s in slots], torch.from_numpy(category_ids([category], task.dims.categories)))
    cfg = {"strategy": "greedy", "beams": 1, "temperature": 1.0, "top_p": 1.0}
    text = generate(task, model, *batch.take(torch.arange(1)), constrained, cfg)[0]
    calls = try_parse(text)
    if calls is None:
        raise StemlabError(f"the unconstrained decoder wrote a chain that does not parse: {text!r}; drop --unconstrained")
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    write_audio(out, execute(calls, stem, SAMPLE_RATE).T, SAMPLE_RATE)
    return format_chain(calls)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m stemlab.mixer", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    fix = sub.add_parser("fix", help="fix one stem")
    fix.add_argument("stem", help="the stem to fix (any rate, mono or stereo)")
    fix.add_argument("--prompt", required=True, help='what to do, e.g. "Fix this bass stem for a jazz mix."')
    fix.add_argument("--out", required=True, help="the processed stem (.wav or .flac)")
    fix.add_argument("--context", default=None, help="folder of the song's other stems")
    fix.add_argument("--category", default="other", help="the stem's category (bass, drums, ...) as in training")
    fix.add_argument("--model", default="results/models/mixer/seed-1/final.pt", help="the mixer's final.pt")
    fix.add_argument("--unconstrained", action="store_true", help="decode without the grammar constraint")
    fix.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    setup_logging()
    print(fix_stem(args.model, args.stem, args.prompt, args.out, args.context, args.category, not args.unconstrained, args.device))
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
