"""Throughput of the synthetic data engine against its floor: pyfluidsynth rendering + FX chains.

Fixed config: songs of 150-210 s (about 3 min; --quick: 30-40 s), drums + bass + 2-6 other parts
(4-8 stems), all outputs (mix, wet stems, dry stems, MIDI), one worker, FluidR3_GM. For each song:

  total  CPU seconds of SongMaker.make (compose, gates and re-rolls, render, FX, loudness, ...) plus
         write_song (FLAC encoding, MIDI, song.json), in this process;
  floor  CPU seconds of rendering the same parts with the same Renderer and applying the same stem
         chains and master chain with pedalboard, nothing else (measured separately, same notes).

Prints songs and audio-seconds per CPU-second, the ratio total/floor (target <= 1.5) and a breakdown of
the total by stage (timers wrapped around the engine's functions for the run; the engine is not edited).

    .venv/bin/python scripts/bench/synth_throughput.py [--songs 4] [--quick] [--seed 42] [--start 0]
"""

from __future__ import annotations

import argparse
import collections
import functools
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))

TARGET_RATIO = 1.5

# stage -> (module attribute paths wrapped with a CPU timer); nested timed calls are not double counted
STAGES = {
    "compose": ["stemlab.synth.song:SongMaker.compose_song"],
    "symbolic gate": ["stemlab.synth.quality:symbolic"],
    "render": ["stemlab.synth.render:Renderer.render"],
    "stems: DC blocker or fader/pan, peak/DC stats, quantize": ["stemlab.synth.song:finish_stem"],
    "fx: pedalboard chains": [
        "stemlab.synth.mixing:apply_stem_fx",
        "stemlab.synth.mixing:process_chain",
        "stemlab.synth.mixing:apply_master",
    ],
    "fx: fader/pan, bus staging": ["stemlab.synth.mixing:fader_pan", "stemlab.synth.mixing:stage_faders"],
    "peak/DC stats": ["stemlab.synth.quality:signal_stats"],
    "fx sampling": ["stemlab.synth.mixing:sample_stem_fx", "stemlab.synth.mixing:sample_master_fx"],
    "loudness": ["stemlab.loudness:integrated_loudness", "stemlab.synth.song:rounded_lufs"],
    "audio gate": ["stemlab.synth.quality:audio"],
    "quantize": ["stemlab.synth.song:quantize24"],
    "midi": ["stemlab.synth.song:part_midi"],
    "annotation": ["stemlab.synth.song:annotate", "stemlab.synth.quality:musicality"],
    "encoding (FLAC, MIDI, JSON)": ["stemlab.synth.song:write_song"],
}


class Timers:
    def __init__(self) -> None:
        self.cpu: collections.Counter[str] = collections.Counter()
        self.calls: collections.Counter[str] = collections.Counter()
        self._stack: list[str] = []
        self._patched: list[tuple[object, str, object]] = []

    def wrap(self, stage: str, fn):
        timers = self

        @functools.wraps(fn)
        def timed(*args, **kwargs):
            if timers._stack:  # inside another timed stage: that stage owns the time
                return fn(*args, **kwargs)
            timers._stack.append(stage)
            t0 = time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                timers.cpu[stage] += time.process_time() - t0
                timers.calls[stage] += 1
                timers._stack.pop()

        return timed

    def install(self) -> None:
        import importlib

        for stage, targets in STAGES.items():
            for target in targets:
                module_name, _, attr_path = target.partition(":")
                owner = importlib.import_module(module_name)
                *parents, name = attr_path.split(".")
                for p in parents:
                    owner = getattr(owner, p)
                original = getattr(owner, name, None)
                if original is None:
                    print(f"note: {target} not found in the engine; its time counts as 'other'")
                    continue
                if getattr(original, "__wrapped__", None) is not None:
                    continue  # the same function reached through another path
                self._patched.append((owner, name, original))
                setattr(owner, name, self.wrap(stage, original))

    def uninstall(self) -> None:
        for owner, name, original in reversed(self._patched):
            setattr(owner, name, original)
        self._patched.clear()


