"""env.venv, env.torch and env.sam3 for real: uv makes a venv in a temporary folder, the venv's pip
installs torch 2.14.1 (from this machine's disk) once per session and sam3[train] from PyPI, and a tiny
sam3 source tree in a local git repository stands in for the submodule. The fake NVML only picks the
wheel index for given drivers, as a dry run: no CUDA build is downloaded."""

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from conftest import closed_port, run_inv
from support.fake_nvml import h100

from tasks.lib.core.errors import ConfigError
from tasks.lib.env import trainenv

TORCH = "2.14.1"


def inv(args, env, nvml_scenario=None, timeout=600):
    """The real inv command line in a subprocess (with the fake NVML when a scenario is given)."""
    return run_inv(args, env, nvml_scenario=nvml_scenario, timeout=timeout)


def dist_version(venv: Path, name: str) -> str | None:
    code = f"import importlib.metadata as m\ntry: print(m.version({name!r}))\nexcept m.PackageNotFoundError: print('')"
    done = subprocess.run([str(venv / "bin" / "python"), "-c", code], capture_output=True, text=True, cwd=venv)
    return done.stdout.strip() or None


NO_GPU = {"init_error": "LibraryNotFound"}


@pytest.fixture(scope="module")
def environ(tmp_path_factory):
    import os

    home = tmp_path_factory.mktemp("home")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INVOKE_", "SAM3_", "HF_", "FAKE_NVML"))}
    env["HOME"] = str(home)
    return env


@pytest.fixture(scope="module")
def made_venv(tmp_path_factory, environ):
    """One training venv for the module, made by env.venv (uv); removed afterwards."""
    base = tmp_path_factory.mktemp("trainenv")
    venv = base / "venv"
    steps = {"venv": inv(["env.venv", "--venv", str(venv)], environ)}
    yield venv, steps
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def built(made_venv, environ):
    """The module's venv with torch 2.14.1 from PyPI put there by env.torch: the one heavy install of the
    session (about a minute and 5 GB, from this machine's disk)."""
    venv, steps = made_venv
    if "torch" not in steps:
        args = ["env.torch", "--venv", str(venv), "--torch-version", TORCH, "--torch-index", "pypi"]
        steps["torch"] = inv(args, environ, nvml_scenario=NO_GPU)
    return venv, steps


@pytest.fixture(scope="module")
def with_sam3(built, environ, tmp_path_factory):
    """sam3[train] 0.1.4 from PyPI into the module's venv (no checkout at sam3.checkout)."""
    venv, _ = built
    env = dict(environ, INVOKE_SAM3_CHECKOUT=str(tmp_path_factory.mktemp("no-checkout") / "sam3"))
    done = inv(["env.sam3", "--venv", str(venv)], env)
    return venv, env, done


def test_venv_is_made_by_uv_with_pip_on_a_supported_python(made_venv):
    venv, steps = made_venv
    done = steps["venv"]
    assert done.returncode == 0, done.stdout + done.stderr
    assert "uv = " in (venv / "pyvenv.cfg").read_text()
    assert dist_version(venv, "pip")
    assert "3.10-3.12" in done.stdout and "pass" in done.stdout


def test_venv_again_is_a_quick_no_op(made_venv, environ):
    venv, _ = made_venv
    started = time.perf_counter()
    done = inv(["env.venv", "--venv", str(venv)], environ)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("\n") == 1 and "nothing to do" in done.stdout
    assert time.perf_counter() - started < 5


@pytest.mark.slow
def test_torch_is_installed_and_verified_in_a_subprocess(built):
    venv, steps = built
    done = steps["torch"]
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert dist_version(venv, "torch") == TORCH and dist_version(venv, "torchvision") == "0.29.1"
    assert "python -m pip install" not in done.stdout  # pip's own output goes to stderr
    for words in ("torch 2.14.1", "no GPU here: torch runs on the CPU", "4x4 matrix product on cpu is right"):
        assert words in done.stdout
    assert (venv / trainenv.TORCH_STAMP).is_file()


@pytest.mark.slow
def test_torch_again_is_a_quick_no_op_with_or_without_the_stamp(built, environ):
    venv, _ = built
    args = ["env.torch", "--venv", str(venv), "--torch-version", TORCH, "--torch-index", "pypi"]
    started = time.perf_counter()
    done = inv(args, environ, nvml_scenario=NO_GPU)
    assert done.returncode == 0 and "nothing to do" in done.stdout, done.stderr
    assert time.perf_counter() - started < 3
    (venv / trainenv.TORCH_STAMP).unlink()  # then the probe in the venv decides, and the stamp comes back
    done = inv(args, environ, nvml_scenario=NO_GPU)
    assert done.returncode == 0 and "torch 2.14.1+cu130 (CUDA 13.0) is what was asked for; nothing to do" in done.stdout
    assert (venv / trainenv.TORCH_STAMP).is_file()
    # Without overrides on a machine without GPU, this CUDA build fits too: it runs on the CPU.
    done = inv(["env.torch", "--venv", str(venv), "--json"], environ, nvml_scenario=NO_GPU)
    assert json.loads(done.stdout)["up_to_date"] is True, done.stdout


