"""NVIDIA GPU inventory through NVML (nvidia-ml-py), with nvidia-smi as a fallback.

`read_inventory()` takes the NVML module as a parameter so that tests can hand it a fake with
the same functions and the real pynvml exception classes; nothing else here is faked.
"""

import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

MIB = 1024 * 1024


@dataclass
class GpuProcess:
    pid: int
    name: str
    used_mib: int | None


@dataclass
class Health:
    """Memory health counters; None where the GPU or driver does not report them."""

    ecc_enabled: bool | None = None
    ecc_volatile_uncorrected: int | None = None
    ecc_volatile_corrected: int | None = None
    ecc_aggregate_uncorrected: int | None = None
    ecc_aggregate_corrected: int | None = None
    retired_pages_sbe: int | None = None
    retired_pages_dbe: int | None = None
    retirement_pending: bool | None = None
    remapped_rows_correctable: int | None = None
    remapped_rows_uncorrectable: int | None = None
    remap_pending: bool | None = None
    remap_failed: bool | None = None


@dataclass
class Gpu:
    index: int
    name: str
    uuid: str
    memory_total_mib: int
    memory_used_mib: int
    memory_free_mib: int
    compute_capability: tuple[int, int] | None
    processes: list[GpuProcess] = field(default_factory=list)
    health: Health = field(default_factory=Health)


@dataclass
class Inventory:
    """What the machine says about its GPUs. source: 'nvml', 'nvidia-smi' or 'none'."""

    source: str
    driver_version: str | None = None
    cuda_driver_version: tuple[int, int] | None = None
    gpus: list[Gpu] = field(default_factory=list)
    note: str = ""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _optional(nvml: Any, function: Callable[..., Any], *args: Any) -> Any:
    """Call an NVML query that some GPUs or drivers do not support; None when unsupported."""
    try:
        return function(*args)
    except nvml.NVMLError:
        return None


def _processes(nvml: Any, handle: Any) -> list[GpuProcess]:
    found = _optional(nvml, nvml.nvmlDeviceGetComputeRunningProcesses, handle) or []
    processes = []
    for proc in found:
        name = _optional(nvml, nvml.nvmlSystemGetProcessName, proc.pid)
        used = proc.usedGpuMemory
        processes.append(
            GpuProcess(
                pid=int(proc.pid),
                name=_text(name) if name else "?",
                used_mib=None if used is None else int(used) // MIB,
            )
        )
    return processes


def _health(nvml: Any, handle: Any) -> Health:
    health = Health()
    mode = _optional(nvml, nvml.nvmlDeviceGetEccMode, handle)
    health.ecc_enabled = None if mode is None else bool(mode[0])
    if health.ecc_enabled:

        def ecc(kind: int, counter: int) -> int | None:
            return _optional(nvml, nvml.nvmlDeviceGetTotalEccErrors, handle, kind, counter)

        unc, cor = nvml.NVML_MEMORY_ERROR_TYPE_UNCORRECTED, nvml.NVML_MEMORY_ERROR_TYPE_CORRECTED
        health.ecc_volatile_uncorrected = ecc(unc, nvml.NVML_VOLATILE_ECC)
        health.ecc_volatile_corrected = ecc(cor, nvml.NVML_VOLATILE_ECC)
        health.ecc_aggregate_uncorrected = ecc(unc, nvml.NVML_AGGREGATE_ECC)
        health.ecc_aggregate_corrected = ecc(cor, nvml.NVML_AGGREGATE_ECC)
    sbe_cause = nvml.NVML_PAGE_RETIREMENT_CAUSE_MULTIPLE_SINGLE_BIT_ECC_ERRORS
    sbe = _optional(nvml, nvml.nvmlDeviceGetRetiredPages, handle, sbe_cause)
    dbe = _optional(nvml, nvml.nvmlDeviceGetRetiredPages, handle, nvml.NVML_PAGE_RETIREMENT_CAUSE_DOUBLE_BIT_ECC_ERROR)
    health.retired_pages_sbe = None if sbe is None else len(sbe)
    health.retired_pages_dbe = None if dbe is None else len(dbe)
    pending = _optional(nvml, nvml.nvmlDeviceGetRetiredPagesPendingStatus, handle)
    health.retirement_pending = None if pending is None else pending == nvml.NVML_FEATURE_ENABLED
    rows = _optional(nvml, nvml.nvmlDeviceGetRemappedRows, handle)
    if rows is not None:
        correctable, uncorrectable, is_pending, failed = rows
        health.remapped_rows_correctable = int(correctable)
        health.remapped_rows_uncorrectable = int(uncorrectable)
        health.remap_pending = bool(is_pending)
        health.remap_failed = bool(failed)
    return health