def warm_up(sr: int) -> None:
    """One-off costs of a worker's first song (lazy imports of scipy.signal/pyloudnorm/pedalboard,
    filter caches) belong to the setup, not to every song."""
    import numpy as np

    from stemlab.synth import mixing
    from stemlab.loudness import integrated_loudness

    noise = np.random.Generator(np.random.PCG64(0)).standard_normal((sr, 2)).astype(np.float32) * 0.1
    integrated_loudness(noise, sr)
    mixing.apply_master(noise, {"chain": [{"stage": "eq", "type": "HighpassFilter", "cutoff_frequency_hz": 20.0}], "buffer_size": 8192}, sr)
    with tempfile.TemporaryDirectory() as tmp:
        from stemlab.audio import write_audio

        write_audio(Path(tmp) / "x.flac", noise, sr)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--songs", type=int, default=4)
    parser.add_argument("--quick", action="store_true", help="30-40 s songs instead of 150-210 s")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--start", type=int, default=0, help="index of the first song")
    parser.add_argument("--soundfont", default="/usr/share/sounds/sf2/FluidR3_GM.sf2")
    parser.add_argument("--profile", type=int, default=0, metavar="N", help="also print the N functions with most own CPU time (cProfile; slows the run)")
    args = parser.parse_args()

    from stemlab.synth import mixing
    from stemlab.synth import song as song_module
    from stemlab.synth.render import Renderer
    from stemlab.synth.song import OUTPUTS, SongMaker, SynthSettings, song_id

    duration = (30.0, 40.0) if args.quick else (150.0, 210.0)
    settings = SynthSettings(seed=args.seed, duration_s=duration, other_parts=(2, 6), soundfonts=(args.soundfont,), outputs=OUTPUTS)
    t0 = time.process_time()
    renderer = Renderer(settings.soundfonts, settings.sample_rate)
    maker = SongMaker(settings, renderer)
    warm_up(settings.sample_rate)
    setup_cpu = time.process_time() - t0
    indices = list(range(args.start, args.start + args.songs))

    timers = Timers()
    timers.install()
    profiler = None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile(time.process_time)
        profiler.enable()
    totals, audio_s, stems, attempts = [], [], [], []
    songs = []
    with tempfile.TemporaryDirectory(prefix="stemlab-bench-") as tmp:
        for i in indices:
            t0 = time.process_time()
            song = maker.make(i)
            song_module.write_song(song, Path(tmp) / song_id(i), settings.outputs)
            totals.append(time.process_time() - t0)
            audio_s.append(song.meta["n_frames"] / song.meta["sample_rate"])
            stems.append(len(song.meta["stems"]))
            attempts.append(song.meta["attempt"] + 1)
            songs.append((i, song.meta))
            print(
                f"  {song_id(i)} {song.meta['genre']:<10} {audio_s[-1]:6.1f} s audio, {stems[-1]} stems, "
                f"attempt {song.meta['attempt']}: {totals[-1]:6.2f} CPU-s",
                flush=True,
            )
    timers.uninstall()
    if profiler is not None:
        import pstats

        profiler.disable()
        print(f"\ntop {args.profile} functions by own CPU time (profiled run, inflated by the profiler):")
        pstats.Stats(profiler).sort_stats("tottime").print_stats(args.profile)

    # floor: the same notes (the accepted attempt's score) rendered and processed, nothing else
    floors: list[float] = []
    floor_parts: collections.Counter[str] = collections.Counter()
    for i, meta in songs:
        score = maker.compose(i, meta["attempt"])  # not timed: the notes are given
        fx = {s["name"]: s["fx"] for s in meta["stems"]}
        n_frames, sr = meta["n_frames"], settings.sample_rate
        wet = []
        for part in score.parts:
            t0 = time.process_time()
            dry = renderer.render(score, part, n_frames)
            t1 = time.process_time()
            wet.append(mixing.apply_stem_fx(dry, fx[part.name], sr))
            t2 = time.process_time()
            floor_parts["render"] += t1 - t0
            floor_parts["fx"] += t2 - t1
            del dry
        t0 = time.process_time()
        mixing.apply_master(mixing.sum_stems(wet), meta["master_fx"], sr)
        floor_parts["fx"] += time.process_time() - t0
        del wet
        floors.append(sum(floor_parts.values()) - sum(floors))
    renderer.close()

    total, floor, audio = sum(totals), sum(floors), sum(audio_s)
    print()
    print(f"config: {args.songs} songs of {duration[0]:.0f}-{duration[1]:.0f} s, {min(stems)}-{max(stems)} stems, outputs {','.join(OUTPUTS)}, 1 worker")
    print(f"setup (soundfont load, imports, once per worker): {setup_cpu:.2f} CPU-s (not in the totals)")
    print(f"total: {total:.2f} CPU-s for {audio:.0f} s of audio ({sum(attempts)} attempts for {len(songs)} songs)")
    print(f"  songs per CPU-second        {len(songs) / total:.4f}")
    print(f"  audio-seconds per CPU-second {audio / total:.2f}")
    print(
        f"floor (render + FX chains, same notes): {floor:.2f} CPU-s (render {floor_parts['render']:.2f}, "
        f"fx {floor_parts['fx']:.2f}), {audio / floor:.2f} audio-s per CPU-s"
    )
    ratio = total / floor
    verdict = "ok" if ratio <= TARGET_RATIO else "ABOVE TARGET"
    print(f"ratio total/floor: {ratio:.2f} (target <= {TARGET_RATIO}): {verdict}")
    print("breakdown of the total (CPU-s, share, calls):")
    accounted = 0.0
    for stage, cpu in sorted(timers.cpu.items(), key=lambda kv: -kv[1]):
        accounted += cpu
        print(f"  {stage:<56} {cpu:8.2f}  {100 * cpu / total:5.1f} %  {timers.calls[stage]:5d}")
    other = total - accounted
    print(f"  {'other (not in a stage)':<56} {other:8.2f}  {100 * other / total:5.1f} %")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
