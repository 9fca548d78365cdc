"""Overhead of the shared training loop on the FxProcessor: Trainer step time vs a bare PyTorch step.

The bare step (floor) is forward + MR-STFT/L1 loss + backward + AdamW on the same tensors; the Trainer
adds per-step RNG scoping, deterministic algorithms, grad-norm, logging and periodic checkpoints.
Batches are in-memory random tensors (no audio decoding), so this measures compute only. Target: ratio
<= 1.15. Also prints training throughput in audio-seconds per wall-second.

    .venv/bin/python scripts/bench/train_loop.py [--configfile config/demo.yaml] [--steps 30] [--device auto]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))

from stemlab.config import load_config  # noqa: E402
from stemlab.megami.fxprocessor import FxProcessor, FxProcessorConfig  # noqa: E402
from stemlab.megami.fxprocessor_task import FxSettings  # noqa: E402
from stemlab.train import TrainConfig, Trainer, resolve_device, seeded_init  # noqa: E402

TARGET_RATIO = 1.15
COND_DIM = 51  # conditioning size of the synthetic FX annotations (stemlab.synth chains)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configfile", default="config/demo.yaml", help="merged over config/config.yaml")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--segment", type=int, default=None, help="samples per window (default: the config's)")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    section = load_config(REPO / args.configfile)["models"]["fxprocessor"]
    settings = FxSettings.from_config(section["settings"])
    steps = args.steps + 3
    loop = {**section["loop"], "device": args.device, "eval_every": 0, "steps": steps, "checkpoint_seconds": 0}
    train = TrainConfig.from_dict({**loop, "warmup_steps": min(loop["warmup_steps"], steps)})
    device = resolve_device(args.device)
    segment = args.segment or settings.segment_samples or 525_312
    batch = train.batch_size
    model_cfg = FxProcessorConfig.from_dict({**settings.model, "cond_dim": COND_DIM})
    gen = torch.Generator().manual_seed(0)
    data = {
        "dry": torch.randn(batch, 2, segment, generator=gen) * 0.1,
        "wet": torch.randn(batch, 2, segment, generator=gen) * 0.1,
        "cond": torch.randn(batch, COND_DIM, generator=gen),
    }
    loss = settings.loss.build().to(device)
    autocast = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(train.precision)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    # floor: a bare loop
    with seeded_init(1):
        model = FxProcessor(model_cfg).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=train.lr)
    on_device = {k: v.to(device) for k, v in data.items()}
    times = []
    for _ in range(args.steps + 3):
        sync()
        t0 = time.perf_counter()
        with torch.autocast(device.type, dtype=autocast, enabled=autocast is not None):
            value, _ = loss(model(on_device["dry"], on_device["cond"]), on_device["wet"])
        opt.zero_grad(set_to_none=True)
        value.backward()
        opt.step()
        sync()
        times.append(time.perf_counter() - t0)
    floor = sorted(times[3:])[len(times[3:]) // 2]

    # the shared loop
    with seeded_init(1):
        model = FxProcessor(model_cfg)
    config = train

    def factory(start: int):
        while True:
            yield data

    with tempfile.TemporaryDirectory() as tmp:
        result = Trainer(model, lambda m, b, g: loss(m(b["dry"], b["cond"]), b["wet"]), factory, config, tmp).fit()
    steps = [r["step_s"] for r in result.history if r["split"] == "train"][3:]
    loop = sorted(steps)[len(steps) // 2]
    audio_s = batch * segment / 44_100
    print(f"config {args.configfile}: batch {batch} x {segment} samples, device {device}, {args.steps} steps")
    print(f"bare step (floor)   {floor * 1000:9.1f} ms   {audio_s / floor:8.1f} audio-s per s")
    print(f"Trainer step        {loop * 1000:9.1f} ms   {audio_s / loop:8.1f} audio-s per s")
    ratio = loop / floor
    print(f"ratio Trainer/floor {ratio:9.3f}   (target <= {TARGET_RATIO})  {'OK' if ratio <= TARGET_RATIO else 'OVER'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
