"""A launched run, followed: each task's state (process table or SLURM), its logs, cancelling it."""

import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from ..core.errors import ConfigError
from .launch_record import RECORD
from .local import pid_alive
from .slurm import slurm_state


def task_state(record: dict[str, Any], entry: dict[str, Any]) -> str:
    """The state now: from the process table for local runs, from squeue/scontrol for cluster runs."""
    if record["mode"] == "cluster" and entry.get("job_id"):
        return slurm_state(entry["job_id"])
    if entry["state"] == "running" and not pid_alive(entry["pid"]):
        return "stopped (the launcher went away)"
    return entry["state"]


def _log_files(record: dict[str, Any], entry: dict[str, Any]) -> list[Path]:
    if record["mode"] == "cluster":
        job = entry.get("job_id")
        return sorted((Path(record["run_dir"]) / "submitit_logs").glob(f"{job}_*_log.*")) if job else []
    return [Path(entry["experiment_dir"]) / "train.log"]


def print_logs(record: dict[str, Any], dataset: str | None, follow: bool, stream=sys.stdout, poll: float = 1.0) -> None:
    """Print each task's log; with follow, keep printing new lines until no task is running."""
    entries = [e for e in record["tasks"] if dataset in (None, e["dataset"])]
    if not entries:
        names = ", ".join(str(e["dataset"]) for e in record["tasks"])
        raise ConfigError(f"--dataset {dataset!r} is not in run {record['name']} (its datasets: {names})")
    offsets: dict[Path, int] = {}
    while True:
        for entry in entries:
            for path in _log_files(record, entry):
                if not path.exists():
                    continue
                with open(path, errors="replace") as handle:
                    handle.seek(offsets.get(path, 0))
                    text = handle.read()
                    offsets[path] = handle.tell()
                label = entry["dataset"] or record["name"]
                for line in text.splitlines():
                    stream.write(f"[{label}] {line}\n")
        stream.flush()
        running = any(task_state(record, e).startswith(("running", "pending", "submitted")) for e in entries)
        if not follow or not running:
            return
        time.sleep(poll)
        record = json.loads((Path(record["run_dir"]) / RECORD).read_text())
        entries = [e for e in record["tasks"] if dataset in (None, e["dataset"])]


def cancel(record: dict[str, Any], dry_run: bool, kill, sig) -> list[str]:
    """scancel the run's SLURM jobs, or signal its local process groups; what was done, a line each."""
    done = []
    for entry in record["tasks"]:
        label = entry["dataset"] or record["name"]
        if record["mode"] == "cluster" and entry.get("job_id"):
            argv = ["scancel", entry["job_id"]]
            if not dry_run:
                subprocess.run(argv, check=True, capture_output=True, text=True, timeout=60)
            done.append(f"{label}: {'would run' if dry_run else 'ran'} {shlex.join(argv)}")
        elif pid_alive(entry["pid"]):
            if not dry_run:
                kill(-os.getpgid(entry["pid"]), sig)
            done.append(f"{label}: {'would stop' if dry_run else 'stopped'} process group of pid {entry['pid']}")
    return done or [f"{record['name']}: nothing is running"]
