"""Pre-flight: everything that can be known before a job runs or queues, each problem one line
with its fix. The config checks run in the training env (scripts/sam3_preflight_probe.py)."""

import json
import os
import shutil
import subprocess
from pathlib import Path

from ..core.paths import PROJECT_ROOT, nearest_existing
from ..core.report import FAIL, PASS, Check
from ..data import coco
from . import job_env
from .planning import Plan, bpe_origin

PROBE = PROJECT_ROOT / "scripts" / "sam3_preflight_probe.py"


def run_all(plan: Plan, python: Path, request, kind: str | None, root: Path | None) -> list[Check]:
    """Every pre-flight check; the training-env probe runs while the others do, on the configs written into
    the run's folder (none when it is not writable: that check fails alone)."""
    experiment = check_experiment_dir(plan)
    probe = start_probe(plan, python) if experiment.status == PASS else None
    checks = [
        experiment,
        *check_bpe(plan),
        *check_data(plan, kind, root),
        *check_cluster(plan, request.partition, request.account, request.qos),
    ]
    if probe:
        checks[1:1] = finish_probe(plan, probe)
    return checks


def start_probe(plan: Plan, python: Path) -> subprocess.Popen:
    """Begin composing, resolving, importing every _target_ and stat-ing every path, as SAM3's
    train.py will, in the training env; the other checks run meanwhile."""
    environment = job_env.job_environment(plan.env, extra=plan.env_allow)
    argv = [str(python), str(PROBE), *[launch.config_name for launch in plan.launches]]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment)


def finish_probe(plan: Plan, probe: subprocess.Popen) -> list[Check]:
    """The probe's findings, one Check per config problem."""
    stdout, stderr = probe.communicate(timeout=600)
    if probe.returncode != 0:
        last = (stderr.strip().splitlines() or ["no output"])[-1]
        return [
            Check(
                "config",
                plan.name,
                FAIL,
                f"the training env could not check the configs: {last}",
                "repair the training env: inv env.sam3 --force",
            )
        ]
    checks = []
    reports = json.loads(stdout.strip().splitlines()[-1]).values()
    for launch, report in zip(plan.launches, reports, strict=True):
        named = [d for d in launch.datasets if d]
        subject = ",".join(named) if len(named) <= 3 else f"{Path(launch.config_name).stem} ({len(named)} datasets)"
        subject = subject or plan.name
        for error in report["errors"]:
            fix = (
                "fetch and validate the data (inv data.validate)"
                if "does not exist" in error
                else "fix the config or install what it names in the training env"
            )
            checks.append(Check("config", subject, FAIL, error, fix))
        if not report["errors"]:
            checks.append(
                Check(
                    "config",
                    subject,
                    PASS,
                    f"composes and resolves; {report['targets']} _target_ import; {report['paths']} data paths exist",
                )
            )
    return checks


def check_data(plan: Plan, kind: str | None, root: Path | None) -> list[Check]:
    """data.validate's rules on exactly the datasets this run will open."""
    datasets = list(dict.fromkeys(task.dataset for task in plan.launched() if task.dataset))  # once each, not per cell
    if not kind or not datasets or root is None:
        return []
    reports = coco.validate_root(kind, root, datasets)
    checks = []
    for report in reports:
        if report.errors:
            first = report.errors[0]
            checks.append(
                Check(
                    "data",
                    report.name,
                    FAIL,
                    f"{len(report.errors)} error(s), first: {first.message}",
                    "inv data.validate --datasets NAME shows them all",
                )
            )
        else:
            checks.append(Check("data", report.name, PASS, f"{len(report.warnings)} warning(s)"))
    return checks


def check_bpe(plan: Plan) -> list[Check]:
    """SAM3's BPE vocabulary, and where it came from (the config's <BPE_PATH> was filled with it)."""
    if plan.bpe is None:
        return []
    return [Check("bpe", str(plan.bpe), PASS, f"from {bpe_origin(plan.bpe)}")]


def check_experiment_dir(plan: Plan) -> Check:
    anchor = nearest_existing(plan.run_dir)
    if not os.access(anchor, os.W_OK | os.X_OK):
        fix = "set paths.experiment_root (SAM3_EXPERIMENT_ROOT) to a writable folder"
        if anchor == plan.run_dir:
            fix = f"this run's folder is not yours to write: pick another --name, or {fix}"
        return Check("experiment", str(plan.run_dir), FAIL, f"{anchor} is not writable", fix)
    return Check("experiment", str(plan.run_dir), PASS, "writable")


