"""Distort-and-fix examples: sign-correct canonical fix chains that bring the stem back; prompts without the answer."""

from __future__ import annotations

import re

import numpy as np
import pytest

from stemlab.config import settings_section
from stemlab.device import torch_threads
from stemlab.errors import StemlabError
from stemlab.metrics import mrstft_distance
from stemlab.mixer.distort import CATEGORIES, DistortSettings, distort, draw
from stemlab.mixer.grammar import format_chain
from stemlab.mixer.prompts import INTENTS, REPAIR_TEMPLATES, draw_prompt, intent_prompt, repair_prompt, with_intent
from stemlab.mixer.tools import CANONICAL_ORDER, TOOL_BY_NAME, Call, execute

SR = 44_100


def settings(**overrides) -> DistortSettings:
    section = settings_section("models", "mixer", "settings", section={"distortions": overrides})
    return DistortSettings.from_config(section["distortions"])


@pytest.fixture(autouse=True)
def one_thread():
    with torch_threads(1):  # the MR-STFT of short clips: threads only contend on a loaded machine
        yield


def clean_stem(f0: float = 330.0, seconds: float = 0.75) -> np.ndarray:
    """Three harmonics of f0 with a beat envelope (something to compress); 330 Hz lies below every hiss
    low-pass, 1200 Hz above every rumble high-pass."""
    t = np.arange(int(seconds * SR)) / SR
    tone = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 4))
    env = 0.15 + 0.85 * np.exp(-((t * 4) % 1) * 5)
    mono = 0.08 * tone * env
    return np.stack([mono, 0.9 * mono]).astype(np.float32)


@pytest.mark.parametrize("category", CATEGORIES)
def test_the_fix_brings_the_stem_measurably_back(category: str) -> None:
    x = clean_stem(1200.0 if category == "rumble" else 330.0)
    only = settings(weights={c: float(c == category) for c in CATEGORIES}, max_distortions=1)
    for seed in range(3):
        distorted, d = distort(x, SR, only, np.random.default_rng(seed))
        assert d.categories == (category,)
        before, after = mrstft_distance(distorted, x), mrstft_distance(execute(d.fix, distorted, SR), x)
        assert after < 0.6 * before, (category, format_chain(d.fix), before, after)


def test_mixed_distortions_are_fixed_by_one_canonical_chain() -> None:
    x = clean_stem()
    every = settings(weights={"rumble": 0.0}, max_distortions=3)  # rumble: above
    improved = 0
    for seed in range(12):
        distorted, d = distort(x, SR, every, np.random.default_rng(seed))
        tools = [c.tool for c in d.fix]
        assert tools == sorted(tools, key=CANONICAL_ORDER.index) and len(set(tools)) == len(tools)
        for call in d.fix:  # every value is on its argument's grid
            assert call.values == tuple(a.quantise(v) for a, v in zip(TOOL_BY_NAME[call.tool].args, call.values))
        improved += mrstft_distance(execute(d.fix, distorted, SR), x) < 0.6 * mrstft_distance(distorted, x)
    assert improved >= 11


def test_signs_are_those_of_the_fix() -> None:
    x = clean_stem()
    for cat, tool, arg in (("volume", "change_volume", "db"), ("pan", "pan", "position")):
        only = settings(weights={c: float(c == cat) for c in CATEGORIES}, max_distortions=1)
        for seed in range(6):
            distorted, d = distort(x, SR, only, np.random.default_rng(seed))
            (call,) = d.fix
            assert call.tool == tool and np.sign(call.get(arg)) == -np.sign(d.params[cat][0])
            if cat == "volume":  # a louder distorted stem gets a negative gain
                louder = np.mean(distorted**2) > np.mean(x**2)
                assert (call.get("db") < 0) == louder


def test_draws_follow_the_category_weights() -> None:
    s = settings(weights={c: 0.0 for c in CATEGORIES} | {"volume": 3.0, "eq": 1.0}, max_distortions=1)
    counts = {"volume": 0, "eq": 0}
    for seed in range(400):
        (cat,) = draw(np.random.default_rng(seed), s).categories
        counts[cat] += 1
    assert 0.68 < counts["volume"] / 400 < 0.82


