"""CUDA fit (driver, nvcc, the training env's torch) and disk checks on real folders."""

import os
import shutil
import sys
from collections import namedtuple
from pathlib import Path

import pytest
from support.fake_nvml import FakeNvml, h100

from tasks.lib.core.report import FAIL, PASS, SKIP, WARN
from tasks.lib.data import coco
from tasks.lib.hw import cuda, disk, gpu

Usage = namedtuple("Usage", "total used free")


def inv(cuda_version=12040, *gpus):
    return gpu.read_inventory(FakeNvml({"cuda": cuda_version, "gpus": list(gpus) or [h100()]}), run_smi=lambda a: None)


def by_subject(checks):
    return {c.subject: c for c in checks}


@pytest.mark.parametrize(
    "driver,caps,expected",
    [
        ((13, 0), [(9, 0)], "cu130"),
        ((12, 9), [(9, 0)], "cu128"),
        ((12, 6), [(8, 0)], "cu126"),
        ((12, 2), [(8, 0)], "cu126 through CUDA minor version compatibility"),
        ((12, 6), [(12, 0)], "cu128 through CUDA minor version compatibility"),  # Blackwell needs cu128+
        ((11, 8), [(8, 0)], "upgrade the NVIDIA driver to 525.60.13"),
        (None, [], "CPU build"),
    ],
)
def test_recommended_build(driver, caps, expected):
    assert expected in cuda.recommended_build(driver, caps)


def test_driver_too_old_for_the_training_envs_torch_fails_with_the_fix():
    torch = cuda.TorchBuild("2.14.1+cu128", (12, 8), ["sm_80", "sm_90"])
    checks = by_subject(cuda.check_cuda(inv(11080), None, torch, Path("/venv")))
    assert checks["torch"].status == FAIL
    assert "needs a driver for CUDA 12.x; this one supports 11.8" in checks["torch"].detail
    assert "525.60.13" in checks["torch"].fix


def test_minor_version_newer_than_driver_warns():
    torch = cuda.TorchBuild("2.14.1+cu128", (12, 8), ["sm_90"])
    assert by_subject(cuda.check_cuda(inv(12020), None, torch, Path("/v")))["torch"].status == WARN


def test_fitting_build_passes_and_missing_arch_fails():
    torch = cuda.TorchBuild("2.14.1+cu128", (12, 8), ["sm_80", "sm_90"])
    assert by_subject(cuda.check_cuda(inv(12080), (12, 8), torch, Path("/v")))["torch"].status == PASS
    blackwell = h100(name="NVIDIA B200", cc=[10, 0])
    checks = by_subject(cuda.check_cuda(inv(12080, blackwell), None, torch, Path("/v")))
    assert checks["gpu 0 arch"].status == FAIL and "sm_100" in checks["gpu 0 arch"].fix


def test_ptx_in_the_build_covers_newer_gpus():
    assert cuda.arch_supported((9, 0), ["sm_80", "compute_80"])
    assert not cuda.arch_supported((8, 0), ["sm_90", "compute_90"])


def test_nvcc_major_mismatch_warns():
    torch = cuda.TorchBuild("2.14.1+cu128", (12, 8), ["sm_90"])
    checks = by_subject(cuda.check_cuda(inv(13000), (13, 0), torch, Path("/v")))
    assert checks["nvcc/torch"].status == WARN


def test_no_training_env_is_skipped_with_how_to_build_it(tmp_path):
    assert cuda.torch_in_venv(tmp_path / "nope") is None
    checks = by_subject(cuda.check_cuda(inv(), None, None, tmp_path))
    assert checks["torch"].status == SKIP and "inv env.torch" in checks["torch"].fix


def test_real_nvcc_version_when_present():
    if not shutil.which("nvcc"):
        pytest.skip("no nvcc on this machine")
    version = cuda.nvcc_version()
    assert version is not None and version[0] >= 10


def test_a_venv_without_torch_reads_as_no_torch(tmp_path):
    """A real interpreter answering the probe: without torch it is 'no torch', not an error."""
    (tmp_path / "bin").mkdir()
    os.symlink(sys.executable, tmp_path / "bin" / "python")
    assert cuda.torch_in_venv(tmp_path) is None


