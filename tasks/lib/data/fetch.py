"""data.fetch as plain functions: check the flags, plan from the disk, and hand each dataset to its
fetcher (rf100vl_fetch through Roboflow's client, odinw_fetch over HTTP); both share data.transfer."""

import os
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ..core.errors import ConfigError
from . import coco
from .transfer import (
    DEFAULT_MAX_EXTRACT_GB,
    STAGING,
    Item,
    Options,
    Outcome,
    Progress,
    Result,
    decide,
    human_bytes,
    parse_gb,
    parse_jobs,
    split_names,
)


def plan_rows(items: Iterable[Item]) -> list[tuple]:
    return [(i.name, i.action, i.reason, i.source, i.target) for i in items]


def result_rows(results: Iterable[Result]) -> list[tuple]:
    return [
        (
            r.dataset,
            r.status,
            human_bytes(r.bytes) if r.bytes else "",
            f"{r.seconds:.1f}s" if r.seconds else "",
            r.detail,
        )
        for r in results
    ]


def options(
    kind: str,
    root: Path,
    datasets: str | None,
    odinw: Any = None,
    base_url: str | None = None,
    jobs: Any = None,
    max_extract_gb: Any = None,
    force: bool = False,
    disk_gb: float = 0.0,
    environ: Mapping[str, str] | None = None,
) -> Options:
    """Check the flags of data.fetch; for rf100vl, ROBOFLOW_API_KEY first (ConfigError, before anything else)."""
    if kind not in coco.KINDS:
        raise ConfigError(f"--dataset {kind!r} is not one of {', '.join(coco.KINDS)}; pick one of those")
    environ = os.environ if environ is None else environ
    if kind == "rf100vl":
        from . import rf100vl_fetch

        key = rf100vl_fetch.require_key(environ)
        for flag, value in (("--odinw", odinw), ("--base-url", base_url), ("--max-extract-gb", max_extract_gb)):
            if value is not None:
                raise ConfigError(f"{flag} applies to --dataset odinw only; drop it")
        rf100vl_fetch.check_package()
        names = coco.pick_datasets(kind, split_names(datasets))
        return Options(kind, Path(root), names, jobs=parse_jobs(jobs), force=force, disk_gb=disk_gb, api_key=key)
    from . import odinw_fetch

    names = odinw_fetch.zip_names(odinw, split_names(datasets))
    max_gb = parse_gb(max_extract_gb, "--max-extract-gb", DEFAULT_MAX_EXTRACT_GB)
    return Options(
        kind,
        Path(root),
        names,
        odinw_fetch.check_base_url(base_url),
        parse_jobs(jobs),
        int(max_gb * 1e9),
        force,
        disk_gb,
    )


def run(opts: Options, dry_run: bool = False, stream=None) -> Outcome:
    """Plan (reading the disk only); unless dry_run, fetch what the plan says. Progress goes to stream."""
    from . import odinw_fetch, rf100vl_fetch

    module = rf100vl_fetch if opts.kind == "rf100vl" else odinw_fetch
    items = [
        Item(name, str(opts.root / name), module.source(opts, name), *decide(opts.kind, opts.root, name, opts.force))
        for name in opts.names
    ]
    if dry_run:
        return Outcome(opts.kind, str(opts.root), items, dry_run=True)
    started = time.monotonic()
    with Progress(stream) as progress:
        results = module.execute(opts, items, progress)
    return Outcome(opts.kind, str(opts.root), items, results, time.monotonic() - started)


def notes(opts: Options, outcome: Outcome) -> list[str]:
    """Lines printed under a dry run's table: where things go and what is checked."""
    from . import odinw_fetch, rf100vl_fetch

    module = rf100vl_fetch if opts.kind == "rf100vl" else odinw_fetch
    todo = sum(1 for item in outcome.items if item.action in ("fetch", "replace"))
    return [
        f"dry run: nothing written; {todo} of {len(outcome.items)} dataset(s) would be fetched, {opts.jobs} at a time",
        f"staging: {opts.root / STAGING} (download and extract there, check, then rename into {opts.root})",
        *module.notes(opts),
    ]