def job_resources(plan: Plan) -> dict:
    """What each array task will ask SLURM for (the same for every launch of a run)."""
    job = plan.launches[0].job
    return {
        "gpus": job["gpus_per_node"],
        "nodes": job["nodes"],
        "cpus_per_task": job["cpus_per_task"],
        "timeout_hour": job["timeout_min"] / 60,
    }


def check_cluster(plan: Plan, partition: str | None, account: str | None, qos: str | None) -> list[Check]:
    """SLURM is there, the partition exists and its time limit fits, and sbatch --test-only accepts
    a job asking for what SAM3's will (nodes, one task per GPU, GPUs, CPUs per task)."""
    if plan.mode != "cluster":
        return []
    resources = job_resources(plan)
    timeout_hour = resources["timeout_hour"]
    if not shutil.which("sbatch"):
        return [
            Check(
                "slurm",
                "sbatch",
                FAIL,
                "no sbatch on PATH: submitit would quietly run the jobs here instead",
                'run it on the cluster\'s login node (inv remote.run "run.train ..." --host LOGIN) or use --mode local',
            )
        ]
    checks = []
    limits = partition_limits()
    chosen = partition or next((name for name, (_, default) in limits.items() if default), None)
    if partition and partition not in limits:
        checks.append(
            Check(
                "slurm",
                f"partition {partition}",
                FAIL,
                "SLURM has no such partition",
                f"pick one of: {', '.join(limits) or 'none listed by sinfo'}",
            )
        )
    elif chosen and timeout_hour:
        limit = limits[chosen][0]
        if limit is not None and timeout_hour * 60 > limit:
            checks.append(
                Check(
                    "slurm",
                    f"partition {chosen}",
                    FAIL,
                    f"submitit.timeout_hour {timeout_hour:g} h exceeds the partition's {limit / 60:g} h",
                    f"--set submitit.timeout_hour={limit // 60} or pick a longer partition",
                )
            )
        else:
            checks.append(Check("slurm", f"partition {chosen}", PASS, f"time limit {_minutes(limit)}"))
    argv = [
        "sbatch",
        "--test-only",
        f"--nodes={resources['nodes']}",
        f"--ntasks-per-node={resources['gpus']}",
        f"--gres=gpu:{resources['gpus']}",
        "--output=/dev/null",
        "--wrap",
        "true",
    ]
    if resources["cpus_per_task"]:
        argv.insert(2, f"--cpus-per-task={resources['cpus_per_task']}")
    for flag, value in (("--partition", partition), ("--account", account), ("--qos", qos)):
        if value:
            argv.append(f"{flag}={value}")
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    words = (done.stderr or done.stdout).strip().splitlines()
    if done.returncode != 0:
        checks.append(
            Check(
                "slurm",
                "sbatch --test-only",
                FAIL,
                f"SLURM says: {words[-1] if words else done.returncode}",
                "fix --partition/--account/--qos, or ask for fewer GPUs, nodes or CPUs "
                "(--num-gpus, --set submitit.cpus_per_task=N); sinfo shows what there is",
            )
        )
    else:
        checks.append(Check("slurm", "sbatch --test-only", PASS, words[-1] if words else "accepted"))
    return checks


def _minutes(limit: int | None) -> str:
    return "unlimited" if limit is None else f"{limit / 60:g} h"


def parse_time_limit(text: str) -> int | None:
    """SLURM time limit ('1-00:00:00', '2:00:00', '30', 'infinite') in minutes; None for no limit."""
    text = text.strip()
    if text in ("infinite", "UNLIMITED", "n/a", ""):
        return None
    days, _, rest = text.rpartition("-")
    parts = [int(p) for p in rest.split(":")]
    hours, minutes, seconds = ([0] * (3 - len(parts)) + parts) if len(parts) > 1 else (0, parts[0], 0)
    return (int(days or 0) * 24 + hours) * 60 + minutes + (1 if seconds else 0)


def partition_limits() -> dict[str, tuple[int | None, bool]]:
    """{partition: (time limit in minutes or None, is default)} from sinfo."""
    done = subprocess.run(["sinfo", "-h", "-o", "%P %l"], capture_output=True, text=True, timeout=60)
    limits = {}
    for line in done.stdout.splitlines():
        name, _, limit = line.partition(" ")
        limits[name.rstrip("*")] = (parse_time_limit(limit), name.endswith("*"))
    return limits
