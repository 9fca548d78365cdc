"""The local SLURM cluster of scripts/cluster/local_slurm.py: GPU gres, and a stop path that leaves nothing behind.

Needs root and Debian's slurmctld/slurmd/slurm-client/munge (`make setup-test`). Each test starts its own
cluster (about 1 s) in a temporary state dir.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from tests.workflow_utils import REPO

SCRIPT = REPO / "scripts" / "cluster" / "local_slurm.py"
sys.path.insert(0, str(SCRIPT.parent))
import local_slurm  # noqa: E402

needs_cluster = [
    pytest.mark.slurm,
    pytest.mark.skipif(os.geteuid() != 0, reason="the local SLURM cluster needs root (run as root in CI)"),
]


def cluster_test(fn):
    for mark in needs_cluster:
        fn = mark(fn)
    return fn


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def pids_with_cmdline(token: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if token in cmd and local_slurm._alive(int(entry.name)) and int(entry.name) != os.getpid():
            found.append(int(entry.name))
    return found


def unique_sleep() -> str:
    """`sleep 600.<random digits>`: a job command whose process can be found by its command line."""
    return f"sleep 600.{uuid.uuid4().int % 10**12:012d}"


def submit(state_dir: Path, script: str, *opts: str) -> str:
    out = subprocess.run(
        ["sbatch", "--parsable", *opts, "--wrap", script],
        env=local_slurm.client_env(state_dir),
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return out.stdout.strip().split(";")[0]


def wait_until(check, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def job_running(state_dir: Path, job_id: str) -> bool:
    out = subprocess.run(
        ["squeue", "-h", "-j", job_id, "-o", "%T"],
        env=local_slurm.client_env(state_dir),
        capture_output=True,
        text=True,
        timeout=10,
    )
    return out.stdout.strip() == "RUNNING"


@pytest.fixture
def system_conf():
    """Put a sentinel at /etc/slurm/slurm.conf (or keep the real one) and check that it survives."""
    conf = local_slurm.SYSTEM_CONF
    original = conf.read_bytes() if conf.exists() and not conf.is_symlink() else None
    if original is None:
        if conf.is_symlink():
            pytest.fail(f"{conf} is a symlink ({os.readlink(conf)}): a local cluster is still running; stop it")
        conf.parent.mkdir(parents=True, exist_ok=True)
        conf.write_text("# sentinel of tests/test_slurm_cluster.py\n")
    expected = conf.read_bytes()
    yield expected
    if original is None and conf.exists() and not conf.is_symlink() and conf.read_bytes() == expected:
        conf.unlink()


def assert_nothing_left(state_dir: Path, expected_conf: bytes, job_token: str) -> None:
    lay = local_slurm.Layout(state_dir)
    assert local_slurm.marked_pids(lay) == [], "a daemon (or slurmstepd) of the cluster is still running"
    for name in ("munged", "slurmctld", "slurmd", "watchdog"):
        f = lay.pid_file(name)
        if f.exists():
            assert not local_slurm._alive(int(f.read_text())), f"{name} still running"
    assert pids_with_cmdline(job_token) == [], "a job's process outlived the cluster"
    conf = local_slurm.SYSTEM_CONF
    assert not conf.is_symlink() and conf.read_bytes() == expected_conf, "/etc/slurm/slurm.conf not restored"


@cluster_test
def test_gpu_job_and_stop_ends_everything(tmp_path, system_conf):
    state = tmp_path / "cluster"
    started = cli("start", "--state-dir", str(state), "--cpus", "2", "--mem-mb", "8000")
    assert started.returncode == 0, started.stderr
    try:
        assert os.readlink(local_slurm.SYSTEM_CONF) == str(local_slurm.Layout(state).conf)
        info = cli("status", "--state-dir", str(state))
        assert info.returncode == 0, info.stdout + info.stderr
        # A second cluster must refuse to take /etc/slurm/slurm.conf from a running one.
        other = cli("start", "--state-dir", str(tmp_path / "other"))
        assert other.returncode == 1 and "another local SLURM cluster is running" in other.stderr

        out = tmp_path / "gpu.out"
        gpu_job = submit(
            state, "echo CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES:-none}", "-p", "ci_gpu", "--gpus=testgpu:1",
            "--mem", "100", "-o", str(out),
        )
        cpu_out = tmp_path / "cpu.out"
        submit(state, "echo CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES:-none}", "--mem", "100", "-o", str(cpu_out))
        wait_until(lambda: out.exists() and cpu_out.exists() and out.read_text() and cpu_out.read_text(), 30, "jobs")
        assert out.read_text().strip() == "CUDA_VISIBLE_DEVICES=0"
        assert cpu_out.read_text().strip() == "CUDA_VISIBLE_DEVICES=none"
        # The TaskProlog records what each job step saw (the e2e test relies on it).
        seen = (local_slurm.Layout(state).log / "task_gpus.txt").read_text().split("\n")
        assert f"{gpu_job} ? 0" in seen, seen

        token = unique_sleep()
        long_job = submit(state, token, "--mem", "100", "-o", "/dev/null")
        wait_until(lambda: job_running(state, long_job) and pids_with_cmdline(token), 30, "the long job to run")
    finally:
        stopped = cli("stop", "--state-dir", str(state))
    assert stopped.returncode == 0, stopped.stderr
    assert_nothing_left(state, system_conf, token)
    again = cli("stop", "--state-dir", str(state))  # idempotent
    assert again.returncode == 0 and '"signalled": []' in again.stdout
    assert cli("status", "--state-dir", str(state)).returncode == 3


@cluster_test
def test_killed_driver_leaves_no_daemon(tmp_path, system_conf):
    """A test process killed with SIGKILL mid-run: the watchdog stops its cluster and the running job."""
    state = tmp_path / "cluster"
    token = unique_sleep()
    driver_code = textwrap.dedent(
        f"""
        import os, subprocess, sys, time
        sys.path.insert(0, {str(SCRIPT.parent)!r})
        import local_slurm
        from pathlib import Path
        state = Path({str(state)!r})
        local_slurm.start(state, local_slurm.ClusterSpec(cpus=2, mem_mb=4000), owner_pid=os.getpid())
        subprocess.run(["sbatch", "--mem", "100", "-o", "/dev/null", "--wrap", "{token}"],
                       env=local_slurm.client_env(state), check=True, capture_output=True)
        print("ready", flush=True)
        time.sleep(600)
        """
    )
    driver = subprocess.Popen([sys.executable, "-c", driver_code], stdout=subprocess.PIPE, text=True)
    try:
        assert driver.stdout.readline().strip() == "ready"
        wait_until(lambda: bool(pids_with_cmdline(token)), 30, "the driver's job to run")
        lay = local_slurm.Layout(state)
        assert local_slurm.marked_pids(lay), "no daemon running before the kill"
        driver.send_signal(signal.SIGKILL)
        driver.wait(10)
        wait_until(
            lambda: not local_slurm.marked_pids(lay) and not local_slurm.SYSTEM_CONF.is_symlink(),
            60,
            "the watchdog to stop the cluster",
        )
        assert_nothing_left(state, system_conf, token)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait(10)
        cli("stop", "--state-dir", str(state))


def test_start_refuses_without_programs(tmp_path, monkeypatch):
    monkeypatch.setattr(local_slurm, "BINARIES", ("definitely-not-a-slurm-binary",))
    with pytest.raises(local_slurm.ClusterError, match="make setup-test"):
        local_slurm.start(tmp_path / "cluster", local_slurm.ClusterSpec())


def test_slurm_conf_has_gpu_gres_and_partitions(tmp_path):
    lay = local_slurm.Layout(tmp_path)
    spec = local_slurm.ClusterSpec(cpus=3, mem_mb=5000, gpus=2, gpu_type="x1", cpu_partition="c", gpu_partition="g")
    conf = local_slurm.render_slurm_conf(lay, spec, 7001, 7002)
    assert "Gres=gpu:x1:2" in conf and "CPUs=3" in conf and "RealMemory=5000" in conf
    assert "PartitionName=c " in conf and "PartitionName=g " in conf and "MinJobAge=3600" in conf
    gres = local_slurm.render_gres_conf(lay, spec)
    assert gres.count("Name=gpu Type=x1 File=") == 2
