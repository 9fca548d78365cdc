"""Repair and intent prompts, and the calls an intent adds to the repair chain.

A repair prompt asks for the stem to be fixed ("Fix this bass stem for a jazz mix."); an intent prompt
adds a request that changes the target beyond the repair ("... and make it brighter."). Prompts name the
stem's category and the song's genre and nothing about the distortion: no tool, argument, number or
distortion category (a test checks every template), and they are drawn from their own random stream, so
the text of an example does not depend on its distortion.

An intent's extra call merges into the repair chain: gains add to the chain's change_volume / apply_eq
call (clipped to the range), reverb and delay are appended; the chain stays in canonical order.
Each intent has a measurable direction (stemlab.mixer.evaluate checks it against the clean stem).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from stemlab.mixer.tools import TOOL_BY_NAME, Call, canonical

REPAIR_TEMPLATES = (
    "Fix this {category} stem for a {genre} mix.",
    "Clean up the {category} so it sits right in this {genre} song.",
    "Repair this {category} track.",
    "Make this {category} stem sound like a finished {genre} mix.",
    "Something is off with the {category}; make it right for the song.",
    "Please correct the {category} part of this {genre} tune.",
)


@dataclass(frozen=True)
class Intent:
    name: str
    phrases: tuple[str, ...]
    call: Call
    measure: str  # the feature the intent moves (stemlab.mixer.evaluate.intent_feature)
    direction: int  # +1: the feature must rise relative to the clean stem; -1: fall


INTENTS = (
    Intent("brighter", ("and make it brighter", "and give it more sparkle", "and open up the top end"), Call.make("apply_eq", high_gain=4.0), "centroid", 1),
    Intent("darker", ("and make it darker", "and tame the top end", "and make it less bright"), Call.make("apply_eq", high_gain=-4.0), "centroid", -1),
    Intent("warmer", ("and make it warmer", "and add some body", "and thicken up the low end"), Call.make("apply_eq", low_gain=4.0), "low_tilt", 1),
    Intent("back", ("and push it back in the mix", "and make it sit further back", "and tuck it behind the others"), Call.make("change_volume", db=-4.0), "loudness", -1),
    Intent("forward", ("and bring it forward in the mix", "and make it stand out more", "and push it to the front"), Call.make("change_volume", db=4.0), "loudness", 1),
    Intent("space", ("and give it more space", "and put it in a bigger room", "and make it more ambient"), Call.make("apply_reverb", room_size=0.7, wet=0.3), "space", 1),
)  # fmt: skip
INTENT_BY_NAME = {i.name: i for i in INTENTS}
GENERIC_GENRE = "modern"


def repair_prompt(template: int, category: str, genre: str) -> str:
    return REPAIR_TEMPLATES[template % len(REPAIR_TEMPLATES)].format(category=_words(category), genre=genre or GENERIC_GENRE)


def intent_prompt(template: int, category: str, genre: str, intent: Intent, phrase: int) -> str:
    return repair_prompt(template, category, genre)[:-1] + " " + intent.phrases[phrase % len(intent.phrases)] + "."


def _words(name: str) -> str:
    return name.replace("_", " ")


def draw_prompt(rng: np.random.Generator, category: str, genre: str, intent_fraction: float) -> tuple[str, Intent | None]:
    """A prompt and its intent (None for a repair prompt), drawn from `rng` alone."""
    template = int(rng.integers(len(REPAIR_TEMPLATES)))
    if rng.random() >= intent_fraction:
        return repair_prompt(template, category, genre), None
    intent = INTENTS[int(rng.integers(len(INTENTS)))]
    return intent_prompt(template, category, genre, intent, int(rng.integers(len(intent.phrases)))), intent


def with_intent(chain: Sequence[Call], intent: Intent | None) -> list[Call]:
    """The repair chain with the intent's call merged in (additive gains) or appended, canonical order."""
    if intent is None:
        return list(chain)
    extra = intent.call
    out = list(chain)
    if extra.tool in ("change_volume", "apply_eq"):
        for i, call in enumerate(out):
            if call.tool == extra.tool:
                spec = TOOL_BY_NAME[call.tool]
                out[i] = Call(call.tool, tuple(a.quantise(v + w) for a, v, w in zip(spec.args, call.values, extra.values)))
                return canonical(out)
    return canonical([*out, extra])
