"""data.fetch --dataset rf100vl: Roboflow 100-VL through the rf100vl package (1.1.2 or newer).

rf100vl lists the workspace, maps project names to SAM3's basenames, picks the version and cleans the
annotations; the roboflow SDK under it downloads and unpacks
one zip per dataset. We call it one dataset at a time into a staging folder, check the result with
data.validate's code, and rename it into place, because the SDK's only completeness check is that the
folder exists. The API key comes only from ROBOFLOW_API_KEY and is given
to rf100vl explicitly (without it rf100vl falls into an interactive login). The SDK puts the key in
URLs, so its output is captured, every message we keep is scrubbed, and on a failure its last lines are shown.
"""

import contextlib
import sys
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path

from ..core.errors import ConfigError, ToolError
from . import transfer

MIN_VERSION = (1, 1, 2)  # 1.0.0 writes `null` annotation files on a re-clean and skips existing folders
WORKSPACE = "rf100-vl"
KEY_HELP = (
    "create a free account at https://app.roboflow.com, copy the private API key from "
    "https://app.roboflow.com/settings/api, then `export ROBOFLOW_API_KEY=...`"
)


def require_key(environ: Mapping[str, str]) -> str:
    key = (environ.get("ROBOFLOW_API_KEY") or "").strip()
    if not key:
        raise ConfigError(f"ROBOFLOW_API_KEY is not set (rf100vl would stop for an interactive login); {KEY_HELP}")
    return key


def installed_version() -> str | None:
    from importlib import metadata

    try:
        return metadata.version("rf100vl")
    except metadata.PackageNotFoundError:
        return None


def check_package() -> str:
    """The installed rf100vl version, or a ConfigError naming the install command."""
    version = installed_version()
    pin = ".".join(map(str, MIN_VERSION))
    if version is None:
        raise ConfigError(
            f"the rf100vl package is not installed in {sys.prefix}; "
            f"run scripts/bootstrap, or pip install 'rf100vl>={pin}'"
        )
    numbers = tuple(int(part) if part.isdigit() else 0 for part in version.split(".")[:3])
    if numbers < MIN_VERSION:
        raise ConfigError(
            f"rf100vl {version} is installed; data.fetch needs {pin} or newer (older ones write null "
            f"annotation files on re-runs): pip install 'rf100vl>={pin}'"
        )
    return version


def source(opts: transfer.Options, name: str) -> str:
    return f"roboflow workspace {WORKSPACE}, dataset {name}, latest version"


def notes(opts: transfer.Options) -> list[str]:
    return [
        "API key: ROBOFLOW_API_KEY (set, never shown); the roboflow SDK downloads and unpacks each zip, "
        "rf100vl cleans the annotations; each dataset is checked before it is renamed into place"
    ]


def execute(opts: transfer.Options, items: list[transfer.Item], progress: transfer.Progress) -> list[transfer.Result]:
    """Check the disk, list the workspace through rf100vl, then fetch each dataset, opts.jobs at a time."""
    todo = [item for item in items if item.action in ("fetch", "replace")]
    if not todo:
        return transfer.run_parallel(items, None, opts.jobs, progress, threading.Event())
    transfer.check_disk(opts.root, int(opts.disk_gb * 1e9 * len(todo) / 100), f"{len(todo)} RF100-VL dataset(s)")
    opts.root.mkdir(parents=True, exist_ok=True)
    version = check_package()
    results: list[transfer.Result] = []
    said = _Tail()
    try:
        with transfer.staging_area(opts.root) as staging, captured_output(said):
            projects = _list_projects(opts.api_key)
            by_name = {dataset.name: dataset for dataset in projects}
            cancel = threading.Event()

            def work(item: transfer.Item) -> transfer.Result:
                if cancel.is_set():
                    raise transfer.Cancelled
                return _fetch_one(by_name.get(item.name), item, staging, version, progress)

            results = transfer.run_parallel(items, work, opts.jobs, progress, cancel)
    finally:  # on a failure, what the SDK printed or logged (key removed), once its output is ours again
        if (not results or any(result.status == "fail" for result in results)) and said.lines:
            progress.say("the Roboflow client said (its last lines, ROBOFLOW_API_KEY removed):")
            for line in said.lines[-12:]:
                progress.say(f"  {line}")
    return results


