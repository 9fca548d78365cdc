"""Training-step time and peak memory of the paper mixer on a GPU: a Mistral-7B-shaped decoder built from its
config (random weights: the snapshot is not needed), bf16, LoRA r 32 / alpha 64 / dropout 0.07 on
q/k/v/o/gate/up/down, activation checkpointing, the paper's fusion (BERT-base 768-d text + CLAP 512-d audio
+ song context -> 8 prefix tokens), batch 16 of ~90-token answers. Prints seconds per step, peak GiB and the
ratio of the measured step time to the target (a 20,000-step run in 48 h: 8.6 s per step).

    .venv/bin/python scripts/bench/mixer_paper_step.py [--steps 200] [--batch 16] [--answer-tokens 90]
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

TARGET_STEP_S = 48 * 3600 / 20000


def main() -> int:
    from stemlab.config import load_config, settings_section
    from stemlab.mixer.model import Dims, Fusion, MixerNet, Regressor, answer_loss, build_decoder, with_lora

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--answer-tokens", type=int, default=90)
    parser.add_argument("--vocab", type=int, default=32000, help="Mistral-7B's vocabulary")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA device: this benchmark needs a GPU (a 7B decoder)", file=sys.stderr)
        return 1
    paper = load_config()["models"]["mixer"]["settings"]
    s = settings_section("models", "mixer", "settings", section={**paper, "decoder": {**paper["decoder"], "source": "config"}})
    dev = torch.device("cuda")
    torch.manual_seed(0)
    decoder = build_decoder(s["decoder"], args.vocab, {"bos": 1, "eos": 2, "pad": 0}, s["prefix_tokens"] + 1 + s["max_answer_tokens"], None)
    decoder = with_lora(decoder.to(torch.bfloat16), s["lora"])
    dims = Dims(768, (512,), 512, tuple(f"c{i}" for i in range(11)))
    net = MixerNet(Fusion(dims, s["fusion_hidden"], s["prefix_tokens"], 4096, s["dropout"]), decoder, Regressor(dims, s["regressor_hidden"]), 1).to(dev)
    trainable = [p for p in net.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(trainable, lr=2e-4)
    print(f"parameters {sum(p.numel() for p in net.parameters()) / 1e9:.2f} B, trainable {sum(p.numel() for p in trainable) / 1e6:.1f} M")
    slots = [torch.randn(args.batch, d, device=dev) for d in dims.slots]
    category = torch.zeros(args.batch, dtype=torch.long, device=dev)
    answer = torch.randint(3, args.vocab, (args.batch, args.answer_tokens), device=dev)
    lens = torch.full((args.batch,), args.answer_tokens, device=dev)
    times = []
    for step in range(args.steps):
        torch.cuda.synchronize()
        t = time.perf_counter()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            logits = net.logits(slots, category, answer, lens)
            loss = answer_loss(logits, answer, lens, logits.shape[1] - answer.shape[1])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        opt.step()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
        if step % 50 == 0:
            print(f"step {step}: loss {float(loss):.3f}, {times[-1]:.3f} s", flush=True)
    steady = sorted(times[5:])[len(times[5:]) // 2] if len(times) > 5 else times[-1]
    print(f"median step {steady:.3f} s, peak memory {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB")
    print(f"ratio to the target ({TARGET_STEP_S:.1f} s/step): {steady / TARGET_STEP_S:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
