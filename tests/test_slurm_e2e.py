"""`snakemake --profile profiles/slurm` on the smoke config, against a real (local, single-node) SLURM cluster.

One module-scoped run (scripts/cluster/local_slurm.py starts munged + slurmctld + slurmd; a watchdog stops
them if this process dies) of a slice of the smoke DAG through the SLURM executor (TARGETS: the synth stage,
the data-stage segment jobs those models read, and one job of every kind the frame submits: GPU training,
evaluation and an embedding-cache job of fx_encoder, a CPU k-means fit of a grid model, summaries, grouped
per-shard jobs), with the production profile changed only where a CI node needs it
(tests/test_slurm_profile.yaml). The whole DAG runs locally in the `smoke_run` fixture. Each SLURM job
costs far more than its work here (the plugin waits 5 s before every sbatch, every job re-parses the
workflow, status checks back off by 10 s while nothing finishes), so the slice holds one job per kind
and keeps this module within the suite's time budget. Then:

- every job that is not a localrule ran as a SLURM job, and all of those completed;
- GPU rules got a GPU from SLURM (the job step saw CUDA_VISIBLE_DEVICES=0; training records it in meta.json);
- a rule made to fail once on purpose (stemlab.faults: too little memory) was retried with twice the memory
  and succeeded;
- every file of results/ it wrote equals that of a local run of the same config (the `smoke_run`
  fixture of conftest.py).

Needs root and `make setup-test` (Debian slurmctld, slurmd, slurm-client, munge).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from tests.workflow_utils import REPO, SMOKE

sys.path.insert(0, str(REPO / "scripts" / "cluster"))
import local_slurm  # noqa: E402

pytestmark = [
    pytest.mark.slurm,
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="the local SLURM cluster needs root (run as root in CI)"),
]

PROFILE = REPO / "profiles" / "slurm" / "config.yaml"
CI_OVERRIDES = REPO / "tests" / "test_slurm_profile.yaml"
CI_CONFIG = REPO / "tests" / "test_slurm_config.yaml"  # the cluster: block, layered over the smoke config
TARGETS = [
    "synth",
    "results/tables/fx_encoder.csv",
    "results/cache/fx_encoder/synthetic/shard-00000.parquet",
    "results/tables/relations_codebook.csv",
]
SNAKEMAKE_TIMEOUT_S = 540
# The rule made to fail on its first attempt: the first of these that the DAG runs as its own SLURM job.
# synth_stats is off the critical path (its retry overlaps the data stage), so the retry costs no wall time.
FAULT_RULES = ("synth_stats", "splits", "synth_shard", "preprocess", "segments_shard")
# Files under results/ made after the DAG by other tests (the report) are not compared.
NOT_COMPARED = {"results/report.zip", "results/report.html"}
# Keys of training meta.json that describe where and how long a run executed, not what it computed.
RUN_RECORD_KEYS = {"runs", "device", "train_wall_s"}
TIMING_COLUMNS = {"step_s", "wall_s"}
# Training checkpoints are resume state (they hold the run records too), not outputs: final.pt is compared.
NOT_COMPARED_DIRS = ("checkpoints",)


# --------------------------------------------------------------------------- parsing


@dataclass
class PlannedJob:
    rule: str
    jobid: int
    group: str | None
    resources: dict[str, str]
    wildcards: str = ""


def parse_plan(text: str) -> list[PlannedJob]:
    """Jobs of a `snakemake -n` printout: rule, group, resources (a dry run does not tell local jobs apart)."""
    jobs: list[PlannedJob] = []
    group = None
    current: PlannedJob | None = None
    for line in text.splitlines():
        stripped = line.strip()
        m = re.search(r"Group job (\S+) \(jobs in", line)
        if m:
            group = m.group(1)
            continue
        m = re.fullmatch(r"(?:local)?rule (\S+):", stripped)
        if m:
            indented = line.startswith("    ")
            current = PlannedJob(m.group(1), -1, group if indented else None, {})
            if not indented:
                group = None
            jobs.append(current)
            continue
        if current is None:
            continue
        if stripped.startswith("jobid:"):
            current.jobid = int(stripped.split(":", 1)[1])
        elif stripped.startswith("wildcards:"):
            current.wildcards = stripped.split(":", 1)[1].strip()
        elif stripped.startswith("resources:"):
            for item in stripped.split(":", 1)[1].split(", "):
                key, _, value = item.strip().partition("=")
                current.resources[key] = value
    return jobs


@dataclass
class SlurmJob:
    job_id: str
    state: str
    comment: str
    partition: str
    mem_mb: int
    tres_per_job: str
    exit_code: str
    fields: dict[str, str] = field(repr=False, default_factory=dict)

    @property
    def rule(self) -> str | None:
        """The rule of the plugin's comment `rule_<rule>[_wildcards_<values>]` (group jobs: `<group>_<rules>`)."""
        if self.comment.startswith("rule_"):
            return self.comment[len("rule_") :].split("_wildcards_", 1)[0]
        return None


