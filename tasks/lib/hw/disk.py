"""Free disk at every configured location against what will be written there. Creates nothing."""

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.paths import nearest_existing
from ..core.report import FAIL, PASS, WARN, Check

GB = 1000**3


@dataclass(frozen=True)
class Location:
    """A configured folder, what it is for, and how many GB will still be written there."""

    name: str
    path: Path
    need_gb: float
    reason: str


def complete_datasets(kind: str, root: Path) -> tuple[int, int]:
    """(complete, all) datasets of a family under root: complete when every annotation file SAM3's
    configs require is there (a stat each; data.validate checks the contents). An empty folder, a
    partial download or data.fetch's staging folder counts for nothing."""
    from ..data import coco

    names = coco.dataset_names(kind)
    complete = sum(
        all((root / f.json).is_file() for f in coco.dataset_spec(kind, name).files if f.required) for name in names
    )
    return complete, len(names)


def _weights_cached(hf_home: Path) -> bool:
    return any((hf_home / "hub" / "models--facebook--sam3" / "snapshots").glob("*/sam3.pt"))


def plan_locations(settings) -> list[Location]:
    """Each configured location with its remaining need: what is already there needs nothing."""
    s = settings

    def pending(name: str, done: bool, gb_key: str, what: str) -> Location:
        path = s.path(name)
        return Location(name, path, 0.0 if done else s[gb_key], f"{what} (present)" if done else what)

    def data(name: str, kind: str, gb_key: str, what: str) -> Location:
        complete, total = complete_datasets(kind, s.path(name))
        share = (total - complete) / total
        held = f"{complete} of {total} datasets complete" if complete < total else "present"
        return Location(name, s.path(name), round(s[gb_key] * share, 3), f"{what} ({held})" if complete else what)

    return [
        data("paths.roboflow_vl_100_root", "rf100vl", "hw.disk_rf100vl_gb", "Roboflow 100-VL"),
        data("paths.odinw_data_root", "odinw", "hw.disk_odinw_gb", "ODinW"),
        pending("paths.experiment_root", False, "hw.disk_checkpoints_gb", "checkpoints of one experiment"),
        pending("paths.hf_home", _weights_cached(s.path("paths.hf_home")), "hw.disk_weights_gb", "SAM3 weights"),
        pending(
            "sam3.train_venv",
            (s.path("sam3.train_venv") / "bin" / "python").exists(),
            "hw.disk_train_venv_gb",
            "training venv",
        ),
    ]


def mount_point(path: Path) -> Path:
    """The mount point of the filesystem holding an existing path."""
    path = path.resolve()
    device = path.stat().st_dev
    while path != path.parent and path.parent.stat().st_dev == device:
        path = path.parent
    return path


def check_disk(
    locations: list[Location], margin: float, usage: Callable[[Path], Any] = shutil.disk_usage
) -> list[Check]:
    """One row per location: fail if its own need does not fit, warn if the needs of all locations
    on the same filesystem do not fit together."""
    anchors = {loc.name: nearest_existing(loc.path) for loc in locations}
    by_device: dict[int, list[Location]] = {}
    for loc in locations:
        by_device.setdefault(os.stat(anchors[loc.name]).st_dev, []).append(loc)
    checks = []
    for loc in locations:
        anchor = anchors[loc.name]
        shared = by_device[os.stat(anchor).st_dev]
        total_need = sum(other.need_gb for other in shared)
        free_gb = usage(anchor).free / GB
        detail = (
            f"{loc.path}{'' if loc.path.exists() else ' (not created yet)'}: {loc.reason}, needs "
            f"{loc.need_gb:g} GB; {free_gb:.1f} GB free on {mount_point(anchor)}"
        )
        if total_need > loc.need_gb:
            detail += f" ({total_need:g} GB needed there in all)"
        if loc.need_gb == 0:
            checks.append(Check("disk", loc.name, PASS, detail))
        elif free_gb < loc.need_gb:
            checks.append(
                Check(
                    "disk",
                    loc.name,
                    FAIL,
                    detail,
                    f"free {loc.need_gb - free_gb:.1f} GB there, or point {loc.name} at a larger disk",
                )
            )
        elif free_gb < total_need:
            checks.append(
                Check(
                    "disk",
                    loc.name,
                    WARN,
                    detail + ": not all of it fits at once",
                    "move some of these locations to another disk, or free space as you go",
                )
            )
        elif free_gb < total_need * (1 + margin):
            checks.append(Check("disk", loc.name, WARN, detail, "little room to spare: free some space"))
        else:
            checks.append(Check("disk", loc.name, PASS, detail))
    return checks
