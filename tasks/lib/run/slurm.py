"""Cluster runs: SAM3's train.py submits through submitit (a job array for many datasets); job ids,
ArrayTaskThrottle, per-task configs, and SLURM's word on each job."""

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from ..core.errors import ToolError
from ..core.paths import PROJECT_ROOT
from . import job_env
from .launch_record import save_record
from .planning import Launch, Plan

JOB_ID = re.compile(r"Submitit Job ID:\s*(\S+)")


def throttle(job_ids: list[str], max_parallel: int) -> str | None:
    """At most max_parallel tasks of the array run at once (SLURM's ArrayTaskThrottle, the %N of
    --array=0-99%N); SAM3's train.py does not pass submitit's array parallelism through. What went
    wrong, in one line with the fix, or None (the jobs are queued either way)."""
    arrays = sorted({job.split("_")[0] for job in job_ids if job})
    for array in arrays:
        argv = ["scontrol", "update", f"JobId={array}", f"ArrayTaskThrottle={max_parallel}"]
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as error:
            done = subprocess.CompletedProcess(argv, 1, "", str(error))
        if done.returncode != 0:
            said = ((done.stderr or done.stdout).strip().splitlines() or [f"exit {done.returncode}"])[-1]
            return (f"job array {array} is queued but not throttled to {max_parallel} at a time (scontrol: {said}); "
                    f"run: {shlex.join(argv)}, or scancel it (inv run.cancel)")  # fmt: skip
    return None


def submit(plan_: Plan, record: dict[str, Any], stream=sys.stdout) -> int:
    """Cluster mode: SAM3's train.py submits through submitit (an array for many datasets) and
    returns; each dataset's task records its own SLURM job id."""
    worst = 0
    plan_.run_dir.mkdir(parents=True, exist_ok=True)
    for index, launch in enumerate(plan_.launches):
        staging = plan_.run_dir / f".task-configs-{os.getpid()}"
        writer = start_task_configs(plan_, launch, staging) if len(launch.datasets) > 1 else None
        done = subprocess.run(
            launch.argv, cwd=plan_.run_dir, env=job_env.job_environment(plan_.env), capture_output=True, text=True
        )
        with open(plan_.run_dir / "submit.log", "a") as log:
            log.write(done.stdout + done.stderr)
        ids = JOB_ID.findall(done.stdout)
        members = [
            (task, entry) for task, entry in zip(plan_.tasks, record["tasks"], strict=True) if task.launch == index
        ]
        ok = done.returncode == 0 and len(ids) == len(members)
        for (task, entry), job in zip(members, ids + [None] * len(members), strict=False):
            task.experiment_dir.mkdir(parents=True, exist_ok=True)
            entry.update(state="submitted" if ok else "failed", job_id=job,
                         exit_code=None if done.returncode == 0 else done.returncode)  # fmt: skip
            print(f"{task.dataset or plan_.name}: SLURM job {job or '(none)'}", file=stream)
        if ok and len(members) > 1 and record["request"].get("max_parallel"):
            problem = throttle(ids, record["request"]["max_parallel"])
            if problem:
                print(f"error: {problem}", file=stream)
                worst = worst or 1
        if writer:
            finish_task_configs(writer, staging, plan_.run_dir, keep=ok)
        if not ok:
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            print("\n".join(tail), file=stream)
            worst = worst or done.returncode or 1
        save_record(plan_.run_dir, record)
    return worst


def start_task_configs(plan_: Plan, launch: Launch, staging: Path) -> subprocess.Popen:
    """Begin writing each array task's config_resolved.yaml, resolved with its own index, into
    staging/<dataset>/ (in the training env, beside the submission, which it does not depend on)."""
    probe = PROJECT_ROOT / "scripts" / "sam3_preflight_probe.py"
    argv = [launch.argv[0], str(probe), "--task-configs", str(staging), launch.config_name]
    return subprocess.Popen(
        argv, env=job_env.job_environment(plan_.env), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )


def finish_task_configs(writer: subprocess.Popen, staging: Path, run_dir: Path, keep: bool) -> None:
    """Move the staged task configs into each dataset's folder, or drop them when submission failed."""
    if not keep:
        writer.kill()
    _, errors = writer.communicate(timeout=600)
    try:
        if keep and writer.returncode != 0:
            raise ToolError(f"writing the per-dataset configs failed: {(errors.strip().splitlines() or ['?'])[-1]}")
        for folder in sorted(staging.iterdir()) if keep else []:
            (run_dir / folder.name).mkdir(parents=True, exist_ok=True)
            for file in folder.iterdir():
                os.replace(file, run_dir / folder.name / file.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def slurm_state(job_id: str) -> str:
    done = subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%T"], capture_output=True, text=True, timeout=60)
    states = sorted(set(done.stdout.split()))
    if states:
        return "/".join(s.lower() for s in states)
    done = subprocess.run(["scontrol", "show", "job", job_id], capture_output=True, text=True, timeout=60)
    match = re.search(r"JobState=(\S+)", done.stdout)
    return match.group(1).lower() if match else "finished (no longer known to SLURM)"
