"""data.fetch as plain functions: what RF100-VL and ODinW fetching share.

Every dataset is downloaded and extracted beside its target, under <root>/.sam3-fetch/, checked with
data.validate's own code, given a marker, and renamed into place in one step: a folder at a dataset's
name is absent, the previous one, or complete.
Downloads resume from a .part file with HTTP Range; archives are vetted entry by entry before a byte
is written (no absolute path, no `..`, no link, a size cap). Secrets from the environment are scrubbed from every line we print or store.
"""

import contextlib
import hashlib
import json
import os
import re
import shutil
import stat
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..core import secrets
from ..core.errors import ConfigError, ToolError
from ..core.paths import atomic_write_text, nearest_existing
from . import coco

STAGING = ".sam3-fetch"  # under the data root: .part files, staging folders, the lock


MARKER = ".sam3-fetch.json"  # in each dataset folder data.fetch installed


CHUNK = 1 << 20


RETRY_PAUSE = 0.5  # seconds before the n-th retry: n times this


USER_AGENT = "sam3-tasks-data-fetch/1"


DEFAULT_JOBS = 4


DEFAULT_MAX_EXTRACT_GB = 30.0


# data.validate findings that mean a download or extraction did not finish: the dataset is not installed.
# Other findings are about the data itself; they are reported, and `inv data.validate` explains them.
INCOMPLETE = frozenset(
    {
        "missing_dataset",
        "missing_file",
        "invalid_json",
        "null_json",
        "top_level",
        "missing_image",
        "unreadable_image",
        "empty_image",
        "truncated_image",
        "partial_download",
    }
)


class FetchFailed(Exception):
    """One dataset could not be fetched; the message is one line with what to do."""


class _Fatal(FetchFailed):
    """A download failure that retrying in this run will not fix."""


class Cancelled(Exception):
    """The user interrupted the run; partial downloads stay for the next run to resume."""


# --------------------------------------------------------------------------------------------------
# Secrets


def scrub(text: Any, environ: Mapping[str, str] | None = None) -> str:
    """Text safe to print or store (tasks/lib/core/secrets.py: secret values of the environment, credentials
    in URLs and query parameters, token shapes)."""
    return secrets.scrub(text, environ=environ)