def parse_scontrol(text: str) -> list[SlurmJob]:
    jobs = []
    for line in text.splitlines():
        if not line.startswith("JobId="):
            continue
        f = dict(re.findall(r"(\w+(?::\w+)?)=(\S*)", line))
        mem = re.fullmatch(r"(\d+)([MG]?)", f.get("MinMemoryNode", "0"))
        mb = int(mem.group(1)) * (1024 if mem and mem.group(2) == "G" else 1) if mem else 0
        jobs.append(
            SlurmJob(
                f["JobId"], f.get("JobState", ""), f.get("Comment", ""), f.get("Partition", ""), mb,
                f.get("TresPerJob", ""), f.get("ExitCode", ""), f,
            )
        )
    return sorted(jobs, key=lambda j: int(j.job_id))


# --------------------------------------------------------------------------- fixtures


def declared_local_rules() -> set[str]:
    """Rules Snakemake runs on the submit host: `localrule: True` and target rules without a command."""
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import ConfigSettings, OutputSettings, ResourceSettings

    with SnakemakeApi(OutputSettings()) as api:
        wf = api.workflow(
            resource_settings=ResourceSettings(),
            config_settings=ConfigSettings(configfiles=[SMOKE, CI_CONFIG]),
            snakefile=REPO / "Snakefile",
            workdir=REPO,
        )._workflow
        return {rule.name for rule in wf.rules if rule.name in wf._localrules or rule.norun}


def ci_profile(dst: Path) -> Path:
    """profiles/slurm/config.yaml with the keys of tests/test_slurm_profile.yaml replaced (null: removed)."""
    profile = yaml.safe_load(PROFILE.read_text())
    for key, value in yaml.safe_load(CI_OVERRIDES.read_text()).items():
        if value is None:
            profile.pop(key, None)
        else:
            profile[key] = value
    dst.mkdir(parents=True, exist_ok=True)
    (dst / "config.yaml").write_text(yaml.safe_dump(profile, sort_keys=False))
    return dst / "config.yaml"


@pytest.fixture(scope="module")
def slurm_cluster(tmp_path_factory):
    state = tmp_path_factory.mktemp("slurm-cluster")
    # The node claims this machine's CPUs (the CI profile caps threads at 2) and ample memory (not enforced).
    spec = local_slurm.ClusterSpec(cpus=max(2, os.cpu_count() or 1), mem_mb=512000, gpus=1, gpu_type="testgpu")
    local_slurm.start(state, spec, owner_pid=os.getpid())
    try:
        yield state
    finally:
        local_slurm.stop(state)
        assert local_slurm.marked_pids(local_slurm.Layout(state)) == [], "SLURM daemons survived stop"


def timeline(records: list[SlurmJob]) -> str:
    """One line per SLURM job: seconds from the first submission to submit / start / end, state, rule."""
    from datetime import datetime

    def t(value: str) -> float | None:
        try:
            return datetime.fromisoformat(value).timestamp()
        except ValueError:
            return None

    submits = [t(r.fields.get("SubmitTime", "")) for r in records]
    t0 = min((x for x in submits if x is not None), default=0.0)
    lines = []
    for r in records:
        cols = [t(r.fields.get(k, "")) for k in ("SubmitTime", "StartTime", "EndTime")]
        shown = " ".join(f"{c - t0:6.0f}" if c is not None else "     -" for c in cols)
        lines.append(f"  {r.job_id:>4} {shown}  {r.state:<10} {r.mem_mb:>6} MB  {r.comment}")
    return "  job  submit  start    end\n" + "\n".join(lines)


