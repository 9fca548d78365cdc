"""Which source files a stemlab module runs: a static walk of its imports (lazy imports included).

Two users: the env check (every third-party import of a rule's code must be in its conda env) and the
run identity of training (the digest of every stemlab file a model's task can execute).
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass, field
from pathlib import Path

SCRIPTS_DIR = Path(__file__).resolve().parents[1]


def module_files(module: str, scripts_dir: Path = SCRIPTS_DIR, entry: bool = False) -> list[Path]:
    """The files that run for `module`: a package's __init__.py, plus its __main__.py only when it is
    the `-m` entry point (an imported package, or the parent of the entry module, runs __init__.py alone)."""
    base = scripts_dir.joinpath(*module.split("."))
    if base.with_suffix(".py").is_file():
        return [base.with_suffix(".py")]
    names = ("__init__.py", "__main__.py") if entry else ("__init__.py",)
    return [base / name for name in names if (base / name).is_file()]


def imports_of(file: Path, module: str) -> set[str]:
    """Absolute names of every module imported anywhere in `file` (relative imports resolved)."""
    tree = ast.parse(file.read_text(encoding="utf-8"), filename=str(file))
    package = module if file.name in ("__init__.py", "__main__.py") else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            found.add(target)
            # `from stemlab.x import y` may import the submodule stemlab.x.y
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return found


@dataclass
class ImportGraph:
    stemlab_files: set[Path] = field(default_factory=set)
    third_party: dict[str, set[str]] = field(default_factory=dict)  # top-level name -> importing files


def walk(entry_module: str, scripts_dir: Path = SCRIPTS_DIR, *, entry: bool = True) -> ImportGraph:
    """Every stemlab file reachable from `entry_module` and the third-party names those files import."""
    graph = ImportGraph()
    seen: set[str] = set()
    parts = entry_module.split(".")
    # importing a submodule runs every parent package's __init__
    todo = [entry_module, *(".".join(parts[:i]) for i in range(1, len(parts)))]
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        for file in module_files(module, scripts_dir, entry=entry and module == entry_module):
            graph.stemlab_files.add(file)
            for name in imports_of(file, module):
                top = name.split(".")[0]
                if top == "stemlab":
                    pieces = name.split(".")
                    todo += [".".join(pieces[:i]) for i in range(1, len(pieces) + 1)]
                elif top and top not in sys.stdlib_module_names and top != "__future__":
                    graph.third_party.setdefault(top, set()).add(str(file.relative_to(scripts_dir)))
    return graph
