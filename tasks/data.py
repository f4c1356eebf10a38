"""Datasets: check RF100-VL, ODinW and your own COCO data against what SAM3 needs, and make synthetic ones."""

from .common import load_settings, task
from .lib.core import report as report_lib
from .lib.core.errors import ConfigError, ToolError

ROOT_KEYS = {"rf100vl": "paths.roboflow_vl_100_root", "odinw": "paths.odinw_data_root"}
KIND_HELP = "rf100vl or odinw (default: rf100vl)."
VALIDATE_KIND_HELP = "rf100vl, odinw, or coco: your own data in Roboflow's COCO export layout (default: rf100vl)."
DATASETS_HELP = "Comma-separated dataset names (default: all of the kind)."
WORKERS_HELP = "Processes to use (default: every CPU this process may use)."


def _workers(value) -> int | None:
    if value is None:
        return None
    if not str(value).isdigit() or int(value) < 1:
        raise ConfigError(f"--workers {value!r} is not a whole number >= 1; pass e.g. --workers 4")
    return int(value)


@task(
    default=True,
    help={
        "kind": VALIDATE_KIND_HELP,
        "root": "Data root (default: paths.roboflow_vl_100_root or paths.odinw_data_root). With --kind coco (no "
        "default): one dataset folder (train/, test/, valid/ with _annotations.coco.json) or a folder of them.",
        "datasets": DATASETS_HELP,
        "train": "--kind coco: the training split's COCO annotation json, instead of --root.",
        "val": "--kind coco: the evaluation split's COCO annotation json, instead of --root.",
        "train_images": "Folder the --train json's file_name paths are relative to (default: the json's folder).",
        "val_images": "Folder the --val json's file_name paths are relative to (default: the json's folder).",
        "deep": "Also walk every byte of each image's structure (slower).",
        "workers": WORKERS_HELP,
        "no_cache": "Re-read everything instead of reusing verdicts on unchanged files.",
        "json": "Print JSON instead of tables.",
    },
)
def validate(
    c,
    kind=None,
    root=None,
    datasets=None,
    train=None,
    val=None,
    train_images=None,
    val_images=None,
    deep=False,
    workers=None,
    no_cache=False,
    json=False,
):
    """Check datasets against SAM3's loaders; exit 1 on errors."""
    import time

    from .lib.data import coco, own

    kind = own.pick_kind(kind, train, val)
    names = [n.strip() for n in datasets.split(",") if n.strip()] if datasets else None
    started = time.perf_counter()
    if kind == coco.OWN:
        request = own.Request(root, names, train, val, train_images, val_images)
        data_root, reports = own.validate_request(request, deep, _workers(workers), use_cache=not no_cache)
    else:
        key = ROOT_KEYS[kind]
        data_root = load_settings(c, **{key: ("--root", root)}).path(key)
        reports = coco.validate_root(kind, data_root, names, deep, _workers(workers), use_cache=not no_cache)
    seconds = time.perf_counter() - started
    if json:
        print(report_lib.to_json(coco.as_dict(kind, data_root, reports, deep, seconds)))
    else:
        title = f"data.validate {kind}: {data_root} ({seconds:.2f} s)"
        report_lib.print_table(title, coco.summary_columns(kind), coco.summary_rows(reports, kind))
        issues = coco.issue_rows(reports)
        if issues:
            report_lib.print_table("issues", ("dataset", "status", "count", "issue", "first example", "fix"), issues)
    failed = [r.name for r in reports if r.errors]
    if failed:
        shown = ", ".join(failed[:5]) + (", ..." if len(failed) > 5 else "")
        raise ToolError(f"{len(failed)} dataset(s) have errors ({shown}); see the fix column above")


