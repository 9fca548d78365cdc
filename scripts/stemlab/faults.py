"""Test-only fault injection for the SLURM end-to-end test; both switches are unset everywhere else.

1. STEMLAB_FAULT_STEP_DELAY_S=2: every training step of the shared loop sleeps that long afterwards
   (the math is untouched), so the requeue test's SLURM requeue lands mid-training even on an idle node
   where the smoke model would otherwise finish all its steps within a second or two.

2. Make a rule's SLURM job fail when SLURM gave it too little memory.

The SLURM end-to-end test (tests/test_slurm_e2e.py) sets

    STEMLAB_FAULT_MIN_MEM_MB="synth_shard=3000"      # Snakemake rule name = minimum MB

in the environment of `snakemake --profile ...`; sbatch exports it to every job, and
`stemlab.errors.run_cli` calls `check_memory_fault()` before running any stemlab CLI. Inside a SLURM job
it asks the controller (`scontrol show job`) for the job's comment, which the Snakemake SLURM plugin sets
to `rule_<rule>[_wildcards_<...>]`, and its memory. A job of a named rule given less than the minimum
fails with a one-line error: the first attempt (mem_mb(base) * 1) fails and Snakemake's retry
(mem_mb(base) * 2) succeeds, which shows that a retry asks SLURM for more memory.

Unset (always, outside that test) the check is one dict lookup. Outside a SLURM job (the localrules of the
SLURM run, any local run) it does nothing; the spec is still validated, so a typo fails loudly.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable, Mapping

from stemlab.errors import StemlabError

FAULT_ENV = "STEMLAB_FAULT_MIN_MEM_MB"
STEP_DELAY_ENV = "STEMLAB_FAULT_STEP_DELAY_S"


def training_step_delay(env: Mapping[str, str] | None = None) -> float:
    """Seconds each training step sleeps after its update (0 when STEP_DELAY_ENV is unset)."""
    env = os.environ if env is None else env
    raw = env.get(STEP_DELAY_ENV, "").strip()
    if not raw:
        return 0.0
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 60.0:
        raise StemlabError(f"{STEP_DELAY_ENV}={raw!r} must be seconds in [0, 60]; unset it outside tests/test_slurm_e2e.py")
    return value


def parse_fault_spec(spec: str) -> dict[str, int]:
    """`"synth_shard=3000,preprocess=500"` -> {"synth_shard": 3000, "preprocess": 500}."""
    out: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        rule, sep, mb = item.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", rule.strip()) or not mb.strip().isdigit():
            raise StemlabError(
                f"{FAULT_ENV}={spec!r} is malformed: expected RULE=MB[,RULE=MB], e.g. synth_shard=3000; "
                f"unset it outside tests/test_slurm_e2e.py"
            )
        out[rule.strip()] = int(mb)
    return out


def parse_scontrol_job(text: str) -> tuple[str, int | None]:
    """(comment, memory MB) of one `scontrol show job -o` record."""
    comment = re.search(r"\bComment=(\S*)", text)
    mem = re.search(r"\bMinMemoryNode=(\d+)([KMGT]?)", text) or re.search(r"\bmem=(\d+)([KMGT]?)", text)
    mb = None
    if mem is not None:
        factor = {"K": 1 / 1024, "": 1, "M": 1, "G": 1024, "T": 1024 * 1024}[mem.group(2)]
        mb = int(int(mem.group(1)) * factor)
    return (comment.group(1) if comment else ""), mb


def rule_of_comment(comment: str) -> str | None:
    """Rule name from the plugin's job comment `rule_<rule>` / `rule_<rule>_wildcards_<...>`."""
    if not comment.startswith("rule_"):
        return None
    return comment[len("rule_") :].split("_wildcards_", 1)[0]


def _scontrol_job(job_id: str) -> str:
    try:
        return subprocess.run(
            ["scontrol", "show", "job", "-o", job_id], capture_output=True, text=True, timeout=30, check=False
        ).stdout
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise StemlabError(f"{FAULT_ENV} is set but `scontrol show job {job_id}` failed ({exc}); unset it") from exc


def check_memory_fault(env: Mapping[str, str] | None = None, scontrol: Callable[[str], str] | None = None) -> None:
    """Raise StemlabError when FAULT_ENV names this SLURM job's rule and the job has less memory."""
    env = os.environ if env is None else env
    spec = env.get(FAULT_ENV)
    if not spec:
        return
    limits = parse_fault_spec(spec)
    job_id = env.get("SLURM_JOB_ID")
    if not job_id:
        return  # a localrule of the SLURM run, on the submit host: no SLURM memory to check
    comment, have = parse_scontrol_job((scontrol or _scontrol_job)(job_id))
    rule = rule_of_comment(comment)
    if rule not in limits:
        return
    if have is None:
        raise StemlabError(f"{FAULT_ENV}: cannot read the memory of SLURM job {job_id}; unset it")
    if have < limits[rule]:
        raise StemlabError(
            f"injected fault ({FAULT_ENV}): rule {rule} got {have} MB from SLURM job {job_id}, "
            f"needs {limits[rule]} MB; a retry with more memory will pass"
        )
