"""CPU time of one seed's megami evaluation at demo scale (models.megami.eval of config/demo.yaml on the demo's
test songs, which the data stage must have built: `snakemake data --configfile config/demo.yaml`), with
untrained demo-size CLAP, effect encoder, FxProcessor and FxGenerator (the cost does not depend on the
weights). Prints CPU seconds and their ratio to the target of 5 CPU-minutes per seed.

    .venv/bin/python scripts/bench/megami_eval.py
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
TARGET_CPU_S = 300.0
TASKS = {"clap": "stemlab.encoders.clap.task", "fx_encoder": "stemlab.encoders.fx.task"}


def main() -> int:
    import torch

    from stemlab.config import load_config
    from stemlab.data.segment_tables import read_segment_tables
    from stemlab.megami import evaluate_mix as ev
    from stemlab.megami.edm import EDMConfig
    from stemlab.megami.fxprocessor import FxProcessor, FxProcessorConfig
    from stemlab.megami.generator import FxGenerator, GeneratorBundle, GeneratorConfig
    from stemlab.megami.mix import MixSettings, TrainedPipeline
    from stemlab.train.job import Job, JobInputs
    from stemlab.train.registry import task_class

    torch.set_num_threads(2)
    models = load_config(ROOT / "config" / "demo.yaml")["models"]

    def encoder(name: str):
        s = models[name]
        job = Job(model=name, task=TASKS[name], seed=1, loop=s.get("loop") or {}, settings=s.get("settings") or {}, eval={},
                  inputs=JobInputs(), device="cpu")  # fmt: skip
        task = task_class(name, job.task)(job)
        return task, task.build_model().eval()

    clap, fx = encoder("clap"), encoder("fx_encoder")
    d_clap, d_fx = clap[0].embedding_dim(), fx[0].embedding_dim()
    fp = models["fxprocessor"]["settings"]["model"]
    processor = FxProcessor(FxProcessorConfig.from_dict({**fp, "cond_dim": d_fx + d_clap, "cond_parts": [d_fx, d_clap]})).eval()
    g = models["fx_generator"]["settings"]
    net = FxGenerator(GeneratorConfig(**g["model"], max_tracks=g["max_tracks"], fx_dim=d_fx, context_dim=d_clap))
    generator = GeneratorBundle(net, EDMConfig(sigma_data=g["edm"]["sigma_data"])).eval()
    settings = MixSettings.from_config(models["megami"]["settings"])
    parts = {"clap": clap, "fx_encoder": fx, "fxprocessor": (None, processor), "fx_generator": (None, generator),
             "domain_adaptor": (None, torch.nn.Identity())}  # fmt: skip
    pipeline = TrainedPipeline(parts, settings)
    cfg = ev.EvalSettings.from_config(models["megami"]["eval"])
    stems = ROOT / "results" / "data" / "stems"
    table = read_segment_tables([ROOT / "results" / "data" / "segments" / "synthetic" / "megami.parquet"])
    keys = [k for k in ev.held_out_songs(table, cfg.splits) if ev.mixable(stems, *k)][: cfg.max_songs]
    songs = [ev.load_song(stems, *k, cfg.max_seconds) for k in keys]
    cpu0, wall0 = time.process_time(), time.time()
    ev.evaluate_songs(pipeline, songs, settings, cfg, 1)
    cpu = time.process_time() - cpu0
    print(f"megami evaluation, one seed, {len(songs)} songs of {cfg.max_seconds} s: wall {time.time() - wall0:.0f} s, "
          f"CPU {cpu:.0f} s (load {os.getloadavg()[0]:.1f}); ratio to the {TARGET_CPU_S:.0f} CPU-s target: {cpu / TARGET_CPU_S:.2f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
