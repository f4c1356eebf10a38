"""The run record, `<run>/launch.json`: what was launched, from where and with what (no environment
values, so no secrets). What SAM3 wrote for each task is read by results.py."""

import contextlib
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from ..core import secrets
from ..core.errors import ConfigError
from ..core.paths import PROJECT_ROOT, atomic_write_text
from ..env.trainenv import training_versions
from . import grid, run_lock
from .planning import Plan, Request

RECORD = "launch.json"


def _git_commit(path: Path) -> str | None:
    """The checked-out commit of a repository or submodule; None for an empty submodule folder."""
    if not (path / ".git").exists():
        return None
    done = subprocess.run(["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True, text=True)
    return done.stdout.strip() or None if done.returncode == 0 else None


def mask_secret_values(items: list[str]) -> list[str]:
    """Argv words and --set items with each value that holds a secret masked: `KEY=***`, or `***` for a
    word without a key. By value only (tasks/lib/core/secrets.py): a config key is never a secret by its
    name, so `--set ...presence_token=false` is recorded as given."""
    return [_masked_item(item) for item in items]


def _masked_item(item: str) -> str:
    flag, _, rest = item.partition("=") if item.startswith("--") else ("", "", item)
    key, equals, value = rest.partition("=")
    if not equals:
        return item if secrets.scrub(item) == item else secrets.MASK
    if secrets.scrub(value) == value and not secrets.value_looks_secret(value, key):
        return item
    return f"{flag + '=' if flag else ''}{key}={secrets.MASK}"


def record_launch(
    record: dict[str, Any] | None, plan_: Plan, request: Request, python: Path, command: list[str]
) -> dict[str, Any]:
    """The run's record with this launch added: every launch is kept (command, commits, versions, host,
    which tasks), and each task entry keeps its earlier attempts. No environment values, so no secrets."""
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    launch = {
        "started": started,
        "mode": plan_.mode,
        "command": mask_secret_values(command),
        "request": {**asdict(request), "sets": mask_secret_values(request.sets)},
        "host": platform.node(),
        "commits": {
            name: _git_commit(path)
            for name, path in (
                ("project", PROJECT_ROOT),
                ("sam3", PROJECT_ROOT / "sam3"),
                ("GLIP", PROJECT_ROOT / "GLIP"),
                ("rf100-vl", PROJECT_ROOT / "rf100-vl"),
            )
            if path.exists()
        },
        "versions": {"python": sys.version.split()[0], **training_versions(python)},
        "tasks": [task.label for task in plan_.launched()],
        "submission": "not yet" if plan_.mode == "cluster" else "local",
    }
    if record is None:
        record = {
            "name": plan_.name,
            "source_config": str(plan_.source),
            "run_dir": str(plan_.run_dir),
            "started": started,
            "identity": plan_.identity,
            "trainer_mode": plan_.trainer_mode,
            "grid": grid.describe(plan_.axes),
            "wandb_instance": plan_.wandb_instance,
            "launches": [],
            "tasks": [],
        }
    record["launches"].append(launch)
    # the latest launch, where readers of one launch look
    record.update({key: launch[key] for key in ("mode", "command", "request", "host", "commits", "versions")})
    entries = {(entry.get("cell"), entry["dataset"]): entry for entry in record["tasks"]}
    for task in plan_.launched():
        entry = entries.get(task.key)
        if entry is None:
            entry = {
                "dataset": task.dataset,
                "cell": task.cell.name if task.cell else None,
                "cell_values": dict(task.cell.texts) if task.cell else {},
                "experiment_dir": str(task.experiment_dir),
                "attempts": [],
            }
            record["tasks"].append(entry)
        else:
            entry["attempts"].append({key: entry.get(key) for key in ATTEMPT_KEYS})
        launch_ = plan_.launches[task.launch]
        entry.update(
            launch=len(record["launches"]) - 1,
            mode=plan_.mode,
            config=str(launch_.config_path),
            argv=launch_.argv,
            log_dir=str(launch_.folder) if launch_.folder else None,
            state="pending",
            max_epochs=task.max_epochs,
            pid=None,
            job_id=None,
            exit_code=None,
        )
    return record


ATTEMPT_KEYS = ("launch", "mode", "state", "pid", "job_id", "exit_code")


def aside_name(run_dir: Path) -> Path:
    """Where --restart will move the run: `<run>.N`, the first number free."""
    number = 1
    while run_dir.with_name(f"{run_dir.name}.{number}").exists():
        number += 1
    return run_dir.with_name(f"{run_dir.name}.{number}")


def set_aside(run_dir: Path, target: Path | None = None) -> Path:
    """Move a run out of the way for --restart: `<run>` becomes `<run>.1` (the first free number), or target
    (put back, when the restart launched nothing), its record renamed with it and pointing at the new folder."""
    target = target or aside_name(run_dir)
    os.rename(run_dir, target)
    path = target / RECORD
    if path.is_file():
        text = path.read_text().replace(json.dumps(str(run_dir))[1:-1], json.dumps(str(target))[1:-1])
        record = json.loads(text)
        record["name"] = target.name
        save_record(target, record)
    return target


def save_record(run_dir: Path, record: dict[str, Any]) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / RECORD, json.dumps(record, indent=2) + "\n")


@contextlib.contextmanager
def changing(run_dir: Path) -> Iterator[dict[str, Any]]:
    """The run's latest record on disk, under the run's lock, for a block that may change it; written back
    (by rename) when it did. Every change to a launched run's record goes through here or through a launch
    holding the lock, so no writer (the local runner, run.cancel, a launch) loses another's change. Waits
    as long as a launch holds the lock: the local runner must not give up recording a task."""
    with run_lock.hold(run_dir, wait_s=-1):
        record = read_record(run_dir / RECORD)
        before = json.dumps(record)
        yield record
        if json.dumps(record) != before:
            save_record(run_dir, record)


def existing(run_dir: Path) -> dict[str, Any] | None:
    """The run's record, or None for a run not launched yet."""
    path = run_dir / RECORD
    return read_record(path) if path.is_file() else None


def read_record(path: Path) -> dict[str, Any]:
    """A launch.json, or one line with the fix when it is not one (cut off, edited by hand, emptied)."""
    try:
        record = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        problem = f"is not valid JSON (line {error.lineno}: {error.msg})"
    except (OSError, UnicodeDecodeError) as error:
        problem = f"cannot be read ({getattr(error, 'strerror', None) or error})"
    else:
        if isinstance(record, dict) and isinstance(record.get("tasks"), list) and "run_dir" in record:
            return record
        problem = "is not a run record (no tasks or run_dir)"
    raise ConfigError(
        f"{path} {problem}: it was cut off or edited outside sam3-tasks; restore it, or move the run "
        f"aside (mv {path.parent} {path.parent}.broken) and launch again"
    )


def load_record(experiment_root: Path, name: str | None) -> dict[str, Any]:
    """A run's record by name, or the most recent one."""
    if name:
        path = experiment_root / name / RECORD
        if not path.is_file():
            known = ", ".join(sorted(p.parent.name for p in experiment_root.glob(f"*/{RECORD}"))[:8]) or "none yet"
            raise ConfigError(f"no run named {name!r} under {experiment_root} (runs: {known}); see inv run.list")
        return read_record(path)
    records = list_records(experiment_root)
    if not records:
        raise ConfigError(f"no runs under {experiment_root} yet; start one with inv run.train")
    return records[-1]


def list_records(experiment_root: Path) -> list[dict[str, Any]]:
    """Every run's record, oldest first."""
    paths = sorted(experiment_root.glob(f"*/{RECORD}"), key=lambda p: p.stat().st_mtime)
    return [read_record(path) for path in paths]


def where_things_go(plan_: Plan) -> list[tuple[str, str]]:
    """The rows of the after-launch table: what is written where (a pattern when there are many tasks)."""
    rows = [("experiment", str(plan_.run_dir)), ("launch record", str(plan_.run_dir / RECORD))]
    launched = plan_.launched()
    if len(launched) > 3:
        pattern = "<cell>/<dataset>" if plan_.axes else "<dataset>"
        shown = [(f"each task ({len(launched)}): {pattern}", plan_.run_dir / pattern)]
    else:
        shown = [(task.label, task.experiment_dir) for task in launched]
    for label, folder in shown:
        rows += [
            (f"{label}: configs", str(folder / "config_resolved.yaml")),
            (f"{label}: checkpoints", str(folder / "checkpoints")),
            (f"{label}: tensorboard", str(folder / "tensorboard")),
            (f"{label}: logs", str(folder / "logs")),
        ]
    if plan_.mode == "cluster":
        folders = sorted({str(launch.folder) for launch in plan_.launches})
        rows.append(("submitit logs", folders[0] if len(folders) == 1 else f"{plan_.run_dir}/<cell>/submitit_logs"))
    return rows


def rerun_request(record: dict[str, Any], evaluate: bool, overrides: dict[str, Any]) -> Request:
    """--rerun-failed: the run's own request (its config, --set, --grid, datasets), with `overrides` (this
    command's partition, account, QOS, --max-parallel or --mode, where given) on top."""
    stored = record["request"]
    if bool(stored.get("evaluate")) != evaluate:
        raise ConfigError(
            f"run {record['name']!r} was launched by {'run.eval' if stored.get('evaluate') else 'run.train'}; "
            "rerun it with that task"
        )
    if any(item.endswith("=***") for item in stored.get("sets", [])):
        raise ConfigError(
            f"run {record['name']!r} has a --set whose value was a secret (not recorded); "
            "launch it again with the same --set and --name"
        )
    known = {f.name for f in fields(Request)}
    rerun = Request(**{key: value for key, value in stored.items() if key in known})
    rerun.name, rerun.restart = record["name"], False
    for key, value in overrides.items():
        setattr(rerun, key, value)
    return rerun
