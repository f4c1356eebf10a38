#!/usr/bin/env python3
"""A 1,000-task grid, from `inv run.train` to every task queued on a real SLURM cluster, pre-flight
included: SAM3's RF100-VL config over 100 generated datasets x 10 cells (--grid scratch.lr_scale=...),
against submitting the same 1,000 tasks as bare `sbatch --array` calls (one per cell), in one run.
For reference it also times SAM3's own train.py submitting one cell's 100-task array.

Goal (issue 11): at most 60 s on 2 cores; the ratio against bare sbatch is printed. Needs root,
Debian's SLURM (scripts/install-system-deps), the training env (scripts/setup-train-env) and SAM3's
configs ($SAM3_CONFIGS_DIR or the sam3 submodule) with the BPE file ($SAM3_BPE_PATH). It starts its
own single-node cluster in a temporary folder, with a job holding all its GPUs so that nothing runs
while the submissions are timed (jobs only queue), and stops it at the end.

Usage: .venv/bin/python scripts/bench_launch.py [--datasets 100] [--cells 10]
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIG = "roboflow_v100_full_ft_100_images"


def run(argv, env, **kwargs):
    return subprocess.run([str(a) for a in argv], env=env, capture_output=True, text=True, **kwargs)


def known_jobs(env) -> set[str]:
    """Every job SLURM knows (array tasks one by one), in any state."""
    return set(run(["squeue", "-h", "-r", "-t", "all", "-o", "%i"], env).stdout.split())


def take_gpus(env) -> None:
    """A job holding all 4 GPUs of the node: every task asks for one, so they only queue while we time."""
    argv = ["sbatch", "--partition", "long", "--gres", "gpu:4", "--output", "/dev/null", "--wrap", "sleep 3600"]
    run(argv, env, check=True)


class Stop(Exception):
    """A step failed: its output is printed and the bench exits 1 (after stopping the cluster)."""


def bench_env(tmp: Path) -> dict[str, str]:
    """The environment of every command: SAM3's configs, our own cluster, data and experiments in tmp."""
    fixtures = ROOT.parent / "shared" / "fixtures"  # SAM3's configs beside a development checkout
    if fixtures.is_dir():
        os.environ.setdefault("SAM3_CONFIGS_DIR", str(fixtures / "sam3-configs"))
        os.environ.setdefault("SAM3_BPE_PATH", str(fixtures / "bpe_simple_vocab_16e6.txt.gz"))
    return dict(
        os.environ,
        SAM3_SLURM_DIR=str(tmp / "slurm"),
        SAM3_SLURM_CPUS="32",
        SAM3_SLURM_MAX_JOB_COUNT="20000",
        SAM3_EXPERIMENT_ROOT=str(tmp / "exp"),
        ROBOFLOW_VL_100_ROOT=str(tmp / "rf"),
    )


def make_datasets(inv: Path, tmp: Path, env, datasets: int) -> str:
    """Generate the datasets (6 images each); the --datasets value that selects them."""
    names = "all" if datasets >= 100 else str(datasets)
    made = run([inv, "data.synth", "--root", tmp / "rf", "--datasets", names, "--images", "6"], env)
    if made.returncode != 0:
        raise Stop(made.stderr)
    if datasets >= 100:
        return "all"
    return ",".join(sorted(p.name for p in (tmp / "rf").iterdir() if p.is_dir()))


def common_flags(tmp: Path, selection: str) -> list[str]:
    """run.train's flags for a cluster launch of the selected datasets."""
    # The jobs stay pending, so a stand-in checkpoint will do: without one, run.train would fetch
    # SAM3's gated weights (env.weights) before submitting.
    (tmp / "sam3.pt").write_bytes(b"")
    return [
        "--mode",
        "cluster",
        "--partition",
        "long",
        "--num-gpus",
        "1",
        "--datasets",
        selection,
        "--set",
        f"+trainer.model.checkpoint_path={tmp / 'sam3.pt'}",
    ]


def time_ours(inv: Path, tmp: Path, env, common: list[str], cells: int) -> tuple[float, int, int]:
    """`inv run.train --grid` after a warm-up dry run: (seconds, tasks queued, tasks in its launch record)."""
    values = ",".join(f"{0.1 * (i + 1):.1f}" for i in range(cells))
    grid = ["--grid", f"scratch.lr_scale={values}"]
    warm = run([inv, "run.train", "--config", CONFIG, *common, *grid, "--name", "ours", "--dry-run"], env)
    if warm.returncode != 0:
        raise Stop(warm.stderr)
    before = known_jobs(env)
    start = time.perf_counter()
    ours = run([inv, "run.train", "--config", CONFIG, *common, *grid, "--name", "ours"], env)
    seconds = time.perf_counter() - start
    if ours.returncode != 0:
        raise Stop((ours.stdout[-3000:] + ours.stderr)[-4000:])
    record = json.loads((tmp / "exp" / "ours" / "launch.json").read_text())
    return seconds, len(known_jobs(env) - before), len(record["tasks"])


