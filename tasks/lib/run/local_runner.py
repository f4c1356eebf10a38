"""The local runner: `python -m tasks.lib.run.local_runner RUN_DIR LAUNCH` runs the tasks of one launch
of a local run, each dataset's train.py in turn, and records each in launch.json.

local.start_runner starts it in a session of its own, so it lives on when the launcher's terminal or
SSH session goes away, or the launcher is killed. Its environment is the job environment (secrets
left out); each train.py gets it, in a process group of its own (run.cancel signals the group), its
output appended to `<task>/train.log`. Every record change is a read-modify-write of the latest
launch.json under the run's lock (launch_record.changing); a task starts only under that lock, and
only while it is still pending, so run.cancel (which marks pending tasks cancelled under the lock)
is never raced: no task of a cancelled run starts.
"""

import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from .launch_record import changing

Key = tuple[str | None, str | None]


def main(run_dir: Path, index: int) -> int:
    """Run launch `index`'s tasks in turn; 1 when one of them failed, else 0."""
    with changing(run_dir) as record:
        record["launches"][index]["runner_pid"] = os.getpid()
        keys = [_key(entry) for entry in record["tasks"] if entry.get("launch") == index]
    failed = False
    for key in keys:
        process = _start(run_dir, index, key)
        if process is None:
            continue
        code = process.wait()
        with changing(run_dir) as record:
            _entry(record, key).update(state="done" if code == 0 else "failed", exit_code=code)
        print(f"== {_label(key, run_dir)}: exited {code}", flush=True)
        failed = failed or code != 0
    with changing(run_dir) as record:
        record["launches"][index]["ended"] = record["ended"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    return 1 if failed else 0


def _start(run_dir: Path, index: int, key: Key) -> subprocess.Popen | None:
    """Start the task's train.py if it is still this launch's and pending (not cancelled, not taken by a
    later launch), and record it running with its pid; None when it is not to run."""
    with changing(run_dir) as record:
        entry = _entry(record, key)
        if entry.get("launch") != index or entry["state"] != "pending":
            return None
        folder = Path(entry["experiment_dir"])
        folder.mkdir(parents=True, exist_ok=True)
        print(f"== {_label(key, run_dir)}: {shlex.join(entry['argv'])}", flush=True)
        with open(folder / "train.log", "a") as log:
            process = subprocess.Popen(
                entry["argv"],
                cwd=run_dir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        entry.update(state="running", pid=process.pid)
    return process


def _key(entry: dict[str, Any]) -> Key:
    return (entry.get("cell"), entry["dataset"])


def _entry(record: dict[str, Any], key: Key) -> dict[str, Any]:
    return next(entry for entry in record["tasks"] if _key(entry) == key)


def _label(key: Key, run_dir: Path) -> str:
    return "/".join(part for part in key if part) or run_dir.name


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), int(sys.argv[2])))
