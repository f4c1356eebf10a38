"""Cluster runs: every array of a run submitted through submitit in one process of the training env
(plugins/sam3_array.py), split by SLURM's MaxArraySize, --max-parallel kept across all of them; job
ids recorded as they come; SLURM's word on each job, for all of a run's jobs in one call."""

import contextlib
import getpass
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from ..core.errors import ConfigError, ToolError
from . import job_env
from .launch_record import save_record
from .planning import Plan, submit_argv

PORT_RANGE = (10000, 65000)
DEFAULT_LIMITS = {"MaxArraySize": 1001, "MaxJobCount": 10000}  # SLURM's own defaults


def cluster_limits() -> dict[str, int]:
    """MaxArraySize and MaxJobCount from `scontrol show config` (SLURM's defaults where it does not say,
    or where SLURM is not installed here: pre-flight then says so). SchedulerSilent when scontrol is
    there and does not answer: arrays split by a guessed MaxArraySize would be refused."""
    limits = dict(DEFAULT_LIMITS)
    if shutil.which("scontrol") is None:
        return limits
    output = ask_slurm(["scontrol", "show", "config"])
    for key in limits:
        match = re.search(rf"^{key}\s*=\s*(\d+)", output, re.MULTILINE)
        if match:
            limits[key] = int(match.group(1))
    return limits


def refuse_too_many(new_tasks: int, limits: dict[str, int], states: dict[str, str]) -> None:
    """A launch that SLURM cannot hold is refused whole. MaxJobCount counts every job SLURM remembers;
    only ours are asked for (every user's jobs is the query that times out on a busy cluster), so this
    catches our own excess, and sbatch's refusal of the rest is reported per array."""
    room = limits["MaxJobCount"] - len(states)
    if new_tasks > room:
        raise ConfigError(
            f"{new_tasks} tasks do not fit: SLURM holds at most {limits['MaxJobCount']} jobs "
            f"(MaxJobCount) and holds {len(states)} of yours now; launch fewer (--datasets, fewer --grid values) "
            "or in parts"
        )


def array_throttles(sizes: list[int], max_parallel: int | None) -> list[tuple[int, int | None]]:
    """(tasks at once, the array it waits for) for each array, so that at most max_parallel tasks of the
    whole run run at once: the limit shared out when there are no more arrays than it, else arrays one
    task at a time in max_parallel lanes, each waiting for the one before it in its lane."""
    if max_parallel is None:
        return [(size, None) for size in sizes]
    if len(sizes) > max_parallel:
        return [(1, index - max_parallel if index >= max_parallel else None) for index in range(len(sizes))]
    shares = [1] * len(sizes)
    left = max_parallel - len(sizes)
    while left > 0 and any(share < size for share, size in zip(shares, sizes, strict=True)):
        for index, size in enumerate(sizes):
            if left and shares[index] < size:
                shares[index] += 1
                left -= 1
    return [(share, None) for share in shares]


def _say(stream, text: str) -> None:
    """Print, and go on when nobody listens (an SSH session gone): the record is already saved."""
    with contextlib.suppress(BrokenPipeError, OSError):
        print(text, file=stream, flush=True)


def submit(plan_: Plan, record: dict[str, Any], max_parallel: int | None, stream=sys.stdout) -> int:
    """Submit every array of the plan in one process of the training env; each task's job id goes into
    the record as soon as its array is queued, before anything is printed."""
    plan_.run_dir.mkdir(parents=True, exist_ok=True)
    entries = {(entry.get("cell"), entry["dataset"]): entry for entry in record["tasks"]}
    members = [[task for task in plan_.tasks if task.launch == index] for index in range(len(plan_.launches))]
    throttles = array_throttles([len(group) for group in members], max_parallel)
    arrays = []
    for launch, group, (parallelism, after) in zip(plan_.launches, members, throttles, strict=True):
        single = len(group) == 1 and group[0].dataset is None
        arrays.append(
            {
                "config_name": launch.config_name,
                "folder": str(launch.folder),
                "job": launch.job,
                "parallelism": parallelism,
                "after": after,
                "tasks": [
                    {"index": None if single else i, "experiment_dir": str(task.experiment_dir)}
                    for i, task in enumerate(group)
                ],
            }
        )
        for task in group:
            entries[task.key].update(state="submitting", job_name=launch.job["name"])
    record["launches"][-1]["submission"] = "started"
    save_record(plan_.run_dir, record)
    with open(plan_.run_dir / "submit.log", "a") as log:
        process = subprocess.Popen(
            submit_argv(Path(plan_.launches[0].argv[0])),
            cwd=plan_.run_dir,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env=job_env.job_environment(plan_.env, extra=plan_.env_allow),
        )
        process.stdin.write(json.dumps({"arrays": arrays, "port_range": PORT_RANGE}))
        process.stdin.close()
        reports = {}
        for line in process.stdout:
            report = json.loads(line)
            reports[report["array"]] = report
            group = members[report["array"]]
            for task, job in zip(group, report.get("job_ids") or [None] * len(group), strict=True):
                entries[task.key].update(state="submitted" if job else "failed", job_id=job)
            save_record(plan_.run_dir, record)
            _report(
                stream,
                plan_.launches[report["array"]].config_name,
                group,
                report,
                throttles[report["array"]],
                many=len(plan_.launched()) > 20,
            )
        code = process.wait()
    for number, group in enumerate(members):
        if number not in reports:
            for task in group:
                entries[task.key].update(state="failed")
    ok = code == 0 and all("job_ids" in report for report in reports.values()) and len(reports) == len(members)
    record["launches"][-1]["submission"] = "done" if ok else "failed"
    save_record(plan_.run_dir, record)
    if not ok:
        tail = (plan_.run_dir / "submit.log").read_text(errors="replace").strip().splitlines()[-3:]
        _say(stream, "\n".join(tail))
    return 0 if ok else code or 1


