"""dev.clean's targets (tasks/lib/dev/clean.py) on a project tree of its own: caches go; data, experiments
(with each run's own rendered configs), the HF cache and venvs stay, whatever they hold; the folder older
versions rendered configs into goes only once no task they launched still reads from it."""

import json

import pytest

from tasks.lib.dev import clean
from tasks.lib.run import status
from tasks.lib.run.slurm import SchedulerSilent

LEGACY = ".venv-train/lib/python3.11/site-packages/sam3/train/configs/generated"


def test_clean_removes_caches_and_never_data_experiments_run_configs_or_venvs(tmp_path):
    project = tmp_path / "project"
    for name in (
        "tasks/__pycache__",
        "tests/run/__pycache__",
        ".pytest_cache",
        ".ruff_cache",
        "data/rf100vl/actions/__pycache__",
        "data/rf100vl/actions/train",
        "experiments/demo/__pycache__",
        "experiments/demo/configs/sam3_tasks",
        "hf/hub/__pycache__",
        ".venv/lib/python3.11/__pycache__",
        LEGACY,
        "sam3/sam3/__pycache__",
    ):
        (project / name).mkdir(parents=True)
    keep = [project / "data" / "rf100vl", project / "data" / "odinw", project / "experiments", project / "hf"]
    found = clean.targets(project, keep)
    assert sorted(str(path.relative_to(project)) for path in found) == [
        ".pytest_cache",
        ".ruff_cache",
        "sam3/sam3/__pycache__",
        "tasks/__pycache__",
        "tests/run/__pycache__",
    ]


@pytest.fixture
def legacy_run(tmp_path):
    """A project with both legacy folders, and a run an older version launched on SLURM with its config in one."""
    project = tmp_path / "project"
    folders = [project / LEGACY, project / "sam3" / "sam3" / "train" / "configs" / "generated"]
    for folder in folders:
        folder.mkdir(parents=True)
    root = tmp_path / "exp"
    (root / "old").mkdir(parents=True)
    entry = {
        "dataset": "actions",
        "cell": None,
        "mode": "cluster",
        "state": "submitted",
        "job_id": "7_0",
        "experiment_dir": str(root / "old" / "actions"),
        "config": str(folders[0] / "old--actions.yaml"),
    }
    record = {"name": "old", "mode": "cluster", "run_dir": str(root / "old"), "tasks": [entry]}
    (root / "old" / "launch.json").write_text(json.dumps(record))
    return project, root


@pytest.mark.parametrize(
    ("squeue", "kept"),
    [
        ({"7_0": "pending"}, "old: actions still queued or running on a config in it"),
        ({"7_0": "running"}, "old: actions still queued or running on a config in it"),
        (SchedulerSilent("squeue timed out"), "old: cannot tell whether its tasks still read it (squeue timed out)"),
        ({"7_0": "failed"}, None),
        ({}, None),  # SLURM has forgotten the job: it ended long ago
    ],
)
def test_the_legacy_config_folders_stay_while_a_task_of_an_older_version_may_read_them(
    legacy_run, monkeypatch, squeue, kept
):
    project, root = legacy_run

    def job_states():
        if isinstance(squeue, Exception):
            raise squeue
        return squeue

    monkeypatch.setattr(status, "job_states", job_states)
    folders = clean.legacy_config_folders(project, project / ".venv-train")
    assert folders == sorted([project / LEGACY, project / "sam3" / "sam3" / "train" / "configs" / "generated"])
    assert clean.legacy_readers(folders, root) == ([kept] if kept else [])


def test_runs_of_this_version_never_hold_the_legacy_folders_and_slurm_is_not_asked(legacy_run, monkeypatch):
    project, root = legacy_run
    record = json.loads((root / "old" / "launch.json").read_text())
    record["tasks"][0]["config"] = str(root / "old" / "configs" / "sam3_tasks" / "old--actions.yaml")
    (root / "old" / "launch.json").write_text(json.dumps(record))
    monkeypatch.setattr(status, "job_states", lambda: pytest.fail("SLURM asked about a run of this version"))
    assert clean.legacy_readers(clean.legacy_config_folders(project, project / ".venv-train"), root) == []