@dataclass
class SlurmRun:
    workdir: Path
    returncode: int
    output: str
    plan: list[PlannedJob]
    slurm_jobs: list[SlurmJob]
    task_gpus: list[tuple[str, str, str]]
    fault_rule: str | None
    fault_base_mb: int | None
    wall_s: float


def die_with_parent() -> None:
    """preexec_fn: SIGTERM this child when the test process dies (the cluster's watchdog stops the daemons)."""
    import ctypes
    import signal

    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def snakemake_cmd(workdir: Path, profile: Path, *extra: str, targets: list[str] = TARGETS) -> list[str]:
    return [
        sys.executable, "-m", "snakemake", *targets,
        "--snakefile", str(REPO / "Snakefile"),
        "--directory", str(workdir),
        "--profile", str(profile),
        "--configfile", str(SMOKE), str(CI_CONFIG),
        *extra,
    ]


def pick_fault_rule(plan: list[PlannedJob]) -> tuple[str | None, int | None]:
    """First rule of FAULT_RULES that runs as its own (ungrouped, remote) SLURM job, and its attempt-1 memory."""
    remote = [j for j in plan if j.group is None]
    for name in FAULT_RULES:
        for job in remote:
            if job.rule == name and job.resources.get("mem_mb", "").isdigit():
                return name, int(job.resources["mem_mb"])
    return None, None


@pytest.fixture(scope="module")
def slurm_run(slurm_cluster, tmp_path_factory) -> SlurmRun:
    workdir = tmp_path_factory.mktemp("slurm-run")
    profile = ci_profile(workdir / ".ci-profile")
    env = local_slurm.client_env(slurm_cluster)
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '/usr/bin:/bin')}"

    dry = subprocess.run(
        snakemake_cmd(workdir, profile, "--dry-run"), cwd=workdir, env=env, capture_output=True, text=True, timeout=300
    )
    assert dry.returncode == 0, f"dry run with the SLURM profile failed:\n{(dry.stdout + dry.stderr)[-4000:]}"
    plan = parse_plan(dry.stdout + dry.stderr)
    fault_rule, base_mb = pick_fault_rule(plan)
    if fault_rule is not None:
        # Attempt 1 asks for base_mb, attempt 2 for 2 * base_mb: fail below 1.5 * base_mb.
        env["STEMLAB_FAULT_MIN_MEM_MB"] = f"{fault_rule}={base_mb * 3 // 2}"

    start = time.monotonic()
    run = subprocess.run(
        ["timeout", "-k", "20", str(SNAKEMAKE_TIMEOUT_S), *snakemake_cmd(workdir, profile)],
        cwd=workdir, env=env, capture_output=True, text=True, timeout=SNAKEMAKE_TIMEOUT_S + 60,
        preexec_fn=die_with_parent,
    )
    wall = time.monotonic() - start
    output = run.stdout + run.stderr
    (workdir / "snakemake-slurm.out").write_text(output)
    sctl = subprocess.run(
        ["scontrol", "show", "job", "-o"], env=env, capture_output=True, text=True, timeout=30
    ).stdout
    gpus_log = local_slurm.Layout(slurm_cluster).log / "task_gpus.txt"
    task_gpus = [tuple(line.split()) for line in gpus_log.read_text().splitlines()] if gpus_log.exists() else []
    records = parse_scontrol(sctl)
    print(f"\nSLURM e2e: snakemake {' '.join(TARGETS)} took {wall:.1f} s, {len(records)} SLURM jobs")
    print(timeline(records))
    return SlurmRun(workdir, run.returncode, output, plan, records, task_gpus, fault_rule, base_mb, wall)


# --------------------------------------------------------------------------- tests


