"""scripts/slurm-local: a real single-node SLURM cluster (Debian's slurmctld, slurmd, munge) with four
fake GPUs, and what SAM3's launcher relies on from it: GRES allocation, job arrays, SLURM's own
rejections, cancel, partition time limits, and submitit submitting to it."""

import os
import re
import subprocess
import sys
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


def test_unknown_partition_is_refused_in_slurms_words(slurm_cluster):
    refused = slurm_cluster.run("sbatch", "--test-only", "-p", "nosuchpartition", "--wrap", "true", check=False)
    assert refused.returncode != 0
    assert "invalid partition specified: nosuchpartition" in refused.stderr, refused.stderr
    accepted = slurm_cluster.run("sbatch", "--test-only", "-p", "long", "--gres=gpu:4", "--wrap", "true", check=False)
    assert accepted.returncode == 0, accepted.stderr
    assert "in partition long" in accepted.stderr
    too_many = slurm_cluster.run("sbatch", "--test-only", "--gres=gpu:5", "--wrap", "true", check=False)
    assert too_many.returncode != 0
    assert "Requested node configuration is not available" in too_many.stderr, too_many.stderr


def test_scancel_stops_a_running_job_and_its_processes(slurm_cluster):
    marker = f"sleep {3000 + os.getpid() % 997}"  # a command line that no other process has
    job = slurm_cluster.sbatch("-o", "/dev/null", "--wrap", marker)
    slurm_cluster.wait(job, until={"RUNNING"})
    assert _wait_for(lambda: _processes(marker)), "the job is RUNNING but its command never started"
    slurm_cluster.run("scancel", job)
    assert slurm_cluster.wait(job) == {job: "CANCELLED"}
    assert _wait_for(lambda: not _processes(marker)), "the job's command outlived scancel"


def test_partition_time_limits_are_visible_and_not_enforced_at_submit(slurm_cluster):
    limits = dict(line.split() for line in slurm_cluster.run("sinfo", "-h", "-o", "%R %l").stdout.splitlines())
    assert limits == {"debug": "1:00:00", "long": "3-00:00:00"}
    assert "MaxTime=3-00:00:00" in slurm_cluster.run("scontrol", "show", "partition", "long").stdout
    default = slurm_cluster.run("scontrol", "show", "partition", "debug").stdout
    assert "Default=YES" in default
    # Like most clusters (EnforcePartLimits=NO), a job longer than its partition allows is
    # accepted, even by --test-only, and then waits forever: pre-flight must compare the limits.
    job = slurm_cluster.sbatch("-p", "debug", "--time=2:00:00", "-o", "/dev/null", "--wrap", "true")
    try:
        reason = ""
        deadline = time.monotonic() + 10
        while reason != "PartitionTimeLimit" and time.monotonic() < deadline:
            reason = slurm_cluster.run("squeue", "-h", "-j", job, "-o", "%r").stdout.strip()
            time.sleep(0.1)
        assert reason == "PartitionTimeLimit"
    finally:
        slurm_cluster.run("scancel", job)


def _gpu_job(x):
    """Runs in the SLURM job. cloudpickle refers to a module's functions by name, and the job's
    python cannot import this test module, so the test has it pickled by value."""
    import os
    import sys

    return x * 2, os.environ.get("CUDA_VISIBLE_DEVICES"), sys.executable, os.environ.get("SLURM_JOB_PARTITION")


def test_submitit_submits_to_the_cluster_and_gets_the_result(slurm_cluster, tmp_path, monkeypatch):
    submitit = pytest.importorskip("submitit")
    import cloudpickle

    monkeypatch.setenv("SLURM_CONF", str(slurm_cluster.conf))  # submitit calls sbatch with our environment
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    try:
        executor = submitit.AutoExecutor(folder=tmp_path / "submitit")
        assert executor.cluster == "slurm"
        executor.update_parameters(slurm_partition="debug", gpus_per_node=1, timeout_min=5)
        job = executor.submit(_gpu_job, 21)
    finally:
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    # Without accounting there is no sacct: submitit's job.state stays UNKNOWN and only the result
    # file ends job.result(); so poll with a bound instead of calling result() blind.
    states = slurm_cluster.wait(job.job_id)
    assert states == {job.job_id: "COMPLETED"}, job.stderr()
    assert job.done()
    assert job.result() == (42, "0", sys.executable, "debug")


def test_submitit_cannot_tell_a_cancelled_job_without_sacct(slurm_cluster, tmp_path, monkeypatch):
    """Why our status code must ask squeue/scontrol: submitit's job.done() never turns true for a
    job that dies without writing its result (job.result() would wait forever)."""
    submitit = pytest.importorskip("submitit")
    monkeypatch.setenv("SLURM_CONF", str(slurm_cluster.conf))
    executor = submitit.AutoExecutor(folder=tmp_path / "submitit")
    executor.update_parameters(slurm_partition="debug", timeout_min=5)
    job = executor.submit(time.sleep, 600)
    slurm_cluster.wait(job.job_id, until={"RUNNING"})
    job.cancel(check=True)
    assert slurm_cluster.wait(job.job_id) == {job.job_id: "CANCELLED"}
    assert not job.done(force_check=True)
    assert job.state == "UNKNOWN"


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
