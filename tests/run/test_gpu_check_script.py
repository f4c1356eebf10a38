"""scripts/gpu_check.py, the prepared GPU check, runs its CPU half here: hw.check, then --smoke on SAM3's
RF100-VL fine-tuning config with the reduced model, and SAM3's own step times read back."""

import subprocess
import sys

from conftest import ROOT
from support.sam3_configs import require_configs


def test_the_gpu_check_runs_its_cpu_half_and_reports_seconds_per_step(clean_env, tmp_path):
    small = {
        f"INVOKE_HW_DISK_{kind}_GB": "0.01" for kind in ("RF100VL", "ODINW", "WEIGHTS", "CHECKPOINTS", "TRAIN_VENV")
    }
    environ = dict(clean_env, SAM3_CONFIGS_DIR=str(require_configs()), **small)  # this disk's room
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gpu_check.py"), "--keep", str(tmp_path / "run")],
        env=environ,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "== inv hw.check --allow-no-gpu" in done.stdout
    assert "smoke: SAM3's Trainer with SAM3's model classes at a reduced size" in done.stdout
    assert "model: reduced, CPU" in done.stdout and "peak VRAM: no GPU" in done.stdout
    seconds = next(line for line in done.stdout.splitlines() if line.startswith("seconds per training step"))
    assert float(seconds.split("median ")[1].split()[0]) > 0