@pytest.mark.slow
def test_torch_that_does_not_fit_is_replaced_dry_run_shows_how(built, environ):
    venv, _ = built
    done = inv(
        ["env.torch", "--venv", str(venv), "--torch-version", "2.13.0", "--dry-run"],
        environ,
        nvml_scenario={"cuda": 12080, "gpus": [h100()]},
    )
    assert done.returncode == 0, done.stderr
    python = venv / "bin" / "python"
    assert f"  {python} -m pip uninstall --yes torch torchvision\n" in done.stdout
    assert (
        f"  PIP_INDEX_URL=https://download.pytorch.org/whl/cu128 {python} -m pip install --disable-pip-version-check "
        "--progress-bar off torch==2.13.0 torchvision==0.28.0\n"
    ) in done.stdout
    assert dist_version(venv, "torch") == TORCH  # nothing done


@pytest.mark.slow
def test_no_network_is_one_line_and_the_torch_there_stays(built, environ):
    """pip resolves the new build before the old one is uninstalled: an unreachable index changes nothing."""
    import os

    venv, _ = built
    port = closed_port()
    offline = {k: v for k, v in environ.items() if not k.startswith("PIP_")}
    offline.update(PIP_CONFIG_FILE=os.devnull, PIP_INDEX_URL=f"http://127.0.0.1:{port}/simple", PIP_RETRIES="0")
    done = inv(
        ["env.torch", "--venv", str(venv), "--torch-version", "2.13.0", "--torch-index", "pypi"],
        offline,
        nvml_scenario=NO_GPU,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    error = done.stderr.strip().splitlines()[-1]  # pip's own lines stream above ours
    assert error.startswith("error: pip could not install torch==2.13.0") and "reaches the index" in error
    assert "uninstall" not in done.stdout and dist_version(venv, "torch") == TORCH


@pytest.mark.slow
def test_sam3_from_pypi_keeps_the_torch_env_torch_installed(with_sam3):
    venv, env, done = with_sam3
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "sam3[train]==0.1.4 from PyPI" in done.stdout and "import sam3 ->" in done.stdout
    assert dist_version(venv, "sam3") == "0.1.4"
    for name in ("psutil", "opencv-python-headless", "pycocotools", "wandb", "hydra-core", "submitit"):
        assert dist_version(venv, name), name
    assert dist_version(venv, "torch") == TORCH
    assert "torch==2.14.1" in (venv / trainenv.CONSTRAINTS).read_text()
    again = inv(["env.sam3", "--venv", str(venv)], env)
    assert again.returncode == 0 and "nothing to do" in again.stdout, again.stderr


def fake_sam3_checkout(base: Path) -> tuple[Path, Path]:
    """A minimal sam3 source tree with a [train] extra (a second local project), in its own git repo."""
    extra = base / "fake-train-extra"
    (extra / "fake_train_extra").mkdir(parents=True)
    (extra / "fake_train_extra" / "__init__.py").write_text("")
    (extra / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=64"]\nbuild-backend = "setuptools.build_meta"\n'
        '[project]\nname = "fake-train-extra"\nversion = "1.0"\n'
    )
    checkout = base / "sam3-checkout"
    (checkout / "sam3").mkdir(parents=True)
    (checkout / "sam3" / "__init__.py").write_text("WHERE = 'fake checkout'\n")
    (checkout / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=64"]\nbuild-backend = "setuptools.build_meta"\n'
        '[project]\nname = "sam3"\nversion = "0.0.1"\n'
        f'[project.optional-dependencies]\ntrain = ["fake-train-extra @ {extra.as_uri()}"]\n'
        '[tool.setuptools]\npackages = ["sam3"]\n'
    )
    identity = ["-c", "user.name=test", "-c", "user.email=test@example.com"]
    subprocess.run(["git", "init", "-q", str(checkout)], check=True)
    subprocess.run(["git", *identity, "-C", str(checkout), "add", "."], check=True)
    subprocess.run(["git", *identity, "-C", str(checkout), "commit", "-q", "-m", "fake sam3"], check=True)
    return checkout, extra


@pytest.mark.slow
def test_sam3_editable_from_a_checkout_is_recorded_by_commit(with_sam3, tmp_path):
    venv, env, _ = with_sam3
    checkout, _ = fake_sam3_checkout(tmp_path)
    args = ["env.sam3", "--venv", str(venv), "--checkout", str(checkout)]

    dry = inv([*args, "--dry-run"], env)
    assert f"  cd {checkout} && {venv}/bin/python -m pip install" in dry.stdout
    assert "-e '.[train]' psutil opencv-python-headless pycocotools" in dry.stdout

    done = inv(args, env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    where = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import sam3; print(sam3.WHERE, sam3.__file__)"],
        capture_output=True,
        text=True,
        cwd=venv,
    ).stdout
    assert where.startswith("fake checkout") and str(checkout) in where
    assert dist_version(venv, "fake-train-extra") == "1.0" and dist_version(venv, "torch") == TORCH
    commit = subprocess.run(["git", "-C", str(checkout), "rev-parse", "HEAD"], capture_output=True, text=True)
    stamp = json.loads((venv / trainenv.SAM3_STAMP).read_text())
    assert stamp["source"] == "checkout" and stamp["commit"] == commit.stdout.strip()

    again = inv(args, env)
    assert again.returncode == 0 and "nothing to do" in again.stdout, again.stderr

    (checkout / "README").write_text("a new commit\n")
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(checkout), "add", "."], check=True)
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(checkout), "commit", "-qm", "2"], check=True
    )
    moved = inv([*args, "--dry-run"], env)
    assert "would install sam3 (editable) from" in moved.stdout and "-e '.[train]'" in moved.stdout

    back = inv(["env.sam3", "--venv", str(venv), "--source", "pypi", "--dry-run"], env)
    assert f"  {venv}/bin/python -m pip uninstall --yes sam3\n" in back.stdout  # the editable one goes first
    assert "'sam3[train]==0.1.4'" in back.stdout


