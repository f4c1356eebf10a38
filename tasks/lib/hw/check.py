"""hw.check as plain functions: gather the facts once, judge them, pick the exit code."""

from dataclasses import dataclass, field
from typing import Any

from ..core.errors import EXIT_CHECK_FAILED, EXIT_NO_GPU, EXIT_OK
from ..core.report import FAIL, PASS, WARN, Check, worst
from . import cuda, disk, gpu, vram

SECTIONS = ("gpu", "cuda", "vram", "disk")


@dataclass
class HardwareReport:
    inventory: gpu.Inventory
    checks: list[Check] = field(default_factory=list)
    no_gpu: bool = False
    allow_no_gpu: bool = False

    @property
    def exit_code(self) -> int:
        if self.no_gpu and not self.allow_no_gpu:
            return EXIT_NO_GPU
        return EXIT_CHECK_FAILED if worst(self.checks) == FAIL else EXIT_OK

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": worst(self.checks),
            "exit_code": self.exit_code,
            "no_gpu": self.no_gpu,
            "inventory": self.inventory,
            "checks": self.checks,
        }


def gpu_checks(inventory: gpu.Inventory, allow_no_gpu: bool) -> list[Check]:
    """One row for the GPUs found (or not), with how they were read."""
    if not inventory.gpus:
        why = inventory.note or "NVML reports no GPUs"
        if allow_no_gpu:
            return [Check("gpu", "count", WARN, f"no NVIDIA GPU ({why})", "fine for CPU-only flows (--allow-no-gpu)")]
        return [
            Check(
                "gpu",
                "count",
                FAIL,
                f"no NVIDIA GPU ({why})",
                "run on a GPU node, or pass --allow-no-gpu for CPU-only flows",
            )
        ]
    models = ", ".join(sorted({g.name for g in inventory.gpus}))
    detail = f"{len(inventory.gpus)} x {models}; driver {inventory.driver_version} (read by {inventory.source})"
    status, fix = PASS, ""
    if inventory.source != "nvml":
        status, fix = WARN, f"{inventory.note}: reinstall the NVIDIA driver's NVML library for health counters"
    return [Check("gpu", "count", status, detail, fix)]


def no_gpu_message(inventory: gpu.Inventory) -> str:
    return (
        f"No NVIDIA GPU found ({inventory.note or 'NVML reports none'}). "
        "On a machine without GPU, pass --allow-no-gpu for CPU-only flows."
    )


def run_checks(
    settings, sections=SECTIONS, kind: str | None = None, allow_no_gpu: bool = False, nvml: Any = None
) -> HardwareReport:
    """Run the named sections of hw.check and collect their rows."""
    inventory = gpu.read_inventory(nvml) if {"gpu", "cuda", "vram"} & set(sections) else gpu.Inventory("none")
    needs_gpu = bool({"gpu", "vram"} & set(sections))
    report = HardwareReport(inventory=inventory, no_gpu=needs_gpu and not inventory.gpus, allow_no_gpu=allow_no_gpu)
    if "gpu" in sections:
        report.checks += gpu_checks(inventory, allow_no_gpu)
    if "cuda" in sections:
        venv = settings.path("sam3.train_venv")
        report.checks += cuda.check_cuda(inventory, cuda.nvcc_version(), cuda.torch_in_venv(venv), venv)
    if "vram" in sections and inventory.gpus:
        kind = kind or settings["hw.run_kind"]
        report.checks += vram.check_vram(inventory, settings[f"hw.vram_{kind}_gb"], kind)
    if "disk" in sections:
        report.checks += disk.check_disk(disk.plan_locations(settings), settings["hw.disk_margin"])
    return report
