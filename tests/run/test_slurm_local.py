"""scripts/slurm-local: a real single-node SLURM cluster (Debian's slurmctld, slurmd, munge) with four
fake GPUs, as the script sets it up: GRES allocation, job arrays, its partitions and their limits, its
start, status and stop. (What SLURM and submitit themselves do is theirs to test; the run.* cluster tests
use this cluster for ours.)"""

import os
import re
import subprocess
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "slurm-local"


def test_gres_job_gets_two_of_the_four_fake_gpus(slurm_cluster, tmp_path):
    out = tmp_path / "gpus.out"
    job = slurm_cluster.sbatch(
        "--gres=gpu:2",
        "-o",
        out,
        "--wrap",
        "echo CUDA_VISIBLE_DEVICES=$CUDA_VISIBLE_DEVICES SLURM_JOB_GPUS=$SLURM_JOB_GPUS",
    )
    assert slurm_cluster.wait(job) == {job: "COMPLETED"}
    assert out.read_text().split() == ["CUDA_VISIBLE_DEVICES=0,1", "SLURM_JOB_GPUS=0,1"]
    shown = slurm_cluster.run("scontrol", "show", "job", "-o", job).stdout
    assert "TresPerNode=gres:gpu:2" in shown, shown
    node = slurm_cluster.run("scontrol", "show", "node", "-o", slurm_cluster.node).stdout
    assert "Gres=gpu:4" in node, node


def test_job_array_runs_each_task_with_its_index(slurm_cluster, tmp_path):
    job = slurm_cluster.sbatch(
        "--array=0-1", "-o", tmp_path / "task_%a.out", "--wrap", "echo task=$SLURM_ARRAY_TASK_ID of $SLURM_ARRAY_JOB_ID"
    )  # the test cluster's MaxArraySize is 2 (tests/support/slurm_fixture.py)
    states = slurm_cluster.wait(job)
    assert states == {f"{job}_{i}": "COMPLETED" for i in range(2)}
    for i in range(2):
        assert (tmp_path / f"task_{i}.out").read_text().strip() == f"task={i} of {job}"


def test_partition_time_limits_are_the_scripts(slurm_cluster):
    """The two partitions scripts/slurm-local writes, with the limits pre-flight compares a job against."""
    limits = dict(line.split() for line in slurm_cluster.run("sinfo", "-h", "-o", "%R %l").stdout.splitlines())
    assert limits == {"debug": "1:00:00", "long": "3-00:00:00"}
    assert "Default=YES" in slurm_cluster.run("scontrol", "show", "partition", "debug").stdout


def test_script_env_and_usage_without_a_cluster(tmp_path):
    env = dict(os.environ, SAM3_SLURM_DIR=str(tmp_path / "my cluster"))
    out = subprocess.run([str(SCRIPT), "env"], env=env, capture_output=True, text=True, check=True).stdout
    assert out == f"export SLURM_CONF='{tmp_path}/my cluster/slurm.conf'\n"
    shell = subprocess.run(
        ["bash", "-c", f'eval "$({SCRIPT} env)"; echo "$SLURM_CONF"'], env=env, capture_output=True, text=True
    )
    assert shell.stdout == f"{tmp_path}/my cluster/slurm.conf\n"
    usage = subprocess.run([str(SCRIPT), "restart"], env=env, capture_output=True, text=True)
    assert usage.returncode == 2 and "usage:" in usage.stderr
    status = subprocess.run([str(SCRIPT), "status"], env=env, capture_output=True, text=True)
    assert status.returncode == 1 and "not running" in status.stdout
    stop = subprocess.run([str(SCRIPT), "stop"], env=env, capture_output=True, text=True)
    assert stop.returncode == 0 and "not running" in stop.stdout


def test_start_is_idempotent_and_status_reports(slurm_cluster):
    env = dict(os.environ, SAM3_SLURM_DIR=str(slurm_cluster.root))
    again = subprocess.run([str(SCRIPT), "start"], env=env, capture_output=True, text=True, timeout=60)
    assert again.returncode == 0, again.stderr
    assert "already running" in again.stdout
    status = subprocess.run([str(SCRIPT), "status"], env=env, capture_output=True, text=True, timeout=60)
    assert status.returncode == 0, status.stdout + status.stderr
    assert re.search(r"^slurmctld\s+running, pid \d+", status.stdout, re.M)
    assert re.search(r"^debug\*\s+up\s+1:00:00", status.stdout, re.M)


def test_stop_leaves_nothing_running(slurm_cluster, tmp_path):
    """A second cluster next to the session's (other ports, same node name): start, a running
    job, stop; no daemon and no job process of it remains."""
    folder = tmp_path / "second"
    env = dict(os.environ, SAM3_SLURM_DIR=str(folder))
    started = subprocess.run([str(SCRIPT), "start"], env=env, capture_output=True, text=True, timeout=90)
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        pids = {d: int((folder / "run" / f"{d}.pid").read_text()) for d in ("munged", "slurmctld", "slurmd")}
        marker = f"sleep {4000 + os.getpid() % 997}"
        job_env = dict(env, SLURM_CONF=str(folder / "slurm.conf"))
        subprocess.run(["sbatch", "-o", "/dev/null", "--wrap", marker], env=job_env, check=True, capture_output=True)
        assert _wait_for(lambda: _processes(marker), timeout=30), "the job never started"
    finally:
        stopped = subprocess.run([str(SCRIPT), "stop"], env=env, capture_output=True, text=True, timeout=90)
    assert stopped.returncode == 0, stopped.stderr
    assert not _processes(marker)
    for daemon, pid in pids.items():
        assert not _running(pid), f"{daemon} (pid {pid}) still runs"
    assert not any((folder / "run").glob("*.pid"))


def _wait_for(condition, timeout=15.0):
    """Poll `condition` until it is true or `timeout` seconds pass; its last value."""
    deadline = time.monotonic() + timeout
    while not (value := condition()) and time.monotonic() < deadline:
        time.sleep(0.1)
    return value


def _processes(cmdline):
    """Pids of live processes whose command line is exactly `cmdline` (split on spaces)."""
    want = cmdline.encode().replace(b" ", b"\0") + b"\0"
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (entry / "cmdline").read_bytes() == want and _running(int(entry.name)):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def _running(pid):
    """True for a live process (a zombie waiting for its parent is not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return False
