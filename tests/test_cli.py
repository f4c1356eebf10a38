"""The real `inv` command line in subprocesses: wiring, exit codes, messages, secrets, speed hygiene."""

import json
import subprocess
import sys

from conftest import ROOT, run_inv
from support.fake_nvml import h100

SMALL_DISK = {f"INVOKE_HW_DISK_{name}_GB": "0" for name in ("RF100VL", "ODINW", "WEIGHTS", "CHECKPOINTS", "TRAIN_VENV")}


def hw_env(clean_env, tmp_path):
    env = dict(clean_env, **SMALL_DISK)
    env["SAM3_EXPERIMENT_ROOT"] = str(tmp_path / "exp")
    env["INVOKE_SAM3_TRAIN_VENV"] = str(tmp_path / "no-venv")
    return env


def test_list_shows_every_namespace(clean_env):
    done = run_inv(["--list"], clean_env)
    assert done.returncode == 0, done.stderr
    for name in (
        "config.show",
        "dev.test",
        "dev.lint",
        "dev.lock",
        "dev.clean",
        "hw.check",
        "hw.gpu",
        "hw.cuda",
        "hw.vram",
        "hw.disk",
        "data.fetch",
        "data.validate",
        "data.synth",
        "run.train",
        "run.eval",
        "run.list",
        "run.status",
        "run.results",
        "run.logs",
        "run.cancel",
        "run.export",
        "run.predict",
        "remote.run",
        "env.setup",
        "env.submodules",
        "env.venv",
        "env.torch",
        "env.sam3",
        "env.weights",
        "env.wandb",
        "env.dvc",
    ):
        assert f"  {name} " in done.stdout, name


def test_start_up_imports_nothing_heavy():
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import tasks; "
        "print(sorted(m for m in ('torch', 'fabric', 'paramiko', 'wandb', 'dvc', 'submitit', 'hydra', "
        "'omegaconf', 'huggingface_hub', 'pynvml', 'rich', 'matplotlib', 'yaml_loaded_by_us') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code, str(ROOT)], capture_output=True, text=True)
    assert done.stdout.strip() == "[]", done.stderr


def test_pytest_and_inv_import_the_same_root_module():
    import tasks

    assert tasks.__file__ == str(ROOT / "tasks.py")
    assert tasks.hw.__file__ == str(ROOT / "tasks" / "hw.py")


def test_hw_check_without_gpu_is_one_message_and_exit_3(clean_env, tmp_path):
    done = run_inv(["hw.check"], hw_env(clean_env, tmp_path), nvml_scenario={"init_error": "LibraryNotFound"})
    assert done.returncode == 3
    assert "No NVIDIA GPU found (NVML unavailable: NVML Shared Library Not Found)" in done.stderr
    assert "--allow-no-gpu" in done.stderr and "Traceback" not in done.stderr


def test_hw_check_allow_no_gpu_passes_cpu_only_flows(clean_env, tmp_path):
    done = run_inv(
        ["hw.check", "--allow-no-gpu", "--json"],
        hw_env(clean_env, tmp_path),
        nvml_scenario={"init_error": "LibraryNotFound"},
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["no_gpu"] and report["status"] == "warn" and report["exit_code"] == 0
    assert {c["check"] for c in report["checks"]} == {"gpu", "cuda", "disk"}


def test_hw_check_on_eight_healthy_gpus_passes_with_one_table(clean_env, tmp_path):
    done = run_inv(["hw.check"], hw_env(clean_env, tmp_path), nvml_scenario={"gpus": [h100() for _ in range(8)]})
    assert done.returncode == 0, done.stderr
    assert "8 x NVIDIA H100 80GB HBM3" in done.stdout
    assert done.stdout.count("gpu 7") >= 2  # vram and health rows for the last GPU


def test_hw_check_fails_with_exit_1_on_ecc_errors_and_low_vram(clean_env, tmp_path):
    sick = h100(ecc={"enabled": True, "volatile_uncorrected": 5})
    busy = h100(used_mib=80000, processes=[{"pid": 77, "name": "other-user", "used_mib": 79000}])
    done = run_inv(
        ["hw.check", "--json", "--kind", "segmentation"],
        hw_env(clean_env, tmp_path),
        nvml_scenario={"gpus": [sick, busy]},
    )
    assert done.returncode == 1
    failed = {c["subject"] for c in json.loads(done.stdout)["checks"] if c["status"] == "fail"}
    assert failed == {"gpu 0 health", "gpu 1 NVIDIA H100 80GB HBM3"}
    assert "check(s) failed" in done.stderr


def test_hw_vram_bad_kind_is_a_config_error(clean_env, tmp_path):
    done = run_inv(["hw.vram", "--kind", "huge"], hw_env(clean_env, tmp_path), nvml_scenario={"gpus": [h100()]})
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "error: hw.run_kind = 'huge' (from flag --kind) is not one of box, segmentation, eval; pick one of those"
    )


def test_config_show_names_sources_and_masks_secrets(clean_env, tmp_path):
    (tmp_path / "home" / ".invoke.yaml").write_text("slurm:\n  partition: gpu-long\n")
    env = dict(
        clean_env,
        HF_TOKEN="hf_SECRET123456789",
        WANDB_API_KEY="0123456789abcdef0123456789abcdef01234567",
        ODINW_DATA_ROOT=str(tmp_path / "odinw"),
        INVOKE_SLURM_NUM_GPUS="4",
    )
    done = run_inv(["config.show", "--json"], env)
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    assert shown["values"]["slurm.partition"] == {"value": "gpu-long", "source": "~/.invoke.yaml"}
    assert shown["values"]["slurm.num_gpus"] == {"value": 4, "source": "env INVOKE_SLURM_NUM_GPUS"}
    assert shown["values"]["paths.odinw_data_root"]["source"] == "env ODINW_DATA_ROOT"
    assert shown["secrets"]["HF_TOKEN"] == "set (hidden)"
    table = run_inv(["config.show"], env)
    for output in (done.stdout + done.stderr, table.stdout + table.stderr):
        assert "hf_SECRET123456789" not in output and "0123456789abcdef0123456789abcdef01234567" not in output


def test_bad_config_is_one_line_exit_2_and_writes_nothing(clean_env, tmp_path):
    (tmp_path / "home" / ".invoke.yaml").write_text("hw:\n  vram_box_gb: plenty\n")
    before = sorted(p.name for p in ROOT.iterdir())
    done = run_inv(["hw.disk"], dict(clean_env, SAM3_EXPERIMENT_ROOT=str(tmp_path / "exp")))
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "error: hw.vram_box_gb = 'plenty' (from ~/.invoke.yaml) is not a number; set it to a number"
    )
    assert sorted(p.name for p in ROOT.iterdir()) == before and not (tmp_path / "exp").exists()


def test_bad_invoke_env_number_is_ours_to_report_not_invokes_traceback(clean_env):
    done = run_inv(["config.show"], dict(clean_env, INVOKE_SLURM_NUM_NODES="two"))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "slurm.num_nodes = 'two' (from env INVOKE_SLURM_NUM_NODES) is not a whole number" in done.stderr


def test_dev_chores_dry_run_print_exact_commands(clean_env):
    done = run_inv(["dev.lock", "--dry-run"], clean_env)
    assert done.returncode == 0
    assert "-m uv pip compile requirements.in -o requirements.txt --python-version 3.11 -q" in done.stdout
    assert "-m uv pip compile requirements-dev.in -o requirements-dev.txt --python-version 3.11 -q" in done.stdout
