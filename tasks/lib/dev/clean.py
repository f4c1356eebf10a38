"""dev.clean as plain functions: what it removes, and what it never touches.

A run's rendered configs live in its own folder (<run>/configs/sam3_tasks/), under the experiment root,
which dev.clean never enters: a queued job always finds its config. Older versions rendered them into
one shared folder in SAM3's package (configs/generated/), read by a queued job only when it starts; that
folder goes only once no task an older version launched can still read from it.
"""

import os
from pathlib import Path

from ..core.errors import ConfigError
from ..run import status
from ..run.identity import LIVE
from ..run.launch_record import RECORD, read_record
from ..run.sam3_config import LEGACY_GENERATED
from ..run.slurm import SchedulerSilent

# Generated files and caches; nothing a user made.
CACHE_NAMES = ("__pycache__",)
TOP_LEVEL = (".pytest_cache", ".ruff_cache", "tests/.tmp")


def targets(project_root: Path, keep: list[Path]) -> list[Path]:
    """Caches under project_root. Never a venv, and never anything under keep (data roots, experiments,
    the HF cache), which the walk does not even enter (a data root may hold 160,000 images)."""
    fenced = {path.resolve() for path in keep}
    found = [project_root / name for name in TOP_LEVEL if (project_root / name).exists()]
    for folder, subfolders, _ in os.walk(project_root):
        here = Path(folder)
        for name in list(subfolders):
            path = here / name
            if name.startswith(".venv") or name == ".git" or path.resolve() in fenced or path.is_symlink():
                subfolders.remove(name)
            elif name in CACHE_NAMES:
                found.append(path)
                subfolders.remove(name)
    return sorted(set(found))


def legacy_config_folders(project_root: Path, train_venv: Path) -> list[Path]:
    """Where older versions rendered configs: configs/generated/ in SAM3's package (the training venv's,
    or the sam3 checkout's for an editable install)."""
    packages = [*train_venv.glob("lib/python*/site-packages/sam3"), project_root / "sam3" / "sam3"]
    return sorted(path for package in packages if (path := package / "train" / "configs" / LEGACY_GENERATED).is_dir())


def legacy_readers(folders: list[Path], experiment_root: Path) -> list[str]:
    """Why the legacy folders must stay, a line per run: its tasks that an older version launched on a
    config in one of them and that are still queued or running (or may be: SLURM did not answer, or the
    record cannot be read). None: no task will read them again."""
    why = []
    for path in sorted(experiment_root.glob(f"*/{RECORD}")):
        try:
            record = read_record(path)
            if not any(_inside(entry.get("config"), folders) for entry in record["tasks"]):
                continue
            states = status.run_states(record, strict=True)
        except (ConfigError, SchedulerSilent) as error:
            why.append(f"{path.parent.name}: cannot tell whether its tasks still read it ({error})")
            continue
        live = [
            status.label(record, entry)
            for entry, state in zip(record["tasks"], states, strict=True)
            if _inside(entry.get("config"), folders) and state.startswith((*LIVE, "submitting"))
        ]
        if live:
            why.append(f"{record['name']}: {', '.join(live)} still queued or running on a config in it")
    return why


def _inside(config: str | None, folders: list[Path]) -> bool:
    return bool(config) and any(Path(config).parent.resolve() == folder.resolve() for folder in folders)
