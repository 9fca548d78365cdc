"""The action part: a factor oracle over the memory track's labels and scenario-guided generation.

Factor oracle (Allauzen, Crochemore and Raffinot, 1999): states 0..n for a label sequence m[0..n-1]; state
j is reached after reading m[0..j-1]. Every state j < n has the forward transition j -> j+1 on m[j], plus
external transitions that keep every path from state 0 spelling a factor of m; the suffix link S(j) points
to the state where the longest repeated suffix of m[0..j-1] first ends (S(0) = -1).

Scenario generation (the ImproteK/Dicy2 scheme, written from the published description): the scenario is
the label sequence the output must follow. A phase starts at the memory position whose future matches the
longest prefix of the remaining scenario (prefix indexing); from there the oracle is followed while its
transitions carry the next scenario label; when none does, a new phase starts. A label the memory does not
contain yields silence (-1) for that step.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np

SILENCE = -1


class FactorOracle:
    """The factor oracle of a label sequence, built online in O(n) transitions."""

    def __init__(self, labels: Sequence[Hashable] = ()) -> None:
        self.labels: list[Hashable] = []
        self.transitions: list[dict[Hashable, int]] = [{}]
        self.suffix: list[int] = [-1]
        for label in labels:
            self.add(label)

    def __len__(self) -> int:
        return len(self.labels)

    def add(self, label: Hashable) -> None:
        """Append one label: a new state m+1, its forward transition, external transitions and suffix link."""
        m = len(self.labels)
        self.labels.append(label)
        self.transitions.append({})
        self.transitions[m][label] = m + 1
        k = self.suffix[m]
        while k > -1 and label not in self.transitions[k]:
            self.transitions[k][label] = m + 1
            k = self.suffix[k]
        self.suffix.append(0 if k == -1 else self.transitions[k][label])

    def step(self, state: int, label: Hashable) -> int | None:
        """The state reached from `state` on `label`, or None."""
        return self.transitions[state].get(label)

    def accepts(self, word: Sequence[Hashable]) -> bool:
        """Whether a path from state 0 spells `word` (every factor of the labels is accepted)."""
        state = 0
        for label in word:
            nxt = self.step(state, label)
            if nxt is None:
                return False
            state = nxt
        return True


def prefix_lengths(memory: Sequence[Hashable], scenario: Sequence[Hashable]) -> np.ndarray:
    """(n, T) int array: L[i, t] = length of the common prefix of memory[i:] and scenario[t:]."""
    codes: dict[Hashable, int] = {}
    mem = np.array([codes.setdefault(x, len(codes)) for x in memory], dtype=np.int64)
    scen = np.array([codes.get(x, -1) for x in scenario], dtype=np.int64)
    n, t_len = len(mem), len(scen)
    out = np.zeros((n + 1, t_len + 1), dtype=np.int64)
    equal = mem[:, None] == scen[None, :]
    for t in range(t_len - 1, -1, -1):
        out[:n, t] = np.where(equal[:, t], out[1:, t + 1] + 1, 0)
    return out[:n, :t_len]


def generate(
    oracle: FactorOracle,
    scenario: Sequence[Hashable],
    generator: np.random.Generator | None = None,
) -> list[int]:
    """Memory indices (0-based positions in the oracle's labels, SILENCE where none fits) for each step of
    `scenario`. Ties between equally long prefix matches go to the earliest position, or to a draw of
    `generator` when one is given."""
    lengths = prefix_lengths(oracle.labels, scenario)
    out: list[int] = []
    state: int | None = None  # the oracle state of the last emitted segment (its index + 1)
    for t, label in enumerate(scenario):
        nxt = oracle.step(state, label) if state is not None else None
        if nxt is None:  # a new phase: the longest prefix of the remaining scenario in the memory
            column = lengths[:, t] if len(oracle) else np.zeros(0, dtype=np.int64)
            best = int(column.max()) if len(column) else 0
            if best == 0:
                out.append(SILENCE)
                state = None
                continue
            candidates = np.flatnonzero(column == best)
            pick = int(candidates[0] if generator is None else candidates[generator.integers(len(candidates))])
            nxt = pick + 1
        out.append(nxt - 1)
        state = nxt
    return out
