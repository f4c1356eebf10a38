#!/usr/bin/env python3
"""The demo end to end (`inv run.train`: 3 datasets, SAM3's Trainer with the reduced model on the CPU),
against SAM3's train.py called directly on the same rendered configs, in one run; and seconds per
training step of the reduced model at 224 px, from SAM3's own log lines.

Goal (issue 10): the demo in at most 120 s on 2 cores, set-up excluded (the environments exist). The
ratio says what the launcher adds (pre-flight, records, tables) over the bare train.py calls.

Usage: .venv/bin/python scripts/bench_demo.py
"""

import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STEP = re.compile(r"Train Epoch: \[(\d+)\]\[(\d+)/\d+\] \| Batch Time: ([\d.]+)")


def main() -> int:
    inv = Path(sys.executable).with_name("inv")
    with tempfile.TemporaryDirectory(prefix="bench-demo-") as tmp:
        tmp = Path(tmp)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("INVOKE_", "SAM3_"))}
        env.update(SAM3_EXPERIMENT_ROOT=str(tmp / "exp"), INVOKE_PATHS_DEMO_DATA_ROOT=str(tmp / "data"))
        # the demo data exist before timing: set-up is excluded
        made = subprocess.run(
            [inv, "data.synth", "--root", tmp / "data", "--datasets", "13-lkc01,-grccs,actions", "--images", "12"],
            env=env,
            capture_output=True,
            text=True,
        )
        if made.returncode != 0:
            print(made.stderr)
            return 1
        started = time.monotonic()
        demo = subprocess.run([inv, "run.train", "--name", "bench"], cwd=ROOT, env=env, capture_output=True, text=True)
        demo_s = time.monotonic() - started
        if demo.returncode != 0:
            print(demo.stdout[-3000:] + demo.stderr[-2000:])
            return 1
        record = json.loads((tmp / "exp" / "bench" / "launch.json").read_text())
        plugins = str(ROOT / "tasks" / "lib" / "run" / "plugins")
        configs = str(tmp / "exp" / "bench" / "configs")  # the run's rendered configs, found by our hydra plugin
        bare_env = dict(env, HF_HUB_OFFLINE="1", PYTHONPATH=plugins, SAM3_TASKS_CONFIG_DIR=configs)
        started = time.monotonic()
        for task in record["tasks"]:  # the same rendered configs, into fresh folders: no resume
            config = Path(task["config"])
            text = config.read_text().replace(task["experiment_dir"], task["experiment_dir"] + "-bare")
            config.with_name("bare-" + config.name).write_text(text)
            argv = [*task["argv"][:4], task["argv"][4].replace(config.name, "bare-" + config.name), *task["argv"][5:]]
            bare = subprocess.run(argv, cwd=tmp, env=bare_env, capture_output=True, text=True)
            config.with_name("bare-" + config.name).unlink()
            if bare.returncode != 0:
                print(bare.stdout[-3000:] + bare.stderr[-2000:])
                return 1
        bare_s = time.monotonic() - started
        steps = [
            float(m.group(3))
            for path in (tmp / "exp" / "bench").glob("*/logs/*/log.txt")
            for m in STEP.finditer(path.read_text())
            if (m.group(1), m.group(2)) != ("0", "0")
        ]
    print(f"demo end to end (inv run.train, 3 datasets): {demo_s:.1f} s (goal: at most 120 s)")
    print(f"SAM3's train.py called directly, same configs:  {bare_s:.1f} s")
    print(f"ratio: {demo_s / bare_s:.2f}x")
    print(
        f"training step, reduced model at 224 px: median {statistics.median(steps):.2f} s, "
        f"min {min(steps):.2f} s, max {max(steps):.2f} s over {len(steps)} steps (first step of each run excluded)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
