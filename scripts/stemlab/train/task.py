"""The task protocol: what one model family implements to be trained and evaluated by the generic rules.

A task is built from its job (stemlab.train.job.Job). The frame (stemlab.train.run, stemlab.evaluate.run)
calls, in order:

training     setup() -> build_model() (inside a seeded scope) -> frozen_modules(model) -> the loop, which
             calls data(start), loss(model, batch, generator) or train_step(...), optimizers(model, cfg)
             and validate(model) -> export(model), meta(model) -> final.pt, train_log.csv, meta.json
evaluation   load(final.pt) (restore(export) -> build_model() -> weights) -> evaluate(model, payload, out_dir):
             long rows (system, metric, value, item, + summary_keys, + descriptive columns)

Override `train_step` to own the backward pass and several optimizers (GANs, alternating fits), and
`optimizers` to choose them (default: one AdamW over the trainable parameters). A non-gradient fit
(k-means, any estimator) keeps its state in module buffers, returns no optimizers and updates the buffers
in `train_step`: it checkpoints, resumes and exports exactly like gradient training.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import pandas as pd
import torch
from torch import nn

from stemlab.errors import StemlabError
from stemlab.seeding import derive_seed
from stemlab.train.config import TrainConfig
from stemlab.train.job import Job
from stemlab.train.loop import StepContext, adamw, saved_state_keys

if TYPE_CHECKING:
    from stemlab.encoders.cache import EmbeddingCache

FINAL_FORMAT = 1
ITEM_COLUMNS = ("system", "metric", "value", "item")  # every evaluation row has these (the frame adds model, seed)


def train_seed(job: Job) -> int:
    """The loop's seed of one (model, seed) run: a function of both, so seeds of two models differ."""
    return derive_seed(job.seed, "train", job.model)


class Task:
    """Base class of a model family's task. Subclasses set `name` and register with @register."""

    name: ClassVar[str] = ""
    summary_keys: ClassVar[tuple[str, ...]] = ()  # extra columns that split the summary (e.g. a grid cell)
    metric_directions: ClassVar[Mapping[str, str]] = {}  # metric -> "lower" | "higher" (is better)
    metric_statistics: ClassVar[Mapping[str, str]] = {}  # metric -> "median": its table's mean is of seed medians

    def __init__(self, job: Job) -> None:
        self.job = job
        self.settings = self.parse_settings(job.settings)
        self.loop = TrainConfig.from_dict(
            {**job.loop, "seed": train_seed(job), "device": job.device, "cpu_threads": job.cpu_threads}
        )

    # ------------------------------------------------------------------ config
    def parse_settings(self, section: Mapping[str, Any]) -> Any:
        """The task's settings object from models.<model>.settings (default: the dict itself)."""
        return dict(section)

    # ------------------------------------------------------------------ inputs
    def segment_tables(self, window: str) -> list[str]:
        tables = self.job.inputs.segments.get(window)
        if not tables:
            raise StemlabError(
                f"model {self.job.model}: no {window!r} segment tables in the job; add {window} to "
                f"models.{self.job.model}.inputs.windows and enable a corpus that has it"
            )
        return tables

    @property
    def stems_root(self) -> Path:
        if not self.job.inputs.stems_root:
            raise StemlabError(f"model {self.job.model}: the job names no stems root; the model needs inputs.windows")
        return Path(self.job.inputs.stems_root)

    def upstream_file(self, model: str) -> Path:
        if model not in self.job.inputs.upstream:
            raise StemlabError(f"model {self.job.model}: needs model {model!r}; add it to models.{self.job.model}.inputs.upstream")
        return Path(self.job.inputs.upstream[model])

    def pretrained_dir(self, name: str) -> Path:
        if name not in self.job.inputs.pretrained:
            raise StemlabError(f"model {self.job.model}: needs pretrained {name!r}; add it to models.{self.job.model}.inputs.pretrained")
        return Path(self.job.inputs.pretrained[name])

    def embedding_cache(self, encoder: str) -> EmbeddingCache:
        """The embedding cache of `encoder` over the model's corpora (stemlab.encoders.cache), read once."""
        files = self.job.inputs.cache.get(encoder)
        if not files:
            raise StemlabError(f"model {self.job.model}: needs the {encoder} embedding cache; add {encoder} to models.{self.job.model}.inputs.cache")
        caches = self.__dict__.setdefault("_embedding_caches", {})
        if encoder not in caches:
            from stemlab.encoders.cache import EmbeddingCache

            caches[encoder] = EmbeddingCache.read(files)
        return caches[encoder]

    # ------------------------------------------------------------------ training
    def setup(self) -> None:
        """Read what training needs (tables, item lists, derived dimensions) once, before build_model."""

    def build_model(self) -> nn.Module:
        raise NotImplementedError

    def data(self, start: int) -> Iterator[Any]:
        """Micro-batches from micro-batch index `start`, each a function of (loop seed, index) only."""
        raise NotImplementedError

    def loss(self, model: nn.Module, batch: Any, generator: torch.Generator) -> tuple[torch.Tensor, Mapping[str, float]]:
        raise NotImplementedError

    def train_step(self, model: nn.Module, micro_batches: list[Any], ctx: StepContext) -> tuple[torch.Tensor, Mapping[str, float]]:
        """Override to take over backward and optimizer steps (the default loop step calls `loss`)."""
        raise NotImplementedError

    def owns_step(self) -> bool:
        """Whether the loop calls `train_step` (default: when the task implements it)."""
        return overrides(self, "train_step")

    def optimizers(self, model: nn.Module, cfg: TrainConfig) -> dict[str, torch.optim.Optimizer]:
        return adamw(model, cfg)

    def frozen_modules(self, model: nn.Module) -> dict[str, nn.Module]:
        """Named submodules that are never trained (upstream models, pretrained bases), left out of checkpoints."""
        return {}

    def validate(self, model: nn.Module) -> Mapping[str, float]:
        """Validation metrics (on the EMA weights when EMA is on); override to have them in train_log.csv."""
        raise NotImplementedError

    def identity(self) -> dict[str, Any]:
        """What besides the config and the input files shapes the weights (e.g. a digest of the items)."""
        return {}

    def export(self, model: nn.Module) -> dict[str, Any]:
        """What `restore` needs to rebuild the model without the training data (derived dimensions...)."""
        return {}

    def restore(self, export: Mapping[str, Any]) -> None:
        """Inverse of `export`: called before build_model when a trained model is loaded."""

    def meta(self, model: nn.Module) -> dict[str, Any]:
        return {}

    # ------------------------------------------------------------------ evaluation
    def load(self, path: str | os.PathLike[str], device: torch.device | str = "cpu") -> tuple[nn.Module, dict[str, Any]]:
        """The trained model of final.pt on `device`, in eval mode, and the file's payload."""
        from stemlab.device import seeded_init

        payload = read_final(path, self.job.model)
        self.restore(payload.get("export") or {})
        with seeded_init(derive_seed(self.loop.seed, "init")):
            model = self.build_model()
        saved = set(saved_state_keys(model, self.frozen_modules(model)))
        missing, unexpected = model.load_state_dict(payload["state_dict"], strict=False)
        if unexpected or set(missing) & saved:
            wrong = (list(unexpected) or sorted(set(missing) & saved))[0]
            raise StemlabError(f"{path}: weights do not fit the {self.job.model} model (entry {wrong}); re-run its train_model job")
        return model.to(device).eval(), payload

    def evaluate(self, model: nn.Module, payload: Mapping[str, Any], out_dir: Path) -> pd.DataFrame:
        """Long rows: system, metric, value, item (+ summary_keys and descriptive columns)."""
        raise NotImplementedError