# ------------------------------------------------------------------------- index choice (fake NVML)


@pytest.mark.parametrize(
    ("scenario", "index"),
    [
        ({"cuda": 13000, "driver": "580.65.06", "gpus": [h100()]}, "cu130"),
        ({"cuda": 12080, "gpus": [h100()]}, "cu128"),
        ({"cuda": 12040, "gpus": [h100(cc=[8, 0])]}, "cu126"),  # minor version compatibility
        ({"cuda": 12060, "gpus": [h100(name="NVIDIA B200", cc=[10, 0])]}, "cu128"),  # Blackwell needs 12.8+
        (NO_GPU, "cpu"),
    ],
)
def test_the_wheel_index_follows_the_driver(scenario, index, environ, tmp_path):
    venv = tmp_path / "venv"
    done = inv(["env.torch", "--venv", str(venv), "--dry-run"], environ, nvml_scenario=scenario)
    assert done.returncode == 0, done.stderr
    assert done.stdout.rstrip().endswith(
        f"PIP_INDEX_URL=https://download.pytorch.org/whl/{index} {venv}/bin/python -m pip install "
        "--disable-pip-version-check --progress-bar off torch torchvision"
    )
    assert not venv.exists()


def test_a_driver_too_old_for_any_sam3_torch_says_which_driver_to_install(environ, tmp_path):
    done = inv(
        ["env.torch", "--venv", str(tmp_path / "v"), "--dry-run"],
        environ,
        nvml_scenario={"cuda": 11080, "gpus": [h100(cc=[8, 0])]},
    )
    assert done.returncode == 1
    assert done.stderr.strip().endswith("upgrade the NVIDIA driver to 525.60.13 or newer")