def _read_nvml(nvml: Any) -> Inventory:
    inventory = Inventory(source="nvml", driver_version=_text(nvml.nvmlSystemGetDriverVersion()))
    cuda = _optional(nvml, nvml.nvmlSystemGetCudaDriverVersion_v2)
    if cuda:
        inventory.cuda_driver_version = (cuda // 1000, (cuda % 1000) // 10)
    for index in range(nvml.nvmlDeviceGetCount()):
        handle = nvml.nvmlDeviceGetHandleByIndex(index)
        memory = nvml.nvmlDeviceGetMemoryInfo(handle)
        capability = _optional(nvml, nvml.nvmlDeviceGetCudaComputeCapability, handle)
        inventory.gpus.append(
            Gpu(
                index=index,
                name=_text(nvml.nvmlDeviceGetName(handle)),
                uuid=_text(_optional(nvml, nvml.nvmlDeviceGetUUID, handle) or ""),
                memory_total_mib=int(memory.total) // MIB,
                memory_used_mib=int(memory.used) // MIB,
                memory_free_mib=int(memory.free) // MIB,
                compute_capability=tuple(capability) if capability else None,
                processes=_processes(nvml, handle),
                health=_health(nvml, handle),
            )
        )
    return inventory


SMI_QUERY = [
    "nvidia-smi",
    "--query-gpu=index,name,uuid,memory.total,memory.used,memory.free,driver_version,compute_cap",
    "--format=csv,noheader,nounits",
]


def parse_smi_query(text: str) -> list[Gpu]:
    """GPUs from `nvidia-smi --query-gpu=... --format=csv,noheader,nounits` output."""
    gpus = []
    for line in text.strip().splitlines():
        fields = [part.strip() for part in line.split(",")]
        if len(fields) < 8:
            continue
        index, name, uuid, total, used, free, _driver, capability = fields[:8]
        major, _, minor = capability.partition(".")
        gpus.append(
            Gpu(
                index=int(index),
                name=name,
                uuid=uuid,
                memory_total_mib=int(float(total)),
                memory_used_mib=int(float(used)),
                memory_free_mib=int(float(free)),
                compute_capability=(int(major), int(minor)) if minor.isdigit() else None,
            )
        )
    return gpus


def parse_smi_header(text: str) -> tuple[str | None, tuple[int, int] | None]:
    """Driver version and highest CUDA version from plain `nvidia-smi` output."""
    driver = re.search(r"Driver Version:\s*([\d.]+)", text)
    cuda = re.search(r"CUDA Version:\s*(\d+)\.(\d+)", text)
    return (driver.group(1) if driver else None, (int(cuda.group(1)), int(cuda.group(2))) if cuda else None)


def run_nvidia_smi(args: list[str]) -> str | None:
    """Output of nvidia-smi, or None when it is absent or fails."""
    if not shutil.which(args[0]):
        return None
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def _read_smi(run: Callable[[list[str]], str | None]) -> Inventory | None:
    query = run(SMI_QUERY)
    if query is None:
        return None
    driver, cuda = parse_smi_header(run(["nvidia-smi"]) or "")
    return Inventory(source="nvidia-smi", driver_version=driver, cuda_driver_version=cuda, gpus=parse_smi_query(query))


def read_inventory(nvml: Any = None, run_smi: Callable[[list[str]], str | None] = run_nvidia_smi) -> Inventory:
    """Ask NVML about every GPU; if NVML cannot load but nvidia-smi works, ask nvidia-smi."""
    if nvml is None:
        import pynvml as nvml
    try:
        nvml.nvmlInit()
    except nvml.NVMLError as error:
        reason = f"NVML unavailable: {error}"
        fallback = _read_smi(run_smi)
        if fallback is not None:
            fallback.note = f"{reason}; read nvidia-smi instead (no health counters)"
            return fallback
        return Inventory(source="none", note=reason)
    try:
        return _read_nvml(nvml)
    finally:
        _optional(nvml, nvml.nvmlShutdown)