def one_line(error: BaseException | str, limit: int = 300) -> str:
    """An exception as one scrubbed line: its type when the message alone would be unclear."""
    if isinstance(error, str | FetchFailed):
        text = str(error)
    else:
        text = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    text = " ".join(scrub(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --------------------------------------------------------------------------------------------------
# What to fetch, and what happened


@dataclass
class Item:
    """One dataset to fetch: where from (no secrets), where to, and what to do about what is there."""

    name: str
    target: str
    source: str
    action: str  # fetch, replace, skip or fail
    reason: str = ""
    size: int | None = None  # bytes to download, when known


@dataclass
class Result:
    """What happened to one dataset, for the summary table and --json."""

    dataset: str
    status: str  # pass, warn, fail or skip
    bytes: int = 0
    seconds: float = 0.0
    detail: str = ""
    source: str = ""
    target: str = ""


@dataclass
class Outcome:
    """A whole run, or the plan of a dry run."""

    kind: str
    root: str
    items: list[Item]
    results: list[Result] = field(default_factory=list)
    seconds: float = 0.0
    dry_run: bool = False

    @property
    def failed(self) -> list[str]:
        return [r.dataset for r in self.results if r.status == "fail"]

    def as_dict(self) -> dict[str, Any]:
        status = "fail" if self.failed else "warn" if any(r.status == "warn" for r in self.results) else "pass"
        payload: dict[str, Any] = {
            "kind": self.kind,
            "root": self.root,
            "dry_run": self.dry_run,
            "seconds": round(self.seconds, 3),
        }
        if self.dry_run:
            payload["plan"] = [asdict(item) for item in self.items]
        else:
            payload.update(status=status, failed=self.failed, results=[asdict(r) for r in self.results])
        return payload


def human_bytes(count: int | None) -> str:
    if count is None:
        return "?"
    for unit in ("B", "KB", "MB", "GB"):
        if count < 1000 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000
    return f"{count:.1f} GB"


# --------------------------------------------------------------------------------------------------
# Flags


def parse_jobs(value: Any) -> int:
    if value is None:
        return DEFAULT_JOBS
    if not str(value).isdigit() or not 1 <= int(value) <= 64:
        raise ConfigError(f"--jobs {value!r} is not a whole number from 1 to 64; pass e.g. --jobs 4")
    return int(value)


def parse_gb(value: Any, flag: str, default: float) -> float:
    if value is None:
        return default
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not number > 0:
        raise ConfigError(f"{flag} {value!r} is not a positive number of GB; pass e.g. {flag} {default:g}")
    return number


def split_names(value: str | None) -> list[str] | None:
    return [name.strip() for name in value.split(",") if name.strip()] if value else None


# --------------------------------------------------------------------------------------------------
# What is already on disk


def dataset_folders(kind: str, name: str) -> list[coco.DatasetSpec]:
    """data.validate's specs for the datasets inside one fetched folder (none for zips SAM3 never reads)."""
    if kind == "rf100vl":
        return [coco.dataset_spec(kind, name)]
    return [coco.dataset_spec(kind, task.name) for task in coco.ODINW13 if task.top == name]


def read_marker(folder: Path) -> dict | None:
    try:
        data = json.loads((folder / MARKER).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def marker_intact(folder: Path, marker: dict) -> bool:
    """Every file the marker lists is there with its recorded size."""
    files = marker.get("files")
    if not isinstance(files, dict) or not files:
        return False
    for relative, size in files.items():
        try:
            if (folder / relative).stat().st_size != size:
                return False
        except OSError:
            return False
    return True


def _partial_evidence(folder: Path) -> str:
    """A file that only an interrupted download leaves at the top of a dataset folder."""
    with contextlib.suppress(OSError), os.scandir(folder) as entries:
        for entry in entries:
            if entry.name == "roboflow.zip" or entry.name.endswith(coco.PARTIAL_SUFFIXES):
                return entry.name
    return ""


def decide(kind: str, root: Path, name: str, force: bool) -> tuple[str, str]:
    """(action, reason) for one dataset: fetch, replace, skip, or fail when replacing needs --force."""
    folder = root / name
    if not folder.exists():
        return "fetch", ""
    if not folder.is_dir():
        return "fail", f"{folder} is a file; move it away"
    marker = read_marker(folder)
    if marker is not None:
        if not marker_intact(folder, marker):
            return "replace", "fetched earlier, but files are missing or changed"
        return ("replace", "--force") if force else ("skip", f"complete (fetched {marker.get('fetched', '?')})")
    if (folder / coco.SYNTH_MARKER).exists():
        return "replace", "synthetic data from data.synth"
    leftover = _partial_evidence(folder)
    if leftover:
        return "replace", f"interrupted download ({leftover} left behind)"
    if force:
        return "replace", "--force"
    specs = dataset_folders(kind, name)
    if not specs:
        return "skip", "present (not fetched by data.fetch; not checked: no SAM3 config reads it)"
    errors = [issue for spec in specs for issue in coco.check_dataset(str(root), spec).errors]
    if not errors:
        return "skip", "present and validates (not fetched by data.fetch)"
    first = errors[0]
    return "fail", (
        f"exists and does not validate ({sum(i.count for i in errors)} errors, first: {first.message}); "
        "pass --force to replace it, or move it away"
    )


def verify(kind: str, stage_root: Path, name: str) -> tuple[str, str]:
    """Check an extracted dataset before it goes into place: FetchFailed when incomplete, else (status, note)."""
    specs = dataset_folders(kind, name)
    if not specs:
        return _verify_json_files(stage_root / name)
    errors = [issue for spec in specs for issue in coco.check_dataset(str(stage_root), spec).errors]
    blocking = [issue for issue in errors if issue.code in INCOMPLETE]
    if blocking:
        issue = blocking[0]
        example = f": {issue.examples[0]}" if issue.examples else ""
        raise FetchFailed(f"incomplete after extraction ({issue.message}{example}); re-run to fetch it again")
    if errors:
        count = sum(issue.count for issue in errors)
        return "warn", f"data.validate finds {count} error(s), first: {errors[0].message}; see `inv data.validate`"
    return "pass", ""


def _verify_json_files(folder: Path) -> tuple[str, str]:
    """For zips no SAM3 config reads: every JSON file parses, and at least one is a COCO annotation file."""
    found = 0
    for path in sorted(folder.rglob("*.json")):
        data, why = coco.load_json(str(path))
        if why:
            raise FetchFailed(f"{path.relative_to(folder.parent)} is not valid JSON ({why}) after extraction")
        found += isinstance(data, dict) and isinstance(data.get("images"), list)
    if not found:
        raise FetchFailed(
            f"no COCO annotation file under {folder.name}/ after extraction; the archive holds something else"
        )
    return "pass", ""


def annotation_sizes(folder: Path) -> dict[str, int]:
    """{relative path: size} of the annotation files in a dataset folder, for its marker."""
    return {
        str(path.relative_to(folder)): path.stat().st_size
        for path in sorted(folder.rglob("*.json"))
        if path.name != MARKER
    }


def folder_bytes(folder: Path) -> int:
    total = 0
    for base, _, files in os.walk(folder):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(base, name)).st_size
    return total


def write_marker(folder: Path, record: dict) -> None:
    record = {
        "fetched": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "made_by": "inv data.fetch",
        **record,
        "files": annotation_sizes(folder),
    }
    atomic_write_text(folder / MARKER, scrub(json.dumps(record, indent=2, sort_keys=True)) + "\n")


def swap_in(staged: Path, target: Path) -> None:
    """Put a checked dataset in place: every step leaves the old dataset or the new one at target."""
    if target.exists():
        retired = staged.with_name(staged.name + ".old")
        os.rename(target, retired)
        os.rename(staged, target)
        shutil.rmtree(retired, ignore_errors=True)
    else:
        os.rename(staged, target)


# --------------------------------------------------------------------------------------------------
# The staging area


@contextlib.contextmanager
def staging_area(root: Path) -> Iterator[Path]:
    """<root>/.sam3-fetch, locked against a second data.fetch on the same root; old staging folders removed."""
    import fcntl

    staging = root / STAGING
    staging.mkdir(parents=True, exist_ok=True)
    handle = open(staging / "lock", "a+")  # noqa: SIM115 (held for the whole run)
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise ToolError(
                f"another data.fetch is running on {root} (it holds {staging / 'lock'}); wait for it to finish"
            ) from None
        for entry in staging.iterdir():
            if ".stage-" in entry.name and entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)  # a run that was killed; nothing in it is trusted
        yield staging
    finally:
        handle.close()


def new_stage(staging: Path, name: str) -> Path:
    stage = staging / f"{name}.stage-{uuid.uuid4().hex[:8]}"
    stage.mkdir()
    return stage


def check_disk(root: Path, need: int, what: str) -> None:
    """Refuse before downloading when the data root's filesystem cannot hold what is coming."""
    free = shutil.disk_usage(nearest_existing(root)).free
    if need > free:
        raise ToolError(
            f"{root}: {free / 1e9:.1f} GB free, about {need / 1e9:.1f} GB needed for {what}; "
            "free space, choose another --root, or fetch fewer with --datasets"
        )


# --------------------------------------------------------------------------------------------------
# Progress


class Progress:
    """Bars on a terminal (rich), plain start and end lines otherwise; safe to use from worker threads."""

    def __init__(self, stream=None) -> None:
        import itertools

        self.stream = stream or sys.stdout
        self.lock = threading.Lock()
        self.labels: dict[int, str] = {}
        self.ids = itertools.count()
        self.bars = None
        if self.stream.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, DownloadColumn, TextColumn, TimeRemainingColumn, TransferSpeedColumn
            from rich.progress import Progress as Bars

            self.bars = Bars(
                TextColumn("{task.description}"),
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
                console=Console(file=self.stream),
                redirect_stdout=False,
                redirect_stderr=False,
            )

    def __enter__(self) -> "Progress":
        if self.bars is not None:
            self.bars.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.bars is not None:
            self.bars.stop()

    @contextlib.contextmanager
    def step(self, label: str, total: int | None, note: str, completed: int = 0) -> Iterator[int]:
        """A bar for one step (total in bytes, None when unknown; in plain mode, a line). Call finish() when it
        is done; a step that raises ends as 'failed' (the reason goes to the summary table)."""
        if self.bars is not None:
            bar = self.bars.add_task(scrub(label), total=total, completed=completed)
        else:
            bar = next(self.ids)
            self.say(f"{label}: {note}")
        with self.lock:
            self.labels[bar] = label
        try:
            yield bar
        except BaseException as error:
            self.finish(bar, "interrupted" if isinstance(error, KeyboardInterrupt | Cancelled) else "failed")
            raise

    def advance(self, bar: int, amount: int) -> None:
        if self.bars is not None:
            self.bars.advance(bar, amount)

    def finish(self, bar: int, note: str) -> None:
        """The step is over: its bar gives way to one line, so only steps in flight keep a bar."""
        with self.lock:
            label = self.labels.pop(bar, None)
        if label is None:
            return
        if self.bars is not None:
            self.bars.remove_task(bar)
        self.say(f"{label}: {note}")

    def say(self, text: str) -> None:
        text = scrub(text)
        if self.bars is not None:
            self.bars.console.print(text, markup=False, highlight=False)
            return
        with self.lock:
            self.stream.write(text + "\n")
            self.stream.flush()


# --------------------------------------------------------------------------------------------------
# Downloads: HTTP(S) with urllib, resumable with Range, verified by size and sha256


@dataclass
class Remote:
    """What a HEAD request says about a file."""

    url: str
    size: int | None = None
    etag: str = ""
    sha256: str = ""  # from Hugging Face's X-Linked-Etag, which is the sha256 of an LFS file


def _request(url: str, method: str = "GET", headers: dict[str, str] | None = None) -> urllib.request.Request:
    return urllib.request.Request(url, method=method, headers={"User-Agent": USER_AGENT, **(headers or {})})


def _http_failure(url: str, error: BaseException) -> FetchFailed:
    shown = scrub(url)
    if isinstance(error, urllib.error.HTTPError):
        hint = {
            404: "check --base-url and the dataset name",
            401: "the server wants credentials",
            403: "the server refuses access",
        }.get(error.code, "retry later")
        return FetchFailed(f"HTTP {error.code} {error.reason} for {shown}; {hint}")
    reason = getattr(error, "reason", error)
    return FetchFailed(f"cannot download {shown}: {one_line(reason) if isinstance(reason, BaseException) else reason}")


def _refuse_html(url: str, content_type: str) -> None:
    if content_type.split(";")[0].strip().lower() in ("text/html", "application/xhtml+xml"):
        raise FetchFailed(
            f"{scrub(url)} is a web page, not a file (a /tree/ URL instead of /resolve/?); fix --base-url"
        )


class _StayOnRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # the redirect itself is the answer: HTTPError with its headers


def probe(url: str, timeout: float) -> Remote:
    """Size, ETag and (from Hugging Face) sha256 of a file, from a HEAD request.

    Like huggingface_hub, a redirect's own headers are read first: Hugging Face answers HEAD on
    /resolve/ with a redirect that carries X-Linked-Size and X-Linked-Etag, while the signed CDN URL it
    points to may refuse HEAD. Without those headers the redirect is followed; a target that refuses
    HEAD leaves the size to the download itself."""
    opener = urllib.request.build_opener(_StayOnRedirect)
    try:
        with opener.open(_request(url, "HEAD"), timeout=timeout) as response:
            headers = response.headers
    except urllib.error.HTTPError as error:
        error.close()
        if error.code in (405, 501):  # HEAD not allowed: learn the size from the download itself
            return Remote(url)
        if not 300 <= error.code < 400:
            raise _http_failure(url, error) from None
        if not error.headers.get("X-Linked-Size") and error.headers.get("Location"):
            return _probe_redirected(url, urllib.parse.urljoin(url, error.headers["Location"]), timeout)
        return _remote(url, error.headers)
    except (urllib.error.URLError, OSError) as error:
        raise _http_failure(url, error) from None
    _refuse_html(url, headers.get("Content-Type", ""))
    return _remote(url, headers)


def _probe_redirected(url: str, target: str, timeout: float) -> Remote:
    try:
        with urllib.request.urlopen(_request(target, "HEAD"), timeout=timeout) as response:
            headers = response.headers
    except (urllib.error.URLError, OSError):
        return Remote(url)
    _refuse_html(url, headers.get("Content-Type", ""))
    return _remote(url, headers)


def _remote(url: str, headers) -> Remote:
    length = headers.get("X-Linked-Size") or headers.get("Content-Length")
    etag = headers.get("X-Linked-Etag") or headers.get("ETag") or ""
    bare = etag.removeprefix("W/").strip('"').lower()
    sha256 = bare if headers.get("X-Linked-Etag") and re.fullmatch(r"[0-9a-f]{64}", bare) else ""
    return Remote(url, int(length) if length and length.isdigit() else None, etag, sha256)


@dataclass
class Downloaded:
    path: Path
    size: int
    resumed_from: int = 0
    attempts: int = 1
    size_checked: bool = True  # False when the server announced no size


def _sidecar(part: Path) -> Path:
    return part.with_name(part.name + ".json")


def discard(part: Path) -> None:
    for path in (part, _sidecar(part)):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def download(
    remote: Remote,
    part: Path,
    progress: Progress,
    label: str,
    cancel: threading.Event,
    retries: int = 3,
    timeout: float = 60.0,
) -> Downloaded:
    """Download remote.url into part, resuming what an earlier run left there when it is the same file.

    A sidecar (part + '.json') records the URL, size and ETag the part belongs to; a part of another
    file is discarded. Each resume asks for the rest with Range; a server that ignores Range sends the
    whole file and the part starts over. A dropped connection is retried `retries` times in this run;
    after that the part stays for the next run.
    """
    have = resumed_from = _reusable_part(remote, part)
    note = f"download {human_bytes(remote.size)} from {scrub(remote.url)}"
    with progress.step(
        label, remote.size, note + (f", resuming at {human_bytes(have)}" if have else ""), completed=have
    ) as bar:
        attempts, state = 0, {"restarted": False, "unsized": False}
        while True:
            attempts += 1
            try:
                size = _download_once(remote, part, progress, bar, cancel, timeout, state)
                break
            except _Fatal as error:
                raise FetchFailed(str(error)) from None
            except FetchFailed as error:
                if attempts > retries:
                    now = part.stat().st_size if part.exists() else 0
                    keep = f"; {human_bytes(now)} kept in {part.name}: re-run to resume" if now else ""
                    raise FetchFailed(f"{error} (after {attempts} attempt(s){keep})") from None
                time.sleep(RETRY_PAUSE * attempts)
        if state["restarted"]:
            resumed_from = 0
        resumed = f" (resumed at {human_bytes(resumed_from)})" if resumed_from else ""
        progress.finish(bar, f"downloaded {human_bytes(size)}{resumed}")
    return Downloaded(part, size, resumed_from, attempts, size_checked=not state["unsized"])


def _reusable_part(remote: Remote, part: Path) -> int:
    """The bytes of part an earlier run left for this same file (its sidecar matches); any other part is discarded."""
    sidecar = _sidecar(part)
    expected = {"url": remote.url, "size": remote.size, "etag": remote.etag}
    try:
        recorded = json.loads(sidecar.read_text())
    except (OSError, ValueError):
        recorded = None
    if recorded != expected:
        discard(part)
        atomic_write_text(sidecar, json.dumps(expected))
    have = part.stat().st_size if part.exists() else 0
    if remote.size is not None and have > remote.size:
        discard(part)
        atomic_write_text(sidecar, json.dumps(expected))
        have = 0
    return have


def _download_once(
    remote: Remote, part: Path, progress: Progress, bar: int, cancel: threading.Event, timeout: float, state: dict
) -> int:
    """One GET for the rest of the file; FetchFailed (to be retried) when the connection ends early.
    Notes in state when the bytes already there were thrown away, or the size could not be checked."""
    have = part.stat().st_size if part.exists() else 0
    if remote.size is not None and have == remote.size and have > 0:
        return have
    response = _open_rest(remote, part, have, timeout, state)
    if response is None:  # 416 for a part that is already the whole file
        return have
    with response:
        _refuse_html(remote.url, response.headers.get("Content-Type", ""))
        have, mode = _resume_point(response, remote, part, have, progress, bar, state)
        expected_end = _expected_end(response, remote, have, state)
        written = _write_body(response, remote, part, mode, have, progress, bar, cancel)
    if expected_end is not None and written < expected_end:
        raise FetchFailed(
            f"connection to {urllib.parse.urlsplit(remote.url).netloc} ended at {human_bytes(written)} "
            f"of {human_bytes(expected_end)}"
        )
    if expected_end is not None and written > expected_end:
        discard(part)
        raise _Fatal(f"{scrub(remote.url)} sent more bytes than announced; the download was discarded")
    return written


def _open_rest(remote: Remote, part: Path, have: int, timeout: float, state: dict):
    """The response to a GET from byte `have` on, or None when the server says the part is already complete.

    Busy servers (429, 5xx) and broken connections are FetchFailed (retried); other refusals are _Fatal."""
    # No If-Range: behind Hugging Face the CDN's ETag is not the one HEAD gave; the sidecar already ties
    # the part to the ETag, a changed file gives a zip whose CRCs fail, and sha256 is checked when known.
    headers = {"Range": f"bytes={have}-"} if have else {}
    try:
        return urllib.request.urlopen(_request(remote.url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as error:
        if error.code == 416 and remote.size is not None and have == remote.size:
            return None
        if error.code == 416:  # the part does not fit the file the server has now
            part.unlink(missing_ok=True)
            state["restarted"] = True
            raise FetchFailed(f"{scrub(remote.url)} changed on the server; starting over") from None
        failure = _http_failure(remote.url, error)
        if error.code in (429, 500, 502, 503, 504):
            raise failure from None
        raise _Fatal(str(failure)) from None
    except (urllib.error.URLError, OSError) as error:
        raise _http_failure(remote.url, error) from None


def _resume_point(
    response, remote: Remote, part: Path, have: int, progress: Progress, bar: int, state: dict
) -> tuple[int, str]:
    """Where the body starts and how to open the part: append after a matching 206, start over after a 200."""
    if have and response.status == 206:
        start, total = _content_range(response.headers.get("Content-Range", ""))
        if start != have or (remote.size is not None and total not in (None, remote.size)):
            part.unlink(missing_ok=True)
            state["restarted"] = True
            raise FetchFailed(f"{scrub(remote.url)} answered with an unexpected range; starting over")
        return have, "ab"
    # 200: the whole file (no Range asked, or the server ignores Range)
    if have:
        progress.advance(bar, -have)
        state["restarted"] = True
    return 0, "wb"


def _expected_end(response, remote: Remote, have: int, state: dict) -> int | None:
    """The size the part will have when this body is in, from Content-Length or else HEAD's size."""
    length = response.headers.get("Content-Length")
    expected_end = have + int(length) if length and length.isdigit() else remote.size
    if expected_end is None:
        state["unsized"] = True
    if remote.size is not None and expected_end is not None and expected_end != remote.size:
        raise _Fatal(f"{scrub(remote.url)}: the server announces {expected_end} bytes, HEAD said {remote.size}")
    return expected_end


def _write_body(
    response, remote: Remote, part: Path, mode: str, have: int, progress: Progress, bar: int, cancel: threading.Event
) -> int:
    """Stream the body into the part; the part's size once the body ends or breaks (FetchFailed)."""
    written = have
    with open(part, mode) as out:
        try:
            while chunk := response.read1(CHUNK):
                if cancel.is_set():
                    raise Cancelled
                out.write(chunk)
                written += len(chunk)
                progress.advance(bar, len(chunk))
        except (OSError, ValueError) as error:  # connection reset, timeout, http.client.IncompleteRead
            if isinstance(error, OSError) and error.errno in (28, 122):  # ENOSPC, EDQUOT
                raise _Fatal(f"disk full while writing {part}") from None
            raise FetchFailed(
                f"connection to {urllib.parse.urlsplit(remote.url).netloc} broke at "
                f"{human_bytes(written)}: {one_line(error)}"
            ) from None
    return written


def _content_range(value: str) -> tuple[int | None, int | None]:
    match = re.match(r"bytes (\d+)-\d+/(\d+|\*)", value.strip())
    if not match:
        return None, None
    return int(match.group(1)), int(match.group(2)) if match.group(2).isdigit() else None


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


# --------------------------------------------------------------------------------------------------
# Safe extraction


@dataclass(frozen=True)
class Entry:
    info: Any  # zipfile.ZipInfo
    parts: tuple[str, ...]


def vet_entries(infos: list, max_bytes: int) -> tuple[list[Entry], int]:
    """Every entry checked before anything is written: no absolute paths, no '..', no links or special
    files, no duplicates or overlapping data, and at most max_bytes once unpacked. FetchFailed otherwise."""
    entries, seen, total = [], set(), 0
    for info in infos:
        parts = _entry_parts(info)
        if not parts or parts[0] == "__MACOSX":
            continue
        key = "/".join(parts)
        if key in seen:
            raise FetchFailed(f"archive holds {info.filename!r} twice; refused, nothing extracted")
        seen.add(key)
        total += info.file_size
        if total > max_bytes:
            raise FetchFailed(
                f"archive unpacks to more than {max_bytes / 1e9:g} GB (--max-extract-gb); refused, nothing extracted"
            )
        entries.append(Entry(info, parts))
    _refuse_overlaps(entries)
    return entries, total


def _entry_parts(info) -> tuple[str, ...]:
    """The entry's path as parts, once it is known to be a plain, relative, unencrypted file or folder."""
    raw = info.filename
    name = raw.replace("\\", "/")
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        raise FetchFailed(f"archive entry {raw!r} is an absolute path; refused, nothing extracted")
    parts = tuple(p for p in name.split("/") if p not in ("", "."))
    if ".." in parts:
        raise FetchFailed(f"archive entry {raw!r} points outside the target folder; refused, nothing extracted")
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise FetchFailed(f"archive entry {raw!r} is a symbolic link; links are refused, nothing extracted")
    if stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):
        raise FetchFailed(f"archive entry {raw!r} is a special file; refused, nothing extracted")
    if info.flag_bits & 0x1:
        raise FetchFailed(f"archive entry {raw!r} is encrypted; refused")
    return parts


def _refuse_overlaps(entries: list[Entry]) -> None:
    """Files whose compressed data overlap (one local header read for many entries) are a zip bomb."""
    ordered = sorted((e.info for e in entries if not e.info.is_dir()), key=lambda i: i.header_offset)
    for before, after in zip(ordered, ordered[1:], strict=False):
        if before.header_offset + 30 + len(before.orig_filename) + before.compress_size > after.header_offset:
            raise FetchFailed(
                f"archive entries {before.filename!r} and {after.filename!r} overlap (a zip bomb?); "
                "refused, nothing extracted"
            )


def safe_extract(
    archive: Path, dest: Path, top: str, max_bytes: int, progress: Progress, label: str, cancel: threading.Event
) -> tuple[int, int]:
    """Unpack a vetted zip into dest so that its files end up under dest/top; (files, bytes) written.
    A zip without the top folder is unpacked into dest/top. CRCs are checked as each entry is read."""
    import zipfile

    try:
        archive_file = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        raise FetchFailed(f"not a readable zip archive ({one_line(error)})") from None
    with archive_file:
        entries, total = vet_entries(archive_file.infolist(), max_bytes)
        free = shutil.disk_usage(dest).free
        if total > free:
            raise FetchFailed(f"unpacks to {human_bytes(total)} but {human_bytes(free)} is free; free space")
        under_top = bool(entries) and all(entry.parts[0] == top for entry in entries)
        base = dest if under_top else dest / top
        base.mkdir(parents=True, exist_ok=True)
        real_dest = os.path.realpath(dest)
        with progress.step(f"{label} extract", total, f"extract {len(entries)} entries, {human_bytes(total)}") as bar:
            files = _extract_entries(archive_file, entries, base, real_dest, progress, bar, cancel)
            progress.finish(bar, f"extracted {files} files, {human_bytes(total)}")
    return files, total


def _extract_entries(
    archive_file,
    entries: list[Entry],
    base: Path,
    real_dest: str,
    progress: Progress,
    bar: int,
    cancel: threading.Event,
) -> int:
    import zipfile

    files = 0
    for entry in entries:
        target = base.joinpath(*entry.parts)
        if not os.path.realpath(target).startswith(real_dest + os.sep):
            raise FetchFailed(f"archive entry {entry.info.filename!r} resolves outside the target; refused")
        if entry.info.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            with archive_file.open(entry.info) as source, open(target, "xb") as out:
                while block := source.read(CHUNK):
                    if cancel.is_set():
                        raise Cancelled
                    out.write(block)
                    progress.advance(bar, len(block))
        except (
            zipfile.BadZipFile,
            zipfile.LargeZipFile,
            RuntimeError,
            EOFError,
            NotImplementedError,
            ValueError,
        ) as error:
            raise FetchFailed(f"corrupt archive at {entry.info.filename!r} ({one_line(error)})") from None
        except FileExistsError:
            raise FetchFailed(f"archive entry {entry.info.filename!r} collides with another; refused") from None
        files += 1
    return files


# --------------------------------------------------------------------------------------------------
# A run: options, the plan, parallel work, the outcome


@dataclass
class Options:
    """Everything a fetch needs, checked: flags resolved and the data root from the settings."""

    kind: str
    root: Path
    names: list[str]
    base_url: str = ""
    jobs: int = DEFAULT_JOBS
    max_bytes: int = int(DEFAULT_MAX_EXTRACT_GB * 1e9)
    force: bool = False
    disk_gb: float = 0.0  # hw.disk_<kind>_gb: the need of the whole dataset family, when sizes are unknown
    retries: int = 3
    timeout: float = 60.0
    api_key: str = field(default="", repr=False)


def run_parallel(items: list[Item], work, jobs: int, progress: Progress, cancel: threading.Event) -> list[Result]:
    """work(item) -> Result for every item to fetch, `jobs` at a time; skip and fail items as decided.
    Results come back in item order. Ctrl-C stops the workers between chunks and re-raises."""
    from concurrent.futures import ThreadPoolExecutor

    done: dict[str, Result] = {}
    todo = [item for item in items if item.action in ("fetch", "replace")]
    if todo:
        pool = ThreadPoolExecutor(max_workers=min(jobs, len(todo)), thread_name_prefix="data-fetch")
        try:
            futures = {item.name: pool.submit(_guarded, work, item) for item in todo}
            for name, future in futures.items():
                done[name] = future.result()
        except KeyboardInterrupt:
            cancel.set()
            progress.say("interrupted: stopping; partial downloads stay in the staging folder and resume next time")
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        finally:
            pool.shutdown(wait=True)
    results = []
    for item in items:
        if item.name in done:
            results.append(done[item.name])
        elif item.action == "skip":
            marker = read_marker(Path(item.target)) or {}
            size = marker.get("bytes") if isinstance(marker.get("bytes"), int) else 0
            results.append(Result(item.name, "skip", size, 0.0, item.reason, item.source, item.target))
        else:
            results.append(Result(item.name, "fail", 0, 0.0, item.reason, item.source, item.target))
    return results


def _guarded(work, item: Item) -> Result:
    started = time.monotonic()
    try:
        result = work(item)
    except Cancelled:
        result = Result(item.name, "fail", detail="interrupted; re-run to resume")
    except Exception as error:  # noqa: BLE001 (one dataset's failure, whatever it is, must not stop the others)
        result = Result(item.name, "fail", detail=one_line(error))
    result.seconds = round(time.monotonic() - started, 2)
    result.source, result.target = item.source, item.target
    result.detail = one_line(result.detail) if result.detail else ""
    return result
