#!/usr/bin/env python3
"""`inv run.export` (the proof included) beside a bare export of the same trainer checkpoint, measured in the
same run: a python of the training venv that only does `torch.load` and `torch.save` of the model's tensors
under the `detector.` prefix (interpreter and torch start-up included, as run.export's are).

The checkpoint is a real one of SAM3's Trainer: the CPU demo (SAM3's model classes at a reduced size,
22 M parameters, 248 MB with AdamW's state) trained one epoch on one dataset. Making it is set-up and is
not timed. Each side runs RUNS times; medians are compared. Goal (issue 20): at most 2x.

Usage: .venv/bin/python scripts/bench_export.py
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TRAIN_PYTHON = ROOT / ".venv-train" / "bin" / "python"
RUNS = 3
GOAL = 2.0
BARE = """
import sys, torch
checkpoint = torch.load(sys.argv[1], map_location="cpu", weights_only=True)
torch.save({"model": {"detector." + k: v for k, v in checkpoint["model"].items()}}, sys.argv[2])
"""


def timed(argv: list[str], env: dict) -> tuple[float, str]:
    started = time.monotonic()
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.monotonic() - started
    if done.returncode != 0:
        sys.exit(done.stdout[-3000:] + done.stderr[-3000:])
    return seconds, done.stdout


def main() -> int:
    inv = str(Path(sys.executable).with_name("inv"))
    with tempfile.TemporaryDirectory(prefix="bench-export-") as tmp:
        tmp = Path(tmp)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("INVOKE_", "SAM3_"))}
        env.update(SAM3_EXPERIMENT_ROOT=str(tmp / "exp"), INVOKE_PATHS_DEMO_DATA_ROOT=str(tmp / "data"))
        timed([inv, "run.train", "--name", "bench", "--datasets", "actions", "--set", "trainer.max_epochs=1"], env)
        checkpoint = tmp / "exp" / "bench" / "actions" / "checkpoints" / "checkpoint.pt"
        bare, ours, results = [], [], []
        for _ in range(RUNS):
            bare.append(timed([str(TRAIN_PYTHON), "-c", BARE, str(checkpoint), str(tmp / "bare.pt")], env)[0])
            seconds, out = timed([inv, "run.export", "--output", str(tmp / "export.pt"), "--force", "--json"], env)
            ours.append(seconds)
            results.append(json.loads(out))
        bare_s, ours_s = statistics.median(bare), statistics.median(ours)
        steps = {key: statistics.median(r["seconds"][key] for r in results) for key in results[0]["seconds"]}
        sizes = (checkpoint.stat().st_size, (tmp / "bare.pt").stat().st_size, results[-1]["bytes"])
    proof = results[-1]["proof"]
    print(
        f"trainer checkpoint {sizes[0] / 1e6:.1f} MB; bare export {sizes[1] / 1e6:.1f} MB; run.export {sizes[2] / 1e6:.1f} MB"
    )
    print(f"bare torch.load + torch.save:  {bare_s:5.2f} s (median of {RUNS}: {', '.join(f'{s:.2f}' for s in bare)})")
    print(
        f"inv run.export, proof included: {ours_s:5.2f} s (median of {RUNS}: {', '.join(f'{s:.2f}' for s in ours)}); "
        f"{ours_s / bare_s:.2f}x the bare export (goal at most {GOAL:.0f}x: {'met' if ours_s / bare_s <= GOAL else 'NOT met'})"
    )
    print(
        "  inside run.export (medians): "
        + ", ".join(f"{key} {value:.2f} s" for key, value in steps.items())
        + f"; proof: {proof['tensors_equal']}/{proof['tensors']} tensors equal, outputs {proof['outputs']}"
    )
    print(f"on {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; the demo run made beforehand")
    return 0


if __name__ == "__main__":
    sys.exit(main())