def test_overrides_pick_index_and_version(environ, tmp_path):
    venv = tmp_path / "venv"
    cases = {
        ("--torch-index", "pypi", "--torch-version", "2.9"): "'torch==2.9.*' 'torchvision==0.24.*'",
        ("--torch-index", "cu126"): "PIP_INDEX_URL=https://download.pytorch.org/whl/cu126 ",
        ("--torch-index", "https://mirror.example/whl/cu128"): "PIP_INDEX_URL=https://mirror.example/whl/cu128 ",
        # credentials in the URL: masked in what is printed, and never on pip's command line
        ("--torch-index", "https://me:s3cret@mirror.example/whl/cu128"): "PIP_INDEX_URL='https://***@mirror.example",
    }
    for flags, expected in cases.items():
        done = inv(["env.torch", "--venv", str(venv), "--dry-run", *flags], environ, nvml_scenario=NO_GPU)
        assert done.returncode == 0 and expected in done.stdout.splitlines()[-1], (flags, done.stdout, done.stderr)
        assert "s3cret" not in done.stdout + done.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["env.torch", "--torch-version", "two"], "--torch-version 'two' is not a release like 2.9.1"),
        (["env.torch", "--torch-version", "2.5.1"], "SAM3 needs PyTorch 2.7 or newer"),
        (["env.torch", "--torch-index", "nightly"], "pass e.g. --torch-index cu128"),
        (["env.venv", "--python", "3.13"], "so 3.10-3.12; pass --python 3.12"),
        (["env.venv", "--python", "3.9", "--torch-version", "2.9.1"], "torch 2.9.1 3.10-3.14, so 3.10-3.12"),
        (["env.venv", "--python", "no-such-python"], "is neither a version like 3.12 nor an interpreter"),
        (["env.sam3", "--source", "git"], "--source 'git' is not auto, checkout or pypi"),
        (["env.sam3", "--sam3-version", "latest"], "--sam3-version 'latest' is not a release like 0.1.4"),
    ],
)
def test_bad_input_is_one_line_with_the_fix_and_exit_2(args, message, environ, tmp_path):
    done = inv([*args, "--venv", str(tmp_path / "venv"), "--dry-run"], environ, nvml_scenario=NO_GPU)
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], lines
    assert not (tmp_path / "venv").exists()


def test_steps_out_of_order_name_the_step_to_run_first(environ, tmp_path):
    missing = tmp_path / "missing"
    done = inv(["env.torch", "--venv", str(missing)], environ, nvml_scenario=NO_GPU)
    assert done.returncode == 1 and "create it first: inv env.venv" in done.stderr
    done = inv(["env.sam3", "--venv", str(missing)], environ)
    assert done.returncode == 1 and "create it first: inv env.venv" in done.stderr

    bare = tmp_path / "bare"  # a venv without torch
    subprocess.run([*trainenv.uv_argv(), "venv", "-q", "--python", trainenv.default_python(), str(bare)], check=True)
    done = inv(["env.sam3", "--venv", str(bare)], environ)
    assert done.returncode == 1 and "no torch in" in done.stderr and "inv env.torch" in done.stderr
    # the venv has no pip (uv venv without --seed): env.venv adds it with ensurepip, no network needed
    done = inv(["env.venv", "--venv", str(bare)], environ)
    assert done.returncode == 0, done.stderr
    assert "added pip to" in done.stdout and dist_version(bare, "pip")


def test_a_folder_that_is_not_a_venv_is_left_alone(environ, tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me\n")
    done = inv(["env.venv", "--venv", str(folder), "--force"], environ)
    assert done.returncode == 2 and "is not a virtual environment" in done.stderr
    assert (folder / "notes.txt").read_text() == "keep me\n"


def test_python_range_follows_the_torch_release():
    assert trainenv.supported_pythons()[:2] == ((3, 10), (3, 12))
    assert trainenv.supported_pythons("2.8.0")[:2] == ((3, 9), (3, 12))
    assert trainenv.torch_python_range("2.14.1")[:2] == ((3, 10), (3, 14))
    assert trainenv.torchvision_for("2.14.1") == "0.29.1" and trainenv.torchvision_for("2.9") == "0.24"
    with pytest.raises(ConfigError, match="2.7 or newer"):
        trainenv.supported_pythons("2.6.0")


def test_the_torch_stamp_never_records_credentials_of_an_index_url():
    from tasks.lib.hw.gpu import Inventory

    target = trainenv.choose_torch(Inventory("none"), "2.14.1", "https://me:s3cret@mirror.example/whl/cu128")
    assert target.index == "https://me:s3cret@mirror.example/whl/cu128"  # pip gets it, through PIP_INDEX_URL
    assert target.key() == {"version": "2.14.1", "index": "https://***@mirror.example/whl/cu128"}
    assert "s3cret" not in target.reason


def test_a_failed_version_probe_is_asked_again_an_answer_is_kept(tmp_path):
    """The training env's versions: a probe that fails (a half-built venv) is not remembered for the process."""
    python = tmp_path / "python"
    answered = tmp_path / "answered"
    python.write_text(f'#!/bin/sh\n[ -e {answered} ] || exit 1\necho \'{{"sam3": "0.1.4"}}\'\n')
    python.chmod(0o755)
    assert trainenv.training_versions(python) == {}
    answered.touch()
    assert trainenv.training_versions(python) == {"sam3": "0.1.4"}
    answered.unlink()
    assert trainenv.training_versions(python) == {"sam3": "0.1.4"}  # one answered probe per process
