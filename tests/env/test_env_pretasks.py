"""Makefile-style steps: run.train/run.eval declare env.venv, env.torch and env.sam3 as pre-tasks, and
--dry-run reaches every pre-task (tasks/lib/core/executor.py, named by tasks.executor_class in invoke.yaml;
the dry run of run.train below shows `inv` uses it).

The one slow test builds a training env from nothing through `inv run.train --check-only` alone: a real
uv venv, torch 2.14.1 from this machine's wheel store (sam3.torch_index: pypi) and sam3 0.1.4 from PyPI.
"""

import pytest
from conftest import ROOT, closed_port, run_inv
from invoke import Collection, Config
from invoke import task as invoke_task
from support.hub_server import HubServer
from support.project_copy import project_copy

from tasks import run
from tasks.lib.core.executor import MakeExecutor

STEP_LINES = ("env.venv", "env.torch", "env.sam3")
TOKEN = "hf_CanaryPretaskToken0123456789abcdefABCDEF"


def test_run_tasks_declare_the_training_env_steps_as_pre_tasks():
    for task in (run.train, run.eval_):
        assert [pre.name for pre in task.pre] == ["venv", "torch", "sam3"]


def recording_collection(calls):
    @invoke_task
    def step(c, dry_run=False):
        calls.append(("step", dry_run))

    @invoke_task
    def check(c):
        calls.append(("check",))

    @invoke_task(pre=[step, check])
    def build(c, dry_run=False):
        calls.append(("build", dry_run))

    @invoke_task(pre=[build], post=[step])
    def launch(c, dry_run=False):
        calls.append(("launch", dry_run))

    return Collection(step, check, build, launch)


@pytest.mark.parametrize("dry_run", [True, False])
def test_dry_run_reaches_every_pre_and_post_task_that_takes_it(dry_run):
    calls = []
    MakeExecutor(recording_collection(calls), Config()).execute(("launch", {"dry_run": dry_run}))
    # step runs once before build (deduplicated after launch), check has no flag and runs as it is
    assert calls == [("step", dry_run), ("check",), ("build", dry_run), ("launch", dry_run)]


def test_run_train_dry_run_without_a_training_env_says_what_each_step_would_do(clean_env, tmp_path):
    venv = tmp_path / "train-venv"
    env = dict(clean_env, INVOKE_SAM3_TRAIN_VENV=str(venv), SAM3_EXPERIMENT_ROOT=str(tmp_path / "exp"))
    done = run_inv(["run.train", "--dry-run"], env)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    positions = [out.index(f"{step} (dry run, nothing done) would") for step in STEP_LINES]
    assert positions == sorted(positions)
    assert "uv venv --seed --python" in out and f"{venv}/bin/python -m pip install" in out
    assert "'sam3[train]==0.1.4'" in out
    assert out.index("dry run stops here: no training environment") > positions[-1]
    assert not venv.exists() and not (tmp_path / "exp").exists()


def test_run_train_dry_run_with_the_env_built_costs_three_lines(clean_env, tmp_path):
    if not (ROOT / ".venv-train" / "bin" / "python").exists():
        pytest.skip("no training env (.venv-train)")
    env = dict(clean_env, SAM3_EXPERIMENT_ROOT=str(tmp_path / "exp"), INVOKE_PATHS_DEMO_DATA_ROOT=str(tmp_path / "d"))
    done = run_inv(["run.train", "--dry-run"], env)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [line.split(":")[0] for line in lines[:3]] == list(STEP_LINES)
    assert all(line.endswith("nothing to do") for line in lines[:3])
    rest = [line for line in lines[3:] if not line.startswith("job environment: ")]  # secrets this shell has
    assert rest[0].startswith("demo: SAM3's Trainer with SAM3's model classes at a reduced size")
    assert rest[1] == "tasks: 3" and rest[2].startswith("source config: ") and not (tmp_path / "exp").exists()


