"""The mixer's held-out evaluation: test-split stem windows, one distort-and-fix example each, two prompts.

Each test window gets one distortion (seed eval.seed, the same for every training seed), an intent prompt
and the repair prompt of the same template. Systems write a chain per prompt:

mixer                the decoder, grammar-constrained (eval.strategy: greedy, beam or sample)
mixer_unconstrained  the same decoder without the constraint (an output that does not parse is a no-op)
noop                 the empty chain
most_frequent        the most frequent training repair chain (its tool set, median values)
regressor            the direct regressor from the same frozen embeddings
oracle               the target (the repair target for the repair prompt, + the intent's call)

Rows per item (the repair prompt unless named): parse_rate (decoders), tool_f1 (tool sets against the
target), param_mae_<tool> (mean |error| in % of each argument's range, where prediction and target both
have the tool), improvement_mrstft and improvement_fx (100 x (d(distorted, clean) - d(fixed, clean)) /
d(distorted, clean): MR-STFT distance, and 1 - cos of the effect encoder's embeddings when the upstream
fx_encoder is an input), intent_success (the intent prompt's output moved the intent's feature past its
margin in the requested direction relative to the clean stem) and intent_success_repair_only (the same
check on the repair prompt's output: how often the direction happens without being asked for).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from stemlab.audio import SAMPLE_RATE
from stemlab.config import settings_section
from stemlab.data.segment_tables import read_segment_tables
from stemlab.device import scoped_torch_rng, torch_threads
from stemlab.errors import StemlabError
from stemlab.logs import log, progress
from stemlab.metrics import integrated_loudness, mrstft_distance
from stemlab.mixer.grammar import format_chain, parse_chain, try_parse
from stemlab.mixer.model import regression_chain, token_texts
from stemlab.mixer.tools import TOOL_BY_NAME, Call, execute
from stemlab.train.sampling import evenly_spaced

SYSTEMS = ("mixer", "mixer_unconstrained", "noop", "most_frequent", "regressor", "oracle")
MARGINS = {"centroid": np.log(1.05), "low_tilt": 1.0, "loudness": 1.0, "space": 1.0}


# --------------------------------------------------------------------------- features


def intent_feature(audio: np.ndarray, name: str, sr: int = SAMPLE_RATE) -> float:
    """centroid: log spectral centroid (Hz) of the channel mean; low_tilt: energy below 200 Hz over the rest (dB);
    loudness: integrated LUFS; space: 10th minus 90th percentile of 50 ms frame levels (dB): reverb and
    echoes fill the gaps."""
    mono = np.mean(audio, axis=0).astype(np.float64)
    if name in ("centroid", "low_tilt"):
        spectrum = np.abs(np.fft.rfft(mono)) ** 2
        freqs = np.fft.rfftfreq(len(mono), 1 / sr)
        total = spectrum.sum() + 1e-20
        if name == "centroid":
            return float(np.log((freqs * spectrum).sum() / total + 1e-9))
        low = spectrum[freqs < 200].sum()
        return float(10 * np.log10((low + 1e-20) / (total - low + 1e-20)))
    if name == "loudness":
        return integrated_loudness(audio, sr)
    frame = int(0.05 * sr)
    n = len(mono) // frame
    levels = 10 * np.log10(np.mean(mono[: n * frame].reshape(n, frame) ** 2, axis=1) + 1e-12)
    return float(np.percentile(levels, 10) - np.percentile(levels, 90))


def intent_moved(fixed: np.ndarray, clean: np.ndarray, measure: str, direction: int) -> bool:
    delta = intent_feature(fixed, measure) - intent_feature(clean, measure)
    return bool(direction * delta > MARGINS[measure])


def tool_f1(pred: Sequence[Call], target: Sequence[Call]) -> float:
    p, t = {c.tool for c in pred}, {c.tool for c in target}
    if not p and not t:
        return 1.0
    hits = len(p & t)
    return 0.0 if hits == 0 else 2 * hits / (len(p) + len(t))


def param_errors(pred: Sequence[Call], target: Sequence[Call]) -> dict[str, float]:
    """tool -> mean |error| over its arguments in % of their ranges, for tools in both chains."""
    mine = {c.tool: c for c in pred}
    out = {}
    for call in target:
        if call.tool in mine:
            args = TOOL_BY_NAME[call.tool].args
            out[call.tool] = float(np.mean([abs(a - b) / (s.high - s.low) * 100 for s, a, b in zip(args, mine[call.tool].values, call.values)]))
    return out


def improvement(before: float, after: float) -> float:
    return float(100.0 * (before - after) / before) if before > 0 else 0.0


# --------------------------------------------------------------------------- decoding


def generate(task: Any, model: nn.Module, slots: list[torch.Tensor], category: torch.Tensor, constrained: bool, cfg: Mapping[str, Any]) -> list[str]:
    """Decoded chains (text) of a batch, grammar-constrained or not."""
    from transformers import LogitsProcessorList

    from stemlab.mixer.decoding import ChainConstraint

    tok = task.tokenizer()
    device = next(model.parameters()).device
    with torch.inference_mode():
        embeds = model.prefix([s.to(device) for s in slots], category.to(device))
        processors = LogitsProcessorList()
        if constrained:
            processors.append(ChainConstraint(token_texts(tok), int(tok.eos_token_id), int(model.decoder.get_input_embeddings().weight.shape[0])))
        kwargs: dict[str, Any] = {"max_new_tokens": int(task.settings["max_answer_tokens"]), "pad_token_id": int(tok.pad_token_id),
                                  "eos_token_id": int(tok.eos_token_id), "logits_processor": processors}  # fmt: skip
        if cfg["strategy"] == "beam":
            kwargs.update(num_beams=int(cfg["beams"]), do_sample=False)
        elif cfg["strategy"] == "sample":
            kwargs.update(do_sample=True, temperature=float(cfg["temperature"]), top_p=float(cfg["top_p"]))
        else:
            kwargs.update(do_sample=False, num_beams=1)
        attention = torch.ones(embeds.shape[:2], dtype=torch.long, device=device)
        out = model.decoder.generate(inputs_embeds=embeds, attention_mask=attention, **kwargs)
    texts = []
    for row in out.tolist():
        ids = [i for i in row if i not in (tok.pad_token_id,)]
        if tok.eos_token_id in ids:
            ids = ids[: ids.index(tok.eos_token_id)]
        texts.append(tok.decode(ids, skip_special_tokens=True))
    return texts


def decode_all(task: Any, model: nn.Module, inputs: Any, constrained: bool, cfg: Mapping[str, Any], seed: int) -> list[str]:
    out: list[str] = []
    n = len(inputs.category)
    for i in range(0, n, int(cfg["batch_size"])):
        idx = torch.arange(i, min(n, i + int(cfg["batch_size"])))
        slots, category = inputs.take(idx)
        with scoped_torch_rng(next(model.parameters()).device, seed + i):  # sampling: a function of (seed, batch)
            out += generate(task, model, slots, category, constrained, cfg)
    return out


# --------------------------------------------------------------------------- the evaluation


def fx_distance(task: Any, clips: Sequence[np.ndarray], reference: Sequence[np.ndarray]) -> list[float] | None:
    """1 - cos of the upstream effect encoder's embeddings of each clip and its reference (None: no encoder)."""
    if "fx_encoder" not in task.job.inputs.upstream:
        return None
    from stemlab.mixer.examples import embed_audio
    from stemlab.train.task import load_trained

    enc_task, net, _ = load_trained(task.upstream_file("fx_encoder"), "cpu", {"upstream": dict(task.job.inputs.upstream), "pretrained": dict(task.job.inputs.pretrained)})
    a, b = embed_audio([(enc_task, net)], list(clips), 16, "cpu")[0], embed_audio([(enc_task, net)], list(reference), 16, "cpu")[0]
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-12)
    return list(1.0 - cos)


