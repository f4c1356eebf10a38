"""A run turned into results: what SAM3's meters wrote for each task (the last complete line of its
val_stats.json), grouped by RF100-VL domain, grid cells side by side with a seed axis as mean +- std,
beside SAM3's published figure for the same setting (published.py), and compared with another run.

Reads our runs (`<run>/launch.json`, each task's `<experiment_dir>/logs/<dataset>/val_stats.json`) and
experiment folders SAM3's train.py wrote without us (`<experiment_log_dir>/logs/<dataset>/val_stats.json`).
Values are SAM3's 0-1 scale in the data, x100 where shown (as the paper prints them). A -1 (pycocotools:
no ground truth of that kind) is left out and counted; missing, failed and unfinished tasks are listed and
counted, never averaged in.
"""

import json
import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..core.errors import ConfigError
from ..core.paths import atomic_write_text
from . import published
from .identity import DONE, FAILED, NO_FINAL_EVALUATION
from .launch_record import RECORD
from .sam3_config import DEMO_CONFIG
from .stats import Stats, read_stats

METER = re.compile(r"^Meters_train/val_[^/]+/[^/]+/coco_eval_(bbox|segm)_(.+)$")  # segm: masks (--task segm)
# SAM3's meter names (pycocotools' 12 stats) -> the column shown
COLUMNS = {
    "AP": "AP",
    "AP_50": "AP50",
    "AP_75": "AP75",
    "AP_small": "APs",
    "AP_medium": "APm",
    "AP_large": "APl",
    "AR_maxDets@1": "AR1",
    "AR_maxDets@10": "AR10",
    "AR_maxDets@100": "AR100",
    "AR_small": "ARs",
    "AR_medium": "ARm",
    "AR_large": "ARl",
    "segm_AP": "mask AP",
    "segm_AP_50": "mask AP50",
}
SEED_FILE = re.compile(r"^(.*)_seed(\d+)$")
NO_STATS = "no val_stats.json"


# --- one stats file ---------------------------------------------------------------------------------


def meters(stats: dict[str, Any] | None) -> tuple[dict[str, float], list[str]]:
    """SAM3's COCO figures of one line (0-1): box ones by name (AP, AP_50...), mask ones as segm_AP...; and the
    names of those that are -1 (left out)."""
    values, excluded = {}, []
    for key, value in (stats or {}).items():
        match = METER.match(key)
        if match and isinstance(value, int | float):
            name = match.group(2) if match.group(1) == "bbox" else f"segm_{match.group(2)}"
            if value < 0:
                excluded.append(name)
            else:
                values[name] = float(value)
    return values, excluded


def val_results(experiment_dir: Path, dataset: str | None) -> dict[str, float]:
    """The figures of the last complete line of one task's val_stats.json; {} if none yet (run.status)."""
    logs = Path(experiment_dir) / "logs"
    paths = [logs / dataset / "val_stats.json"] if dataset else sorted(logs.glob("*/val_stats.json"))
    for path in paths:
        stats = read_stats(path)
        if stats.last is not None:
            values, excluded = meters(stats.last)
            return {**values, **{name: -1.0 for name in excluded}}
    return {}


def progress(experiment_dir: Path, dataset: str | None, finished: bool = False) -> str:
    """How far training is, from the last line of train_stats.json (SAM3 writes Trainer/epoch, 0-based, and
    Trainer/where, the fraction of all training done when the line was written): 'epoch 2/4 (44%)', or
    'epoch 4/4' once finished; '-' before the first epoch ends (and for an evaluation, which trains none)."""
    logs = Path(experiment_dir) / "logs"
    path = logs / dataset / "train_stats.json" if dataset else next(iter(sorted(logs.glob("*/train_stats.json"))), None)
    last = read_stats(path).last if path else None
    if not last or "Trainer/epoch" not in last:
        return "-"
    epochs = max_epochs(Path(experiment_dir))
    where = last.get("Trainer/where")
    share = f" ({100 * where:.0f}%)" if isinstance(where, int | float) and not finished else ""
    return f"epoch {last['Trainer/epoch'] + 1}{f'/{epochs}' if epochs else ''}{share}"


def max_epochs(experiment_dir: Path) -> int | None:
    """trainer.max_epochs of the config SAM3 resolved for this task, when it wrote one."""
    value = published.lookup(_config(experiment_dir / "config_resolved.yaml") or {}, "trainer.max_epochs")
    return value if isinstance(value, int) else None


def _config(path: Path) -> dict | None:
    import yaml

    try:
        text = path.read_text()
    except OSError:
        return None
    try:
        loaded = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError:
        return None
    return loaded if isinstance(loaded, dict) else None


