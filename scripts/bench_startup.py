#!/usr/bin/env python3
"""How fast `inv --list` starts, against `python -c "import invoke"` measured in the same run.

Goal (issue 2): a ratio under 1.5, i.e. our task collection adds little to invoke's own import.
Usage: .venv/bin/python scripts/bench_startup.py [--runs 20]
"""

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timed(argv: list[str], runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        samples.append(time.perf_counter() - start)
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    inv = str(Path(sys.executable).with_name("inv"))
    timed([inv, "--list"], 2)  # warm the page cache and .pyc files for both
    baseline = timed([sys.executable, "-c", "import invoke"], args.runs)
    ours = timed([inv, "--list"], args.runs)
    help_ = timed([inv, "--help", "hw.check"], args.runs)
    base = statistics.median(baseline)
    print(f"{'command':34} {'median ms':>10} {'ratio':>7}")
    for name, samples in (
        ('python -c "import invoke"', baseline),
        ("inv --list", ours),
        ("inv --help hw.check", help_),
    ):
        print(f"{name:34} {statistics.median(samples) * 1000:10.1f} {statistics.median(samples) / base:7.2f}")
    ratio = statistics.median(ours) / base
    print(f"inv --list / import invoke = {ratio:.2f} (goal < 1.5): {'met' if ratio < 1.5 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
