"""Local runs: each dataset's train.py in turn, in its own process group, output streamed and teed."""

import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from . import job_env
from .launch_record import save_record
from .planning import Plan


def run_local(plan_: Plan, record: dict[str, Any], stream=sys.stdout) -> int:
    """Run each launched task's train.py in turn (grid cells one after another), streaming its output
    and teeing it to <task>/train.log."""
    environment = job_env.job_environment(plan_.env)
    entries = {(entry.get("cell"), entry["dataset"]): entry for entry in record["tasks"]}
    worst = 0
    for task in plan_.launched():
        entry = entries[task.key]
        task.experiment_dir.mkdir(parents=True, exist_ok=True)
        argv = plan_.launches[task.launch].argv
        print(f"== {task.label}: {shlex.join(argv)}", file=stream, flush=True)
        with open(task.experiment_dir / "train.log", "a") as log:
            process = subprocess.Popen(argv, cwd=plan_.run_dir, env=environment, stdout=subprocess.PIPE,
                                       stderr=subprocess.STDOUT, text=True, bufsize=1, start_new_session=True)  # fmt: skip
            entry.update(state="running", pid=process.pid)
            save_record(plan_.run_dir, record)
            for line in process.stdout:
                log.write(line)
                stream.write(f"[{task.label}] {line}")
            code = process.wait()
        entry.update(state="done" if code == 0 else "failed", exit_code=code)
        save_record(plan_.run_dir, record)
        worst = worst or code
    record["launches"][-1]["ended"] = record["ended"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    save_record(plan_.run_dir, record)
    return worst


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"sam3.train.train" in cmdline
