"""dev.clean's targets (tasks/lib/dev/clean.py) on a project tree of its own: caches and rendered configs
go, data, experiments, the HF cache and venvs stay, whatever they hold."""

from tasks.lib.dev import clean


def test_clean_removes_caches_and_rendered_configs_and_never_data_experiments_or_venvs(tmp_path):
    project = tmp_path / "project"
    made = {}
    for name in ("tasks/__pycache__", "tests/run/__pycache__", ".pytest_cache", ".ruff_cache",
                 "data/rf100vl/actions/__pycache__", "data/rf100vl/actions/train", "experiments/demo/__pycache__",
                 "hf/hub/__pycache__", ".venv/lib/python3.11/__pycache__",
                 ".venv-train/lib/python3.11/site-packages/sam3/train/configs/generated",
                 "sam3/sam3/train/configs/generated", "sam3/sam3/__pycache__"):  # fmt: skip
        made[name] = project / name
        made[name].mkdir(parents=True)
    keep = [project / "data" / "rf100vl", project / "data" / "odinw", project / "experiments", project / "hf"]
    found = clean.targets(project, project / ".venv-train", keep)
    assert sorted(str(path.relative_to(project)) for path in found) == [
        ".pytest_cache", ".ruff_cache", ".venv-train/lib/python3.11/site-packages/sam3/train/configs/generated",
        "sam3/sam3/__pycache__", "sam3/sam3/train/configs/generated", "tasks/__pycache__", "tests/run/__pycache__",
    ]  # fmt: skip