def test_profile_overrides_only_name_profile_keys():
    profile = yaml.safe_load(PROFILE.read_text())
    overrides = yaml.safe_load(CI_OVERRIDES.read_text())
    assert profile["executor"] == "slurm" and "executor" not in overrides
    assert "cpus_per_task" not in profile["default-resources"]
    assert set(overrides) - set(profile) <= {"slurm-status-command", "slurm-keep-successful-logs", "max-threads"}
    # The config overlay touches only the cluster block.
    assert set(yaml.safe_load(CI_CONFIG.read_text())) == {"cluster"}


def test_snakemake_run_succeeds(slurm_run):
    assert slurm_run.returncode == 0, f"snakemake failed (rc {slurm_run.returncode}):\n{slurm_run.output[-8000:]}"


def test_every_job_ran_through_slurm(slurm_run):
    assert slurm_run.returncode == 0, slurm_run.output[-4000:]
    local_rules = declared_local_rules()
    remote = [j for j in slurm_run.plan if j.rule not in local_rules]
    assert remote, "the DAG has no job for SLURM"
    finished = Counter(re.findall(r"Finished jobid: \d+ \(Rule: (\S+)\)", slurm_run.output))
    assert finished == Counter(j.rule for j in slurm_run.plan), "the run did not finish the planned jobs"

    records = slurm_run.slurm_jobs
    submitted = re.findall(r"has been submitted with SLURM jobid (\d+)", slurm_run.output)
    assert sorted(submitted, key=int) == [r.job_id for r in records], "SLURM knows jobs snakemake did not submit"
    bad = [r for r in records if r.state != "COMPLETED" and not (r.state == "FAILED" and r.rule == slurm_run.fault_rule)]
    assert bad == [], f"SLURM jobs that did not complete: {bad}"
    # Each finished job of a rule that is not local has its own completed SLURM job (so none ran locally).
    completed = Counter(r.rule for r in records if r.state == "COMPLETED")
    for rule, n in Counter(j.rule for j in remote if j.group is None).items():
        assert completed[rule] == n, f"rule {rule}: {n} jobs planned, {completed[rule]} completed in SLURM"
    for group in {j.group for j in remote if j.group is not None}:
        # A group job's comment is rule_<group>_<rules...>.
        runs = [r for r in records if r.state == "COMPLETED" and r.comment.startswith(f"rule_{group}_")]
        assert runs, f"group {group} never ran as a SLURM job"
    # The plugin's per-job logs (kept by slurm-keep-successful-logs) exist for every SLURM job.
    logs = {p.stem for p in (slurm_run.workdir / "logs" / "slurm").rglob("*.log")}
    assert {r.job_id for r in records} <= logs


def test_gpu_rules_got_a_gpu(slurm_run):
    assert slurm_run.returncode == 0, slurm_run.output[-4000:]
    # A rule's jobs may differ (train_model fits k-means without a GPU): count GPU jobs per rule.
    planned = Counter(j.rule for j in slurm_run.plan if j.resources.get("gpu", "0") not in ("0", ""))
    assert planned, "the smoke DAG has no GPU job (training should ask for gpu=cluster.gpus_per_job)"
    saw = {(job, step): devices for job, step, devices in slurm_run.task_gpus}
    gpu_records = [r for r in slurm_run.slurm_jobs if "gpu:testgpu:1" in r.tres_per_job]
    completed = Counter(r.rule for r in gpu_records if r.state == "COMPLETED")
    assert completed == planned, f"GPU jobs planned per rule {dict(planned)}, given a GPU by SLURM {dict(completed)}"
    for record in slurm_run.slurm_jobs:
        on_gpu = record in gpu_records
        assert (record.partition == "ci_gpu") == on_gpu, f"partition does not match the GPU request: {record}"
        assert on_gpu or "gpu" not in record.tres_per_job, f"CPU job got a GPU: {record}"
    for record in gpu_records:
        # Step 0 is the jobstep plugin's `srun` running the rule.
        assert saw.get((record.job_id, "0")) == "0", f"job {record.job_id} ({record.rule}) saw no GPU: {saw}"
    # Training runs of GPU jobs record the GPU they were given (CPU jobs, e.g. k-means fits, record none).
    gpu_models = [dict(kv.split("=", 1) for kv in j.wildcards.split(", ")) for j in slurm_run.plan
                  if j.rule == "train_model" and j.resources.get("gpu", "0") not in ("0", "")]  # fmt: skip
    assert gpu_models, "no training job asked for a GPU"
    trained = [json.loads((slurm_run.workdir / f"results/models/{w['model']}/seed-{w['seed']}/meta.json").read_text())
               for w in gpu_models]  # fmt: skip
    for meta in trained:
        assert meta["device"]["CUDA_VISIBLE_DEVICES"] == "0", meta["device"]


