"""A launched run, followed: each task's state (process table or SLURM), its logs, cancelling it."""

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from ..core.errors import ConfigError
from .identity import DONE, FAILED, LIVE, NO_FINAL_EVALUATION, final_evaluation_done
from .launch_record import RECORD, changing, read_record
from .local import pid_alive, runner_alive, task_alive
from .results import max_epochs
from .slurm import UNKNOWN, SchedulerSilent, job_states, slurm_state


def task_state(record: dict[str, Any], entry: dict[str, Any], states: dict[str, str] | None = None) -> str:
    """The state now: from the process table for a local task, from squeue for a cluster task (pass
    slurm.job_states() to ask SLURM once for many tasks). A task that ended counts as finished only when
    its final evaluation is in val_stats.json; else it is unfinished, whatever SLURM remembers."""
    state = _reported_state(record, entry, states)
    if state.startswith(DONE) and not evaluated(record, entry):
        return f"{NO_FINAL_EVALUATION} ({state})"
    return state


def _reported_state(record: dict[str, Any], entry: dict[str, Any], states: dict[str, str] | None) -> str:
    if entry.get("mode", record["mode"]) == "cluster" and entry.get("job_id"):
        return slurm_state(entry["job_id"], states)
    local = entry.get("mode", record["mode"]) == "local"
    if local and entry["state"] in ("pending", "running") and not task_alive(record, entry):
        return "stopped (its runner went away)"
    return entry["state"]


def evaluated(record: dict[str, Any], entry: dict[str, Any]) -> bool:
    """Whether SAM3 wrote the task's final evaluation (its last epoch's val_stats.json line)."""
    epochs = entry.get("max_epochs")
    if epochs is None:  # a record from before max_epochs was kept: the task's own resolved config says
        epochs = max_epochs(Path(entry["experiment_dir"])) or 0
    mode = record.get("trainer_mode", "train")
    return final_evaluation_done(Path(entry["experiment_dir"]), entry["dataset"], mode, epochs)


def refuse_restart_while_live(record: dict[str, Any]) -> None:
    """--restart: refused while the run still has tasks queued or running."""
    live = [state for state in run_states(record, strict=True) if state.startswith(LIVE)]
    if live:
        raise ConfigError(
            f"run {record['name']!r} still has {len(live)} task(s) queued or running; stop them first "
            f"(inv run.cancel --name {record['name']}) or pick a new --name"
        )


def run_states(record: dict[str, Any], strict: bool = False) -> list[str]:
    """Every task's state, SLURM asked once. When SLURM does not answer, its tasks are UNKNOWN; with strict
    (before anything is decided from them) slurm.SchedulerSilent is raised instead."""
    cluster = [
        entry.get("mode", record["mode"]) == "cluster" and bool(entry.get("job_id")) for entry in record["tasks"]
    ]
    try:
        states = job_states() if any(cluster) else {}
    except SchedulerSilent:
        if strict:
            raise
        return [
            UNKNOWN if ours else task_state(record, entry, {})
            for entry, ours in zip(record["tasks"], cluster, strict=True)
        ]
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
    entries = [
        entry
        for entry in record["tasks"]
        if dataset in (None, entry["dataset"], label(record, entry)) and cell in (None, entry.get("cell"))
    ]
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


def failure_causes(record: dict[str, Any], states: list[str]) -> list[str]:
    """For each failed task, why: the last lines of the last exception in its log, and the log's path."""
    lines = []
    for entry, state in zip(record["tasks"], states, strict=True):
        if not state.startswith(FAILED):
            continue
        logs = sorted(_log_files(record, entry), key=lambda path: not path.name.endswith(".err"))
        for path in logs:
            cause = exception_lines(_tail(path))
            if cause:
                lines += [f"{label(record, entry)}: {cause[0]}", *(f"    {line}" for line in cause[1:])]
                lines.append(f"    (the last lines of {path})")
                break
        else:
            lines.append(
                f"{label(record, entry)}: {state}, no exception in its log ({', '.join(map(str, logs)) or 'none'})"
            )
    return lines


