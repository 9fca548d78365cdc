"""FX-parameter conditioning: a song.json `stems[*].fx` annotation → a fixed-size normalized vector.

The annotation's structure is discovered from the training split (numeric leaves are z-scored,
strings one-hot encoded, optional leaves get a presence bit), so the encoder follows whatever the
synthesizer writes. Lists of effects that name themselves ("stage"/"type"/"name"/...) are keyed by those
names, so a chain's order does not move parameters between vector slots. This is one pluggable
conditioning source: anything that maps (song annotation, stem) → vector of `dim` can replace it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

_NAME_KEYS = ("stage", "type", "name", "effect", "kind")


def _list_keys(items: list[Any]) -> list[str]:
    """Slot names of a list: 'stage:type' (etc.) of self-describing items, numbered on repeats; else the index."""
    keys, seen = [], {}
    for i, item in enumerate(items):
        names = [str(item[k]) for k in _NAME_KEYS if isinstance(item, Mapping) and isinstance(item.get(k), str)]
        if not names:
            keys.append(str(i))
            continue
        label = ":".join(names)
        seen[label] = seen.get(label, 0) + 1
        keys.append(label if seen[label] == 1 else f"{label}#{seen[label]}")
    return keys


def flatten_fx(fx: Any, prefix: str = "") -> dict[str, float | str]:
    """Leaves of a nested dict/list annotation keyed by dotted path; bools become 0/1, None is dropped."""
    out: dict[str, float | str] = {}
    if isinstance(fx, Mapping):
        for k in sorted(fx, key=str):
            out.update(flatten_fx(fx[k], f"{prefix}{k}."))
    elif isinstance(fx, (list, tuple)):
        for key, item in zip(_list_keys(list(fx)), fx):
            if isinstance(item, Mapping):  # the names that label the slot are not parameters
                item = {k: v for k, v in item.items() if not (k in _NAME_KEYS and isinstance(v, str))}
            out.update(flatten_fx(item, f"{prefix}{key}."))
    elif isinstance(fx, bool):
        out[prefix[:-1]] = float(fx)
    elif isinstance(fx, (int, float)) and not isinstance(fx, bool):
        value = float(fx)
        if math.isfinite(value):
            out[prefix[:-1]] = value
    elif isinstance(fx, str):
        out[prefix[:-1]] = fx
    return out


@dataclass
class FxParamSpace:
    """Fitted encoder of FX annotations (serialisable with to_dict / from_dict)."""

    numeric: list[str] = field(default_factory=list)
    mean: list[float] = field(default_factory=list)
    std: list[float] = field(default_factory=list)
    optional: list[str] = field(default_factory=list)  # numeric keys absent in some training stems
    categorical: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def fit(cls, annotations: Iterable[Any]) -> FxParamSpace:
        flats = [flatten_fx(a) for a in annotations]
        if not flats:
            return cls()
        numeric_values: dict[str, list[float]] = {}
        categories: dict[str, set[str]] = {}
        for flat in flats:
            for k, v in flat.items():
                if isinstance(v, str):
                    categories.setdefault(k, set()).add(v)
                else:
                    numeric_values.setdefault(k, []).append(v)
        numeric = sorted(numeric_values)
        mean = [float(np.mean(numeric_values[k])) for k in numeric]
        std = [float(np.std(numeric_values[k])) for k in numeric]
        std = [s if s > 1e-8 else 1.0 for s in std]
        optional = [k for k in numeric if len(numeric_values[k]) < len(flats)]
        return cls(numeric, mean, std, optional, {k: sorted(v) for k, v in sorted(categories.items())})

    @property
    def dim(self) -> int:
        return len(self.numeric) + len(self.optional) + sum(len(v) for v in self.categorical.values())

    def vector(self, fx: Any) -> np.ndarray:
        flat = flatten_fx(fx)
        out = np.zeros(self.dim, dtype=np.float32)
        for i, k in enumerate(self.numeric):
            v = flat.get(k)
            if isinstance(v, float):
                out[i] = (v - self.mean[i]) / self.std[i]
        base = len(self.numeric)
        for j, k in enumerate(self.optional):
            out[base + j] = float(isinstance(flat.get(k), float))
        base += len(self.optional)
        for k, values in self.categorical.items():
            v = flat.get(k)
            if isinstance(v, str) and v in values:
                out[base + values.index(v)] = 1.0
            base += len(values)
        return np.clip(out, -8.0, 8.0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "numeric": self.numeric,
            "mean": self.mean,
            "std": self.std,
            "optional": self.optional,
            "categorical": self.categorical,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FxParamSpace:
        return cls(list(d["numeric"]), list(d["mean"]), list(d["std"]), list(d["optional"]), dict(d["categorical"]))


def mean_annotation(annotations: list[Any]) -> Any:
    """A 'mean FX chain': the medoid annotation (closest to the mean vector), its numeric leaves set to
    the mean over all annotations that have them (ints rounded, bools and strings kept)."""
    if not annotations:
        raise ValueError("no annotations to average")
    space = FxParamSpace.fit(annotations)
    vectors = np.stack([space.vector(a) for a in annotations]) if space.dim else np.zeros((len(annotations), 1))
    medoid = annotations[int(np.argmin(((vectors - vectors.mean(0)) ** 2).sum(1)))]
    means = dict(zip(space.numeric, space.mean))

    def rebuild(node: Any, prefix: str) -> Any:
        if isinstance(node, Mapping):
            return {k: rebuild(v, f"{prefix}{k}.") for k, v in node.items()}
        if isinstance(node, (list, tuple)):
            return [rebuild(item, f"{prefix}{key}.") for key, item in zip(_list_keys(list(node)), node)]
        key = prefix[:-1]
        if isinstance(node, bool) or key not in means:
            return node
        if isinstance(node, int):
            return int(round(means[key]))
        return float(means[key])

    return rebuild(medoid, "")
