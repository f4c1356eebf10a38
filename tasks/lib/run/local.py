"""Local runs, the launcher's side: a detached runner (local_runner.py) trains each dataset in turn, so
the run outlives the terminal, the SSH session and the launcher itself; the launcher follows the
task logs while it lives. Which local process is alive, read from the process table."""

import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from invoke import Exit

from ..core.paths import PROJECT_ROOT
from . import job_env
from .launch_record import changing, existing
from .planning import Plan

RUNNER_MODULE = "tasks.lib.run.local_runner"
RUNNER_LOG = "runner.log"
TRAIN_MODULE = "sam3.train.train"


def start_runner(plan_: Plan, record: dict[str, Any]) -> "Started":
    """Start the runner of the record's last launch in a session of its own (no terminal, stdin
    /dev/null, output to <run>/runner.log), with the job environment in its own environment (never on
    disk), and record its pid; the log files' ends are taken first, so following shows this launch's
    lines only."""
    index = len(record["launches"]) - 1
    tails = [_Tail("", plan_.run_dir / RUNNER_LOG)]
    tails += [_Tail(f"[{task.label}] ", task.experiment_dir / "train.log") for task in plan_.launched()]
    with open(plan_.run_dir / RUNNER_LOG, "a") as log:
        runner = subprocess.Popen(
            [sys.executable, "-m", RUNNER_MODULE, str(plan_.run_dir), str(index)],
            cwd=PROJECT_ROOT,
            env=job_env.job_environment(plan_.env, extra=plan_.env_allow),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    with changing(plan_.run_dir) as latest:  # the runner records its pid too, should this launcher die first
        latest["launches"][index]["runner_pid"] = runner.pid
    return Started(runner, index, tails)


@dataclass
class Started:
    """A runner started for launch `index` of the record, and the logs to follow."""

    runner: subprocess.Popen
    index: int
    tails: list["_Tail"]


def follow(plan_: Plan, started: Started, stream=sys.stdout, poll: float = 0.5) -> int:
    """Print the runner's lines and each task's (as `[dataset] line`) until the runner ends; the first
    non-zero exit code of this launch's tasks, else the runner's. Ctrl-C stops following only: the run
    goes on, and Exit 130 says how to follow and stop it."""
    try:
        while True:
            ended = started.runner.poll() is not None
            for tail in started.tails:
                for line in tail.lines(final=ended):
                    stream.write(f"{tail.prefix}{line}\n")
            stream.flush()
            if ended:
                break
            time.sleep(poll)
    except KeyboardInterrupt:
        name = plan_.name
        raise Exit(
            f"{name}: the run goes on in the background (runner pid {started.runner.pid}); follow it with "
            f"inv run.logs --name {name} --follow, stop it with inv run.cancel --name {name}",
            code=130,
        ) from None
    entries = existing(plan_.run_dir)["tasks"]
    codes = [entry["exit_code"] for entry in entries if entry.get("launch") == started.index and entry["exit_code"]]
    return codes[0] if codes else started.runner.returncode


class _Tail:
    """The new complete lines of a file (that may not exist yet), from where it ended when this began."""

    def __init__(self, prefix: str, path: Path):
        self.prefix, self.path = prefix, path
        self.offset = path.stat().st_size if path.exists() else 0

    def lines(self, final: bool = False) -> list[str]:
        """New lines; with final, a last line without its newline too."""
        try:
            with open(self.path, "rb") as handle:
                handle.seek(self.offset)
                data = handle.read()
        except FileNotFoundError:
            return []
        end = len(data) if final else data.rfind(b"\n") + 1
        self.offset += end
        return data[:end].decode(errors="replace").splitlines()


def pid_alive(pid: int | None, *marks: str) -> bool:
    """Whether pid is a live process of ours: its command line holds every mark (default: SAM3's train.py),
    so a pid the system reused for something else does not count; a zombie has none."""
    if not pid:
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return all(mark.encode() in cmdline for mark in marks or (TRAIN_MODULE,))


def runner_alive(record: dict[str, Any], entry: dict[str, Any]) -> bool:
    """Whether the runner of the launch that last took this task is alive (it runs the run folder's record)."""
    launches = record.get("launches") or []
    index = entry.get("launch")
    launch = launches[index] if isinstance(index, int) and index < len(launches) else {}
    return pid_alive(launch.get("runner_pid"), RUNNER_MODULE, record["run_dir"])


def task_alive(record: dict[str, Any], entry: dict[str, Any]) -> bool:
    """A local task pending or running is alive while its runner is (which will run it or record its end)
    or, running, while its own process is (its runner may have been killed, not the training)."""
    if entry["state"] == "running" and pid_alive(entry["pid"]):
        return True
    return runner_alive(record, entry)