TRACEBACK = "Traceback (most recent call last):"


def exception_lines(text: str, most: int = 3) -> list[str]:
    """The message of the last Python exception in a log: from the first unindented line after its frames,
    up to `most` lines or a blank one."""
    lines = text.splitlines()
    starts = [number for number, line in enumerate(lines) if line.strip().endswith(TRACEBACK)]
    if not starts:
        return []
    after = lines[starts[-1] + 1 :]
    first = next((number for number, line in enumerate(after) if line.strip() and not line[0].isspace()), len(after))
    message = []
    for line in after[first : first + most]:
        if not line.strip():
            break
        message.append(line.rstrip())
    return message


def _tail(path: Path, size: int = 65536) -> str:
    try:
        with open(path, "rb") as handle:
            handle.seek(max(0, handle.seek(0, os.SEEK_END) - size))
            return handle.read().decode(errors="replace")
    except OSError:
        return ""


def print_logs(
    record: dict[str, Any],
    dataset: str | None,
    follow: bool,
    stream=sys.stdout,
    poll: float = 1.0,
    cell: str | None = None,
) -> None:
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
        running = any(state.startswith((*LIVE, UNKNOWN)) for state in run_states(dict(record, tasks=entries)))
        if not follow or not running:
            return
        time.sleep(poll)
        record = read_record(Path(record["run_dir"]) / RECORD)
        entries = select(record, dataset, cell)


def cancel(record: dict[str, Any], dry_run: bool, kill, sig, cell: str | None = None) -> list[str]:
    """scancel the run's SLURM jobs (one call for all of them), or stop its local tasks (_cancel_local); what
    was done, a line each."""
    done, jobs, local = [], [], set()
    entries = select(record, cell=cell)
    states = run_states(dict(record, tasks=entries), strict=True)
    for entry, state in zip(entries, states, strict=True):
        name = label(record, entry)
        if entry.get("mode", record["mode"]) == "cluster" and entry.get("job_id") and state.startswith(LIVE):
            jobs.append(entry["job_id"])
            done.append(f"{name}: {'would cancel' if dry_run else 'cancelled'} SLURM job {entry['job_id']}")
        elif entry.get("mode", record["mode"]) == "local" and state.startswith(LIVE):
            local.add((entry.get("cell"), entry["dataset"]))
    if local:
        done += _cancel_local(Path(record["run_dir"]), local, dry_run, kill, sig)
    if jobs:
        argv = ["scancel", *jobs]
        if not dry_run:
            subprocess.run(argv, check=True, capture_output=True, text=True, timeout=120)
        done.append(f"{'would run' if dry_run else 'ran'} scancel for {len(jobs)} job(s)")
    return done or [f"{record['name']}: nothing is running"]


def _cancel_local(run_dir: Path, keys: set, dry_run: bool, kill, sig) -> list[str]:
    """Stop local tasks (their keys) under the run's lock, which the runner holds to start a task: each one
    running gets sig to its process group (its runner records how it ended), each one pending on a live
    runner is marked cancelled, so that runner never starts it. A dry run changes nothing."""
    done = []
    with changing(run_dir) as record:
        for entry in record["tasks"]:
            if (entry.get("cell"), entry["dataset"]) not in keys:
                continue
            name = label(record, entry)
            if entry["state"] == "running" and pid_alive(entry["pid"]):
                if not dry_run:
                    kill(-os.getpgid(entry["pid"]), sig)
                done.append(f"{name}: {'would stop' if dry_run else 'stopped'} process group of pid {entry['pid']}")
            elif entry["state"] == "pending" and runner_alive(record, entry):
                if not dry_run:
                    entry["state"] = "cancelled"
                done.append(f"{name}: {'would cancel' if dry_run else 'cancelled'} before it started")
    return done