def _report(stream, config_name: str, group: list, report: dict, throttle: tuple[int, int | None], many: bool) -> None:
    if "error" in report:
        _say(stream, f"error: {config_name}: not queued: {report['error']}")
        return
    ids = report["job_ids"]
    if not many:
        for task, job in zip(group, ids, strict=True):
            _say(stream, f"{task.label}: SLURM job {job}")
        return
    array = ids[0].split("_")[0]
    waits = f", after array {throttle[1] + 1} of the run" if throttle[1] is not None else ""
    cell = f"{group[0].cell.name}: " if group[0].cell else ""
    _say(stream, f"{cell}{len(ids)} datasets queued as SLURM array {array} ({throttle[0]} at a time{waits})")


UNKNOWN = "unknown (SLURM did not answer)"
FORGOTTEN = "finished (no longer known to SLURM)"
JOB_LINE = re.compile(r"^(\d+(?:_\d+)?) ([A-Z_]+)$")
RETRY_WAITS_S = (1.0, 2.0, 4.0)  # back-off between the tries: a busy slurmctld answers within seconds


class SchedulerSilent(ToolError):
    """squeue or scontrol failed, timed out or printed what we cannot read, every try: nothing may be
    decided from it (a job SLURM did not list is not a finished job)."""


def ask_slurm(argv: list[str], waits: tuple[float, ...] | None = None, timeout: float = 30) -> str:
    """The output of a SLURM query, tried again after each of `waits` (RETRY_WAITS_S) while it fails or
    times out (squeue itself takes about 9 s to give up on a controller that is down)."""
    waits = RETRY_WAITS_S if waits is None else waits
    problem = ""
    for wait in (0.0, *waits):
        if problem:
            _say(sys.stderr, f"note: {argv[0]} did not answer ({problem}); trying again in {wait:.0f} s")
        time.sleep(wait)
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            problem = f"no answer in {timeout:.0f} s"
            continue
        except OSError as error:
            raise SchedulerSilent(f"cannot run {argv[0]} ({error.strerror}); is SLURM installed here?") from None
        if done.returncode == 0:
            return done.stdout
        problem = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1][:200]
    raise SchedulerSilent(
        f"SLURM did not answer `{shlex.join(argv[:2])} ...` after {len(waits) + 1} tries ({problem}); "
        "nothing was decided or submitted: try again when `squeue --me` answers"
    )


def our_user() -> str:
    return os.environ.get("USER") or getpass.getuser()


def job_states() -> dict[str, str]:
    """Our user's jobs SLURM knows now (queued, running, or ended within MinJobAge), array tasks one by
    one: {job id: state in lower case}, from one squeue call, retried. SchedulerSilent when SLURM does not
    answer or answers with lines that are not `<job id> <STATE>`."""
    output = ask_slurm(["squeue", "-h", "-r", "-t", "all", "-u", our_user(), "-o", "%i %T"])
    states = {}
    for line in output.splitlines():
        match = JOB_LINE.match(line.strip())
        if not match:
            raise SchedulerSilent(
                f"squeue printed a line that is not '<job id> <STATE>': {line.strip()[:80]!r}; "
                "nothing was decided: check `squeue --me -o '%i %T'` on this machine"
            )
        states[match.group(1)] = match.group(2).lower()
    return states


def slurm_state(job_id: str, states: dict[str, str] | None = None) -> str:
    """SLURM's word on one job: its state, or FORGOTTEN when SLURM answered and does not list it."""
    states = job_states() if states is None else states
    return states.get(job_id, FORGOTTEN)


def adopt_lost_jobs(record: dict[str, Any]) -> list[str]:
    """Jobs that an interrupted launch queued before it could record them (an SSH session cut during
    submission): found in squeue among our user's jobs submitted from the run's folder, by their job names,
    written into the record. What was found, a line each."""
    if not record.get("launches") or record["launches"][-1].get("submission") != "started":
        return []
    lost = [entry for entry in record["tasks"] if entry.get("state") == "submitting" and not entry.get("job_id")]
    if not lost:  # every array's job ids were recorded; only the closing mark was cut off
        record["launches"][-1]["submission"] = "done"
        save_record(Path(record["run_dir"]), record)
        return []
    # our user's jobs submitted from this run's folder (the submission runs there): another experiment root's
    # run of the same name has the same job names
    output = ask_slurm(["squeue", "-h", "-r", "-u", our_user(), "-o", "%i|%Z|%j"])
    by_name: dict[str, list[str]] = {}
    for line in output.splitlines():
        job, folder, name = (line.split("|", 2) + ["", ""])[:3]
        if Path(folder) == Path(record["run_dir"]):
            by_name.setdefault(name.strip(), []).append(job)
    found = []
    for name in dict.fromkeys(entry.get("job_name") for entry in lost):
        group = [entry for entry in lost if entry.get("job_name") == name]
        jobs = sorted(by_name.get(name, []), key=_job_order)
        for entry, job in zip(group, jobs, strict=False):
            entry.update(state="submitted", job_id=job)
            found.append(f"{entry['dataset'] or record['name']}: SLURM job {job}, queued by the interrupted launch")
    record["launches"][-1]["submission"] = "done (found in squeue)" if found else "interrupted"
    save_record(Path(record["run_dir"]), record)
    return found


def _job_order(job: str) -> tuple[int, int]:
    array, _, index = job.partition("_")
    return int(array) if array.isdigit() else 0, int(index) if index.isdigit() else 0