# --- a run's tasks ----------------------------------------------------------------------------------


@dataclass
class Task:
    dataset: str
    cell: str | None
    cell_values: dict[str, str]
    experiment_dir: str
    state: str  # the task's state (process table, SLURM, or for a folder without a record, its epochs)
    status: str = "missing"  # done, unfinished, failed, missing
    domain: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)  # 0-1, -1 values left out
    excluded: list[str] = field(default_factory=list)  # meters that were -1
    lines: int = 0
    truncated: bool = False
    epoch: int | None = None
    stats_path: str = ""
    dataset_named: bool = True  # False: a task of a config without datasets, named after its run
    predictions: str | None = None  # run.predict's page of the task, once made


@dataclass
class Source:
    """What was read: a run of ours (record) or a folder SAM3 wrote (record None)."""

    name: str
    folder: Path
    record: dict[str, Any] | None
    tasks: list[Task]
    config: dict | None  # the first task's config (resolved by SAM3 when it wrote one)


def _status(state: str, stats: Stats) -> str:
    if state.startswith(FAILED):
        return "failed"
    if state.startswith(DONE) or state == NO_STATS:
        return "done" if stats.last is not None else "missing"
    if state.startswith(NO_FINAL_EVALUATION):  # it ended: with no val_stats.json at all, its results are missing
        return "unfinished" if stats.last is not None else "missing"
    return "unfinished"  # running, pending, submitted, requeued, or (no record) not at its last epoch


def _stats_path(task: "Task") -> Path:
    """logs/<dataset>/val_stats.json; for a config without a dataset list (its one task is named after the
    run), wherever under logs/ SAM3 put it."""
    path = Path(task.experiment_dir) / "logs" / task.dataset / "val_stats.json"
    if task.dataset_named or path.exists():
        return path
    return next(iter(sorted((Path(task.experiment_dir) / "logs").glob("**/val_stats.json"))), path)


def _fill(task: Task, domains: dict[str, str]) -> Task:
    path = _stats_path(task)
    stats = read_stats(path)
    task.metrics, task.excluded = meters(stats.last)
    task.lines, task.truncated, task.stats_path = stats.lines, stats.truncated, str(path)
    task.epoch = (stats.last or {}).get("Trainer/epoch")
    task.domain = domains.get(task.dataset)
    task.status = _status(task.state, stats)
    page = Path(task.experiment_dir) / "predictions" / "predictions.html"  # predictions.py's FOLDER and PAGE
    task.predictions = str(page) if page.is_file() else None
    return task


def from_record(record: dict[str, Any], state_of) -> Source:
    """A run of ours; state_of(record, entry) is status.task_state."""
    tasks = []
    for entry in record["tasks"]:
        task = Task(
            entry["dataset"] or record["name"],
            entry.get("cell"),
            dict(entry.get("cell_values") or {}),
            entry["experiment_dir"],
            state_of(record, entry),
            dataset_named=bool(entry["dataset"]),
        )
        tasks.append(task)
    config = None
    for entry in record["tasks"][:1]:
        config = _config(Path(entry["experiment_dir"]) / "config_resolved.yaml") or _config(
            Path(entry.get("config") or "-")
        )
    return Source(
        record["name"], Path(record["run_dir"]), record, tasks, config or _config(Path(record["source_config"]))
    )


def from_folder(folder: Path) -> Source:
    """Experiment folders SAM3's train.py wrote: FOLDER/logs/<dataset>/val_stats.json, or one level down
    (FOLDER/<experiment>/logs/<dataset>/...). The datasets the config lists but no log has are missing; a
    training run whose last validation is not at its last epoch is unfinished."""
    experiments = [folder] if (folder / "logs").is_dir() else sorted(p.parent for p in folder.glob("*/logs"))
    if not experiments:
        raise ConfigError(
            f"{folder} holds no launch.json and no logs/<dataset>/val_stats.json (SAM3's layout): "
            "pass a run name (inv run.list) or the experiment_log_dir SAM3's train.py wrote"
        )
    tasks, first_config = [], None
    for experiment in experiments:
        config = _config(experiment / "config_resolved.yaml") or {}
        first_config = first_config or config
        names = sorted(p.name for p in (experiment / "logs").iterdir() if p.is_dir())
        listed = [
            entry["name"] if isinstance(entry, dict) else str(entry)
            for key in ("all_roboflow_supercategories", "all_odinw_supercategories")
            for entry in (config.get(key) or [])
        ]
        epochs = published.lookup(config, "trainer.max_epochs")
        training = published.lookup(config, "trainer.mode") == "train"
        for name in names + [n for n in listed if n not in names]:
            stats = read_stats(experiment / "logs" / name / "val_stats.json")
            epoch = (stats.last or {}).get("Trainer/epoch")
            state = "done"
            if stats.last is None:
                state = NO_STATS
            elif training and isinstance(epochs, int) and isinstance(epoch, int) and epoch < epochs - 1:
                state = f"epoch {epoch + 1} of {epochs}"
            cell = experiment.name if len(experiments) > 1 else None
            tasks.append(Task(name, cell, {}, str(experiment), state))
    return Source(folder.name, folder, None, tasks, first_config)