def overrides(task: Task, method: str) -> bool:
    """Whether `task` implements `method` itself (rather than the base class's placeholder)."""
    return getattr(type(task), method) is not getattr(Task, method)


def load_trained(
    path: str | os.PathLike[str], device: torch.device | str = "cpu", inputs: Mapping[str, Any] | None = None
) -> tuple[Task, nn.Module, dict[str, Any]]:
    """(task, model, payload) of a final.pt without the workflow: the job is rebuilt from the file (its
    model, task module, seed and settings); `inputs` names upstream models or pretrained folders it needs."""
    from stemlab.train.job import JobInputs
    from stemlab.train.registry import task_class

    payload = read_final(path)
    job = Job(
        model=payload["model"], task=payload["task"], seed=int(payload["seed"]), loop=dict(payload.get("loop") or {}),
        settings=dict(payload.get("settings") or {}), eval={}, inputs=JobInputs.from_dict(inputs or {}), device=str(device),
    )  # fmt: skip
    task = task_class(job.model, job.task)(job)
    model, payload = task.load(path, device)
    return task, model, payload


def read_final(path: str | os.PathLike[str], model: str | None = None) -> dict[str, Any]:
    """The payload of a final.pt, with one-line errors for a missing or foreign file."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            payload = torch.load(fh, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise StemlabError(f"{path}: model not found; run `snakemake train` (or its train_model job) first") from None
    except Exception as exc:  # noqa: BLE001 - any decode failure is the same user problem
        raise StemlabError(f"{path}: cannot read the model file ({type(exc).__name__}); re-run its train_model job") from exc
    if not isinstance(payload, dict) or payload.get("format") != FINAL_FORMAT or "state_dict" not in payload:
        raise StemlabError(f"{path}: not a stemlab model file of format {FINAL_FORMAT}; re-run its train_model job")
    if model is not None and payload.get("model") != model:
        raise StemlabError(f"{path}: holds model {payload.get('model')!r}, not {model!r}; point at the {model} model")
    return payload