def evaluate(task: Any, model: nn.Module, out_dir: Path) -> pd.DataFrame:
    from stemlab.mixer.examples import make_examples
    from stemlab.mixer.task import active_rows

    cfg = settings_section("models", "mixer", "eval", section=task.job.eval)
    s = task.settings
    table = read_segment_tables(task.segment_tables(s["window"]))
    rows = active_rows(table, "test")
    rows = rows.iloc[evenly_spaced(list(range(len(rows))), cfg["max_items"])]
    examples = make_examples(rows, task.stems_root, s["segment_samples"], 1, int(cfg["seed"]), s.distortions, 1.0, s["min_rms_db"],
                             both_prompts=True, desc="mixer test examples")  # fmt: skip
    if not examples:
        raise StemlabError(f"model mixer: no test-split {s['window']} window louder than settings.min_rms_db; check inputs.corpora")
    log.info("mixer: evaluating %d held-out stem windows", len(examples))
    from stemlab.mixer.examples import embed_audio
    from stemlab.mixer.task import CACHE_BATCH

    encoders, text = task.audio_encoders(), task.text_encoder()
    audio = embed_audio(encoders, [e.distorted for e in examples], CACHE_BATCH, "cpu")  # once for both prompts
    intent_inputs, _ = task.frozen_inputs(examples, table, encoders, text, audio)
    repair_examples = [type(e)(**{**e.__dict__, "prompt": e.repair_prompt}) for e in examples]
    repair_inputs, _ = task.frozen_inputs(repair_examples, table, encoders, text, audio)

    chains: dict[tuple[str, str], list[list[Call]]] = {}
    parsed: dict[tuple[str, str], list[bool]] = {}
    model.eval()
    for kind, inputs in (("repair", repair_inputs), ("intent", intent_inputs)):
        for system, constrained in (("mixer", True), ("mixer_unconstrained", False)):
            texts = decode_all(task, model, inputs, constrained, cfg, int(cfg["seed"]))
            got = [try_parse(t) for t in texts]
            parsed[(system, kind)] = [g is not None for g in got]
            chains[(system, kind)] = [g or [] for g in got]
        with torch.inference_mode():
            presence, values = model.regressor(*inputs.take(torch.arange(len(examples))))
        chains[("regressor", kind)] = [regression_chain(p, v) for p, v in zip(presence.cpu().numpy(), values.cpu().numpy())]
        chains[("noop", kind)] = [[] for _ in examples]
        chains[("most_frequent", kind)] = [parse_chain(task.most_frequent) for _ in examples]
    chains[("oracle", "repair")] = [list(e.distortion.fix) for e in examples]
    chains[("oracle", "intent")] = [list(e.target) for e in examples]

    rows_out: list[dict[str, Any]] = []
    clean = [e.clean for e in examples]
    fft = tuple(int(n) for n in cfg["fft_sizes"])
    with torch_threads(1):
        before = [mrstft_distance(e.distorted, e.clean, fft) for e in examples]
    fx_before = fx_distance(task, [e.distorted for e in examples], clean)
    for system in progress(SYSTEMS, desc="mixer systems"):
        fixed = [execute(c, e.distorted, SAMPLE_RATE) for c, e in zip(chains[(system, "repair")], examples)]
        fixed_intent = [execute(c, e.distorted, SAMPLE_RATE) for c, e in zip(chains[(system, "intent")], examples)]
        with torch_threads(1):
            after = [mrstft_distance(f, e.clean, fft) for f, e in zip(fixed, examples)]
        fx_after = fx_distance(task, fixed, clean)
        for i, e in enumerate(examples):
            item = "/".join(str(k) for k in e.key)
            add = lambda metric, value: rows_out.append({"system": system, "metric": metric, "value": float(value), "item": item})  # noqa: E731
            if system.startswith("mixer"):
                add("parse_rate", parsed[(system, "repair")][i])
                add("parse_rate_intent", parsed[(system, "intent")][i])
            pred, target = chains[(system, "repair")][i], list(e.distortion.fix)
            add("tool_f1", tool_f1(pred, target))
            for tool, err in param_errors(pred, target).items():
                add(f"param_mae_{tool}", err)
            add("improvement_mrstft", improvement(before[i], after[i]))
            if fx_before is not None and fx_after is not None:
                add("improvement_fx", improvement(fx_before[i], fx_after[i]))
            intent = e.intent
            add("intent_success", intent_moved(fixed_intent[i], e.clean, intent.measure, intent.direction))
            add("intent_success_repair_only", intent_moved(fixed[i], e.clean, intent.measure, intent.direction))
            add("tool_f1_intent", tool_f1(chains[(system, "intent")][i], e.target))
    frame = pd.DataFrame(rows_out)
    examples_table = pd.DataFrame({
        "item": ["/".join(str(k) for k in e.key) for e in examples], "category": [e.category for e in examples],
        "distortions": [",".join(e.distortion.categories) for e in examples], "intent": [e.intent.name for e in examples],
        "prompt": [e.prompt for e in examples], "target": [format_chain(e.distortion.fix) for e in examples],
        "mixer": [format_chain(c) for c in chains[("mixer", "repair")]], "regressor": [format_chain(c) for c in chains[("regressor", "repair")]],
    })  # fmt: skip
    return frame.merge(examples_table[["item", "category", "distortions", "intent"]], on="item", how="left")
