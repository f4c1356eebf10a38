"""data.fetch --dataset odinw: GLIP's ODinW zips, in parallel, resumable, verified and safely extracted.

Not GLIP's odinw/download.py: its URL serves an HTML page (/tree/ instead of /resolve/, GLIP PRs #122
and #182), it builds shell commands from its arguments and it ignores every error. Each `<Name>.zip`
holds a top-level `<Name>/` folder; ODinW-13 needs 13 zips, ODinW-35 needs 32.
"""

import difflib
import shutil
import threading
import urllib.parse
from pathlib import Path

from ..core.errors import ConfigError
from . import coco, transfer

DEFAULT_BASE_URL = "https://huggingface.co/GLIPModel/GLIP/resolve/main/odinw_35"
ODINW13_ZIPS = tuple(dict.fromkeys(task.top for task in coco.ODINW13))  # in SAM3's task order
ODINW35_ZIPS = tuple(name for name in coco.ODINW_ZIPS if name != "vector")  # no GLIP config reads vector
# What a download is checked against: its size against Content-Length (or X-Linked-Size), and its
# sha256 against the one Hugging Face states for the stored LFS object (X-Linked-Etag on /resolve/).
# Both come from the server that sends the bytes: they catch a cut or corrupted transfer, not a
# changed upstream file. Each dataset's .sam3-fetch.json records the sha256 it was installed with.


def zip_names(odinw: object, names: list[str] | None) -> list[str]:
    """The zips to fetch: --datasets (zip names, or ODinW-13 task names such as EgoHands_generic) or --odinw."""
    if names is None:
        choice = "13" if odinw is None else str(odinw)
        if choice not in ("13", "35"):
            raise ConfigError(f"--odinw {odinw!r} is not 13 or 35; pass --odinw 13 (SAM3's set) or --odinw 35")
        return list(ODINW13_ZIPS if choice == "13" else ODINW35_ZIPS)
    picked = []
    for name in names:
        zip_name = coco.ODINW_BY_NAME[name].top if name in coco.ODINW_BY_NAME else name
        if zip_name not in coco.ODINW_ZIPS:
            close = difflib.get_close_matches(name, [*coco.ODINW_ZIPS, *coco.ODINW_BY_NAME], n=1)
            hint = f"did you mean '{close[0]}'?" if close else "names are GLIP's zip names, e.g. AerialMaritimeDrone"
            raise ConfigError(f"'{name}' is not an ODinW dataset ({hint})")
        if zip_name not in picked:
            picked.append(zip_name)
    return picked


def check_base_url(base_url: str | None) -> str:
    url = (base_url or DEFAULT_BASE_URL).rstrip("/")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"--base-url {transfer.scrub(url)!r} is not an http(s) URL; pass e.g. {DEFAULT_BASE_URL}")
    if "/tree/" in parts.path:
        raise ConfigError(f"--base-url {transfer.scrub(url)!r} is a /tree/ page (GLIP's bug); use /resolve/ instead")
    return url


def zip_url(opts: transfer.Options, name: str) -> str:
    return f"{opts.base_url}/{urllib.parse.quote(name)}.zip"


def source(opts: transfer.Options, name: str) -> str:
    return transfer.scrub(zip_url(opts, name))


def notes(opts: transfer.Options) -> list[str]:
    return [
        "checks: size against Content-Length, sha256 against the one Hugging Face states for the stored "
        f"object (X-Linked-Etag) where it states one; every entry vetted; at most {opts.max_bytes / 1e9:g} GB "
        "unpacked per zip"
    ]


def execute(opts: transfer.Options, items: list[transfer.Item], progress: transfer.Progress) -> list[transfer.Result]:
    """Probe sizes, check the disk, then download, verify, extract and install each zip, opts.jobs at a time."""
    todo = [item for item in items if item.action in ("fetch", "replace")]
    if not todo:
        return transfer.run_parallel(items, None, opts.jobs, progress, threading.Event())
    remotes = _probe_all(opts, todo)  # before anything is written: a wrong --base-url writes nothing
    if not remotes:
        return transfer.run_parallel(items, None, opts.jobs, progress, threading.Event())
    _check_disk(opts, todo, remotes, opts.root / transfer.STAGING)
    opts.root.mkdir(parents=True, exist_ok=True)
    with transfer.staging_area(opts.root) as staging:
        cancel = threading.Event()

        def work(item: transfer.Item) -> transfer.Result:
            return _fetch_zip(opts, item, remotes[item.name], staging, progress, cancel)

        return transfer.run_parallel(items, work, opts.jobs, progress, cancel)