def time_bare(env, cells: int, per_cell: int) -> tuple[float, int]:
    """The baseline: the same number of queued array tasks, one bare sbatch --array per cell."""
    argv = ["sbatch", "--partition", "long", "--gres", "gpu:1", f"--array=0-{per_cell - 1}"]
    before = known_jobs(env)
    start = time.perf_counter()
    for _ in range(cells):
        run([*argv, "--output", "/dev/null", "--wrap", "true"], env, check=True)
    return time.perf_counter() - start, len(known_jobs(env) - before)


def time_sam3(inv: Path, tmp: Path, env, common: list[str]) -> tuple[float, int]:
    """For reference: SAM3's own train.py submitting one cell's array task by task, on the config our
    launch rendered for that cell."""
    one = run([inv, "run.train", "--config", CONFIG, *common, "--name", "one-cell"], env)
    rendered = Path(json.loads((tmp / "exp" / "one-cell" / "launch.json").read_text())["tasks"][0]["config"])
    config = "sam3_tasks/" + rendered.name  # the rendered config our launch left for its jobs
    clear_queue(env)
    time.sleep(2)
    python = ROOT / ".venv-train" / "bin" / "python"
    plugins = str(ROOT / "tasks" / "lib" / "run" / "plugins")  # our hydra plugin finds the run's configs
    sam3_env = dict(env, HF_HUB_OFFLINE="1", PYTHONPATH=plugins, SAM3_TASKS_CONFIG_DIR=str(rendered.parents[1]))
    before = known_jobs(env)
    start = time.perf_counter()
    argv = [python, "-m", "sam3.train.train", "-c", config, "--use-cluster", "1", "--partition", "long"]
    sam3 = run([*argv, "--num-gpus", "1"], sam3_env, cwd=tmp)
    seconds = time.perf_counter() - start
    return seconds, len(known_jobs(env) - before) if sam3.returncode == 0 and one.returncode == 0 else 0


def clear_queue(env) -> None:
    """Cancel every job, then hold the GPUs again for the next measurement."""
    run(["scancel", "-u", "root"], env)
    take_gpus(env)


def report(ours: tuple[float, int, int], bare: tuple[float, int], sam3: tuple[float, int], per_cell: int) -> None:
    (ours_seconds, ours_count, tasks), (bare_seconds, bare_count), (sam3_seconds, sam3_count) = ours, bare, sam3
    print(f"{'launch':66} {'seconds':>8} {'queued':>7}")
    print(f"{'bare sbatch --array, one per cell':66} {bare_seconds:8.2f} {bare_count:7d}")
    print(f"{'inv run.train --grid (render, pre-flight, submit, record)':66} {ours_seconds:8.2f} {ours_count:7d}")
    print(
        f"{'for reference: SAM3 train.py, one cell of ' + str(per_cell) + ' tasks':66} {sam3_seconds:8.2f} "
        f"{sam3_count:7d}"
    )
    print(
        f"ratio against bare sbatch = {ours_seconds / bare_seconds:.1f}; {tasks} tasks in {ours_seconds:.1f} s "
        f"(goal <= 60 s): {'met' if ours_seconds <= 60 else 'NOT met'}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=int, default=100, help="how many RF100-VL datasets (default: all 100)")
    parser.add_argument("--cells", type=int, default=10, help="grid cells (default: 10)")
    args = parser.parse_args()
    inv = Path(sys.executable).with_name("inv")
    with tempfile.TemporaryDirectory(prefix="bench-launch-") as tmp:
        tmp = Path(tmp)
        env = bench_env(tmp)
        started = run([ROOT / "scripts" / "slurm-local", "start"], env)
        if started.returncode != 0:
            print(started.stdout + started.stderr)
            return 1
        env["SLURM_CONF"] = str(tmp / "slurm" / "slurm.conf")
        try:
            take_gpus(env)
            common = common_flags(tmp, make_datasets(inv, tmp, env, args.datasets))
            ours = time_ours(inv, tmp, env, common, args.cells)
            clear_queue(env)
            time.sleep(2)
            per_cell = ours[2] // args.cells
            bare = time_bare(env, args.cells, per_cell)
            clear_queue(env)
            time.sleep(2)
            sam3 = time_sam3(inv, tmp, env, common)
            report(ours, bare, sam3, per_cell)
        except Stop as stop:
            print(stop)
            return 1
        finally:
            run(["scancel", "-u", "root"], env)
            run([ROOT / "scripts" / "slurm-local", "stop"], env)
            shutil.rmtree(tmp / "slurm", ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
