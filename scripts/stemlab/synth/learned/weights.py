"""Tensors of a frame final.pt read with numpy only (the synth env has no torch).

torch.save writes a zip: `<root>/data.pkl` (the pickled payload, whose tensors are persistent ids of
storages) and `<root>/data/<key>` (each storage's raw little-endian bytes). This reader rebuilds the
tensors as numpy arrays and allows no other class than plain containers, as torch's weights_only does.
"""

from __future__ import annotations

import collections
import io
import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from stemlab.errors import StemlabError

_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16, "LongStorage": np.int64,
    "IntStorage": np.int32, "ShortStorage": np.int16, "CharStorage": np.int8, "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}  # fmt: skip


class _Storage:
    def __init__(self, dtype: type) -> None:
        self.dtype = dtype


def _rebuild_tensor(storage: np.ndarray, offset: int, size: tuple, stride: tuple, *_: Any) -> np.ndarray:
    if not size:
        return storage[offset].copy()
    itemsize = storage.itemsize
    view = np.lib.stride_tricks.as_strided(
        storage[offset:], shape=tuple(size), strides=tuple(s * itemsize for s in stride)
    )
    return np.array(view)


class _Unpickler(pickle.Unpickler):
    def __init__(self, data: io.BytesIO, archive: zipfile.ZipFile, root: str) -> None:
        super().__init__(data)
        self.archive, self.root = archive, root

    def find_class(self, module: str, name: str) -> Any:
        if module == "torch" and name in _DTYPES:
            return _Storage(_DTYPES[name])
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a model file")

    def persistent_load(self, pid: Any) -> np.ndarray:
        kind, storage_type, key, _location, numel = pid
        if kind != "storage" or not isinstance(storage_type, _Storage):
            raise pickle.UnpicklingError(f"unknown persistent id {kind!r}")
        raw = self.archive.read(f"{self.root}/data/{key}")
        return np.frombuffer(raw, dtype=np.dtype(storage_type.dtype).newbyteorder("<"), count=int(numel))


def read_final_numpy(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The payload of a final.pt with every tensor a numpy array; one-line errors for a bad file."""
    path = Path(path)
    if not path.is_file():
        raise StemlabError(
            f"{path}: model file not found; train it first (snakemake train, or python -m stemlab.train)"
        )
    try:
        with zipfile.ZipFile(path) as archive:
            pkl = next(n for n in archive.namelist() if n.endswith("/data.pkl"))
            root = pkl[: -len("/data.pkl")]
            if archive.namelist() and f"{root}/byteorder" in archive.namelist():
                if archive.read(f"{root}/byteorder").decode().strip() != "little":
                    raise StemlabError(f"{path}: a big-endian model file; re-save it on a little-endian machine")
            payload = _Unpickler(io.BytesIO(archive.read(pkl)), archive, root).load()
    except (zipfile.BadZipFile, StopIteration, pickle.UnpicklingError, KeyError, ValueError, EOFError) as exc:
        raise StemlabError(
            f"{path}: cannot read the model file ({type(exc).__name__}: {exc}); re-run its train_model job"
        ) from exc
    if not isinstance(payload, dict) or "state_dict" not in payload:
        raise StemlabError(f"{path}: not a stemlab model file; point synth.composer.model at a harmony_lm final.pt")
    return payload