def test_failed_job_is_retried_with_more_memory(slurm_run):
    assert slurm_run.fault_rule is not None, f"none of {FAULT_RULES} runs as its own SLURM job"
    assert slurm_run.returncode == 0, slurm_run.output[-4000:]
    jobs = [r for r in slurm_run.slurm_jobs if r.rule == slurm_run.fault_rule]
    by_comment: dict[str, list[SlurmJob]] = {}
    for r in jobs:
        by_comment.setdefault(r.comment, []).append(r)
    assert by_comment, f"no SLURM job of {slurm_run.fault_rule} was recorded"
    for comment, attempts in by_comment.items():
        states = [a.state for a in attempts]
        assert states == ["FAILED", "COMPLETED"], f"{comment}: {states}"
        assert [a.mem_mb for a in attempts] == [slurm_run.fault_base_mb, 2 * slurm_run.fault_base_mb]
    assert "injected fault" in slurm_run.output, "the failure was not the injected one"


def _comparable(path: Path):
    if path.name == "meta.json":
        data = json.loads(path.read_text())
        return {k: v for k, v in data.items() if k not in RUN_RECORD_KEYS}
    if path.name == "train_log.csv":
        import pandas as pd

        frame = pd.read_csv(path)
        return frame.drop(columns=[c for c in frame.columns if c in TIMING_COLUMNS]).to_csv(index=False)
    return path.read_bytes()


def test_outputs_equal_a_local_run(slurm_run, smoke_run):
    assert slurm_run.returncode == 0, slurm_run.output[-4000:]

    def files(root: Path) -> dict[str, Path]:
        out = {}
        for p in (root / "results").rglob("*"):
            rel = p.relative_to(root).as_posix()
            if p.is_file() and rel not in NOT_COMPARED and not set(p.parts) & set(NOT_COMPARED_DIRS):
                out[rel] = p
        return out

    slurm_files, local_files = files(slurm_run.workdir), files(smoke_run)
    assert slurm_files, "the SLURM run wrote no results"
    assert sorted(set(slurm_files) - set(local_files)) == [], "the SLURM run wrote files the local run did not"
    differ = [rel for rel in slurm_files if _comparable(slurm_files[rel]) != _comparable(local_files[rel])]
    assert differ == [], f"outputs differ between the SLURM and the local run: {differ}"


# --------------------------------------------------------------------------- preemption


TRAIN_RULE = "train_model"
TRAIN_MODEL = "fx_encoder"  # a GPU model of TARGETS whose inputs (segment tables) the main run made
TRAIN_DIR = f"results/models/{TRAIN_MODEL}/seed-1"
TRAIN_LOG = f"logs/train/train_model/{TRAIN_MODEL}/seed-1.log"
# Seconds each training step sleeps in the requeue run: the smoke fx_encoder checkpoints at step 2 of 4,
# so steps 3-4 (2 x 4 s) are the window in which the requeue must land.
STEP_DELAY_S = 4
TRAIN_OUTPUTS = ("final.pt", "train_log.csv", "meta.json")


