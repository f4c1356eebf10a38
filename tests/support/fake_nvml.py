"""A fake NVML at its Python boundary: the functions of pynvml that tasks/lib/hw/gpu.py calls,
answering from a scenario dict. Constants and exception classes are the real pynvml's.

CI has no GPU, so this is the one fake in the suite. Scenario keys:
  driver, cuda (int like 12040), init_error (name of a pynvml NVMLError_* class),
  gpus: [{name, total_mib, used_mib, cc: [major, minor], processes: [{pid, name, used_mib}],
          ecc: {enabled, volatile_uncorrected, volatile_corrected, aggregate_uncorrected, aggregate_corrected},
          retired: {sbe, dbe, pending}, remap: [correctable, uncorrectable, pending, failed] or null}]
Any health block left out answers NVMLError_NotSupported, as on GPUs without those counters.
"""

import os
import types

MIB = 1024 * 1024


def load_real_pynvml(shim_dir):
    """The installed pynvml, imported while the shim of that name steps aside."""
    import importlib
    import sys

    shim = sys.modules.pop("pynvml")
    saved_path = list(sys.path)
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != shim_dir]
    try:
        return importlib.import_module("pynvml")
    finally:
        sys.path[:] = saved_path
        sys.modules["pynvml"] = shim


class FakeNvml:
    def __init__(self, scenario, real=None):
        if real is None:
            import pynvml as real
        self._real = real
        self._s = scenario
        self.initialized = False

    def __getattr__(self, name):  # constants and NVMLError classes come from the real module
        return getattr(self._real, name)

    def _unsupported(self):
        return self._real.NVMLError_NotSupported(self._real.NVML_ERROR_NOT_SUPPORTED)

    def _gpu(self, handle):
        return self._s["gpus"][handle]

    def nvmlInit(self):
        error = self._s.get("init_error")
        if error:
            raise getattr(self._real, f"NVMLError_{error}")()
        self.initialized = True

    def nvmlShutdown(self):
        self.initialized = False

    def nvmlSystemGetDriverVersion(self):
        return self._s.get("driver", "550.54.15")

    def nvmlSystemGetCudaDriverVersion_v2(self):
        return self._s.get("cuda", 12040)

    def nvmlDeviceGetCount(self):
        return len(self._s.get("gpus", []))

    def nvmlDeviceGetHandleByIndex(self, index):
        if index >= self.nvmlDeviceGetCount():
            raise self._real.NVMLError_InvalidArgument(self._real.NVML_ERROR_INVALID_ARGUMENT)
        return index

    def nvmlDeviceGetName(self, handle):
        return self._gpu(handle).get("name", "NVIDIA H100 80GB HBM3")

    def nvmlDeviceGetUUID(self, handle):
        return f"GPU-fake-{handle:04d}"

    def nvmlDeviceGetMemoryInfo(self, handle):
        gpu = self._gpu(handle)
        total, used = gpu.get("total_mib", 81559), gpu.get("used_mib", 0)
        return types.SimpleNamespace(total=total * MIB, used=used * MIB, free=(total - used) * MIB)

    def nvmlDeviceGetCudaComputeCapability(self, handle):
        return tuple(self._gpu(handle).get("cc", (9, 0)))

    def nvmlDeviceGetComputeRunningProcesses(self, handle):
        return [
            types.SimpleNamespace(
                pid=p["pid"], usedGpuMemory=None if p.get("used_mib") is None else p["used_mib"] * MIB
            )
            for p in self._gpu(handle).get("processes", [])
        ]

    def nvmlSystemGetProcessName(self, pid):
        for gpu in self._s.get("gpus", []):
            for proc in gpu.get("processes", []):
                if proc["pid"] == pid:
                    return proc.get("name", "python")
        raise self._real.NVMLError_NotFound(self._real.NVML_ERROR_NOT_FOUND)

    def nvmlDeviceGetEccMode(self, handle):
        ecc = self._gpu(handle).get("ecc")
        if ecc is None:
            raise self._unsupported()
        return (int(ecc.get("enabled", True)), int(ecc.get("enabled", True)))

    def nvmlDeviceGetTotalEccErrors(self, handle, error_type, counter_type):
        ecc = self._gpu(handle).get("ecc")
        if ecc is None:
            raise self._unsupported()
        kind = "uncorrected" if error_type == self._real.NVML_MEMORY_ERROR_TYPE_UNCORRECTED else "corrected"
        when = "volatile" if counter_type == self._real.NVML_VOLATILE_ECC else "aggregate"
        return ecc.get(f"{when}_{kind}", 0)

    def nvmlDeviceGetRetiredPages(self, handle, cause):
        retired = self._gpu(handle).get("retired")
        if retired is None:
            raise self._unsupported()
        key = "dbe" if cause == self._real.NVML_PAGE_RETIREMENT_CAUSE_DOUBLE_BIT_ECC_ERROR else "sbe"
        return [0x1000 * i for i in range(retired.get(key, 0))]

    def nvmlDeviceGetRetiredPagesPendingStatus(self, handle):
        retired = self._gpu(handle).get("retired")
        if retired is None:
            raise self._unsupported()
        return self._real.NVML_FEATURE_ENABLED if retired.get("pending") else self._real.NVML_FEATURE_DISABLED

    def nvmlDeviceGetRemappedRows(self, handle):
        remap = self._gpu(handle).get("remap")
        if remap is None:
            raise self._unsupported()
        return tuple(remap)


def h100(**overrides):
    """A healthy H100 80GB as NVML would describe it, with overrides."""
    gpu = {
        "name": "NVIDIA H100 80GB HBM3",
        "total_mib": 81559,
        "used_mib": 0,
        "cc": [9, 0],
        "processes": [],
        "ecc": {"enabled": True},
        "retired": {"sbe": 0, "dbe": 0, "pending": False},
        "remap": [0, 0, False, False],
    }
    gpu.update(overrides)
    return gpu
