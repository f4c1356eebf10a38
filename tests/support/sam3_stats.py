"""Stats files in the exact format SAM3's Trainer writes (sam3 0.1.4: one JSON object a line, its meters'
keys as below, values 0-1, -1 where pycocotools has nothing of that kind), and run records around them:
what run.results reads, written by hand where a real run cannot give it (100 datasets, a failed task, a
cut line)."""

import json
from pathlib import Path

PREFIX = "Meters_train/val_roboflow100/detection/coco_eval_bbox_"
METERS = (
    "AP",
    "AP_50",
    "AP_75",
    "AP_small",
    "AP_medium",
    "AP_large",
    "AR_maxDets@1",
    "AR_maxDets@10",
    "AR_maxDets@100",
    "AR_small",
    "AR_medium",
    "AR_large",
)


def val_line(ap: float, epoch: int = 0, max_epochs: int = 2, steps: int = 4, **meters: float) -> dict:
    """One val_stats.json line as SAM3's Trainer writes it: every meter (AP given, the others derived from it
    unless given), then the losses and the Trainer's position."""
    values = {name: round(min(1.0, ap * (1 + i / 20)), 6) for i, name in enumerate(METERS)}
    values.update(AP=ap, **meters)
    line = {PREFIX + name: values[name] for name in METERS}
    line.update(
        {
            "Losses/val_all_loss": 0,
            "Losses/val_default_loss": 0,
            "Losses/val_roboflow100_core_loss": 0.0,
            "Trainer/where": (epoch + (steps - 1) / steps) / max_epochs,
            "Trainer/epoch": epoch,
            "Trainer/steps_val": steps * (epoch + 1),
        }
    )
    return line


def train_line(epoch: int, max_epochs: int, steps: int = 4) -> dict:
    return {
        "Losses/train_all_loss": 1.5,
        "Trainer/where": (epoch + (steps - 1) / steps) / max_epochs,
        "Trainer/epoch": epoch,
        "Trainer/steps_train": steps * (epoch + 1),
    }


def write_lines(path: Path, lines: list[dict], cut_last: str | None = None) -> Path:
    """JSONL; with cut_last, that text follows as a last line cut short (no newline), as a killed writer leaves."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(line) + "\n" for line in lines)
    path.write_text(text + (cut_last or ""))
    return path


def write_task(
    experiment_dir: Path, dataset: str, aps: list[float], max_epochs: int = 2, cut_last: bool = False, **meters: float
) -> None:
    """A task's logs/<dataset>/ as SAM3 leaves it: val_stats.json (one line per validation) and train_stats.json."""
    logs = experiment_dir / "logs" / dataset
    lines = [val_line(ap, epoch, max_epochs, **meters) for epoch, ap in enumerate(aps)]
    write_lines(
        logs / "val_stats.json", lines, json.dumps(val_line(0.99, len(aps), max_epochs))[:80] if cut_last else None
    )
    write_lines(logs / "train_stats.json", [train_line(epoch, max_epochs) for epoch in range(len(aps))])


def write_record(
    run_dir: Path,
    tasks: list[dict],
    source_config: str = "/nowhere/config.yaml",
    mode: str = "local",
    request: dict | None = None,
    grid: list | None = None,
) -> Path:
    """<run>/launch.json with the keys run.* read; each task: dataset, state, and optionally cell, cell_values,
    pid, exit_code (its experiment_dir is <run>/[<cell>/]<dataset>)."""
    entries = []
    for task in tasks:
        folder = run_dir / task["cell"] / task["dataset"] if task.get("cell") else run_dir / task["dataset"]
        entries.append(
            {
                "dataset": task["dataset"],
                "experiment_dir": str(folder),
                "config": str(folder / "c.yaml"),
                "argv": [],
                "state": task.get("state", "done"),
                "pid": task.get("pid"),
                "job_id": None,
                "exit_code": task.get("exit_code", 0),
                "cell": task.get("cell"),
                "cell_values": task.get("cell_values"),
            }
        )
    record = {
        "name": run_dir.name,
        "mode": mode,
        "command": [],
        "request": request or {"evaluate": False},
        "source_config": source_config,
        "run_dir": str(run_dir),
        "host": "h",
        "started": "",
        "commits": {},
        "versions": {},
        "tasks": entries,
    }
    if grid is not None:
        record["grid"] = grid
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "launch.json").write_text(json.dumps(record, indent=2))
    return run_dir