def load(target: str | None, experiment_root: Path, state_of) -> Source:
    """A run by name (the last one by default), a run folder holding launch.json, or a SAM3 experiment folder."""
    from .launch_record import load_record, read_record

    if target and not (experiment_root / target / RECORD).is_file():
        folder = Path(target).expanduser()
        if "/" in target or target.startswith((".", "~")) or folder.is_dir():
            if (folder / RECORD).is_file():
                return from_record(read_record(folder / RECORD), state_of)
            if not folder.is_dir():
                raise ConfigError(
                    f"{target} is not a folder; pass a run name (inv run.list) or the "
                    "experiment_log_dir SAM3's train.py wrote"
                )
            return from_folder(folder.resolve())
    return from_record(load_record(experiment_root, target), state_of)


# --- grids: cells side by side, seeds averaged -------------------------------------------------------


def seed_split(key: str, value: str) -> tuple[str | None, str | None]:
    """(the part of a cell value that is not a seed, the seed): a key naming a seed is all seed; one of
    SAM3's ODinW seed files (fewshot_train_shot10_seed300) keeps its shot ('shot10') and gives its seed."""
    match = SEED_FILE.match(str(value))
    if match and published.FEWSHOT.fullmatch(str(value)):
        return match.group(1).replace("fewshot_train_", ""), match.group(2)
    if "seed" in key.rsplit(".", 1)[-1].lower():
        return None, str(value)
    return str(value), None


def _cell_pairs(cell: str | None) -> dict[str, str]:
    """A cell's folder name read as its values ('lr=0.0001,seed=3'), for a record without cell_values."""
    pairs = [part.split("=", 1) for part in (cell or "").split(",")]
    return dict(pairs) if cell and all(len(pair) == 2 for pair in pairs) else {}


@dataclass
class Group:
    """The cells that differ only by seed: one column of results (label '' for a run without a grid)."""

    label: str
    cells: list[str | None]
    seeds: list[str | None]
    setting: published.Setting


def groups(source: Source, forced: published.Setting | None = None) -> list[Group]:
    """The run's cells grouped by everything but their seed, in launch order."""
    found: dict[str, Group] = {}
    seen: set[str | None] = set()
    record = source.record or {}
    demo = record.get("source_config") == str(DEMO_CONFIG)
    for task in source.tasks:
        if task.cell in seen:
            continue
        seen.add(task.cell)
        parts, seed = [], None
        values = task.cell_values or _cell_pairs(task.cell)
        for key, value in values.items():
            rest, seed_part = seed_split(key, value)
            if seed_part is not None:
                seed = seed_part
            if rest is not None:
                parts.append(f"{key.rsplit('.', 1)[-1]}={rest}")
        label = ",".join(parts) if values else (task.cell or "")
        if label not in found:
            setting = forced or published.setting_of(source.config or {}, record.get("request"), demo, values)
            found[label] = Group(label, [], [], setting)
        found[label].cells.append(task.cell)
        found[label].seeds.append(seed)
    return list(found.values())


# --- the summary --------------------------------------------------------------------------------------


