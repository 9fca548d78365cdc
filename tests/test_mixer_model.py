"""The mixer network: the grammar tokenizer, the loss mask, constrained decoding, LoRA adapters; a short
training run through the frame with its evaluation rows (slow tier)."""

from __future__ import annotations

import random

import pytest
import torch

import tests.cache_tasks  # noqa: F401  (registers tiny_encoder)
from stemlab.config import settings_section
from stemlab.device import seeded_init
from stemlab.mixer.decoding import START, ChainConstraint, accepting, run
from stemlab.mixer.grammar import format_chain, parse_chain
from stemlab.mixer.model import (
    Dims, Fusion, MixerNet, Regressor, answer_loss, answer_mask, build_decoder, encode_answer, grammar_tokenizer,
    regression_chain, regression_targets, token_texts, with_lora,
)  # fmt: skip
from stemlab.mixer.tools import CANONICAL_ORDER, TOOLS, Call, canonical
from stemlab.train.loop import saved_state_keys
from tests.mixer_fixture import SMALL

DIMS = Dims(text=6, audio=(5,), context=4, categories=("bass", "drums"))


def canonical_chain(rng: random.Random) -> list[Call]:
    tools = rng.sample(TOOLS, rng.randint(0, 4))
    return canonical([Call(t.name, tuple(rng.choice(a.grid) for a in t.args)) for t in tools])


def small_net(lora: bool = False, seed: int = 3) -> tuple[MixerNet, object]:
    tok = grammar_tokenizer()
    s = settings_section("models", "mixer", "settings", section={**SMALL, "lora": {"enabled": lora, "r": 4, "alpha": 8, "dropout": 0.0}})
    special = {"bos": tok.bos_token_id, "eos": tok.eos_token_id, "pad": tok.pad_token_id}
    with seeded_init(seed):
        decoder = build_decoder(s["decoder"], len(tok), special, 64, None)
        if lora:
            decoder = with_lora(decoder, s["lora"])
        net = MixerNet(Fusion(DIMS, 16, 2, 32, 0.0), decoder, Regressor(DIMS, 16), tok.bos_token_id)
    return net.eval(), tok


