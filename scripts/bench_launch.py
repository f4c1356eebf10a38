#!/usr/bin/env python3
"""From `inv run.train --mode cluster --datasets all` on SAM3's RF100-VL config to all 100 array
tasks queued, against calling SAM3's train.py directly with the same rendered config, in one run.

Goal (issue 3): within 1.5x of the bare call, pre-flight included. Needs root, Debian's SLURM
(scripts/install-system-deps), the training env (scripts/setup-train-env) and SAM3's configs
($SAM3_CONFIGS_DIR or the sam3 submodule) with the BPE file ($SAM3_BPE_PATH). It starts its own
single-node cluster in a temporary folder, with every job submitted held (SBATCH_HOLD) so that
nothing runs while the two submissions are timed (jobs only queue), and stops it at the end.

Usage: .venv/bin/python scripts/bench_launch.py [--datasets 100]
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


def queued(env, array_job_id=None) -> int:
    out = run(["squeue", "-h", "-r", "-t", "all", "-o", "%i"], env).stdout.split()
    return len([job for job in out if array_job_id is None or job.startswith(f"{array_job_id}_")])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=int, default=100, help="how many RF100-VL datasets (default: all 100)")
    args = parser.parse_args()
    inv = Path(sys.executable).with_name("inv")
    with tempfile.TemporaryDirectory(prefix="bench-launch-") as tmp:
        tmp = Path(tmp)
        fixtures = ROOT.parent / "shared" / "fixtures"  # SAM3's configs beside a development checkout
        if fixtures.is_dir():
            os.environ.setdefault("SAM3_CONFIGS_DIR", str(fixtures / "sam3-configs"))
            os.environ.setdefault("SAM3_BPE_PATH", str(fixtures / "bpe_simple_vocab_16e6.txt.gz"))
        env = dict(os.environ, SAM3_SLURM_DIR=str(tmp / "slurm"), SAM3_SLURM_CPUS="32",
                   SAM3_EXPERIMENT_ROOT=str(tmp / "exp"), ROBOFLOW_VL_100_ROOT=str(tmp / "rf"))  # fmt: skip
        started = run([ROOT / "scripts" / "slurm-local", "start"], env)
        if started.returncode != 0:
            print(started.stdout + started.stderr)
            return 1
        env["SLURM_CONF"] = str(tmp / "slurm" / "slurm.conf")
        try:
            env["SBATCH_HOLD"] = "1"  # jobs are submitted held: they queue, and nothing runs while we time
            names = "all" if args.datasets >= 100 else str(args.datasets)
            made = run([inv, "data.synth", "--root", tmp / "rf", "--datasets", names, "--images", "6"], env)
            if made.returncode != 0:
                print(made.stderr)
                return 1
            selection = "all"
            if args.datasets < 100:
                selection = ",".join(sorted(p.name for p in (tmp / "rf").iterdir() if p.is_dir()))
            # The jobs stay held, so a stand-in checkpoint will do: without one, run.train would fetch
            # SAM3's gated weights (env.weights) before submitting.
            (tmp / "sam3.pt").write_bytes(b"")
            common = ["--mode", "cluster", "--partition", "long", "--num-gpus", "1", "--datasets", selection,
                      "--set", f"+trainer.model.checkpoint_path={tmp / 'sam3.pt'}"]  # fmt: skip

            warm = run([inv, "run.train", "--config", CONFIG, *common, "--name", "ours", "--dry-run"], env)
            if warm.returncode != 0:
                print(warm.stderr)
                return 1
            start = time.perf_counter()
            ours = run([inv, "run.train", "--config", CONFIG, *common, "--name", "ours"], env)
            ours_seconds = time.perf_counter() - start
            ours_count = queued(
                env, json.loads((tmp / "exp" / "ours" / "launch.json").read_text())["tasks"][0]["job_id"].split("_")[0]
            )
            run(["scancel", "-u", "root"], env)
            if ours.returncode != 0:
                print((ours.stdout[-3000:] + ours.stderr)[-4000:])
                return 1
            # The bare call: SAM3's train.py with the very config run.train rendered, as run.train ran it.
            argv = json.loads((tmp / "exp" / "ours" / "launch.json").read_text())["tasks"][0]["argv"]
            train_env = dict(env, HF_HUB_OFFLINE="1")
            time.sleep(2)
            start = time.perf_counter()
            bare = subprocess.run(argv, env=train_env, capture_output=True, text=True, cwd=tmp)
            bare_seconds = time.perf_counter() - start
            bare_ids = [line.split(":")[-1].strip() for line in bare.stdout.splitlines() if "Submitit Job ID" in line]
            bare_count = queued(env, bare_ids[0].split("_")[0]) if bare_ids else 0
            if bare.returncode != 0:
                print(bare.stderr[-3000:])
                return 1
            print(f"{'launch':58} {'seconds':>8} {'queued':>7}")
            print(f"{'SAM3 train.py, the same rendered config (bare)':58} {bare_seconds:8.2f} {bare_count:7d}")
            print(f"{'inv run.train (render, pre-flight, submit, record)':58} {ours_seconds:8.2f} {ours_count:7d}")
            ratio = ours_seconds / bare_seconds
            print(f"ratio = {ratio:.2f} (goal <= 1.5): {'met' if ratio <= 1.5 else 'NOT met'}")
        finally:
            run(["scancel", "-u", "root"], env)
            run([ROOT / "scripts" / "slurm-local", "stop"], env)
            shutil.rmtree(tmp / "slurm", ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
