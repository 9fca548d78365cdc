"""Grammar-constrained decoding: a character automaton of the formatted chain language and a logits processor.

The automaton admits exactly what `format_chain` writes for chains in canonical order with each tool at most
once: `tool(` + `arg=value` in the tool's argument order (", " between them) + `)`, calls separated by one
space, every value one of its argument's grid texts (so in range and quantised), the empty chain included.
`ChainConstraint` turns it into a transformers LogitsProcessor: at each step every token whose text keeps
the output a prefix of the language stays allowed, end-of-sequence only where a chain is complete.
Allowed sets are cached per automaton state, so a large vocabulary costs one pass per new state.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache

import torch

from stemlab.mixer.tools import CANONICAL_ORDER, TOOL_BY_NAME

State = tuple  # ("name", rank, prefix, accepting) | ("val", rank, tool, arg, text) | ("lit", rank, tool, arg, pos) | ("sep", rank)
START: State = ("name", -1, "", True)


def _opening(tool: str) -> str:
    return f"{tool}({TOOL_BY_NAME[tool].args[0].name}="


@lru_cache(maxsize=None)
def _values(tool: str, arg: int) -> tuple[frozenset[str], frozenset[str]]:
    """(every grid text, every prefix of one) of an argument."""
    spec = TOOL_BY_NAME[tool].args[arg]
    full = frozenset(spec.text(v) for v in spec.grid)
    return full, frozenset(t[:i] for t in full for i in range(1, len(t) + 1))


def _literal(tool: str, arg: int) -> str:
    """The text after value `arg`: the next argument's ", name=" or the closing ")"."""
    args = TOOL_BY_NAME[tool].args
    return f", {args[arg + 1].name}=" if arg + 1 < len(args) else ")"


def step(state: State, ch: str) -> State | None:
    """The state after `ch`, or None when `ch` leaves the language."""
    kind = state[0]
    if kind == "name":
        _, rank, prefix, _ = state
        text = prefix + ch
        for tool in CANONICAL_ORDER[rank + 1 :]:
            opening = _opening(tool)
            if opening == text:
                return ("val", CANONICAL_ORDER.index(tool), tool, 0, "")
        if any(_opening(t).startswith(text) for t in CANONICAL_ORDER[rank + 1 :]):
            return ("name", rank, text, False)
        return None
    if kind == "val":
        _, rank, tool, arg, text = state
        full, prefixes = _values(tool, arg)
        if text + ch in prefixes:
            return ("val", rank, tool, arg, text + ch)
        literal = _literal(tool, arg)
        if text in full and ch == literal[0]:
            return ("sep", rank) if literal == ")" else ("lit", rank, tool, arg, 1)
        return None
    if kind == "lit":
        _, rank, tool, arg, pos = state
        literal = _literal(tool, arg)
        if ch != literal[pos]:
            return None
        return ("val", rank, tool, arg + 1, "") if pos + 1 == len(literal) else ("lit", rank, tool, arg, pos + 1)
    _, rank = state  # "sep": a call just closed
    return ("name", rank, "", False) if ch == " " and rank + 1 < len(CANONICAL_ORDER) else None


def run(text: str, state: State = START) -> State | None:
    for ch in text:
        state = step(state, ch)
        if state is None:
            return None
    return state


def accepting(state: State) -> bool:
    return state[0] == "sep" or (state[0] == "name" and state[3])


class ChainConstraint:
    """A LogitsProcessor keeping generation inside the chain language.

    `token_texts` maps token id -> the text it appends (special tokens: absent); `eos_id` ends a chain.
    The processor sees only the generated tokens (generation from inputs_embeds), one row per beam/sample.
    """

    def __init__(self, token_texts: Mapping[int, str], eos_id: int, vocab_size: int) -> None:
        self.texts = {int(i): t for i, t in token_texts.items() if t}
        self.eos_id = int(eos_id)
        self.vocab_size = int(vocab_size)
        self._states: dict[tuple[int, ...], State | None] = {(): START}
        self._allowed: dict[State, torch.Tensor] = {}

    def state(self, ids: Sequence[int]) -> State | None:
        key = tuple(int(i) for i in ids)
        if key not in self._states:
            prev = self.state(key[:-1])
            text = self.texts.get(key[-1]) if key[-1] != self.eos_id else None
            self._states[key] = None if prev is None or text is None else run(text, prev)
        return self._states[key]

    def allowed(self, state: State | None) -> torch.Tensor:
        if state is None:  # finished (after EOS) or already outside: only EOS, which pads
            mask = torch.zeros(self.vocab_size, dtype=torch.bool)
            mask[self.eos_id] = True
            return mask
        if state not in self._allowed:
            mask = torch.zeros(self.vocab_size, dtype=torch.bool)
            for i, text in self.texts.items():
                if i < self.vocab_size and run(text, state) is not None:
                    mask[i] = True
            mask[self.eos_id] = accepting(state)
            self._allowed[state] = mask
        return self._allowed[state]

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        masks = torch.stack([self.allowed(self.state(row.tolist())) for row in input_ids.cpu()]).to(scores.device)
        return scores.masked_fill(~masks[:, : scores.shape[-1]], float("-inf"))
