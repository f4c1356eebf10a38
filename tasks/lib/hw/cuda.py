"""CUDA compatibility: the driver's CUDA, nvcc, and the training env's torch build.

torch is never imported here: the training env is asked in a subprocess.
"""

import json
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from ..core.report import FAIL, PASS, SKIP, WARN, Check
from .gpu import Inventory

# PyTorch wheel builds per CUDA version: (cuda, tag, torch releases that ship it).
# SAM3 asks for PyTorch 2.7 or newer, so only builds of those releases are recommended.
TORCH_CUDA_BUILDS = (
    ((13, 0), "cu130", "2.9 and newer"),
    ((12, 8), "cu128", "2.7 and newer"),
    ((12, 6), "cu126", "2.6 and newer"),
)
TORCH_INDEX = "https://download.pytorch.org/whl/{tag}"
# Oldest Linux driver that runs any toolkit of a CUDA major version (minor version compatibility).
MIN_DRIVER_FOR_MAJOR = {11: "450.80.02", 12: "525.60.13", 13: "580.65.06"}

TORCH_PROBE = """
import json, torch
arch = []
try:
    arch = torch._C._cuda_getArchFlags().split()
except Exception:
    arch = torch.cuda.get_arch_list()
print(json.dumps({"version": torch.__version__, "cuda": torch.version.cuda, "arch_list": arch}))
"""


@dataclass
class TorchBuild:
    version: str
    cuda: tuple[int, int] | None
    arch_list: list[str] = field(default_factory=list)


def parse_version(text: str | None) -> tuple[int, int] | None:
    """'12.8' -> (12, 8); None for None or text without a version."""
    match = re.search(r"(\d+)\.(\d+)", text or "")
    return (int(match.group(1)), int(match.group(2))) if match else None


def fmt(version: tuple[int, int] | None) -> str:
    return "-" if version is None else f"{version[0]}.{version[1]}"