@task(
    help={
        "root": "Folder to write into (required; datasets not made by data.synth are never replaced).",
        "kind": KIND_HELP,
        "datasets": "How many datasets (e.g. 3), 'all', or comma-separated names (default: all).",
        "images": "Images per dataset, split like the real data, at least 6 (default: 9).",
        "defects": "Inject problems data.validate must catch: 'all' or comma-separated names.",
        "seed": "Random seed; the same seed writes the same files (default: 0).",
        "full": "RF100-VL at full count (164,149 tiny images, 1,355,491 boxes) for benchmarks.",
        "workers": WORKERS_HELP,
        "dry_run": "Print what would be written, write nothing.",
    }
)
def synth(
    c, root=None, kind="rf100vl", datasets=None, images=9, defects=None, seed=0, full=False, workers=None, dry_run=False
):
    """Write fake RF100-VL/ODinW-13 data in SAM3's exact layout."""
    import time

    from .lib.core.paths import resolve_path
    from .lib.data import synth as synth_lib

    if not root:
        raise ConfigError("pass --root DIR: data.synth never writes into the configured data roots by default")
    plan = synth_lib.plan(kind, str(resolve_path(root)), datasets, int(images), defects, int(seed), full)
    title = f"data.synth {kind}: {len(plan.datasets)} datasets, {plan.images:,} images, {plan.boxes:,} boxes"
    if dry_run:
        columns = ("dataset", "folder", "images train/valid/test", "boxes", "categories", "size", "defects")
        report_lib.print_table(f"{title} (dry run: nothing written)", columns, synth_lib.plan_rows(plan))
        print(f"would write about {plan.estimated_bytes() / 1e6:,.0f} MB under {plan.root}")
        return
    started = time.perf_counter()
    written = synth_lib.write(plan, _workers(workers))
    print(f"{title} written under {plan.root} in {time.perf_counter() - started:.1f} s")
    injected = [
        (defect, synth_lib.DEFECTS[defect].what, w.name, where, synth_lib.DEFECTS[defect].code)
        for w in written
        for defect, where in w.defects
    ]
    if injected:
        columns = ("defect", "what", "dataset", "where", "data.validate reports")
        report_lib.print_table("defects injected", columns, injected)


@task(
    help={
        "dataset": "rf100vl (through the rf100vl package; needs ROBOFLOW_API_KEY) or odinw (GLIP's zips).",
        "root": "Data root (default: paths.roboflow_vl_100_root or paths.odinw_data_root).",
        "datasets": "Comma-separated names (default: all 100 RF100-VL datasets, or the ODinW zips --odinw picks).",
        "odinw": "13 (SAM3's set, 13 zips; default) or 35 (32 zips).",
        "base_url": "Where the ODinW <Name>.zip files live "
        "(default: https://huggingface.co/GLIPModel/GLIP/resolve/main/odinw_35).",
        "jobs": "Datasets fetched at the same time (default: 4).",
        "max_extract_gb": "Refuse an ODinW zip that unpacks to more than this many GB (default: 30).",
        "force": "Fetch again and replace datasets that are complete, or present but not valid.",
        "dry_run": "Print the plan (URLs without secrets, target folders) and touch nothing.",
        "json": "Print JSON instead of tables (progress goes to stderr).",
    }
)
def fetch(
    c,
    dataset="rf100vl",
    root=None,
    datasets=None,
    odinw=None,
    base_url=None,
    jobs=None,
    max_extract_gb=None,
    force=False,
    dry_run=False,
    json=False,
):
    """Download RF100-VL or ODinW into the data root: resumable, verified, never half-installed."""
    import sys

    from .lib.data import fetch as fetch_lib

    if dataset not in ROOT_KEYS:
        raise ConfigError(f"--dataset {dataset!r} is not one of {', '.join(ROOT_KEYS)}; pick one of those")
    key = ROOT_KEYS[dataset]
    settings = load_settings(c, **{key: ("--root", root)})
    options = fetch_lib.options(
        dataset,
        settings.path(key),
        datasets,
        odinw,
        base_url,
        jobs,
        max_extract_gb,
        force,
        settings[f"hw.disk_{dataset}_gb"],
    )
    outcome = fetch_lib.run(options, dry_run, sys.stderr if json else sys.stdout)
    if json:
        print(report_lib.to_json(outcome.as_dict()))
    elif dry_run:
        columns = ("dataset", "action", "why", "source", "target")
        report_lib.print_table(
            f"data.fetch {dataset}: {options.root} (dry run)", columns, fetch_lib.plan_rows(outcome.items)
        )
        print("\n".join(fetch_lib.notes(options, outcome)))
    else:
        title = f"data.fetch {dataset}: {options.root} ({outcome.seconds:.1f} s)"
        columns = ("dataset", "status", "size", "time", "detail")
        report_lib.print_table(title, columns, fetch_lib.result_rows(outcome.results))
    if outcome.failed:
        shown = ", ".join(outcome.failed[:5]) + (", ..." if len(outcome.failed) > 5 else "")
        raise ToolError(
            f"{len(outcome.failed)} dataset(s) not fetched ({shown}); see the detail column, then re-run: "
            "finished datasets are skipped and partial downloads resume"
        )
