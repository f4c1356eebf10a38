#!/usr/bin/env python3
"""The prepared GPU check: `inv hw.check`, then `inv run.train --config roboflow_v100_full_ft_100_images
--smoke` on a generated dataset, and what SAM3's Trainer measured: peak VRAM and seconds per step.

With an NVIDIA GPU, the smoke run is SAM3's full-size model (build_sam3_image_model, 838 M parameters)
with random weights (no token, no download: load_from_HF false, the text encoder initialised by
tasks/lib/run/plugins/sam3_cpu.init_text_encoder). Without one, the same command runs the reduced
model on the CPU (the half CI runs). Needs the environments (scripts/setup-tests) and SAM3's configs
(the sam3 submodule or $SAM3_CONFIGS_DIR).

Usage: .venv/bin/python scripts/gpu_check.py [--keep DIR]   exit 0 when both steps pass
"""

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PLUGINS = ROOT / "tasks" / "lib" / "run" / "plugins"
DATASET = "actions"
STEP = re.compile(
    r"Train Epoch: \[(\d+)\]\[(\d+)/\d+\] \| Batch Time: ([\d.]+) .*?\| Mem \(GB\): [\d.]+ \([\d.]+/([\d.]+)\)"
)
FULL_SIZE = [
    "--set",
    "+trainer.model.load_from_HF=false",
    "--set",
    "+trainer.checkpoint.model_weight_initializer._target_=sam3_cpu.init_text_encoder",
    "--set",
    "+trainer.checkpoint.model_weight_initializer._partial_=true",
]


def has_gpu() -> bool:
    smi = shutil.which("nvidia-smi")
    return bool(smi) and subprocess.run([smi, "-L"], capture_output=True).returncode == 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", help="write data and experiments here instead of a temporary folder")
    args = parser.parse_args()
    inv = str(Path(sys.executable).with_name("inv"))
    base = Path(args.keep or tempfile.mkdtemp(prefix="gpu-check-"))
    env = dict(
        os.environ, SAM3_EXPERIMENT_ROOT=str(base / "exp"), ROBOFLOW_VL_100_ROOT=str(base / "rf"), PYTHONUNBUFFERED="1"
    )
    gpu = has_gpu()
    print(f"== inv hw.check{'' if gpu else ' --allow-no-gpu'}", flush=True)
    hw = subprocess.run([inv, "hw.check", *([] if gpu else ["--allow-no-gpu"])], cwd=ROOT, env=env)
    made = subprocess.run(
        [inv, "data.synth", "--root", str(base / "rf"), "--datasets", DATASET],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    if made.returncode != 0:
        print(made.stderr, file=sys.stderr)
        return 1
    argv = [
        inv,
        "run.train",
        "--config",
        "roboflow_v100_full_ft_100_images",
        "--smoke",
        "--datasets",
        DATASET,
        "--name",
        "gpu-check",
        *(FULL_SIZE if gpu else []),
    ]
    if gpu:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PLUGINS), env.get("PYTHONPATH")]))
    print(f"== {' '.join(argv[1:])}", flush=True)
    smoke = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True)
    said = [line for line in smoke.stdout.splitlines() if line.startswith("smoke:")]
    print("\n".join(said) or "(no model line)")
    if smoke.returncode != 0:
        print(smoke.stdout[-4000:] + smoke.stderr[-2000:])
        return 1
    log = next((base / "exp" / "gpu-check" / DATASET / "logs").glob("*/log.txt")).read_text()
    steps = [
        (float(m.group(3)), float(m.group(4))) for m in STEP.finditer(log) if (m.group(1), m.group(2)) != ("0", "0")
    ]
    if not steps:
        print("no training step in SAM3's log.txt")
        return 1
    seconds = statistics.median(s for s, _ in steps)
    peak = max(mem for _, mem in steps)
    print(f"model: {'full size (build_sam3_image_model), random weights, GPU' if gpu else 'reduced, CPU'}")
    print(f"seconds per training step: median {seconds:.2f} over {len(steps)} steps (first excluded)")
    print(f"peak VRAM (SAM3's max_memory_allocated): {peak:.2f} GB" if gpu else "peak VRAM: no GPU")
    print(f"files: {base}")
    return 0 if hw.returncode == 0 else hw.returncode


if __name__ == "__main__":
    sys.exit(main())