def _list_projects(api_key: str):
    try:
        import rf100vl

        return rf100vl.get_rf100vl_projects(api_key=api_key)
    except Exception as error:  # noqa: BLE001 (the SDK raises RuntimeError, requests errors, KeyError, ...)
        text = transfer.one_line(error)
        lowered = text.lower()
        if any(word in lowered for word in ("401", "unauthorized", "api key", "api_key", "revoked", "forbidden")):
            raise ConfigError(f"Roboflow rejected ROBOFLOW_API_KEY ({text}); check the key: {KEY_HELP}") from None
        raise ToolError(
            f"cannot list the Roboflow workspace {WORKSPACE} ({text}); check the network and retry"
        ) from None


def _fetch_one(
    dataset, item: transfer.Item, staging: Path, version: str, progress: transfer.Progress
) -> transfer.Result:
    if dataset is None:
        raise transfer.FetchFailed(f"rf100vl {version} lists no dataset named {item.name!r} in {WORKSPACE}")
    stage = transfer.new_stage(staging, item.name)
    location = stage / item.name
    try:
        versions = dataset.rf_project.versions()
        if not versions:
            raise transfer.FetchFailed("the Roboflow project has no versions")
        latest = max(versions, key=lambda v: v.id)  # rf100vl's own choice, recorded in the marker
        dataset.rf_project.versions = lambda: versions  # rf100vl asks again: same answer, one API call
        with progress.step(item.name, None, f"download {latest.id} through rf100vl") as bar:
            dataset.download(str(location), model_format="coco", overwrite=True)
            if (location / "roboflow.zip").exists():
                raise transfer.FetchFailed("the Roboflow download did not finish (roboflow.zip left behind); re-run")
            status, note = transfer.verify("rf100vl", stage, item.name)
            size = transfer.folder_bytes(location)
            transfer.write_marker(
                location,
                {"source": f"roboflow {latest.id}", "version": str(latest.id), "rf100vl": version, "bytes": size},
            )
            transfer.swap_in(location, Path(item.target))
            progress.finish(bar, f"installed {transfer.human_bytes(size)}")
    finally:
        import shutil

        shutil.rmtree(stage, ignore_errors=True)  # with any roboflow.zip a failed download left in it
    replaced = f"; replaced ({item.reason})" if item.action == "replace" else ""
    detail = f"version {latest.id}{replaced}" + (f"; {note}" if note else "")
    return transfer.Result(item.name, status, size, detail=detail)


class _Tail:
    """A stream that keeps the last lines written to it, scrubbed: where the SDK's prints and bars go."""

    encoding = "utf-8"

    def __init__(self, keep: int = 40) -> None:
        self.keep = keep
        self.lines: list[str] = []
        self.lock = threading.Lock()

    def write(self, text: str) -> int:
        with self.lock:
            for line in str(text).replace("\r", "\n").split("\n"):
                if line.strip():
                    self.lines.append(transfer.scrub(line.strip()))
            del self.lines[: -self.keep]
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


@contextlib.contextmanager
def captured_output(tail: _Tail) -> Iterator[_Tail]:
    """The SDK's stdout, stderr (tqdm bars, warnings) and log records go to a scrubbed tail, not to the user
    (execute shows its last lines when something failed)."""
    import logging

    previous = logging.getLogRecordFactory()

    def scrubbed_record(*args, **kwargs):
        record = previous(*args, **kwargs)
        record.msg, record.args = transfer.scrub(record.getMessage()), ()
        return record

    logging.setLogRecordFactory(scrubbed_record)
    try:
        with contextlib.redirect_stdout(tail), contextlib.redirect_stderr(tail):
            yield tail
    finally:
        logging.setLogRecordFactory(previous)