def test_env_setup_dry_run_runs_every_step_dry_and_changes_nothing(clean_env, tmp_path):
    gitconfig = tmp_path / "gitconfig"  # GitHub points at an empty folder: a real fetch would fail
    gitconfig.write_text(f'[url "file://{tmp_path}/nowhere/"]\n\tinsteadOf = https://github.com/\n')
    venv, hf_home = tmp_path / "train-venv", tmp_path / "hf"
    with HubServer(granted={TOKEN}) as hub:
        hub.add("config.json", b"{}\n", lfs=False)
        hub.add("sam3.pt", b"weights" * 1000)
        env = dict(
            clean_env,
            GIT_CONFIG_GLOBAL=str(gitconfig),
            GIT_TERMINAL_PROMPT="0",
            HF_ENDPOINT=hub.url,
            HF_HOME=str(hf_home),
            HF_TOKEN=TOKEN,
            INVOKE_SAM3_TRAIN_VENV=str(venv),
            # hw.check must not depend on this disk's free space
            **{f"INVOKE_HW_DISK_{name}_GB": "0" for name in ("RF100VL", "ODINW", "CHECKPOINTS", "TRAIN_VENV")},
            INVOKE_HW_DISK_WEIGHTS_GB="0.001",
        )
        project = project_copy(tmp_path)  # whatever state this checkout's submodules are in
        done = run_inv(["env.setup", "--dry-run"], env, cwd=project)
        downloads = hub.downloads()
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr
    out = done.stdout
    order = [
        "hw.check",
        "env.submodules (dry run, nothing done)",
        "env.venv (dry run",
        "env.torch (dry run",
        "env.sam3 (dry run",
        "dry run: nothing written; the checkpoint would be",
        "env.setup (dry run",
    ]
    positions = [out.index(words) for words in order]
    assert positions == sorted(positions)
    assert downloads == [] and not venv.exists() and not (hf_home / "hub").exists()
    assert not (project / "sam3" / ".git").exists()
    assert TOKEN not in out + done.stderr


@pytest.mark.skipif(not (ROOT / ".venv-train" / "bin" / "python").exists(), reason="no training env to compare with")
def test_run_train_alone_builds_the_training_env_from_nothing_then_finds_it_done(clean_env, tmp_path):
    """The Makefile promise: no step to remember. About two minutes (torch is a 900 MB wheel)."""
    venv = tmp_path / "train-venv"
    env = dict(
        clean_env,
        INVOKE_SAM3_TRAIN_VENV=str(venv),
        INVOKE_SAM3_TORCH_VERSION="2.14.1",
        INVOKE_SAM3_TORCH_INDEX="pypi",
        SAM3_EXPERIMENT_ROOT=str(tmp_path / "exp"),
        INVOKE_PATHS_DEMO_DATA_ROOT=str(tmp_path / "demo-data"),
    )
    first = run_inv(["run.train", "--check-only"], env, timeout=900)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    out = first.stdout
    steps = [
        out.index("env.venv: created"),
        out.index("env.torch: installed"),
        out.index("env.sam3: installed"),
        out.index("pre-flight passed"),
    ]
    assert steps == sorted(steps)
    assert "4x4 matrix product on cpu is right" in out
    assert (venv / "bin" / "python").exists()
    again = run_inv(["run.train", "--check-only"], env, timeout=300)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    lines = again.stdout.splitlines()
    assert [line.split(":")[0] for line in lines[:3]] == list(STEP_LINES)
    assert all(line.endswith("nothing to do") for line in lines[:3])


def test_env_setup_dry_run_without_the_hub_still_plans_and_exits_0(clean_env, tmp_path):
    port = closed_port()
    gitconfig = tmp_path / "gitconfig"
    gitconfig.write_text(f'[url "file://{tmp_path}/nowhere/"]\n\tinsteadOf = https://github.com/\n')
    env = dict(
        clean_env,
        GIT_CONFIG_GLOBAL=str(gitconfig),
        GIT_TERMINAL_PROMPT="0",
        HF_TOKEN=TOKEN,
        HF_ENDPOINT=f"http://127.0.0.1:{port}",
        HF_HOME=str(tmp_path / "hf"),
        INVOKE_SAM3_TRAIN_VENV=str(tmp_path / "train-venv"),
        **{f"INVOKE_HW_DISK_{name}_GB": "0" for name in ("RF100VL", "ODINW", "CHECKPOINTS", "TRAIN_VENV")},
        INVOKE_HW_DISK_WEIGHTS_GB="0.001",
    )
    done = run_inv(["env.setup", "--dry-run"], env, cwd=project_copy(tmp_path))
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr
    assert "size unknown (hub not reachable)" in done.stdout and "env.setup (dry run" in done.stdout
