"""Test-only fault injection: make a CLI fail when its SLURM job was given too little memory.

The SLURM end-to-end test (tests/test_slurm_e2e.py) sets

    STEMLAB_FAULT_MIN_MEM_MB="stemlab.synth=3000"

in the environment of `snakemake --profile ...`; sbatch exports it to every job, and
`stemlab.errors.run_cli` calls `check_memory_fault` before running the CLI of module `stemlab.synth`.
A job of that module given less than 3000 MB then fails with a one-line error, so the first attempt
(mem_mb(base) * 1) fails and Snakemake's retry (mem_mb(base) * 2) succeeds: this shows that a retry
asks SLURM for more memory. Unset (the normal case) the check costs one dict lookup.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable

from stemlab.errors import StemlabError

FAULT_ENV = "STEMLAB_FAULT_MIN_MEM_MB"


def parse_fault_spec(spec: str) -> dict[str, int]:
    """`"stemlab.synth=3000,stemlab.data=500"` -> {"stemlab.synth": 3000, "stemlab.data": 500}."""
    out: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        module, sep, mb = item.partition("=")
        if not sep or not module.strip() or not mb.strip().isdigit():
            raise StemlabError(
                f"{FAULT_ENV}={spec!r} is malformed: expected MODULE=MB[,MODULE=MB], e.g. stemlab.synth=3000; "
                f"unset it outside the SLURM test"
            )
        out[module.strip()] = int(mb)
    return out


def _parse_slurm_mem(text: str) -> int | None:
    """Memory in MB from `scontrol show job` output (MinMemoryNode=4000M or TRES mem=4G)."""
    m = re.search(r"MinMemoryNode=(\d+)([KMGT]?)", text) or re.search(r"\bmem=(\d+)([KMGT]?)", text)
    if m is None:
        return None
    factor = {"K": 1 / 1024, "": 1, "M": 1, "G": 1024, "T": 1024 * 1024}[m.group(2)]
    return int(int(m.group(1)) * factor)


def allocated_mem_mb(env: dict[str, str] | None = None) -> int | None:
    """Memory SLURM gave the current job, in MB; None outside a SLURM job."""
    env = os.environ if env is None else env
    if env.get("SLURM_MEM_PER_NODE", "").isdigit():
        return int(env["SLURM_MEM_PER_NODE"])
    job_id = env.get("SLURM_JOB_ID")
    if not job_id:
        return None
    # Snakemake's jobstep strips most SLURM_* variables before its inner srun: ask the controller.
    try:
        out = subprocess.run(
            ["scontrol", "show", "job", "-o", job_id], capture_output=True, text=True, timeout=30, check=False
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    return _parse_slurm_mem(out)


def cli_module(main: Callable) -> str:
    """Dotted name of the module defining `main`, also when it runs as `python -m stemlab.x`."""
    module = getattr(main, "__module__", "") or ""
    if module == "__main__":
        spec = getattr(sys.modules.get("__main__"), "__spec__", None)
        module = spec.name if spec is not None else module
    return module.removesuffix(".__main__")


def check_memory_fault(main: Callable, env: dict[str, str] | None = None) -> None:
    """Raise StemlabError if FAULT_ENV names main's module (or a parent package) and the job has less memory."""
    env = os.environ if env is None else env
    spec = env.get(FAULT_ENV)
    if not spec:
        return
    rules = parse_fault_spec(spec)
    module = cli_module(main)
    limits = [mb for name, mb in rules.items() if module == name or module.startswith(name + ".")]
    if not limits:
        return
    need = max(limits)
    have = allocated_mem_mb(env)
    if have is None:
        raise StemlabError(
            f"{FAULT_ENV} is set but this is not a SLURM job (no SLURM_JOB_ID): it is a switch for "
            f"tests/test_slurm_e2e.py only; unset it"
        )
    if have < need:
        raise StemlabError(
            f"injected fault ({FAULT_ENV}): {module} got {have} MB from SLURM, needs {need} MB; "
            f"a retry with more memory will pass"
        )
