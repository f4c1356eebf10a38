#!/usr/bin/env python3
"""`inv run.status` on a run of 1,000 SLURM tasks, with the queue holding only them, then with 5,000 other
users' jobs queued beside them, on a real SLURM cluster: the difference and the ratio to the quiet queue.

Goal (issue 18): at most 1 s more than on the quiet queue. run.status asks squeue for our user's jobs only
(`-u USER`); for reference the script also times the query that asks for every user's jobs, which is the
one that times out on a busy cluster. Needs root and Debian's SLURM (scripts/install-system-deps). It starts
its own single-node cluster in a temporary folder (MaxJobCount 20,000), submits every job held (nothing
runs), writes the run's launch.json for the 1,000 array tasks as run.train records them, and stops the
cluster at the end. The other users' jobs are submitted as the user `nobody` (runuser).

Usage: .venv/bin/python scripts/bench_status.py [--tasks 1000] [--others 5000] [--repeat 5]
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(argv, env, **kwargs):
    return subprocess.run([str(a) for a in argv], env=env, capture_output=True, text=True, **kwargs)


def submit_held(env, count: int, user: str | None = None) -> list[str]:
    """`count` held array tasks (arrays of at most 1,000), as root or as `user`; their job ids."""
    ids = []
    for start in range(0, count, 1000):
        size = min(1000, count - start)
        argv = [
            "sbatch",
            "--parsable",
            "--hold",
            f"--array=0-{size - 1}",
            "--output",
            "/dev/null",
            "--chdir",
            "/tmp",
            "--wrap",
            "true",
        ]
        if user:
            argv = ["runuser", "-u", user, "--", *argv]
        array = run(argv, env, check=True).stdout.strip().split(";")[0]
        ids += [f"{array}_{index}" for index in range(size)]
    return ids


def write_record(run_dir: Path, job_ids: list[str]) -> None:
    """launch.json as run.train writes it for a cluster run, one task per job id (pending, nothing on disk)."""
    tasks = [
        {
            "dataset": f"dataset-{n:04d}",
            "cell": None,
            "cell_values": {},
            "experiment_dir": str(run_dir / f"dataset-{n:04d}"),
            "attempts": [],
            "launch": 0,
            "mode": "cluster",
            "config": "",
            "argv": [],
            "log_dir": str(run_dir / "submitit_logs"),
            "state": "submitted",
            "max_epochs": 20,
            "pid": None,
            "job_id": job,
            "exit_code": None,
        }
        for n, job in enumerate(job_ids)
    ]
    record = {
        "name": run_dir.name,
        "source_config": "",
        "run_dir": str(run_dir),
        "started": "",
        "identity": {},
        "trainer_mode": "train",
        "grid": [],
        "wandb_instance": "",
        "launches": [{"submission": "done"}],
        "mode": "cluster",
        "command": [],
        "request": {},
        "host": "",
        "commits": {},
        "versions": {},
        "tasks": tasks,
    }
    run_dir.mkdir(parents=True)
    (run_dir / "launch.json").write_text(json.dumps(record))


def timed(argv, env, repeat: int) -> float:
    """The median wall time of `repeat` runs of argv (each must exit 0)."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        done = run(argv, env)
        times.append(time.perf_counter() - start)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(map(str, argv))} exited {done.returncode}: {done.stderr[-2000:]}")
    return statistics.median(times)


def measure(env, inv, repeat: int) -> tuple[float, float]:
    status = timed([inv, "run.status", "--name", "bench"], env, repeat)
    every_user = timed(["squeue", "-h", "-r", "-t", "all", "-o", "%i %T"], env, repeat)
    return status, every_user


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1000, help="tasks of our run (default: 1000)")
    parser.add_argument("--others", type=int, default=5000, help="other users' jobs queued (default: 5000)")
    parser.add_argument("--repeat", type=int, default=5, help="runs per measurement; the median is shown")
    args = parser.parse_args()
    inv = Path(sys.executable).with_name("inv")
    with tempfile.TemporaryDirectory(prefix="bench-status-") as tmp:
        tmp = Path(tmp)
        os.chmod(tmp, 0o755)
        env = dict(
            os.environ,
            SAM3_SLURM_DIR=str(tmp / "slurm"),
            SAM3_SLURM_MAX_JOB_COUNT="20000",
            SAM3_EXPERIMENT_ROOT=str(tmp / "exp"),
        )
        started = run([ROOT / "scripts" / "slurm-local", "start"], env)
        if started.returncode != 0:
            print(started.stdout + started.stderr)
            return 1
        env["SLURM_CONF"] = str(tmp / "slurm" / "slurm.conf")
        os.chmod(tmp / "slurm" / "munge", 0o711)  # the other user reaches munged's socket too
        try:
            write_record(tmp / "exp" / "bench", submit_held(env, args.tasks))
            quiet, quiet_all = measure(env, inv, args.repeat)
            submit_held(env, args.others, user="nobody")
            busy, busy_all = measure(env, inv, args.repeat)
        finally:
            run(["scancel", "--hold", "-u", "root"], env)
            run(["scancel", "-u", "nobody"], env)
            run([ROOT / "scripts" / "slurm-local", "stop"], env)
            shutil.rmtree(tmp / "slurm", ignore_errors=True)
    print(
        f"{'measurement (median of ' + str(args.repeat) + ')':58} {'quiet queue':>12} {'+' + str(args.others) + ' others':>12}"
    )
    print(f"{'inv run.status, ' + str(args.tasks) + ' tasks (asks squeue for our jobs)':58} {quiet:12.2f} {busy:12.2f}")
    print(f"{'for reference: squeue for every user (-r -t all)':58} {quiet_all:12.3f} {busy_all:12.3f}")
    extra = busy - quiet
    print(
        f"ratio busy/quiet = {busy / quiet:.2f}; {extra:+.2f} s with {args.others} other users' jobs "
        f"(goal <= +1 s): {'met' if extra <= 1.0 else 'NOT met'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