def mean_std(values: list[float]) -> tuple[float | None, float | None]:
    """Mean and population std (numpy's default; the paper does not say which) of values; std None for one."""
    if not values:
        return None, None
    mean = sum(values) / len(values)
    if len(values) == 1:
        return mean, None
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def summarize(source: Source, forced: published.Setting | None = None) -> dict[str, Any]:
    """Everything the table, the CSV, the JSON and the plot show (AP figures x100)."""
    datasets = list(dict.fromkeys(task.dataset for task in source.tasks))
    benchmark = published.benchmark_of(datasets)
    domains = published.rf100vl_domains() if benchmark == published.RF100VL else {}
    for task in source.tasks:
        _fill(task, domains)
    by_cell = {(t.cell, t.dataset): t for t in source.tasks}
    out_groups = []
    for group in groups(source, forced):
        rows, per_seed = [], {}
        for dataset in datasets:
            values = []
            for cell, seed in zip(group.cells, group.seeds, strict=True):
                task = by_cell.get((cell, dataset))
                if task and task.status == "done" and "AP" in task.metrics:
                    values.append(100 * task.metrics["AP"])
                    per_seed.setdefault(seed, {})[dataset] = 100 * task.metrics["AP"]
            mean, std = mean_std(values)
            ref = published.figure(benchmark, dataset, group.setting.name) if benchmark == published.ODINW13 else None
            rows.append(
                {
                    "dataset": dataset,
                    "domain": domains.get(dataset),
                    "AP": mean,
                    "std": std,
                    "n": len(values),
                    "published": ref["AP"] if ref else None,
                    "published_std": ref["std"] if ref else None,
                }
            )
        seed_means = [_mean(list(values.values())) for values in per_seed.values()]
        overall, overall_std = mean_std([m for m in seed_means if m is not None])
        ref = published.figure(benchmark, "mean", group.setting.name)
        domain_rows = []
        for key in sorted({d for d in domains.values()}) if domains else []:
            members = [d for d in datasets if domains.get(d) == key]
            means = [_mean([v for d, v in values.items() if domains.get(d) == key]) for values in per_seed.values()]
            mean, std = mean_std([m for m in means if m is not None])
            dref = published.figure(benchmark, f"domain:{key}", group.setting.name)
            counted = max((sum(1 for d in values if domains.get(d) == key) for values in per_seed.values()), default=0)
            domain_rows.append(
                {
                    "domain": key,
                    "label": published.DOMAIN_LABELS[key],
                    "datasets": len(members),
                    "counted": counted,
                    "AP": mean,
                    "std": std,
                    "published": dref["AP"] if dref else None,
                }
            )
        counted = max((len(values) for values in per_seed.values()), default=0)
        expected = 100 if benchmark == published.RF100VL else 13 if benchmark == published.ODINW13 else None
        out_groups.append(
            {
                "label": group.label,
                "cells": group.cells,
                "seeds": [s for s in group.seeds if s is not None],
                "setting": group.setting.name,
                "setting_label": group.setting.label,
                "note": group.setting.note,
                "datasets": rows,
                "domains": domain_rows,
                "mean": overall,
                "mean_std": overall_std,
                "counted": counted,
                "seed_means": {str(k): v for k, v in zip(per_seed, seed_means, strict=True)},
                "published": ref and {**ref, "over": expected},
            }
        )
    tasks = [asdict(t) for t in source.tasks]
    by_status = {s: [t for t in source.tasks if t.status == s] for s in ("done", "unfinished", "failed", "missing")}
    excluded = [f"{t.dataset}:{name}" for t in source.tasks if t.status == "done" for name in t.excluded]
    return {
        "run": source.name,
        "folder": str(source.folder),
        "benchmark": benchmark,
        "tasks": tasks,
        "groups": out_groups,
        "counts": {s: len(v) for s, v in by_status.items()},
        "missing": [_where(t) for t in by_status["missing"]],
        "failed": [_where(t) for t in by_status["failed"]],
        "unfinished": [_where(t) for t in by_status["unfinished"]],
        "no_ap": [_where(t) for t in by_status["done"] if "AP" not in t.metrics],
        "excluded": excluded,
        "truncated": [_where(t) for t in source.tasks if t.truncated],
    }


def _where(task: Task) -> str:
    return f"{task.cell}/{task.dataset}" if task.cell else task.dataset


# --- compare -----------------------------------------------------------------------------------------


def compare(ours: dict[str, Any], other: dict[str, Any]) -> dict[str, Any]:
    """Per-dataset and per-domain AP deltas (ours - other, x100), largest first, group by group: groups of
    the same label, or the single group of each run."""
    theirs = {g["label"]: g for g in other["groups"]}
    pairs = [(g, theirs[g["label"]]) for g in ours["groups"] if g["label"] in theirs]
    if not pairs and len(ours["groups"]) == 1 and len(other["groups"]) == 1:
        pairs = [(ours["groups"][0], other["groups"][0])]
    if not pairs:
        raise ConfigError(
            f"runs {ours['run']} and {other['run']} share no grid cell to compare (theirs: "
            f"{', '.join(theirs) or 'none'}); compare runs of the same grid, or of none"
        )
    out = []
    for mine, their in pairs:
        rows = _deltas(mine["datasets"], their["datasets"], "dataset")
        domains = _deltas(mine["domains"], their["domains"], "domain")
        changed = [r["delta"] for r in rows if r["delta"] is not None]
        only = sorted({r["dataset"] for r in rows if r["delta"] is None})
        out.append(
            {
                "label": mine["label"],
                "datasets": rows,
                "domains": domains,
                "improved": sum(1 for d in changed if d > 0),
                "worse": sum(1 for d in changed if d < 0),
                "unchanged": sum(1 for d in changed if d == 0),
                "not_in_both": only,
                "mean": mine["mean"],
                "other_mean": their["mean"],
                "mean_delta": None if mine["mean"] is None or their["mean"] is None else mine["mean"] - their["mean"],
            }
        )
    return {"run": ours["run"], "other": other["run"], "groups": out}


