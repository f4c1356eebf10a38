"""Free VRAM against what a SAM3 run needs, and memory health (ECC, retired pages, row remaps)."""

from ..core.report import FAIL, PASS, SKIP, WARN, Check
from .gpu import Gpu, Health, Inventory

# Retired pages: NVIDIA asks for an RMA at 60 double-bit or 64 pages in all; warn well before.
RETIRED_PAGES_WARN = 48
RESET_FIX = "drain the node and reset the GPU (nvidia-smi -r) or reboot; tell the cluster admins"


def check_capacity(gpu: Gpu, need_gib: float, kind: str) -> Check:
    """Enough free VRAM on this GPU for a run of this kind?"""
    free, total = gpu.memory_free_mib / 1024, gpu.memory_total_mib / 1024
    subject = f"gpu {gpu.index} {gpu.name}"
    detail = f"{free:.1f} GiB free of {total:.1f}; a {kind} run needs ~{need_gib:g} GiB"
    if total < need_gib:
        return Check(
            "vram",
            subject,
            FAIL,
            detail,
            f"too small for {kind}: use a GPU with {need_gib:g}+ GiB, or a box-only/LoRA run",
        )
    if free < need_gib:
        holders = ", ".join(f"pid {p.pid} ({p.name})" for p in gpu.processes) or "other processes"
        return Check(
            "vram",
            subject,
            FAIL,
            detail,
            f"memory is held by {holders}: stop them or pick a free GPU with CUDA_VISIBLE_DEVICES",
        )
    return Check("vram", subject, PASS, detail)


def check_processes(gpu: Gpu) -> Check | None:
    """Other processes holding memory on this GPU (a warning: they compete with training)."""
    if not gpu.processes:
        return None
    held = "; ".join(f"pid {p.pid} {p.name} {'?' if p.used_mib is None else p.used_mib} MiB" for p in gpu.processes)
    return Check(
        "vram",
        f"gpu {gpu.index} processes",
        WARN,
        held,
        "make sure these are yours to share the GPU with, or stop them",
    )


def check_health(gpu: Gpu, source: str) -> Check:
    """ECC errors, retired pages and row remaps, folded into one verdict for the GPU."""
    subject = f"gpu {gpu.index} health"
    if source != "nvml":
        return Check("vram", subject, SKIP, "no health counters without NVML")
    h = gpu.health
    failures, warnings = _health_failures(h), _health_warnings(h)
    retired = (h.retired_pages_sbe or 0) + (h.retired_pages_dbe or 0)
    if failures:
        return Check("vram", subject, FAIL, "; ".join(failures + warnings), RESET_FIX)
    if warnings:
        return Check("vram", subject, WARN, "; ".join(warnings), "watch it; plan a replacement with the admins")
    ecc = "ECC on" if h.ecc_enabled else "ECC off or not supported"
    return Check("vram", subject, PASS, f"{ecc}; {retired} retired pages; no pending retirement or remap")


def _health_failures(h: Health) -> list[str]:
    """What makes the GPU unfit until a reset: errors since the last one, retirements and remaps pending."""
    failures = []
    if h.ecc_volatile_uncorrected:
        failures.append(f"{h.ecc_volatile_uncorrected} uncorrectable ECC errors since the last reset")
    if h.retirement_pending:
        failures.append("a page retirement is pending")
    if h.remap_failed:
        failures.append("a row remapping failed")
    if h.remap_pending:
        failures.append("a row remap is pending")
    return failures


def _health_warnings(h: Health) -> list[str]:
    """Wear over the GPU's life: uncorrectable errors, retired pages, rows remapped."""
    warnings = []
    if h.ecc_aggregate_uncorrected:
        warnings.append(f"{h.ecc_aggregate_uncorrected} uncorrectable ECC errors over its life")
    retired = (h.retired_pages_sbe or 0) + (h.retired_pages_dbe or 0)
    if retired >= RETIRED_PAGES_WARN:
        warnings.append(f"{retired} retired pages (RMA at 64)")
    if h.remapped_rows_uncorrectable:
        warnings.append(f"{h.remapped_rows_uncorrectable} rows remapped after uncorrectable errors")
    return warnings


def check_vram(inventory: Inventory, need_gib: float, kind: str) -> list[Check]:
    """All VRAM checks for every GPU in the inventory."""
    checks = []
    for gpu in inventory.gpus:
        checks.append(check_capacity(gpu, need_gib, kind))
        processes = check_processes(gpu)
        if processes:
            checks.append(processes)
        checks.append(check_health(gpu, inventory.source))
    return checks