def test_bad_weights_are_one_line() -> None:
    with pytest.raises(StemlabError, match="unknown category 'reverb'"):
        settings(weights={"reverb": 1.0})


def test_distortion_is_a_function_of_the_seed() -> None:
    x = clean_stem()
    a, da = distort(x, SR, settings(), np.random.default_rng(5))
    b, db = distort(x, SR, settings(), np.random.default_rng(5))
    assert np.array_equal(a, b) and da == db


# tool and argument names (but "mix", apply_delay's mix, is the song), distortion categories, effect words
FORBIDDEN = sorted({*TOOL_BY_NAME, *(a.name for t in TOOL_BY_NAME.values() for a in t.args), *CATEGORIES, "gain", "eq",
                    "compress", "compression", "noise", "low-pass", "high-pass", "reverb", "delay", "louder", "quieter"} - {"mix"})  # fmt: skip


def leaks(prompt: str) -> list[str]:
    words = set(re.findall(r"[a-z_\-]+", prompt.lower()))
    return [w for w in FORBIDDEN if w in words] + re.findall(r"\d", prompt)


def test_no_prompt_contains_the_answer() -> None:
    for template in range(len(REPAIR_TEMPLATES)):
        for category in ("bass", "drums", "other_keys", "vocals"):
            assert not leaks(repair_prompt(template, category, "jazz"))
            for intent in INTENTS:
                for phrase in range(len(intent.phrases)):
                    assert not leaks(intent_prompt(template, category, "jazz", intent, phrase))


def test_the_prompt_does_not_depend_on_the_distortion() -> None:
    x = clean_stem()
    prompts = set()
    for seed in range(8):
        distort(x, SR, settings(), np.random.default_rng(seed))  # another stream: the prompt's is its own
        prompts.add(draw_prompt(np.random.default_rng(99), "bass", "pop", 0.5))
    assert len(prompts) == 1


def test_intent_calls_merge_into_the_target() -> None:
    repair = [Call.make("apply_eq", low_gain=2.0, high_gain=-1.0), Call.make("change_volume", db=-3.0)]
    by = {i.name: i for i in INTENTS}
    assert with_intent(repair, by["brighter"]) == [Call.make("apply_eq", low_gain=2.0, high_gain=3.0), repair[1]]
    assert with_intent(repair, by["back"]) == [repair[0], Call.make("change_volume", db=-7.0)]
    assert with_intent(repair[1:], by["warmer"]) == [Call.make("apply_eq", low_gain=4.0), repair[1]]
    assert with_intent(repair, by["space"])[-1].tool == "apply_reverb"
    assert with_intent(repair, None) == repair


def test_each_intent_moves_its_feature_the_requested_way() -> None:
    from stemlab.mixer.evaluate import intent_moved

    t = np.arange(int(1.5 * SR)) / SR
    gate = (np.sin(2 * np.pi * 2 * t) > 0).astype(np.float32)  # gaps for the reverb to fill
    noise = np.random.default_rng(3).normal(0, 0.05, (2, len(t))).astype(np.float32) * gate
    for intent in INTENTS:
        moved = execute([intent.call], noise, SR)
        assert intent_moved(moved, noise, intent.measure, intent.direction), intent.name
        assert not intent_moved(noise, noise, intent.measure, intent.direction)


def test_tool_f1_and_parameter_errors() -> None:
    from stemlab.mixer.evaluate import param_errors, tool_f1

    a = [Call.make("apply_eq", low_gain=6), Call.make("change_volume", db=-3)]
    b = [Call.make("apply_eq", low_gain=0), Call.make("pan", position=0.5)]
    assert tool_f1(a, a) == 1.0 and tool_f1([], []) == 1.0 and tool_f1(a, []) == 0.0
    assert tool_f1(a, b) == pytest.approx(0.5)
    assert param_errors(a, b) == {"apply_eq": pytest.approx(100 * 6 / 24 / 3)}