def batch(tok, chains: list[list[Call]], seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    slots = [torch.randn(len(chains), d, generator=g) for d in DIMS.slots]
    answers = [encode_answer(tok, format_chain(c), 160) for c in chains]
    width = max(map(len, answers))
    answer = torch.full((len(chains), width), tok.pad_token_id)
    for i, a in enumerate(answers):
        answer[i, : len(a)] = torch.tensor(a)
    return slots, torch.zeros(len(chains), dtype=torch.long), answer, torch.tensor([len(a) for a in answers])


def test_the_grammar_tokenizer_round_trips_chains() -> None:
    tok = grammar_tokenizer()
    rng = random.Random(1)
    for _ in range(50):
        text = format_chain(canonical_chain(rng))
        ids = tok(text, add_special_tokens=False)["input_ids"]
        assert tok.unk_token_id not in ids and tok.decode(ids) == text
    assert len(tok) < 80  # words, digits and marks of the grammar


def test_the_automaton_admits_exactly_formatted_canonical_chains() -> None:
    rng = random.Random(2)
    for _ in range(100):
        text = format_chain(canonical_chain(rng))
        state = run(text)
        assert state is not None and accepting(state)
    assert accepting(START)
    assert run("change_volume(db=40.0)") is None  # out of range
    assert run("change_volume(db=-3.25)") is None  # off the grid
    assert run("change_volume(db=-3.0) apply_eq(") is None  # not canonical (eq before volume)
    assert not accepting(run("change_volume(db=-3.0) "))  # unfinished


def test_loss_mask_covers_exactly_the_answer_tokens() -> None:
    lengths = torch.tensor([3, 5, 1])
    mask = answer_mask(4, lengths, 6)
    for i, n in enumerate(lengths.tolist()):
        assert mask[i].nonzero().flatten().tolist() == list(range(3, 3 + n))  # BOS (position 3) predicts token 0
    net, tok = small_net()
    chains = [[Call.make("change_volume", db=-3)], [Call.make("pan", position=0.5), Call.make("change_volume", db=2)]]
    slots, category, answer, lens = batch(tok, chains)
    logits = net.logits(slots, category, answer, lens).detach().requires_grad_(True)
    loss = answer_loss(logits, answer, lens, logits.shape[1] - answer.shape[1])
    loss.backward()
    touched = logits.grad.abs().sum(-1) > 0
    assert torch.equal(touched, answer_mask(logits.shape[1] - answer.shape[1], lens, answer.shape[1]))
    # padding changes nothing: the short row alone gives the same loss term as in the padded batch
    single = net.logits([s[:1] for s in slots], category[:1], answer[:1, : lens[0]], lens[:1])
    padded = net.logits(slots, category, answer, lens)[:1, : single.shape[1]]
    assert torch.allclose(single, padded, atol=1e-5)


def test_constrained_greedy_decoding_of_an_untrained_model_always_parses() -> None:
    net, tok = small_net()
    constraint = ChainConstraint(token_texts(tok), tok.eos_token_id, len(tok))
    slots, category, _, _ = batch(tok, [[] for _ in range(4)], seed=5)
    with torch.no_grad():
        out = net.decoder.generate(inputs_embeds=net.prefix(slots, category), attention_mask=torch.ones(4, 3, dtype=torch.long),
                                   max_new_tokens=120, logits_processor=[constraint], do_sample=True, top_k=0,
                                   pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)  # fmt: skip
    for row in out.tolist():
        ids = row[: row.index(tok.eos_token_id)] if tok.eos_token_id in row else row
        chain = parse_chain(tok.decode(ids, skip_special_tokens=True))
        assert [c.tool for c in chain] == sorted((c.tool for c in chain), key=CANONICAL_ORDER.index)


def test_lora_adapters_alone_are_saved_and_reproduce_the_logits() -> None:
    net, tok = small_net(lora=True, seed=11)
    base = [n for n, p in net.named_parameters() if not p.requires_grad]
    assert base and all("lora_" not in n for n in base)
    with torch.no_grad():
        for n, p in net.named_parameters():
            if "lora_B" in n:
                p.add_(0.05)
    keys = saved_state_keys(net, {})
    decoder_keys = [k for k in keys if k.startswith("decoder.") and "rotary" not in k]
    assert decoder_keys and all("lora_" in k for k in decoder_keys)
    state = {k: v.clone() for k, v in net.state_dict().items() if k in keys}
    fresh, _ = small_net(lora=True, seed=11)  # the frozen base comes from the same seeded build
    missing, unexpected = fresh.load_state_dict(state, strict=False)
    assert not unexpected and not set(missing) & set(keys)
    slots, category, answer, lens = batch(tok, [[Call.make("change_volume", db=-3)]])
    assert torch.allclose(net.logits(slots, category, answer, lens), fresh.logits(slots, category, answer, lens), atol=1e-6)
    other, _ = small_net(lora=True, seed=11)  # without the adapters' weights the logits differ
    assert not torch.allclose(net.logits(slots, category, answer, lens), other.logits(slots, category, answer, lens), atol=1e-4)


def test_regression_targets_round_trip_to_chains() -> None:
    rng = random.Random(4)
    chains = [canonical_chain(rng) for _ in range(20)]
    presence, values, _ = regression_targets(chains)
    logits = presence * 8 - 4
    for chain, p, v in zip(chains, logits, values):
        assert regression_chain(p, v) == chain


@pytest.mark.slow  # matplotlib's import alone takes seconds
def test_the_figure_is_drawn_from_a_table(tmp_path) -> None:
    import pandas as pd

    from stemlab.mixer.figure import main

    rows = []
    for system in ("mixer", "noop", "regressor", "oracle"):
        for metric in ("improvement_mrstft", "improvement_fx", "tool_f1", "param_mae_pan", "param_mae_apply_eq", "intent_success", "intent_success_repair_only"):
            rows.append({"model": "mixer", "system": system, "metric": metric, "n": 4, "mean": 1.0, "ci95_low": 0.5, "ci95_high": 1.5})
    pd.DataFrame(rows).to_csv(tmp_path / "mixer.csv", index=False)
    assert main(["--table", str(tmp_path / "mixer.csv"), "--out", str(tmp_path / "mixer.pdf")]) == 0
    assert (tmp_path / "mixer.pdf").stat().st_size > 1000 and (tmp_path / "mixer.png").is_file()
