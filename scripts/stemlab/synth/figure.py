"""Figure of the synthetic dataset's distributions (genre, tempo, key, duration, loudness per stem).

Reads tables only (the merged manifest and the per-stem table); runs in the figures env:
    python -m stemlab.synth.figure --songs results/synth/manifest.parquet \
        --stems results/tables/synth_stems.parquet --out results/figures/synth_distributions.pdf
"""

from __future__ import annotations

import argparse
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from stemlab.errors import StemlabError, run_cli
from stemlab.logs import setup_logging
from stemlab.plotting import paper_style, save_pdf_and_png

SONG_COLUMNS = ("song_id", "genre", "tempo_bpm", "key", "mode", "duration_s")
STEM_COLUMNS = ("song_id", "category", "loudness_lufs")
PITCH_CLASSES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
_FLAT_TO_SHARP = {"Db": "C#", "Eb": "D#", "Gb": "F#", "Ab": "G#", "Bb": "A#", "Cb": "B", "Fb": "E", "E#": "F", "B#": "C"}


def read_table(path: str | os.PathLike[str], columns: Sequence[str]) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise StemlabError(f"{path}: table not found; run the rule that makes it first")
    try:
        table = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    except Exception as exc:  # pyarrow/pandas raise many types for corrupt files
        raise StemlabError(f"{path}: cannot read table ({type(exc).__name__}); delete it and re-run its rule") from exc
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise StemlabError(f"{path}: missing columns {', '.join(missing)}; re-run the rule that makes it")
    if table.empty:
        raise StemlabError(f"{path}: table has no rows; generate songs first")
    return table


def _tonic(key: object) -> str:
    text = str(key).strip()
    return _FLAT_TO_SHARP.get(text, text)


def plot_distributions(songs: pd.DataFrame, stems: pd.DataFrame, out: str | os.PathLike[str]) -> None:
    """Six panels: songs per genre, tempo per genre, key x mode, duration, stems per song, stem loudness."""
    songs = songs.copy()
    songs["tonic"] = songs["key"].map(_tonic)
    genres = sorted(songs["genre"].unique())
    tonics = [p for p in PITCH_CLASSES if p in set(songs["tonic"])] + sorted(set(songs["tonic"]) - set(PITCH_CLASSES))
    categories = (
        stems.groupby("category")["loudness_lufs"].median().sort_values(ascending=False).index.tolist()
    )
    stems_per_song = stems.groupby("song_id").size().rename("n_stems").reset_index()

    plt, sns = paper_style()
    with warnings.catch_warnings():
        # seaborn 0.13.2 passes boxplot's deprecated `vert=` to matplotlib 3.11: harmless
        warnings.filterwarnings("ignore", message="vert: bool was deprecated")
        _draw(plt, sns, songs, stems, genres, tonics, categories, stems_per_song, out)


def _draw(plt, sns, songs, stems, genres, tonics, categories, stems_per_song, out) -> None:
    fig, axes = plt.subplots(2, 3, figsize=(13, 7.5))
    ax = axes[0, 0]
    sns.countplot(data=songs, y="genre", order=genres, ax=ax, color="C0")
    ax.set(title="songs per genre", xlabel="songs", ylabel="")

    ax = axes[0, 1]
    sns.boxplot(data=songs, y="genre", x="tempo_bpm", order=genres, ax=ax, color="C1", fliersize=2)
    ax.set(title="tempo", xlabel="BPM", ylabel="")

    ax = axes[0, 2]
    sns.countplot(data=songs, x="tonic", hue="mode", order=tonics, hue_order=sorted(songs["mode"].astype(str).unique()), ax=ax)
    ax.set(title="key", xlabel="tonic", ylabel="songs")

    ax = axes[1, 0]
    sns.histplot(data=songs, x="duration_s", bins=min(30, max(5, len(songs) // 5)), ax=ax, color="C2")
    ax.set(title="duration", xlabel="seconds", ylabel="songs")

    ax = axes[1, 1]
    sns.countplot(data=stems_per_song, x="n_stems", ax=ax, color="C4")
    ax.set(title="stems per song", xlabel="stems", ylabel="songs")

    ax = axes[1, 2]
    sns.boxplot(data=stems, y="category", x="loudness_lufs", order=categories, ax=ax, color="C3", fliersize=2)
    ax.set(title="stem loudness (wet)", xlabel="integrated loudness (LUFS)", ylabel="")

    fig.suptitle(f"synthetic dataset: {len(songs)} songs, {len(stems)} stems")
    fig.tight_layout()
    save_pdf_and_png(fig, out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stemlab.synth.figure", description=__doc__.splitlines()[0])
    parser.add_argument("--songs", required=True, help="per-song table (merged synth manifest)")
    parser.add_argument("--stems", required=True, help="per-stem table with category and loudness_lufs")
    parser.add_argument("--out", required=True, help="output PDF")
    args = parser.parse_args(argv)
    setup_logging()  # stderr: the rule redirects it to its log
    songs = read_table(args.songs, SONG_COLUMNS)
    stems = read_table(args.stems, STEM_COLUMNS)
    plot_distributions(songs, stems, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