def _deltas(mine: list[dict], theirs: list[dict], key: str) -> list[dict]:
    other = {row[key]: row["AP"] for row in theirs}
    names = list(dict.fromkeys([row[key] for row in mine] + list(other)))
    ours = {row[key]: row["AP"] for row in mine}
    rows = []
    for name in names:
        a, b = ours.get(name), other.get(name)
        rows.append({key: name, "AP": a, "other": b, "delta": None if a is None or b is None else a - b})
    return sorted(rows, key=lambda r: (r["delta"] is None, -abs(r["delta"] or 0)))


# --- your own data: a fine-tuned run beside the model it started from -------------------------------------


def own_data_of(record: dict[str, Any] | None) -> dict[str, Any] | None:
    """What run.train/run.eval --data recorded of the dataset (folder, task, evaluation split), or None."""
    config = ((record or {}).get("identity") or {}).get("config") or {}
    return (config.get("sam3_tasks") or {}).get("own_data")


def find_baseline(record: dict[str, Any] | None, experiment_root: Path) -> dict[str, Any] | None:
    """The latest run.eval --data of the same folder, task and evaluation split (and --smoke or not) as this
    fine-tuning run; None for other runs or when there is none."""
    from .launch_record import read_record

    mine = own_data_of(record)
    if not mine or record.get("trainer_mode") == "val":
        return None
    same = ("folder", "task", "eval_split")
    found = []
    for path in experiment_root.glob(f"*/{RECORD}"):
        try:
            other = read_record(path)
        except ConfigError:  # a broken record of another run is that run's problem
            continue
        theirs = own_data_of(other) or {}
        same_smoke = bool(other["request"].get("smoke")) == bool(record["request"].get("smoke"))
        if other.get("trainer_mode") == "val" and theirs and same_smoke and all(theirs[k] == mine[k] for k in same):
            found.append(other)
    return max(found, key=lambda r: r.get("started") or "", default=None)


BASELINE_FIGURES = (("box AP", "AP"), ("mask AP", "segm_AP"))


def beside_baseline(summary: dict[str, Any], baseline: dict[str, Any]) -> dict[str, Any]:
    """Each finished task's box (and mask) AP beside the baseline's, x100, and whether fine-tuning beat it."""
    reference = next((t["metrics"] for t in baseline["tasks"] if t["status"] == "done"), {})
    rows, worse = [], []
    for task in summary["tasks"]:
        for label, key in BASELINE_FIGURES:
            ours, theirs = task["metrics"].get(key), reference.get(key)
            if ours is None and theirs is None:
                continue
            ours, theirs = _x100(ours), _x100(theirs)
            rows.append(
                {
                    "task": _where_dict(task),
                    "figure": label,
                    "fine-tuned": ours,
                    "baseline": theirs,
                    "delta": None if ours is None or theirs is None else ours - theirs,
                }
            )
            if rows[-1]["delta"] is not None and rows[-1]["delta"] <= 0:
                worse.append(f"{_where_dict(task)} {label} {fmt(ours)} vs {fmt(theirs)}")
    return {"baseline": baseline["run"], "rows": rows, "not_better": worse}


def baseline_beside(source: Source, summary: dict[str, Any], experiment_root: Path, state_of) -> dict | None:
    """beside_baseline against the run's baseline (find_baseline), or None when it has none."""
    baseline = find_baseline(source.record, experiment_root)
    if baseline is None:
        return None
    return beside_baseline(summary, summarize(from_record(baseline, state_of)))


def baseline_table(run: str, beside: dict[str, Any]) -> tuple[str, tuple[str, ...], list[tuple]]:
    """(title, columns, rows) of a run beside the model it started from."""
    rows = [
        (r["task"], r["figure"], fmt(r["fine-tuned"]), fmt(r["baseline"]), _versus(r["fine-tuned"], r["baseline"]))
        for r in beside["rows"]
    ]
    title = f"{run} beside the model it started from ({beside['baseline']}), x100"
    return title, ("task", "figure", "fine-tuned", "baseline", "Δ"), rows


