"""The run record, `<run>/launch.json`: what was launched, from where and with what (no environment
values, so no secrets). What SAM3 wrote for each task is read by results.py."""

import json
import platform
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ..core.errors import ConfigError
from ..core.paths import PROJECT_ROOT, atomic_write_text
from ..env.trainenv import training_versions
from . import job_env
from .planning import Plan, Request

RECORD = "launch.json"


def _git_commit(path: Path) -> str | None:
    """The checked-out commit of a repository or submodule; None for an empty submodule folder."""
    if not (path / ".git").exists():
        return None
    done = subprocess.run(["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True, text=True)
    return done.stdout.strip() or None if done.returncode == 0 else None


def mask_secret_values(items: list[str]) -> list[str]:
    """`KEY=value` items (a --set, an argv word) whose key looks like a secret, with the value masked."""
    masked = []
    for item in items:
        flag, _, rest = item.partition("=") if item.startswith("--") else ("", "", item)
        key, equals, _ = rest.partition("=")
        secret = equals and job_env.looks_secret(key.lstrip("+").rsplit(".", 1)[-1])
        masked.append(f"{flag + '=' if flag else ''}{key}=***" if secret else item)
    return masked


def new_record(plan_: Plan, request: Request, python: Path, command: list[str]) -> dict[str, Any]:
    """What was launched, from where and with what: no environment values, so no secrets."""
    return {
        "name": plan_.name,
        "mode": plan_.mode,
        "command": mask_secret_values(command),
        "request": {**asdict(request), "sets": mask_secret_values(request.sets)},
        "source_config": str(plan_.source),
        "run_dir": str(plan_.run_dir),
        "host": platform.node(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "commits": {
            name: _git_commit(path)
            for name, path in (
                ("project", PROJECT_ROOT),
                ("sam3", PROJECT_ROOT / "sam3"),
                ("GLIP", PROJECT_ROOT / "GLIP"),
                ("rf100-vl", PROJECT_ROOT / "rf100-vl"),
            )
            if path.exists()
        },  # fmt: skip
        "versions": {"python": sys.version.split()[0], **training_versions(python)},
        "tasks": [
            {
                "dataset": t.dataset,
                "experiment_dir": str(t.experiment_dir),
                "config": str(plan_.launches[t.launch].config_path),
                "argv": plan_.launches[t.launch].argv,
                "state": "pending",
                "pid": None,
                "job_id": None,
                "exit_code": None,
            }
            for t in plan_.tasks
        ],  # fmt: skip
    }


def save_record(run_dir: Path, record: dict[str, Any]) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / RECORD, json.dumps(record, indent=2) + "\n")


def load_record(experiment_root: Path, name: str | None) -> dict[str, Any]:
    """A run's record by name, or the most recent one."""
    if name:
        path = experiment_root / name / RECORD
        if not path.is_file():
            known = ", ".join(sorted(p.parent.name for p in experiment_root.glob(f"*/{RECORD}"))[:8]) or "none yet"
            raise ConfigError(f"no run named {name!r} under {experiment_root} (runs: {known}); see inv run.list")
        return json.loads(path.read_text())
    records = list_records(experiment_root)
    if not records:
        raise ConfigError(f"no runs under {experiment_root} yet; start one with inv run.train")
    return records[-1]


def list_records(experiment_root: Path) -> list[dict[str, Any]]:
    """Every run's record, oldest first."""
    paths = sorted(experiment_root.glob(f"*/{RECORD}"), key=lambda p: p.stat().st_mtime)
    return [json.loads(path.read_text()) for path in paths]


def where_things_go(plan_: Plan) -> list[tuple[str, str]]:
    """The rows of the after-launch table: what is written where."""
    rows = [("experiment", str(plan_.run_dir)), ("launch record", str(plan_.run_dir / RECORD))]
    for task in plan_.tasks:
        label = task.dataset or "run"
        rows += [
            (f"{label}: configs", str(task.experiment_dir / "config_resolved.yaml")),
            (f"{label}: checkpoints", str(task.experiment_dir / "checkpoints")),
            (f"{label}: tensorboard", str(task.experiment_dir / "tensorboard")),
            (f"{label}: logs", str(task.experiment_dir / "logs")),
        ]
    if plan_.mode == "cluster":
        rows.append(("submitit logs", str(plan_.run_dir / "submitit_logs")))
    return rows
