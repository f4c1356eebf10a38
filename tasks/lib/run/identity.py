"""A run's identity and what a new launch into it does.

The identity is what decides a run's results: the rendered config (less `submitit:`, `launcher:` and
`trainer.logging:`, which say where and how it runs and logs), GPUs per node and nodes, the grid, the
training env's sam3 and torch, and the code of ours that runs inside SAM3's process (plugins/). Not
the partition, account, QOS, --max-parallel, or local against cluster. The datasets are members:
a launch may add datasets to a run with the same identity.

Launching into a run with the same identity continues it, task by task: a finished task (its final
evaluation is in val_stats.json) is skipped, a queued or running one is left alone, an unfinished
one is launched again into its own folder (SAM3 resumes from its checkpoint there). With another
identity the launch is refused with the keys that differ.
"""

import copy
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core import secrets
from ..core.errors import ConfigError
from . import grid, sam3_config
from .stats import read_stats

PLUGINS = Path(__file__).resolve().parent / "plugins"
DONE = ("done", "completed", "finished")  # what a process or SLURM says of a task that ended well
NO_FINAL_EVALUATION = "ended without its final evaluation"  # the state of such a task without one in val_stats.json
FAILED = (
    "failed",
    "cancelled",
    "timeout",
    "node_fail",
    "out_of_memory",
    "preempted",
    "boot_fail",
    "deadline",
    "stopped",
)
LIVE = ("pending", "running", "configuring", "completing", "suspended", "requeued", "resizing", "submitted")


def _job_code_digest() -> str:
    digest = hashlib.sha256()
    for path in sorted(PLUGINS.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def _masked(node: Any) -> Any:
    """The config with what is shaped like a secret hidden, by value only (tasks/lib/core/secrets.py, not
    the environment's values: the identity must not depend on the shell). Keys are never judged by name:
    `presence_token` is a model switch, and its value decides the results."""
    if isinstance(node, dict):
        return {k: _masked(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_masked(v) for v in node]
    return secrets.scrub(node, environ={}) if isinstance(node, str) else node


def of_run(config: dict, num_gpus: int, num_nodes: int, axes: list[grid.Axis], versions: dict) -> dict:
    """What decides the results of a run rendered from this config (placeholders filled)."""
    kept = {key: value for key, value in copy.deepcopy(config).items() if key not in ("submitit", "launcher")}
    if isinstance(kept.get("trainer"), dict):
        kept["trainer"].pop("logging", None)
    return json.loads(
        json.dumps(
            {
                "config": _masked(kept),
                "gpus_per_node": num_gpus,
                "nodes": num_nodes,
                "grid": grid.describe(axes),
                "versions": {name: versions.get(name) for name in ("sam3", "torch")},
                "job_code": _job_code_digest(),
            },
            default=str,
        )
    )


def _flat(identity: dict) -> dict[str, Any]:
    flat = {key: value for key, value in sam3_config.walk(identity.get("config") or {})}
    for key, value in identity.items():
        if key != "config":
            flat[key] = json.dumps(value) if isinstance(value, (dict, list)) else value
    return flat


def differences(old: dict, new: dict) -> list[str]:
    """'key: old -> new' for every key whose value differs (a key only one side has, too)."""
    before, after = _flat(old), _flat(new)
    missing = object()
    lines = []
    for key in sorted(set(before) | set(after)):
        a, b = before.get(key, missing), after.get(key, missing)
        if a != b:
            lines.append(f"{key}: {'(none)' if a is missing else a} -> {'(none)' if b is missing else b}")
    return lines


def refuse_other_identity(record: dict, identity: dict) -> None:
    """One line naming the keys that differ and the two ways on; nothing when they agree."""
    changed = differences(record.get("identity") or {}, identity)
    if not changed:
        return
    shown = "; ".join(changed[:4]) + (f"; and {len(changed) - 4} more" if len(changed) > 4 else "")
    raise ConfigError(
        f"run {record['name']!r} exists with other settings ({shown}): its checkpoints would be "
        f"resumed as if they were this run's; pick a new --name, or pass --restart to start it again "
        f"(its files and record are kept, renamed)"
    )


def final_evaluation_done(experiment_dir: Path, dataset: str | None, trainer_mode: str, max_epochs: int) -> bool:
    """Whether SAM3 wrote the task's final evaluation: after training (trainer.mode train) its last
    val_stats.json line is of the last epoch; an evaluation config writes one line; train_only writes
    no evaluation, so its last train_stats.json line must be of the last epoch."""
    name = "train_stats.json" if trainer_mode == "train_only" else "val_stats.json"
    logs = experiment_dir / "logs"
    paths = [logs / dataset / name] if dataset else sorted(logs.glob(f"**/{name}"))
    for path in paths:
        line = read_stats(path).last
        if line is not None:
            return trainer_mode == "val" or int(line.get("Trainer/epoch", -1)) >= max_epochs - 1
    return False


@dataclass
class Decision:
    task: Any  # planning.Task
    action: (
        str  # launch (new), resume, restart, skip (finished or, with --rerun-failed, not in the run), leave (queued)
    )
    why: str

    @property
    def launches(self) -> bool:
        return self.action in ("launch", "resume", "restart")


def decide(record: dict | None, plan_, state_of, rerun_failed: bool = False) -> list[Decision]:
    """What this launch does with each task of the plan, given the run's record (None: a new run)."""
    entries = {(entry.get("cell"), entry["dataset"]): entry for entry in (record or {}).get("tasks", [])}
    decisions = []
    for task in plan_.tasks:
        entry = entries.get(task.key)
        if entry is None:
            decisions.append(
                Decision(task, "skip", "not in the run; --rerun-failed reruns only what ran")
                if rerun_failed
                else Decision(task, "launch", "new")
            )
            continue
        state = state_of(entry)
        if state.startswith(LIVE):
            where = f"job {entry['job_id']}" if entry.get("job_id") else f"pid {entry.get('pid')}"
            decisions.append(Decision(task, "leave", f"{state} ({where}): not launched again"))
        elif final_evaluation_done(task.experiment_dir, task.dataset, plan_.trainer_mode, task.max_epochs):
            decisions.append(Decision(task, "skip", "finished: its final evaluation is in val_stats.json"))
        elif (task.experiment_dir / "checkpoints" / "checkpoint.pt").is_file():
            decisions.append(Decision(task, "resume", f"{state}: resumes from its checkpoint"))
        else:
            decisions.append(Decision(task, "restart", f"{state}, no checkpoint: starts from the beginning"))
    return decisions