def file_lines(summary: dict[str, Any]) -> list[str]:
    """Where the table, the plot and each task's predictions page are."""
    lines = [f"table: {summary['table']}"] if summary.get("table") else []
    lines += [f"plot: {summary['plot']}"] if summary.get("plot") else []
    return lines + [
        f"predictions ({_where_dict(t)}): {t['predictions']}" for t in summary["tasks"] if t.get("predictions")
    ]


def _where_dict(task: dict[str, Any]) -> str:
    return f"{task['cell']}/{task['dataset']}" if task["cell"] else task["dataset"]


def baseline_lines(beside: dict[str, Any] | None, record: dict[str, Any] | None) -> list[str]:
    """What to say under the baseline table: a warning when fine-tuning did not beat it, or how to make one."""
    mine = own_data_of(record)
    if beside is None:
        if not mine or record.get("trainer_mode") == "val":
            return []
        flags = (" --task segm" if mine.get("task") == "segm" else "") + (
            " --smoke" if record["request"].get("smoke") else ""
        )
        return [
            f"no baseline yet: inv run.eval --data {mine['folder']}{flags} evaluates the model you started from "
            "on the same split; run.results then puts this run beside it"
        ]
    if beside["not_better"]:
        return [
            f"warning: fine-tuning did not beat the model it started from ({beside['baseline']}): "
            + "; ".join(beside["not_better"])
        ]
    return [f"fine-tuning beat the model it started from ({beside['baseline']}) on every figure above"]


# --- the per-task table and CSV ------------------------------------------------------------------------


def task_rows(summary: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """One row per task: cell, dataset, domain, status, every COCO figure SAM3 wrote (x100), -1s left out,
    lines read, and SAM3's published AP for that dataset where there is one."""
    names = [n for n in COLUMNS if any(n in t["metrics"] for t in summary["tasks"])]
    published_ap = {}
    for group in summary["groups"]:
        for cell in group["cells"]:
            for row in group["datasets"]:
                published_ap[(cell, row["dataset"])] = row["published"]
    grid = any(t["cell"] for t in summary["tasks"])
    columns = (["cell"] if grid else []) + [
        "dataset",
        "domain",
        "status",
        *[COLUMNS[n] for n in names],
        "-1 left out",
        "lines",
        "published AP",
    ]
    rows = []
    for t in summary["tasks"]:
        figures = [_x100(t["metrics"].get(n)) if t["metrics"] else None for n in names]
        status = t["status"]
        if status == "missing":
            status = f"missing ({NO_STATS})"
        elif status != "done" and t["state"] != status:
            status = f"{status} ({t['state']})"
        if t["truncated"]:
            status += ", truncated last line skipped"
        rows.append(
            ([t["cell"]] if grid else [])
            + [
                t["dataset"],
                t["domain"],
                status,
                *figures,
                len(t["excluded"]),
                t["lines"],
                published_ap.get((t["cell"], t["dataset"])),
            ]
        )
    return columns, rows


def _x100(value: float | None) -> float | None:
    return None if value is None else 100 * value


def save_csv(summary: dict[str, Any]) -> Path:
    """<folder>/results.csv, written under a temporary name and renamed."""
    path = Path(summary["folder"]) / "results.csv"
    atomic_write_text(path, to_csv(summary))
    return path


def to_csv(summary: dict[str, Any]) -> str:
    import csv
    import io

    columns, rows = task_rows(summary)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if v is None else round(v, 4) if isinstance(v, float) else v for v in row])
    return buffer.getvalue()


# --- what is shown ----------------------------------------------------------------------------------


def fmt(value: float | None, std: float | None = None) -> str:
    if value is None:
        return "-"
    return f"{value:.1f} ± {std:.1f}" if std is not None else f"{value:.1f}"


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _versus(ours: float | None, theirs: float | None) -> str:
    return "-" if ours is None or theirs is None else f"{ours - theirs:+.1f}"


