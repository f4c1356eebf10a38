"""GPU inventory and VRAM checks against a fake NVML (CI has no GPU: NVML is faked at its
Python boundary, with the real pynvml's constants and exceptions). The 'NVML missing' case
uses the real pynvml on a machine without the NVIDIA library."""

import pynvml
import pytest
from support.fake_nvml import FakeNvml, h100

from tasks.lib.core.report import FAIL, PASS, SKIP, WARN
from tasks.lib.hw import gpu, vram


def inventory(*gpus, **scenario):
    return gpu.read_inventory(FakeNvml({"gpus": list(gpus), **scenario}), run_smi=lambda args: None)


def test_no_gpu_count_zero():
    inv = inventory()
    assert inv.source == "nvml" and inv.gpus == []


def test_one_gpu_is_described_fully():
    inv = inventory(
        h100(used_mib=1024, processes=[{"pid": 4242, "name": "python", "used_mib": 1000}]),
        driver="550.54.15",
        cuda=12040,
    )
    (g,) = inv.gpus
    assert (inv.driver_version, inv.cuda_driver_version) == ("550.54.15", (12, 4))
    assert g.name == "NVIDIA H100 80GB HBM3" and g.compute_capability == (9, 0)
    assert (g.memory_total_mib, g.memory_used_mib, g.memory_free_mib) == (81559, 1024, 80535)
    assert g.processes == [gpu.GpuProcess(pid=4242, name="python", used_mib=1000)]
    assert g.health.ecc_enabled and g.health.ecc_volatile_uncorrected == 0 and g.health.remap_pending is False


def test_eight_gpus():
    inv = inventory(*[h100() for _ in range(8)])
    assert [g.index for g in inv.gpus] == list(range(8))
    checks = vram.check_vram(inv, 32, "box")
    assert {c.status for c in checks} == {PASS} and len(checks) == 16


def test_unsupported_health_queries_read_as_unknown_not_as_errors():
    (g,) = inventory({"name": "NVIDIA GeForce RTX 4090", "total_mib": 24564, "cc": [8, 9]}).gpus
    assert g.health == gpu.Health()


def test_nvml_library_missing_on_this_machine_is_reported_not_raised():
    try:
        pynvml.nvmlInit()
        pynvml.nvmlShutdown()
        pytest.skip("this machine has a real NVIDIA driver")
    except pynvml.NVMLError:
        pass
    inv = gpu.read_inventory(run_smi=lambda args: None)
    assert inv.source == "none" and inv.gpus == []
    assert "NVML unavailable" in inv.note


def test_driver_not_loaded_falls_back_to_nvidia_smi():
    query = "0, NVIDIA A100-SXM4-40GB, GPU-abc, 40960, 1024, 39936, 535.104.05, 8.0\n"
    header = "| NVIDIA-SMI 535.104.05   Driver Version: 535.104.05   CUDA Version: 12.2     |\n"
    outputs = {tuple(gpu.SMI_QUERY): query, ("nvidia-smi",): header}
    inv = gpu.read_inventory(FakeNvml({"init_error": "DriverNotLoaded"}), run_smi=lambda a: outputs[tuple(a)])
    assert inv.source == "nvidia-smi" and inv.cuda_driver_version == (12, 2)
    assert inv.gpus[0].name == "NVIDIA A100-SXM4-40GB" and inv.gpus[0].compute_capability == (8, 0)
    assert "Driver Not Loaded" in inv.note
    assert vram.check_health(inv.gpus[0], inv.source).status == SKIP


def test_low_vram_fails_and_names_the_processes_holding_it():
    busy = h100(used_mib=70000, processes=[{"pid": 31337, "name": "jupyter", "used_mib": 69000}])
    checks = vram.check_vram(inventory(busy), 32, "box")
    capacity, processes, health = checks
    assert capacity.status == FAIL and "pid 31337 (jupyter)" in capacity.fix
    assert processes.status == WARN and "31337 jupyter 69000 MiB" in processes.detail
    assert health.status == PASS


def test_too_small_a_gpu_fails_on_capacity():
    t4 = {"name": "Tesla T4", "total_mib": 15360, "cc": [7, 5]}
    (check, _) = vram.check_vram(inventory(t4), 48, "segmentation")
    assert check.status == FAIL and "too small for segmentation" in check.fix


@pytest.mark.parametrize(
    "health,status,text",
    [
        (
            {"ecc": {"enabled": True, "volatile_uncorrected": 3}},
            FAIL,
            "3 uncorrectable ECC errors since the last reset",
        ),
        ({"ecc": {"enabled": True, "aggregate_uncorrected": 2}}, WARN, "2 uncorrectable ECC errors over its life"),
        ({"retired": {"sbe": 2, "dbe": 1, "pending": True}}, FAIL, "page retirement is pending"),
        ({"retired": {"sbe": 40, "dbe": 10, "pending": False}}, WARN, "50 retired pages"),
        ({"remap": [0, 0, True, False]}, FAIL, "row remap is pending"),
        ({"remap": [0, 0, False, True]}, FAIL, "row remapping failed"),
        ({"remap": [1, 2, False, False]}, WARN, "2 rows remapped"),
    ],
)
def test_memory_health(health, status, text):
    (g,) = inventory(h100(**health)).gpus
    check = vram.check_health(g, "nvml")
    assert check.status == status and text in check.detail
    if status != PASS:
        assert check.fix
