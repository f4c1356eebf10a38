#!/usr/bin/env python3
"""Time `inv run.results` (plot included) on a 100-dataset RF100-VL run against reading the same files with
json alone.

    .venv/bin/python scripts/bench_results.py                 # 100 datasets x 20 lines, 5 rounds
    .venv/bin/python scripts/bench_results.py --lines 200 --rounds 3 --root /scratch/bench-results

The run is generated in SAM3's exact stats format (tests/support/sam3_stats.py): a launch.json of 100 done
tasks, each with logs/<dataset>/val_stats.json of --lines validations (the last one with AP_large -1) and
train_stats.json, and one config_resolved.yaml. Both sides are whole processes, timed from start to exit:
`inv run.results` (table, domain means, published figures and the PNG) and a python that reads each
val_stats.json and parses every line with json, as SAM3's extract script does, then prints the mean AP.
Goal: run.results at most 2 s on 2 cores.
"""

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from support.sam3_stats import PREFIX, write_record, write_task  # noqa: E402

import tasks  # noqa: E402,F401  (tasks.py sets up the tasks package path)
from tasks.lib.data.coco import RF100VL_NAMES  # noqa: E402

JSON_ONLY = r"""
import json, sys
from pathlib import Path
values = []
for path in sorted(Path(sys.argv[1]).glob("*/logs/*/val_stats.json")):
    last = None
    with open(path) as handle:
        for line in handle:
            last = json.loads(line)
    values.append(last[sys.argv[2]])
print(f"mean AP {100 * sum(values) / len(values):.2f} over {len(values)}")
"""


def generate(run: Path, lines: int) -> None:
    for i, dataset in enumerate(RF100VL_NAMES):
        aps = [round(0.05 + 0.6 * ((i * 37 + epoch * 11) % 100) / 100, 4) for epoch in range(lines)]
        write_task(run / dataset, dataset, aps, max_epochs=lines, AP_large=-1.0)
    (run / RF100VL_NAMES[0] / "config_resolved.yaml").write_text(f"trainer:\n  mode: val\n  max_epochs: {lines}\n")
    write_record(run, [{"dataset": d} for d in RF100VL_NAMES], request={"evaluate": True})


def timed(argv: list[str], env: dict | None = None) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=ROOT)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{argv[0]} failed: {done.stderr.strip()[-500:]}")
    return seconds, done.stdout


def main() -> int:
    import os

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=20, help="validations per stats file (default 20)")
    parser.add_argument("--rounds", type=int, default=5, help="timed runs of each side; the median is shown")
    parser.add_argument("--root", help="experiment root to generate into (default: a temporary folder)")
    args = parser.parse_args()
    base = Path(args.root) if args.root else Path(tempfile.mkdtemp(prefix="bench-results-"))
    run = base / "bench"
    generate(run, args.lines)
    print(f"{len(RF100VL_NAMES)} datasets x {args.lines} lines under {run}; {os.cpu_count()} cores")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INVOKE_", "SAM3_", "WANDB_"))}
    env["SAM3_EXPERIMENT_ROOT"] = str(base)
    inv = str(Path(sys.executable).with_name("inv"))
    sides = {
        "inv run.results (plot included)": [inv, "run.results", "--name", "bench"],
        "json alone (every line parsed)": [sys.executable, "-c", JSON_ONLY, str(run), PREFIX + "AP"],
    }
    timed(sides["inv run.results (plot included)"], env)  # warm the page cache and matplotlib's font cache
    medians = {}
    for label, argv in sides.items():
        runs = [timed(argv, env) for _ in range(args.rounds)]
        medians[label] = statistics.median(seconds for seconds, _ in runs)
        print(f"{label:34s} {medians[label]:6.2f} s  (median of {args.rounds})")
        last_out = runs[-1][1]
    assert (run / "results.png").stat().st_size > 10_000, "no plot"
    ours, floor = medians.values()
    print(f"json alone said: {last_out.strip()}")
    print(f"run.results / json alone: {ours / floor:5.2f}x;  run.results {ours:.2f} s (goal <= 2 s on 2 cores)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