def shown_task_rows(summary: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """task_rows as text: the published and domain columns dropped where empty; for a grid (its cells
    side by side follow in cells_table) only AP, AP50 and AP75 of SAM3's figures (--csv has them all)."""
    columns, rows = task_rows(summary)
    keep = [
        i
        for i, name in enumerate(columns)
        if not (name in ("published AP", "domain") and all(row[i] is None for row in rows))
    ]
    if "cell" in columns:
        shown = set(COLUMNS.values()) - {"AP", "AP50", "AP75"}
        keep = [i for i in keep if columns[i] not in shown]
    columns, rows = [columns[i] for i in keep], [[row[i] for i in keep] for row in rows]
    return columns, [[fmt(v) if isinstance(v, float) else "-" if v is None else str(v) for v in row] for row in rows]


def cells_table(summary: dict[str, Any]) -> tuple[list[str], list[list[str]]] | None:
    """A grid: AP per dataset, one column per group of cells (mean ± std over its seeds), then SAM3's
    figure for each setting they stand for; None without a grid."""
    groups_ = summary["groups"]
    if len(groups_) == 1 and not groups_[0]["seeds"]:
        return None
    rf100vl = summary["benchmark"] == published.RF100VL
    columns = ["dataset"] + (["domain"] if rf100vl else [])
    columns += [(g["label"] or "AP") + (f" ({len(g['seeds'])} seeds)" if g["seeds"] else "") for g in groups_]
    refs = {g["setting"]: g for g in groups_ if any(row["published"] is not None for row in g["datasets"])}
    columns += [f"SAM3 published ({g['setting_label']})" for g in refs.values()]
    rows = []
    for i, row in enumerate(groups_[0]["datasets"]):
        line = [row["dataset"]] + ([row["domain"] or "-"] if rf100vl else [])
        line += [fmt(g["datasets"][i]["AP"], g["datasets"][i]["std"]) for g in groups_]
        line += [fmt(g["datasets"][i]["published"], g["datasets"][i]["published_std"]) for g in refs.values()]
        rows.append(line)
    means = [fmt(g["published"]["AP"], g["published"]["std"]) for g in refs.values()]
    rows.append(
        ["mean over datasets"] + ([""] if rf100vl else []) + [fmt(g["mean"], g["mean_std"]) for g in groups_] + means
    )
    return columns, rows


def domain_table(summary: dict[str, Any]) -> tuple[list[str], list[list[str]]] | None:
    """RF100-VL: per domain, datasets counted, our mean (± std over seeds) per group, and SAM3's figure with
    the difference where the group's setting has one."""
    groups_ = summary["groups"]
    if not groups_ or not groups_[0]["domains"]:
        return None
    columns = ["domain", "datasets (counted/in the run)"]
    for g in groups_:
        name = g["label"] or "ours"
        columns += [name] + ([f"SAM3 published ({g['setting_label']})", "Δ"] if g["published"] else [])
    rows = []
    for i, row in enumerate(groups_[0]["domains"]):
        line = [row["label"], f"{row['counted']}/{row['datasets']}"]
        for g in groups_:
            d = g["domains"][i]
            line += [fmt(d["AP"], d["std"])] + (
                [fmt(d["published"]), _versus(d["AP"], d["published"])] if g["published"] else []
            )
        rows.append(line)
    line = ["mean over datasets", f"{groups_[0]['counted']}/{len(groups_[0]['datasets'])}"]
    for g in groups_:
        ref = g["published"] and g["published"]["AP"]
        line += [fmt(g["mean"], g["mean_std"])] + ([fmt(ref), _versus(g["mean"], ref)] if g["published"] else [])
    rows.append(line)
    return columns, rows


def summary_lines(summary: dict[str, Any]) -> list[str]:
    """The verdict a person reads first: means beside SAM3's, and everything left out and why."""
    lines = []
    for g in summary["groups"]:
        name = f"{g['label']}: " if g["label"] else ""
        seeds = f" (mean ± std over seeds {', '.join(g['seeds'])})" if g["seeds"] else ""
        ours = f"{name}box AP {fmt(g['mean'], g['mean_std'])}{seeds}, the mean over {_n(g['counted'], 'dataset')}"
        ref = g["published"]
        if ref:
            also = (
                ""
                if g["counted"] == ref["over"]
                else f"; SAM3's is over all {ref['over']}, this run has {g['counted']}"
            )
            lines.append(
                f"{ours}; SAM3 published {fmt(ref['AP'], ref['std'])} for {g['setting_label']} "
                f"({_versus(g['mean'], ref['AP'])}){also}. {ref['source'].split(';')[0]}"
            )
        else:
            lines.append(f"{ours}; {g['note']}")
    counts = summary["counts"]
    for what in ("missing", "failed", "unfinished"):
        if summary[what]:
            lines.append(f"{what} ({counts[what]}, not averaged): {', '.join(summary[what])}")
    if summary["no_ap"]:
        lines.append(f"AP -1 (no ground truth; not averaged) ({len(summary['no_ap'])}): {', '.join(summary['no_ap'])}")
    if summary["excluded"]:
        shown = ", ".join(summary["excluded"][:12]) + (" ..." if len(summary["excluded"]) > 12 else "")
        lines.append(f"-1 values left out ({len(summary['excluded'])}; pycocotools' 'none of this kind'): {shown}")
    if summary["truncated"]:
        lines.append(
            f"truncated last line skipped, the line before it read ({len(summary['truncated'])}): "
            f"{', '.join(summary['truncated'])}"
        )
    return lines


def compare_tables(comparison: dict[str, Any]) -> list[tuple[str, list[str], list[list[str]], str]]:
    """(title, columns, rows, verdict) per compared group: datasets and domains, largest change first."""
    out = []
    for g in comparison["groups"]:
        name = f" [{g['label']}]" if g["label"] else ""
        title = f"{comparison['run']} vs {comparison['other']}{name}: AP per dataset"
        rows = [[r["dataset"], fmt(r["AP"]), fmt(r["other"]), _versus(r["AP"], r["other"])] for r in g["datasets"]]
        verdict = (
            f"(largest change first) improved {g['improved']}, worse {g['worse']}, unchanged {g['unchanged']}; mean "
            f"{fmt(g['mean'])} vs {fmt(g['other_mean'])} ({_versus(g['mean'], g['other_mean'])})"
        )
        if g["not_in_both"]:
            verdict += f"; not in both (no delta): {', '.join(g['not_in_both'])}"
        out.append((title, ["dataset", comparison["run"], comparison["other"], "Δ"], rows, verdict))
        if g["domains"]:
            rows = [[r["domain"], fmt(r["AP"]), fmt(r["other"]), _versus(r["AP"], r["other"])] for r in g["domains"]]
            out.append(
                (
                    f"{comparison['run']} vs {comparison['other']}{name}: domain means",
                    ["domain", comparison["run"], comparison["other"], "Δ"],
                    rows,
                    "",
                )
            )
    return out


# --- W&B ------------------------------------------------------------------------------------------------

_WANDB_LOG = r"""
import json, sys
import wandb
data = json.load(open(sys.argv[1]))
run = wandb.init(name=data["name"], group=data["group"], job_type="results", dir=data["dir"], id=data["id"],
                 resume="allow", settings=wandb.Settings(save_code=False))
payload = {"results/table": wandb.Table(columns=data["columns"], data=data["rows"])}
if data["plot"]:
    payload["results/plot"] = wandb.Image(data["plot"])
payload.update(data["scalars"])
run.log(payload)
run.finish()
print("WANDB_RUN", run.id)
"""


def log_to_wandb(summary: dict[str, Any], plot: Path | None, wandb_env: dict[str, str], environ, python: str) -> str:
    """Log the table and the plot to a W&B run `<run>/results` in the run's group, in a subprocess (wandb is
    never imported by the launcher); the key, if any, stays in the environment. Returns what happened."""
    import hashlib
    import os
    import subprocess
    import tempfile

    from ..env.tracking import scrub

    columns, rows = task_rows(summary)
    folder = Path(summary["folder"])
    scalars = {f"results/{g['label'] or 'all'}/mean_AP": g["mean"] for g in summary["groups"] if g["mean"] is not None}
    digest = hashlib.sha256(str(folder).encode()).hexdigest()[:8]
    data = {
        "name": f"{summary['run']}/results",
        "group": summary["run"],
        "dir": str(folder),
        "id": f"{re.sub(r'[^A-Za-z0-9_-]+', '-', summary['run'])[:40]}-results-{digest}",
        "columns": columns,
        "rows": rows,
        "plot": str(plot) if plot else None,
        "scalars": scalars,
    }
    env = {**environ, **wandb_env, "WANDB_SILENT": "true"}
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(data, handle)
    try:
        done = subprocess.run(
            [python, "-c", _WANDB_LOG, handle.name],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        return "warning: W&B: logging the results did not finish within 300 s"
    finally:
        os.unlink(handle.name)
    if done.returncode != 0 or "WANDB_RUN" not in done.stdout:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return f"warning: W&B: the results were not logged ({scrub(tail, environ.get('WANDB_API_KEY'))})"
    mode = wandb_env.get("WANDB_MODE", "online")
    where = f" (offline: {folder / 'wandb'}; upload with wandb sync)" if mode == "offline" else ""
    return f"W&B: table and plot logged to {data['name']} in group {summary['run']}{where}"
