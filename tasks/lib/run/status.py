"""A launched run, followed: each task's state (process table or SLURM), its logs, cancelling it."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from ..core.errors import ConfigError
from .identity import LIVE
from .launch_record import RECORD
from .local import pid_alive
from .slurm import job_states, slurm_state


def task_state(record: dict[str, Any], entry: dict[str, Any], states: dict[str, str] | None = None) -> str:
    """The state now: from the process table for a local task, from squeue for a cluster task (pass
    slurm.job_states() to ask SLURM once for many tasks)."""
    if entry.get("mode", record["mode"]) == "cluster" and entry.get("job_id"):
        return slurm_state(entry["job_id"], states)
    if entry["state"] == "running" and not pid_alive(entry["pid"]):
        return "stopped (the launcher went away)"
    return entry["state"]


def refuse_restart_while_live(record: dict[str, Any]) -> dict[str, Any]:
    """--restart: refused while the run still has tasks queued or running; the record when it has none."""
    live = [state for state in run_states(record) if state.startswith(LIVE)]
    if live:
        raise ConfigError(f"run {record['name']!r} still has {len(live)} task(s) queued or running; stop them first "
                          f"(inv run.cancel --name {record['name']}) or pick a new --name")  # fmt: skip
    return record


def run_states(record: dict[str, Any]) -> list[str]:
    """Every task's state, SLURM asked once."""
    clustered = any(entry.get("mode", record["mode"]) == "cluster" for entry in record["tasks"])
    states = job_states() if clustered else {}
    return [task_state(record, entry, states) for entry in record["tasks"]]


def state_of_each_run():
    """state_of(record, entry), asking SLURM once per run rather than once per task (run.results)."""
    seen: dict[int, dict[int, str]] = {}

    def state_of(record: dict[str, Any], entry: dict[str, Any]) -> str:
        if id(record) not in seen:
            seen[id(record)] = {id(e): state for e, state in zip(record["tasks"], run_states(record), strict=True)}
        return seen[id(record)][id(entry)]

    return state_of


def label(record: dict[str, Any], entry: dict[str, Any]) -> str:
    """cell/dataset, dataset, or the run's name."""
    return "/".join(part for part in (entry.get("cell"), entry["dataset"]) if part) or record["name"]


def select(record: dict[str, Any], dataset: str | None = None, cell: str | None = None) -> list[dict[str, Any]]:
    """The run's tasks of this dataset (its name, or cell/dataset) and cell; all of them by default."""
    entries = [entry for entry in record["tasks"] if dataset in (None, entry["dataset"], label(record, entry))
               and cell in (None, entry.get("cell"))]  # fmt: skip
    if not entries:
        asked = " ".join(f"--{flag} {value!r}" for flag, value in (("dataset", dataset), ("cell", cell)) if value)
        names = ", ".join(dict.fromkeys(label(record, entry) for entry in record["tasks"]))
        raise ConfigError(f"{asked} matches no task of run {record['name']} (its tasks: {names}); pick one of those")
    return entries


def _log_files(record: dict[str, Any], entry: dict[str, Any]) -> list[Path]:
    if entry.get("mode", record["mode"]) == "cluster":
        job = entry.get("job_id")
        folder = Path(entry.get("log_dir") or Path(record["run_dir"]) / "submitit_logs")
        return sorted(folder.glob(f"{job}_*_log.*")) if job else []
    return [Path(entry["experiment_dir"]) / "train.log"]


def print_logs(record: dict[str, Any], dataset: str | None, follow: bool, stream=sys.stdout, poll: float = 1.0,
               cell: str | None = None) -> None:  # fmt: skip
    """Print each task's log; with follow, keep printing new lines until no task is running."""
    entries = select(record, dataset, cell)
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
                name = label(record, entry)
                for line in text.splitlines():
                    stream.write(f"[{name}] {line}\n")
        stream.flush()
        states = job_states() if record["mode"] == "cluster" else {}
        running = any(task_state(record, e, states).startswith(LIVE) for e in entries)
        if not follow or not running:
            return
        time.sleep(poll)
        record = json.loads((Path(record["run_dir"]) / RECORD).read_text())
        entries = select(record, dataset, cell)


def cancel(record: dict[str, Any], dry_run: bool, kill, sig, cell: str | None = None) -> list[str]:
    """scancel the run's SLURM jobs (one call for all of them), or signal its local process groups; what
    was done, a line each."""
    done, jobs = [], []
    entries = select(record, cell=cell)
    states = run_states(dict(record, tasks=entries))
    for entry, state in zip(entries, states, strict=True):
        name = label(record, entry)
        if entry.get("mode", record["mode"]) == "cluster" and entry.get("job_id") and state.startswith(LIVE):
            jobs.append(entry["job_id"])
            done.append(f"{name}: {'would cancel' if dry_run else 'cancelled'} SLURM job {entry['job_id']}")
        elif pid_alive(entry["pid"]):
            if not dry_run:
                kill(-os.getpgid(entry["pid"]), sig)
            done.append(f"{name}: {'would stop' if dry_run else 'stopped'} process group of pid {entry['pid']}")
    if jobs:
        argv = ["scancel", *jobs]
        if not dry_run:
            subprocess.run(argv, check=True, capture_output=True, text=True, timeout=120)
        done.append(f"{'would run' if dry_run else 'ran'} scancel for {len(jobs)} job(s)")
    return done or [f"{record['name']}: nothing is running"]
