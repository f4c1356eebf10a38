"""A local task's state from the process table: pending or running only while its runner (or, running,
its own training process) is alive and really ours; otherwise stopped, so the same command relaunches it."""

import subprocess
import sys
import time
from pathlib import Path

import pytest

from tasks.lib.run import status

STOPPED = "stopped (its runner went away)"


def sleeper(*marks: str) -> subprocess.Popen:
    """A process whose command line holds marks, as a runner's or SAM3's train.py's would (once the kernel
    shows it: for a moment after exec the command line reads empty)."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", *marks])
    while not Path(f"/proc/{process.pid}/cmdline").read_bytes():
        time.sleep(0.01)
    return process


@pytest.fixture
def processes():
    started = []
    yield started
    for process in started:
        process.kill()
        process.wait()


def record(run_dir, runner_pid, *entries):
    return {
        "name": "r",
        "mode": "local",
        "run_dir": str(run_dir),
        "launches": [{"runner_pid": runner_pid}],
        "tasks": list(entries),
    }


def entry(state, pid=None, mode="local"):
    return {
        "dataset": "actions",
        "cell": None,
        "launch": 0,
        "mode": mode,
        "state": state,
        "pid": pid,
        "job_id": None,
        "exit_code": None,
        "experiment_dir": "/nonexistent",
    }


def test_pending_lives_and_dies_with_its_runner(tmp_path, processes):
    runner = sleeper("tasks.lib.run.local_runner", str(tmp_path))
    processes.append(runner)
    pending = entry("pending")
    assert status.task_state(record(tmp_path, runner.pid, pending), pending) == "pending"
    assert status.task_state(record(tmp_path / "other-run", runner.pid, pending), pending) == STOPPED
    runner.kill()
    runner.wait()
    assert status.task_state(record(tmp_path, runner.pid, pending), pending) == STOPPED
    assert status.task_state(record(tmp_path, None, pending), pending) == STOPPED  # the launcher died first


def test_a_pid_that_is_not_ours_is_not_alive(tmp_path, processes):
    stranger = sleeper("something-else")
    processes.append(stranger)
    running = entry("running", pid=stranger.pid)
    assert status.task_state(record(tmp_path, stranger.pid, running), running) == STOPPED


def test_running_lives_while_its_training_does_even_without_its_runner(tmp_path, processes):
    training = sleeper("-m", "sam3.train.train")
    processes.append(training)
    running = entry("running", pid=training.pid)
    assert status.task_state(record(tmp_path, None, running), running) == "running"
    training.kill()
    training.wait()
    assert status.task_state(record(tmp_path, None, running), running) == STOPPED


def test_a_cluster_task_not_yet_submitted_stays_pending(tmp_path):
    pending = entry("pending", mode="cluster")
    assert status.task_state(record(tmp_path, None, pending), pending) == "pending"
