"""Model name -> task class. A task module registers its class with `@register`; the workflow's config
names the module (`models.<model>.task`), so a new model is its module plus its config section."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from stemlab.errors import StemlabError

if TYPE_CHECKING:
    from stemlab.train.task import Task

_TASKS: dict[str, type[Task]] = {}


def register(cls: type[Task]) -> type[Task]:
    """Class decorator: make `cls` the task of model `cls.name`."""
    name = getattr(cls, "name", None)
    if not name:
        raise TypeError(f"{cls.__qualname__} has no `name`; set the model name as a class attribute")
    have = _TASKS.get(name)
    if have is not None and (have.__module__, have.__qualname__) != (cls.__module__, cls.__qualname__):
        raise TypeError(f"model {name!r} is already registered by {have.__module__}.{have.__qualname__}")
    _TASKS[name] = cls
    return cls


def task_class(model: str, module: str) -> type[Task]:
    """The task of `model`, after importing `module` (models.<model>.task), with one-line errors."""
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as exc:
        raise StemlabError(f"models.{model}.task: cannot import {module} ({exc}); fix the module name") from exc
    cls = _TASKS.get(model)
    if cls is None:
        here = sorted(n for n, c in _TASKS.items() if c.__module__ == module)
        raise StemlabError(
            f"models.{model}.task: {module} registers no task named {model!r} (it registers {', '.join(here) or 'none'}); "
            "decorate the task class with @register and set its `name`"
        )
    return cls


def registered() -> dict[str, type[Task]]:
    return dict(_TASKS)
