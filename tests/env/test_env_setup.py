"""env.setup: hw.check first, then each step in order as pre-tasks; the summary of what is there."""

import subprocess

import pytest
from conftest import ROOT, run_inv
from support.project_copy import project_copy

TRAIN_VENV = ROOT / ".venv-train"


def test_setup_checks_hardware_first_and_stops_at_the_first_step_that_fails(clean_env, tmp_path):
    gitconfig = tmp_path / "gitconfig"  # GitHub points at a folder with no repositories: the fetch fails at once
    gitconfig.write_text(
        f'[url "file://{tmp_path}/nowhere/"]\n\tinsteadOf = https://github.com/\n[protocol "file"]\n\tallow = always\n'
    )
    env = dict(
        clean_env,
        GIT_CONFIG_GLOBAL=str(gitconfig),
        GIT_TERMINAL_PROMPT="0",
        SAM3_EXPERIMENT_ROOT=str(tmp_path),
        INVOKE_SAM3_TRAIN_VENV=str(tmp_path / "train-venv"),
    )
    for name in ("RF100VL", "ODINW", "WEIGHTS", "CHECKPOINTS", "TRAIN_VENV"):
        env[f"INVOKE_HW_DISK_{name}_GB"] = "0"
    project = project_copy(tmp_path)  # whatever state this checkout's submodules are in
    done = run_inv(["env.setup"], env, cwd=project)
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stdout.index("hw.check") < done.stdout.index("submodule")  # the hardware is checked first
    assert "could not fetch sam3" in done.stderr and "Traceback" not in done.stderr
    assert not (project / "sam3" / ".git").exists() and not (tmp_path / "train-venv").exists()


@pytest.mark.skipif(not (TRAIN_VENV / "bin" / "python").exists(), reason="no training env (.venv-train)")
def test_summary_reads_the_training_env_and_the_optional_steps(tmp_path):
    from tasks.env import setup_summary

    settings = {
        "sam3.train_venv": TRAIN_VENV,
        "paths.hf_home": tmp_path,
        "tracking.wandb_project": "sam3-ft",
        "tracking.dvc_remote_url": "",
    }

    class Settings(dict):
        def path(self, key):
            return self[key]

    rows = {step: (status, state) for step, status, state in setup_summary(Settings(settings), project_copy(tmp_path))}
    assert rows["torch"][0] == "pass" and rows["torch"][1].startswith("2.14.1")
    assert rows["sam3"][1].startswith("0.1.4")
    assert rows["weights"] == ("fail", "not downloaded (inv env.weights)")
    assert rows["wandb"] == ("pass", "sam3-ft") and rows["dvc"][0] == "skip"
    pinned = subprocess.run(["git", "ls-tree", "HEAD", "sam3"], cwd=ROOT, capture_output=True, text=True).stdout
    commit = pinned.split()[2]  # "160000 commit <sha>\tsam3": the commit the superproject records
    assert rows["submodule sam3"] == ("fail", f"not checked out (pin {commit[:8]})")