def _wait(check, timeout_s: float, what: str, proc: subprocess.Popen):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        if proc.poll() is not None:
            raise AssertionError(f"snakemake ended (rc {proc.returncode}) before {what}")
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def test_preempted_training_is_requeued_and_resumes(slurm_run, slurm_cluster, tmp_path_factory):
    """`--slurm-requeue`: SLURM requeues the training job mid-run (as preemption does); it resumes from its
    checkpoint in the same Snakemake run and ends exactly where the uninterrupted run ended."""
    assert slurm_run.returncode == 0, slurm_run.output[-4000:]
    work = tmp_path_factory.mktemp("slurm-requeue")
    # The training inputs of the finished run, hard-linked; the model directory is left out.
    shutil.copytree(
        slurm_run.workdir / "results", work / "results", copy_function=os.link,
        ignore=lambda d, names: [TRAIN_MODEL] if Path(d).name == "models" else [],
    )
    profile = ci_profile(work / ".ci-profile")
    env = local_slurm.client_env(slurm_cluster)
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '/usr/bin:/bin')}"
    # Each training step sleeps STEP_DELAY_S (stemlab.faults; weights unchanged) so the requeue lands mid-run:
    # unslowed, the smoke model finished all its steps before the requeue on an idle node.
    env["STEMLAB_FAULT_STEP_DELAY_S"] = str(STEP_DELAY_S)
    targets = [f"{TRAIN_DIR}/{name}" for name in TRAIN_OUTPUTS]
    cmd = snakemake_cmd(work, profile, "--slurm-requeue", "--allowed-rules", TRAIN_RULE, targets=targets)
    out_path = work / "snakemake-requeue.out"
    with open(out_path, "w") as out:
        proc = subprocess.Popen(
            ["timeout", "-k", "20", "300", *cmd], cwd=work, env=env, stdout=out, stderr=subprocess.STDOUT, text=True,
            preexec_fn=die_with_parent,
        )
    try:
        def running_training_job():
            sctl = subprocess.run(["scontrol", "show", "job", "-o"], env=env, capture_output=True, text=True).stdout
            jobs = [r for r in parse_scontrol(sctl) if r.rule == TRAIN_RULE and r.state == "RUNNING"
                    and int(r.job_id) > max(int(j.job_id) for j in slurm_run.slurm_jobs)]
            log = work / TRAIN_LOG
            checkpointed = log.exists() and "checkpoint " in log.read_text(errors="replace")
            return jobs[0].job_id if jobs and checkpointed else None

        job_id = _wait(running_training_job, 180, "the training job to write its first checkpoint", proc)
        requeue = subprocess.run(["scontrol", "requeue", job_id], env=env, capture_output=True, text=True)
        assert requeue.returncode == 0, requeue.stderr
        # SLURM holds a requeued job for ~2 min (Reason=BeginTime); on a real cluster it waits for resources
        # anyway. Make it eligible now.
        _wait(
            lambda: "Reason=BeginTime" in subprocess.run(
                ["scontrol", "show", "job", "-o", job_id], env=env, capture_output=True, text=True
            ).stdout,
            30, "the requeued job to be pending", proc,
        )
        release = subprocess.run(
            ["scontrol", "update", f"JobId={job_id}", "StartTime=now"], env=env, capture_output=True, text=True
        )
        assert release.returncode == 0, release.stderr
        proc.wait(timeout=360)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    output = out_path.read_text()
    assert proc.returncode == 0, output[-6000:]
    record = next(
        r for r in parse_scontrol(
            subprocess.run(["scontrol", "show", "job", "-o", job_id], env=env, capture_output=True, text=True).stdout
        )
    )
    assert record.state == "COMPLETED" and record.fields.get("Restarts") == "1", record.fields
    # The local cluster sets JobRequeue=0: only jobs submitted with --requeue (--slurm-requeue) are requeued.
    assert record.fields.get("Requeue") == "1", "the job was not submitted with --requeue"

    meta = json.loads((work / TRAIN_DIR / "meta.json").read_text())
    assert meta["resumed"] is True and len(meta["runs"]) == 2, meta["runs"]
    assert {run["slurm_job_id"] for run in meta["runs"]} == {job_id}
    assert meta["runs"][1]["start_step"] == meta["runs"][0]["end_step"] > 0, "the second run did not resume"
    for name in TRAIN_OUTPUTS:
        resumed, uninterrupted = work / TRAIN_DIR / name, slurm_run.workdir / TRAIN_DIR / name
        if name == "meta.json":
            keep = lambda m: {k: v for k, v in m.items() if k not in RUN_RECORD_KEYS | {"resumed"}}  # noqa: E731
            assert keep(meta) == keep(json.loads(uninterrupted.read_text()))
        else:
            assert _comparable(resumed) == _comparable(uninterrupted), f"{name} differs after the resume"
