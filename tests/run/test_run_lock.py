"""One launch of a run at a time (tasks/lib/run/run_lock.py), and a run record that is not one."""

import json
import os
import platform
import signal
import subprocess
import sys
import time

import pytest
from conftest import ROOT, run_inv

from tasks.lib.run import run_lock

HOLD = """
import sys, time
from pathlib import Path
from tasks.lib.run import run_lock
with run_lock.hold(Path(sys.argv[1]), command=["inv", "run.train", "--name", "r"]):
    print("held", flush=True)
    time.sleep(60)
"""


@pytest.fixture
def holder(tmp_path):
    """Another process holding the lock of run `r` (until the test kills it)."""
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path / "exp" / "r")], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    assert process.stdout.readline() == "held\n"
    yield process
    process.kill()
    process.wait()


def test_a_second_launch_waits_then_names_the_first(tmp_path, holder):
    started = time.monotonic()
    with pytest.raises(run_lock.RunBusy) as raised, run_lock.hold(tmp_path / "exp" / "r", wait_s=0.5):
        pass
    assert time.monotonic() - started >= 0.5
    message = str(raised.value)
    assert f"run 'r' is being launched by pid {holder.pid} on {platform.node()} since " in message
    assert "(inv run.train --name r); waited 0 s: let it finish, then see inv run.status --name r" in message
    assert raised.value.code == 4


def test_a_holder_killed_with_sigkill_leaves_the_run_free(tmp_path, holder):
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    with run_lock.hold(tmp_path / "exp" / "r", wait_s=0.5):  # the kernel dropped the lock with the process
        holder_file = json.loads(run_lock.holder_path(tmp_path / "exp" / "r").read_text())
        assert holder_file["pid"] == os.getpid()
    assert not run_lock.holder_path(tmp_path / "exp" / "r").exists()


def test_a_lock_left_by_a_dead_process_is_named_with_the_fix(tmp_path):
    """A lock the file system did not release when its holder died (NFS whose lock server kept it; here
    another process holds the OS lock and wrote no holder): the holder named is not running, so the
    message says which file to remove."""
    run_dir = tmp_path / "exp" / "r"
    run_dir.parent.mkdir(parents=True)
    dead = subprocess.Popen(["true"])
    dead.wait()
    run_lock.holder_path(run_dir).write_text(json.dumps({"pid": dead.pid, "host": platform.node(), "since": "x"}))
    keeper = "import fcntl, sys, time; f = open(sys.argv[1], 'a'); fcntl.flock(f, fcntl.LOCK_EX); print(1, flush=True); time.sleep(60)"
    server = subprocess.Popen([sys.executable, "-c", keeper, str(run_lock.lock_path(run_dir))], stdout=subprocess.PIPE)
    try:
        server.stdout.readline()
        with pytest.raises(run_lock.RunBusy) as raised, run_lock.hold(run_dir, wait_s=0.2):
            pass
    finally:
        server.kill()
        server.wait()
    assert str(raised.value) == (
        f"run 'r' is locked, but its holder, pid {dead.pid} on {platform.node()}, is not running: the file system "
        f"did not release its lock (NFS without locking?); remove {run_lock.lock_path(run_dir)} and try again"
    )


def test_the_lock_is_reentrant_in_one_process(tmp_path):
    with run_lock.hold(tmp_path / "r", wait_s=0.1), run_lock.hold(tmp_path / "r", wait_s=0.1):
        assert run_lock.holder_path(tmp_path / "r").exists()
    assert not run_lock.holder_path(tmp_path / "r").exists()


@pytest.mark.parametrize("text", ['{"name": "half", "tasks": [{"dataset": "a", "st', "", "[]"])
def test_a_record_cut_off_or_edited_is_one_line_with_the_fix(clean_env, tmp_path, text):
    run_dir = tmp_path / "exp" / "half"
    run_dir.mkdir(parents=True)
    (run_dir / "launch.json").write_text(text)
    env = dict(clean_env, SAM3_EXPERIMENT_ROOT=str(tmp_path / "exp"))
    for task in ("run.status", "run.logs", "run.results"):
        done = run_inv([task, "--name", "half"], env)
        assert done.returncode == 2, done.stderr
        (line,) = done.stderr.strip().splitlines()
        assert line.startswith(f"error: {run_dir / 'launch.json'} ") and "Traceback" not in done.stderr
        assert line.endswith(f"restore it, or move the run aside (mv {run_dir} {run_dir}.broken) and launch again")
