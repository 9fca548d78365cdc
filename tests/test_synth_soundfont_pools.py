"""Soundfont pools (synth.soundfonts, synth.soundfont_pools): one soundfont per stem per song, drawn from the
stem category's pool by the song's own generator, recorded in song.json with its sha256."""

from __future__ import annotations

import collections
from pathlib import Path

import pytest

from stemlab import seeding
from stemlab.download.fetch import sha256_file
from stemlab.errors import StemlabError
from stemlab.synth.compose import ComposeParams, compose
from stemlab.synth.render import Renderer, check_soundfonts
from stemlab.synth.song import SongMaker, SynthSettings
from stemlab.synth.sources.soundfonts import SoundfontPools

FLUID = "/usr/share/sounds/sf2/FluidR3_GM.sf2"
TIM = "/usr/share/sounds/sf2/TimGM6mb.sf2"
MUSESCORE = "/usr/share/sounds/sf3/MuseScore_General_Full.sf3"
needs_pool = pytest.mark.skipif(
    not (Path(FLUID).is_file() and Path(TIM).is_file()), reason="needs Debian fluid-soundfont-gm and timgm6mb-soundfont"
)


def _score(pools, seed: int, genre: str = "pop"):
    return compose(genre, ComposeParams((8.0, 10.0), (2, 4)), pools, lambda *k: seeding.rng(seed, "pool", *k))


def test_each_category_draws_from_its_own_pool():
    pools = SoundfontPools.from_config(("a.sf2", "b.sf2"), {"drums": ["kit.sf2"], "bass": ["b.sf2", "low.sf2"]})
    assert pools.pool("drums") == ("kit.sf2",) and pools.pool("piano") == ("a.sf2", "b.sf2")
    assert pools.all() == ("a.sf2", "b.sf2", "low.sf2", "kit.sf2")  # default first, then STEMS order, each once
    used = collections.defaultdict(collections.Counter)
    for seed in range(16):
        for part in _score(pools, seed).parts:
            used[part.name][part.soundfont] += 1
    assert set(used["drums"]) == {"kit.sf2"}
    assert set(used["bass"]) == {"b.sf2", "low.sf2"}
    others = sum((c for name, c in used.items() if name not in ("drums", "bass")), collections.Counter())
    assert set(others) == {"a.sf2", "b.sf2"}  # both files of the default pool get used
    again = [[p.soundfont for p in _score(pools, seed).parts] for seed in range(4)]
    assert again == [[p.soundfont for p in _score(pools, seed).parts] for seed in range(4)]  # same seed, same draw


def test_a_preset_only_some_pool_files_have_is_drawn_from_those():
    pools = SoundfontPools(("a.sf2", "b.sf2"))
    presets = {"a.sf2": frozenset((0, p) for p in range(128)), "b.sf2": frozenset({(128, k) for k in range(128)} | {(0, p) for p in range(40)})}
    for seed in range(8):
        for part in compose("pop", ComposeParams((8.0, 10.0), (2, 4)), pools, lambda *k: seeding.rng(seed, "p", *k), presets).parts:
            assert (part.instrument.bank, part.instrument.program) in presets[part.soundfont]
            if part.instrument.is_drum:
                assert part.soundfont == "b.sf2"


def test_bad_pools_fail_with_one_line():
    with pytest.raises(StemlabError, match="'strings' is not a stem category"):
        SoundfontPools.from_config(("a.sf2",), {"strings": ["x.sf2"]})
    with pytest.raises(StemlabError, match="soundfont_pools.bass: an empty pool"):
        SynthSettings.from_config({"soundfont_pools": {"bass": []}})


def test_a_missing_pool_file_names_its_debian_package(tmp_path):
    with pytest.raises(StemlabError) as err:
        check_soundfonts([str(tmp_path / Path(MUSESCORE).name)])
    assert "apt-get install musescore-general-soundfont" in str(err.value)


@needs_pool
def test_song_json_records_each_stems_soundfont_and_its_sha256():
    settings = SynthSettings(seed=2, duration_s=(3.0, 4.0), tail_s=0.5, other_parts=(2, 2), soundfonts=(FLUID,),
                             soundfont_pools=SoundfontPools.from_config((FLUID,), {"drums": [TIM], "bass": [TIM]}).families)  # fmt: skip
    with Renderer(settings.pools.all()) as renderer:
        meta = SongMaker(settings, renderer).make(0).meta  # index 0 of seed 2: a genre with drums
    digests = {Path(FLUID).name: sha256_file(FLUID), Path(TIM).name: sha256_file(TIM)}
    by_name = {s["name"]: s for s in meta["stems"]}
    assert by_name["drums"]["soundfont"] == by_name["bass"]["soundfont"] == "TimGM6mb.sf2"
    assert {s["soundfont"] for n, s in by_name.items() if n not in ("drums", "bass")} == {"FluidR3_GM.sf2"}
    for stem in meta["stems"]:
        assert stem["soundfont_sha256"] == digests[stem["soundfont"]]
    assert [(f["file"], f["sha256"]) for f in meta["versions"]["soundfonts"]] == list(digests.items())
