"""Soundfont pools: several SF2/SF3 files per instrument family (stem category), one drawn per stem per
song from the song's own generator (compose.choose_parts). A family without a pool of its own draws from
the default pool, synth.soundfonts."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from stemlab.errors import StemlabError
from stemlab.taxonomy import STEMS


@dataclass(frozen=True)
class SoundfontPools:
    default: tuple[str, ...]
    families: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (stem category, soundfonts), in STEMS order

    @classmethod
    def from_config(cls, default: tuple[str, ...], pools: Mapping[str, list[str]] | None) -> SoundfontPools:
        pools = dict(pools or {})
        bad = sorted(set(pools) - set(STEMS))
        if bad:
            raise StemlabError(f"synth.soundfont_pools: {bad[0]!r} is not a stem category; use one of {', '.join(STEMS)}")
        empty = [k for k, v in pools.items() if not v]
        if empty:
            raise StemlabError(f"synth.soundfont_pools.{empty[0]}: an empty pool; list at least one soundfont or drop the key")
        return cls(tuple(default), tuple((k, tuple(str(x) for x in pools[k])) for k in STEMS if k in pools))

    def pool(self, category: str) -> tuple[str, ...]:
        for family, files in self.families:
            if family == category:
                return files
        return self.default

    def all(self) -> tuple[str, ...]:
        """Every soundfont of every pool, each once, the default pool first."""
        out = list(self.default)
        for _, files in self.families:
            out += [f for f in files if f not in out]
        return tuple(out)
