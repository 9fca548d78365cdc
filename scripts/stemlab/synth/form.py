"""Song forms: intro / verse / chorus / bridge / outro sequences sized to a target length in bars."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

SECTION_TYPES = ("intro", "verse", "chorus", "bridge", "outro")


@dataclass(frozen=True)
class FormSection:
    name: str  # one of SECTION_TYPES
    occurrence: int  # 0 for the first verse, 1 for the second, ...
    bars: int


def plan_form(target_bars: float, rng: np.random.Generator) -> list[FormSection]:
    """The form whose length is closest to `target_bars` (ties broken at random), preferring full
    forms (intro, verse/chorus pairs, a bridge once there are two pairs, outro) and 4/8-bar sections."""
    jitter_scale = 0.25
    best: tuple[float, list[tuple[str, int]]] | None = None
    for pairs, bridge, intro, outro, verse, chorus, bridge_len in itertools.product(
        range(1, 9), (False, True), (0, 2, 4), (0, 2, 4), (2, 4, 8), (2, 4, 8), (4, 8)
    ):
        if bridge and (pairs < 2 or bridge_len > max(verse, chorus)):
            continue
        if not bridge and bridge_len != 4:
            continue  # bridge_len is irrelevant without a bridge: count the form once
        seq: list[tuple[str, int]] = []
        if intro:
            seq.append(("intro", intro))
        for p in range(pairs):
            if bridge and p == pairs - 1:
                seq.append(("bridge", bridge_len))
            else:
                seq.append(("verse", verse))
            seq.append(("chorus", chorus))
        if outro:
            seq.append(("outro", outro))
        total = sum(b for _, b in seq)
        score = abs(total - target_bars)
        score += 1.5 * ((verse == 2) + (chorus == 2)) * (target_bars >= 12)
        score += 1.0 * (intro == 0) + 1.0 * (outro == 0)
        score += 0.5 * (pairs >= 3 and not bridge)
        score += 0.3 * (verse != chorus)
        score += float(rng.random()) * jitter_scale
        if best is None or score < best[0]:
            best = (score, seq)
    assert best is not None
    counts: dict[str, int] = {}
    out = []
    for name, bars in best[1]:
        out.append(FormSection(name, counts.get(name, 0), bars))
        counts[name] = counts.get(name, 0) + 1
    return out
