"""numpy float64 inference of the harmony LM: the same bytes on every machine, thread count and process.

Every matrix-vector product is an elementwise product summed by numpy's pairwise sum along one axis (no
BLAS, whose threaded kernels may sum in another order), and a draw is one uniform from the caller's
generator inverted through the cumulative distribution of the allowed tokens.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np


def _matvec(w: np.ndarray, x: np.ndarray) -> np.ndarray:
    return (w * x[None, :]).sum(axis=1)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


@dataclass
class State:
    h: list[np.ndarray]
    c: list[np.ndarray]
    logits: np.ndarray | None = None


class NumpyLM:
    """The LSTM of stemlab.synth.learned.lm.HarmonyLM from its state_dict (numpy arrays or tensors)."""

    def __init__(self, state_dict: Mapping[str, object]) -> None:
        w = {k: np.asarray(v, dtype=np.float64) for k, v in state_dict.items()}
        self.embed = w["embed.weight"]
        self.layers = []
        k = 0
        while f"lstm.weight_ih_l{k}" in w:
            self.layers.append(
                (
                    w[f"lstm.weight_ih_l{k}"],
                    w[f"lstm.weight_hh_l{k}"],
                    w[f"lstm.bias_ih_l{k}"] + w[f"lstm.bias_hh_l{k}"],
                )
            )
            k += 1
        self.out_w, self.out_b = w["out.weight"], w["out.bias"]
        self.hidden = self.layers[0][1].shape[1]
        self.vocab_size = self.embed.shape[0]

    def start(self) -> State:
        zeros = [np.zeros(self.hidden) for _ in self.layers]
        return State(list(zeros), [z.copy() for z in zeros])

    def step(self, state: State, token: int) -> State:
        x = self.embed[int(token)]
        hs, cs = [], []
        for (w_ih, w_hh, b), h, c in zip(self.layers, state.h, state.c):
            gates = _matvec(w_ih, x) + _matvec(w_hh, h) + b
            i, f, g, o = np.split(gates, 4)  # torch's gate order
            c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
            h = _sigmoid(o) * np.tanh(c)
            hs.append(h)
            cs.append(c)
            x = h
        return State(hs, cs, _matvec(self.out_w, x) + self.out_b)

    def run(self, tokens: Sequence[int], state: State | None = None) -> State:
        state = state or self.start()
        for t in tokens:
            state = self.step(state, t)
        return state


def masked_probs(logits: np.ndarray, allowed: Sequence[int]) -> np.ndarray:
    """Softmax of the logits of the `allowed` token ids, in their order."""
    z = logits[np.asarray(allowed, dtype=np.int64)]
    e = np.exp(z - z.max())
    return e / e.sum()


def draw(probs: np.ndarray, rng: np.random.Generator) -> int:
    """Position of one draw from `probs` with one uniform of `rng`."""
    cdf = np.cumsum(probs)
    return int(min(np.searchsorted(cdf, rng.random() * cdf[-1], side="right"), len(probs) - 1))