def _probe_all(opts: transfer.Options, todo: list[transfer.Item]) -> dict[str, transfer.Remote]:
    """HEAD every zip; an item whose URL fails becomes a failure before anything is downloaded."""
    from concurrent.futures import ThreadPoolExecutor

    def one(item: transfer.Item):
        try:
            return transfer.probe(zip_url(opts, item.name), opts.timeout)
        except transfer.FetchFailed as error:
            return error

    with ThreadPoolExecutor(max_workers=min(opts.jobs, len(todo))) as pool:
        answers = list(pool.map(one, todo))
    remotes = {}
    for item, answer in zip(todo, answers, strict=True):
        if isinstance(answer, transfer.FetchFailed):
            item.action, item.reason = "fail", transfer.one_line(answer)
        else:
            remotes[item.name] = answer
            item.size = answer.size
    return remotes


def _check_disk(opts: transfer.Options, todo: list[transfer.Item], remotes: dict, staging: Path) -> None:
    """The rest of each download plus its unpacked copy (images barely compress) must fit."""
    guess = int(opts.disk_gb * 1e9 / len(ODINW13_ZIPS)) if opts.disk_gb else 0
    need = 0
    for item in todo:
        if item.name not in remotes:
            continue
        size = remotes[item.name].size or guess
        part = staging / f"{item.name}.zip.part"
        have = part.stat().st_size if part.exists() else 0
        need += max(size - have, 0) + size
    transfer.check_disk(opts.root, need, f"{len(remotes)} ODinW zip(s), downloaded and unpacked")


def _fetch_zip(
    opts: transfer.Options,
    item: transfer.Item,
    remote: transfer.Remote,
    staging: Path,
    progress: transfer.Progress,
    cancel: threading.Event,
) -> transfer.Result:
    part = staging / f"{item.name}.zip.part"
    got = transfer.download(remote, part, progress, item.name, cancel, opts.retries, opts.timeout)
    digest = transfer.sha256_file(part)
    expected, origin = remote.sha256, "the sha256 Hugging Face states for the stored object"
    if expected and digest != expected:
        transfer.discard(part)
        raise transfer.FetchFailed(
            f"sha256 mismatch (got {digest[:16]}..., expected {expected[:16]}... {origin}); "
            "the download was deleted: re-run to fetch it again"
        )
    stage = transfer.new_stage(staging, item.name)
    try:
        try:
            files, unpacked = transfer.safe_extract(part, stage, item.name, opts.max_bytes, progress, item.name, cancel)
            status, note = transfer.verify("odinw", stage, item.name)
        except transfer.FetchFailed:
            transfer.discard(part)  # a bad archive is not kept: the next run downloads it afresh
            raise
        record = {
            "source": transfer.scrub(remote.url),
            "zip_bytes": got.size,
            "sha256": digest,
            "sha256_checked": origin if expected else "",
            "bytes": unpacked,
        }
        transfer.write_marker(stage / item.name, record)
        transfer.swap_in(stage / item.name, Path(item.target))
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    transfer.discard(part)
    size_check = "size" if got.size_checked else "(no size announced)"
    checks = f"{size_check} and sha256 verified ({origin})" if expected else f"{size_check} verified, sha256 recorded"
    resumed = f", resumed at {transfer.human_bytes(got.resumed_from)}" if got.resumed_from else ""
    retried = f", {got.attempts} attempts" if got.attempts > 1 else ""
    replaced = f"; replaced ({item.reason})" if item.action == "replace" else ""
    detail = f"{files} files; {checks}{resumed}{retried}{replaced}" + (f"; {note}" if note else "")
    return transfer.Result(item.name, status, unpacked, detail=detail)
