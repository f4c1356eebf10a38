#!/usr/bin/env python3
"""`inv run.train --data DIR --smoke` on a user's own dataset whose test split has 1,800 images, beside the
same smoke run on a dataset whose test split has 4 (the baseline, measured in the same run). --smoke
evaluates the first 4 test images (a subset file with its own ground truth), as it trains on 4 images, so
the two should take about as long; before that, the 1,800-image evaluation took 163 s on 2 cores.

Goal (issue 19): at most 45 s on 2 cores for the 1,800-image dataset. Set-up (the environments, the
generated images) is excluded. SAM3's Trainer with the reduced model on the CPU.

Usage: .venv/bin/python scripts/bench_smoke_eval.py
"""

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from support.own_coco import write_dataset  # noqa: E402  (the tests' generator of own COCO folders)

TEST_IMAGES = 1800
GOAL_S = 45.0


def smoke_seconds(inv: Path, folder: Path, env: dict) -> float:
    started = time.monotonic()
    done = subprocess.run(
        [inv, "run.train", "--data", folder, "--smoke"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    seconds = time.monotonic() - started
    if done.returncode != 0:
        sys.exit(done.stdout[-3000:] + done.stderr[-2000:])
    return seconds


def main() -> int:
    inv = Path(sys.executable).with_name("inv")
    with tempfile.TemporaryDirectory(prefix="bench-smoke-") as tmp:
        tmp = Path(tmp)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("INVOKE_", "SAM3_"))}
        env.update(SAM3_EXPERIMENT_ROOT=str(tmp / "exp"), SAM3_CONFIGS_DIR=os.environ.get("SAM3_CONFIGS_DIR", ""))
        small = write_dataset(tmp / "data" / "four-test-images", {"train": 4, "test": 4})
        large = write_dataset(tmp / "data" / "large-test-split", {"train": 4, "test": TEST_IMAGES})
        small_s = smoke_seconds(inv, small, env)
        large_s = smoke_seconds(inv, large, env)
    print(f"--smoke, test split of 4 images:      {small_s:6.1f} s (baseline)")
    print(
        f"--smoke, test split of {TEST_IMAGES:,} images: {large_s:6.1f} s ({large_s / small_s:.2f}x the baseline; "
        f"goal at most {GOAL_S:.0f} s: {'met' if large_s <= GOAL_S else 'NOT met'})"
    )
    print(f"on {os.cpu_count()} CPUs; SAM3's Trainer, reduced model, CPU; environments and images made beforehand")
    return 0


if __name__ == "__main__":
    sys.exit(main())