def nvcc_version(nvcc: str = "nvcc") -> tuple[int, int] | None:
    """The CUDA toolkit version nvcc reports, or None when there is no nvcc."""
    if not shutil.which(nvcc):
        return None
    try:
        out = subprocess.run([nvcc, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r"release (\d+)\.(\d+)", out)
    return (int(match.group(1)), int(match.group(2))) if match else None


def torch_in_venv(venv: Path, timeout: float = 120) -> TorchBuild | None | str:
    """Ask the training env's python about its torch. None: no env or no torch; str: an error."""
    python = venv / "bin" / "python"
    if not python.exists():
        return None
    try:
        done = subprocess.run([str(python), "-c", TORCH_PROBE], capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"could not ask {python} about torch: {error}"
    if done.returncode != 0:
        if "No module named 'torch'" in done.stderr:
            return None
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return f"torch fails to import in {venv}: {last}"
    data = json.loads(done.stdout.strip().splitlines()[-1])
    return TorchBuild(version=data["version"], cuda=parse_version(data["cuda"]), arch_list=data["arch_list"])


def recommended_build(driver_cuda: tuple[int, int] | None, capabilities: list[tuple[int, int]]) -> str:
    """Which PyTorch build fits this driver and these GPUs, as one line with its index URL."""
    if driver_cuda is None:
        return "CPU build (no NVIDIA driver): pip install torch --index-url https://download.pytorch.org/whl/cpu"
    needs_blackwell = any(cap >= (10, 0) for cap in capabilities)
    builds = [b for b in TORCH_CUDA_BUILDS if not (needs_blackwell and b[0] < (12, 8))]
    fitting = [b for b in builds if b[0] <= driver_cuda]
    if fitting:
        cuda, tag, releases = fitting[0]
        return f"torch {releases}, {tag}: --index-url {TORCH_INDEX.format(tag=tag)}"
    same_major = [b for b in builds if b[0][0] == driver_cuda[0]]
    if same_major:
        cuda, tag, releases = same_major[-1]
        return (
            f"torch {releases}, {tag} through CUDA minor version compatibility: "
            f"--index-url {TORCH_INDEX.format(tag=tag)}"
        )
    oldest = builds[-1][0]
    return (
        f"none: the driver supports CUDA {fmt(driver_cuda)}, SAM3's torch needs CUDA {fmt(oldest)} or "
        f"newer; upgrade the NVIDIA driver to {MIN_DRIVER_FOR_MAJOR[oldest[0]]} or newer"
    )


def arch_supported(capability: tuple[int, int], arch_list: list[str]) -> bool:
    """True if the build has SASS for this GPU or PTX it can JIT (compute_XY at or below it)."""
    sm = f"sm_{capability[0]}{capability[1]}"
    if sm in arch_list:
        return True
    for arch in arch_list:
        match = re.fullmatch(r"compute_(\d+)(\d)", arch)
        if match and (int(match.group(1)), int(match.group(2))) <= capability:
            return True
    return False


def check_cuda(
    inventory: Inventory, nvcc: tuple[int, int] | None, torch: TorchBuild | None | str, venv: Path
) -> list[Check]:
    """Do driver, nvcc and the training env's torch fit together? One Check per question."""
    driver = inventory.cuda_driver_version
    capabilities = [g.compute_capability for g in inventory.gpus if g.compute_capability]
    advice = recommended_build(driver, capabilities)
    checks = [_driver_check(inventory, advice), _nvcc_check(nvcc, driver)]
    if torch is None or isinstance(torch, str):
        return [*checks, _no_torch_check(torch, venv)]
    checks.append(_torch_check(torch, driver, advice))
    if torch.cuda is not None:
        checks += _arch_checks(inventory, torch, advice)
    if nvcc is not None and torch.cuda is not None and nvcc[0] != torch.cuda[0]:
        checks.append(
            Check(
                "cuda",
                "nvcc/torch",
                WARN,
                f"nvcc {fmt(nvcc)} and {_label(torch)} differ in major version",
                "CUDA extensions will not build: match the toolkit to torch's CUDA",
            )
        )
    return checks


def _label(torch: TorchBuild) -> str:
    return f"torch {torch.version} (CUDA {fmt(torch.cuda)})"


def _driver_check(inventory: Inventory, advice: str) -> Check:
    """The driver's CUDA, with the torch build that fits it."""
    driver = inventory.cuda_driver_version
    if driver is None:
        return Check("cuda", "driver", SKIP, "no NVIDIA driver: CPU-only", f"fitting torch: {advice}")
    return Check(
        "cuda",
        "driver",
        PASS,
        f"driver {inventory.driver_version} supports CUDA up to {fmt(driver)}; fitting torch: {advice}",
    )


def _nvcc_check(nvcc: tuple[int, int] | None, driver: tuple[int, int] | None) -> Check:
    """Whether code nvcc compiles runs on this driver."""
    if nvcc is None:
        return Check("cuda", "nvcc", SKIP, "no nvcc on PATH (only needed to build CUDA extensions)")
    if driver is not None and nvcc[0] > driver[0]:
        return Check(
            "cuda",
            "nvcc",
            WARN,
            f"nvcc {fmt(nvcc)} is newer than the driver's CUDA {fmt(driver)}",
            "code it compiles will not run: upgrade the driver or use an older CUDA toolkit",
        )
    return Check("cuda", "nvcc", PASS, f"nvcc {fmt(nvcc)}")


def _no_torch_check(problem: str | None, venv: Path) -> Check:
    """No training env with torch (None), or one whose torch fails (the error)."""
    if problem is None:
        return Check(
            "cuda",
            "torch",
            SKIP,
            f"no training env with torch at {venv}",
            "inv env.venv then inv env.torch builds it with a fitting torch",
        )
    return Check("cuda", "torch", FAIL, problem, "reinstall it: inv env.torch")


def _torch_check(torch: TorchBuild, driver: tuple[int, int] | None, advice: str) -> Check:
    """Whether the driver runs torch's CUDA build: same major, newer minor, or too new."""
    label = _label(torch)
    if torch.cuda is None:
        status = WARN if driver is not None else PASS
        fix = f"install a CUDA build: inv env.torch ({advice})" if driver is not None else ""
        return Check("cuda", "torch", status, f"{label}: a CPU build", fix)
    if driver is None:
        return Check("cuda", "torch", SKIP, f"{label}: no driver to run it on")
    if torch.cuda[0] > driver[0]:
        return Check(
            "cuda",
            "torch",
            FAIL,
            f"{label} needs a driver for CUDA {torch.cuda[0]}.x; this one supports {fmt(driver)}",
            f"upgrade the driver to {MIN_DRIVER_FOR_MAJOR.get(torch.cuda[0], 'a newer one')} "
            f"or newer, or install {advice}",
        )
    if torch.cuda > driver:
        return Check(
            "cuda",
            "torch",
            WARN,
            f"{label} is newer than the driver's CUDA {fmt(driver)}: runs through minor version "
            "compatibility, but kernels that need PTX JIT fail",
            f"update the driver, or install {advice}",
        )
    return Check("cuda", "torch", PASS, f"{label} fits the driver's CUDA {fmt(driver)}")


def _arch_checks(inventory: Inventory, torch: TorchBuild, advice: str) -> list[Check]:
    """One failure per GPU the build has neither SASS nor usable PTX for."""
    checks = []
    for gpu in inventory.gpus:
        cap = gpu.compute_capability
        if cap and torch.arch_list and not arch_supported(cap, torch.arch_list):
            checks.append(
                Check(
                    "cuda",
                    f"gpu {gpu.index} arch",
                    FAIL,
                    f"{gpu.name} is sm_{cap[0]}{cap[1]}; {_label(torch)} has {' '.join(torch.arch_list)}",
                    f"install a build with sm_{cap[0]}{cap[1]}: {advice}",
                )
            )
    return checks