@pytest.mark.slow
def test_real_torch_in_a_training_env_is_probed_in_a_subprocess():
    venv = str(Path(__file__).resolve().parents[2] / ".venv-train")
    if not (Path(venv) / "bin" / "python").exists():
        pytest.skip("no training env: scripts/setup-tests builds .venv-train")
    build = cuda.torch_in_venv(Path(venv))
    assert isinstance(build, cuda.TorchBuild), build
    assert build.version.startswith("2.")
    if build.cuda:
        assert any(a.startswith("sm_") for a in build.arch_list)
        # the fake driver is older than the real build's CUDA major: the verdict must say so
        checks = by_subject(cuda.check_cuda(inv(11080), None, build, Path(venv)))
        assert checks["torch"].status == FAIL


class Settings(dict):
    def path(self, name):
        return self[name]


def settings_at(tmp_path, **needs):
    values = {
        "paths.roboflow_vl_100_root": tmp_path / "rf",
        "paths.odinw_data_root": tmp_path / "odinw",
        "paths.experiment_root": tmp_path / "exp",
        "paths.hf_home": tmp_path / "hf",
        "sam3.train_venv": tmp_path / "venv",
        "hw.disk_rf100vl_gb": 60,
        "hw.disk_odinw_gb": 20,
        "hw.disk_checkpoints_gb": 25,
        "hw.disk_weights_gb": 3.5,
        "hw.disk_train_venv_gb": 12,
    }
    values.update(needs)
    return Settings(values)


def test_disk_on_real_folders_creates_nothing(tmp_path):
    before = sorted(tmp_path.iterdir())
    checks = disk.check_disk(disk.plan_locations(settings_at(tmp_path)), 0.1)
    assert sorted(tmp_path.iterdir()) == before
    assert len(checks) == 5 and all(c.check == "disk" for c in checks)
    assert all(str(tmp_path) in c.detail for c in checks)


def test_present_weights_need_nothing_more_and_a_data_root_holds_what_it_holds(tmp_path):
    """A data root counts its complete datasets: an empty dataset folder or data.fetch's staging folder
    count for nothing; 25 of RF100-VL's 100 datasets leave 75 % of its need."""
    (tmp_path / "rf" / "13-lkc01").mkdir(parents=True)  # empty
    (tmp_path / "rf" / ".sam3-fetch").mkdir()  # the fetch staging folder
    snapshot = tmp_path / "hf" / "hub" / "models--facebook--sam3" / "snapshots" / "abc"
    snapshot.mkdir(parents=True)
    (snapshot / "sam3.pt").write_bytes(b"x")
    needs = {loc.name: loc.need_gb for loc in disk.plan_locations(settings_at(tmp_path))}
    assert needs["paths.roboflow_vl_100_root"] == 60 and needs["paths.hf_home"] == 0
    assert needs["paths.odinw_data_root"] == 20
    for name in coco.RF100VL_NAMES[:25]:
        for split in ("train", "test"):
            (tmp_path / "rf" / name / split).mkdir(parents=True)
            (tmp_path / "rf" / name / split / coco.RF100VL_JSON).write_text("{}")
    located = {loc.name: loc for loc in disk.plan_locations(settings_at(tmp_path))}
    assert located["paths.roboflow_vl_100_root"].need_gb == 45
    assert located["paths.roboflow_vl_100_root"].reason == "Roboflow 100-VL (25 of 100 datasets complete)"


@pytest.mark.parametrize(
    "free_gb,expected",
    [
        (200, {"paths.roboflow_vl_100_root": PASS, "sam3.train_venv": PASS}),
        (125, {"paths.roboflow_vl_100_root": WARN, "sam3.train_venv": WARN}),  # within the 10 % margin
        (100, {"paths.roboflow_vl_100_root": WARN, "sam3.train_venv": WARN}),  # alone each fits, together not
        (40, {"paths.roboflow_vl_100_root": FAIL, "sam3.train_venv": WARN}),  # 60 GB cannot fit in 40
    ],
)
def test_needs_on_one_filesystem_add_up(tmp_path, free_gb, expected):
    def usage(path):  # the free space is this test's input; everything else is the real folders
        return Usage(10**13, 0, free_gb * disk.GB)

    checks = by_subject(disk.check_disk(disk.plan_locations(settings_at(tmp_path)), 0.1, usage=usage))
    assert {name: checks[name].status for name in expected} == expected
