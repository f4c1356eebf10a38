"""SAM3's checkpoint (facebook/sam3: sam3.pt and config.json, a gated repository) into the configured
Hugging Face cache, once, verified, with the resolved revision recorded.

The cache is huggingface_hub's own (<hf_home>/hub/models--facebook--sam3/{blobs,snapshots,refs}), so
SAM3's code and `hf` find the files too. Order of work, so that a bad input costs nothing:
  1. the token (HF_TOKEN, HUGGING_FACE_HUB_TOKEN, or the stored `hf auth login` token): none is a
     one-line error, exit 2, nothing written;
  2. the revision and each file's size and sha256 from the hub's metadata (a wrong token: 401 explained);
  3. the cache: each blob's size and hash against its name (LFS blobs are named by their sha256, small
     git files by their git blob sha1); a bad blob is removed and fetched again;
  4. access to the gated files (HEAD, no bytes): not approved yet (403) is explained with where to ask;
  5. disk: the larger of hw.disk_weights_gb and what the hub says is left to download;
  6. download through huggingface_hub, which writes a process-unique `.incomplete` file, resumes a cut
     connection with Range within the run, and renames into place; partial files that no process on this
     machine holds open are removed before and after (a killed download restarts cleanly);
  7. verify again, write <hf_home>/sam3-tasks/sam3-weights.json (atomically) with the commit.

huggingface_hub is imported inside functions only (the launcher's start-up stays light).
run.* calls `local_weights(hf_home)`, `job_overrides(hf_home)` and `offline_hub_environment(hf_home)`.
"""

import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..core import secrets
from ..core.errors import ConfigError, ToolError
from ..core.paths import atomic_write_text, nearest_existing
from ..hw.disk import GB, mount_point

REPO_ID = "facebook/sam3"
FILES = ("config.json", "sam3.pt")
CHECKPOINT = "sam3.pt"
ACCESS_URL = f"https://huggingface.co/{REPO_ID}"
TOKENS_URL = "https://huggingface.co/settings/tokens"
RECORD = Path("sam3-tasks") / "sam3-weights.json"
COMMIT = re.compile(r"^[0-9a-f]{40}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_CHUNK = 8 * 1024 * 1024


# --- what run.* needs -------------------------------------------------------------------------------


def repo_folder(hf_home: Path) -> Path:
    """huggingface_hub's cache folder for facebook/sam3."""
    return Path(hf_home) / "hub" / ("models--" + REPO_ID.replace("/", "--"))


def record_path(hf_home: Path) -> Path:
    return Path(hf_home) / RECORD


def read_record(hf_home: Path) -> dict[str, Any] | None:
    try:
        record = json.loads(record_path(hf_home).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and record.get("repo") == REPO_ID else None


def local_weights(hf_home: Path) -> Path | None:
    """The snapshot folder holding sam3.pt and config.json as env.weights last verified them, or None.

    Cheap (no hashing, no network): every recorded file is there with its recorded size. Jobs read the
    files with HF_HUB_OFFLINE=1."""
    record = read_record(hf_home)
    if not record:
        return None
    snapshot = Path(record.get("snapshot", ""))
    for name, entry in record.get("files", {}).items():
        try:
            if (snapshot / name).stat().st_size != entry["size"]:
                return None
        except (OSError, KeyError, TypeError):
            return None
    return snapshot if set(record.get("files", {})) >= set(FILES) else None


def job_overrides(hf_home: Path) -> dict[str, str]:
    """SAM3 config overrides that load the verified local checkpoint (none when there is none).

    SAM3's model builder (`build_sam3_image_model`) takes `checkpoint_path`; without it, it calls
    hf_hub_download(revision='main') itself, which a pinned revision would not satisfy offline."""
    snapshot = local_weights(hf_home)
    return {"trainer.model.checkpoint_path": str(snapshot / CHECKPOINT)} if snapshot else {}


def offline_hub_environment(hf_home: Path) -> dict[str, str]:
    """Environment for training and evaluation jobs: no GPU process downloads anything."""
    return {"HF_HUB_OFFLINE": "1", "HF_HOME": str(hf_home)}


# --- tokens ------------------------------------------------------------------------------------------


def find_token(hf_home: Path, environ: Mapping[str, str] = os.environ) -> tuple[str | None, str]:
    """The token huggingface_hub would use, and where it came from (never the value).

    Same order as huggingface_hub: HF_TOKEN, HUGGING_FACE_HUB_TOKEN, then the file `hf auth login`
    writes (HF_TOKEN_PATH, default <HF_HOME>/token)."""
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        value = (environ.get(name) or "").strip()
        if value:
            return value, f"env {name}"
    path = Path(environ.get("HF_TOKEN_PATH") or Path(hf_home) / "token").expanduser()
    try:
        value = path.read_text().strip()
    except OSError:
        value = ""
    return (value, f"stored login {path}") if value else (None, "")


def no_token_error(hf_home: Path) -> ConfigError:
    return ConfigError(
        f"no Hugging Face token: {REPO_ID} is gated. Ask for access at {ACCESS_URL}, create a read token at "
        f"{TOKENS_URL}, then export HF_TOKEN=... or run `hf auth login` (stored in {Path(hf_home) / 'token'})"
    )


# --- verification ------------------------------------------------------------------------------------


def file_hash(path: Path, etag: str) -> str | None:
    """The hash the cache names a blob by: sha256 for LFS files, git blob sha1 for small ones."""
    if _SHA256.match(etag):
        digest = hashlib.sha256()
    elif COMMIT.match(etag):
        digest = hashlib.sha1(b"blob %d\0" % path.stat().st_size)
    else:
        return None  # an etag we cannot recompute: the size check is all there is
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def blob_problem(path: Path, etag: str, size: int | None) -> str | None:
    """Why a cached blob is not the file it should be, or None when it is."""
    if not path.is_file():
        return "missing"
    actual = path.stat().st_size
    if size is not None and actual != size:
        return f"{actual:,} bytes, expected {size:,}"
    digest = file_hash(path, etag)
    if digest is not None and digest != etag:
        kind = "sha256" if len(etag) == 64 else "git sha1"
        return f"{kind} {digest[:12]}... does not match its name {etag[:12]}..."
    return None


# --- partial downloads -------------------------------------------------------------------------------


def _open_files() -> set[str]:
    """Every file a process on this machine holds open (the ones we may read in /proc)."""
    held = set()
    for fd_dir in Path("/proc").glob("[0-9]*/fd"):
        try:
            for fd in fd_dir.iterdir():
                try:
                    held.add(os.readlink(fd))
                except OSError:
                    continue
        except OSError:
            continue
    return held


def clean_partials(folder: Path) -> list[Path]:
    """Remove `*.incomplete` downloads in the blobs folder that no process here is writing.

    huggingface_hub >= 1.18 names each download's temporary file uniquely and cannot resume it from
    another process, so a killed download leaves an orphan that nothing will ever reuse."""
    blobs = folder / "blobs"
    if not blobs.is_dir():
        return []
    held = _open_files()
    removed = []
    for partial in blobs.glob("*.incomplete"):
        if str(partial) in held or os.path.realpath(partial) in held:
            continue
        try:
            partial.unlink()
            removed.append(partial)
        except OSError:
            continue
    return removed


# --- the plan and its outcome ------------------------------------------------------------------------


@dataclass
class FileState:
    name: str
    size: int | None
    etag: str
    action: str  # present, link, download, redownload
    detail: str = ""


@dataclass
class Outcome:
    repo: str
    revision: str
    commit: str | None
    snapshot: str | None
    files: list[FileState] = field(default_factory=list)
    dry_run: bool = False
    checked_hub: bool = True
    notes: list[str] = field(default_factory=list)
    removed_partials: list[str] = field(default_factory=list)
    need_bytes: int = 0
    free_bytes: int | None = None
    seconds: float = 0.0

    @property
    def checkpoint(self) -> str | None:
        return str(Path(self.snapshot) / CHECKPOINT) if self.snapshot else None

    def as_dict(self) -> dict[str, Any]:
        payload = asdict(self)
        payload["checkpoint"] = self.checkpoint
        return payload


_DONE = {"present": "present", "link": "linked", "download": "downloaded", "redownload": "re-downloaded"}
_PLANNED = {"present": "present", "link": "would link", "download": "would download", "redownload": "would re-download"}


def rows(outcome: Outcome) -> list[tuple[str, str, str, str, str]]:
    words = _PLANNED if outcome.dry_run else _DONE
    return [
        (
            f.name,
            _size(f.size),
            words[f.action],
            (f"sha256 {f.etag[:12]}" if len(f.etag) == 64 else f"sha1 {f.etag[:12]}") if f.etag else "?",
            f.detail or "-",
        )
        for f in outcome.files
    ]


def _size(size: int | None) -> str:
    if size is None:
        return "?"
    return f"{size / GB:.2f} GB" if size >= GB / 10 else f"{size / 1e6:.1f} MB" if size >= 1e5 else f"{size:,} B"


# --- the work ----------------------------------------------------------------------------------------


def _import_hub(hf_home: Path):
    """huggingface_hub, with its home (token file, xet cache) pointed at ours when this is the first import."""
    import sys

    if "huggingface_hub" not in sys.modules:
        os.environ["HF_HOME"] = str(hf_home)
        os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    import huggingface_hub

    return huggingface_hub


def _fast_ok(entry: Mapping[str, Any] | None, blob: Path, etag: str, size: int | None) -> bool:
    """The record says this exact blob was verified and it has not changed since (size and mtime)."""
    if not entry or entry.get("etag") != etag:
        return False
    try:
        stat = blob.stat()
    except OSError:
        return False
    return stat.st_size == entry.get("size") == (size if size is not None else stat.st_size) and (
        stat.st_mtime_ns == entry.get("mtime_ns")
    )


def _inspect(folder: Path, commit: str, name: str, etag: str, size: int | None, record, full: bool) -> FileState:
    """What a file needs: nothing, a snapshot link, a download, or a fresh download of a bad blob."""
    blob = folder / "blobs" / etag
    pointer = folder / "snapshots" / commit / name
    recorded = (record or {}).get("files", {}).get(name) if (record or {}).get("commit") == commit else None
    if not blob.exists():
        return FileState(name, size, etag, "download")
    unchanged = not full and _fast_ok(recorded, blob, etag, size)
    problem = None if unchanged else blob_problem(blob, etag, size)
    if problem:
        return FileState(name, size, etag, "redownload", f"cached copy is bad ({problem})")
    linked = pointer.exists() and os.path.realpath(pointer) == os.path.realpath(blob)
    return FileState(name, size, etag, "present" if linked else "link", "" if linked else "snapshot link missing")


def _remove_blob(folder: Path, commit: str, state: FileState) -> None:
    blob = folder / "blobs" / state.etag
    pointer = folder / "snapshots" / commit / state.name
    if pointer.is_symlink() or pointer.exists():
        pointer.unlink()
    blob.unlink(missing_ok=True)


def _link(folder: Path, commit: str, state: FileState) -> None:
    """The snapshot entry as huggingface_hub makes it: a relative symlink to the blob."""
    pointer = folder / "snapshots" / commit / state.name
    pointer.parent.mkdir(parents=True, exist_ok=True)
    blob = folder / "blobs" / state.etag
    tmp = pointer.with_name(f".{pointer.name}.link-{os.getpid()}")
    tmp.unlink(missing_ok=True)
    os.symlink(os.path.relpath(blob, pointer.parent), tmp)
    os.replace(tmp, pointer)


def _write_ref(folder: Path, revision: str, commit: str) -> None:
    """refs/<branch or tag> -> commit, which huggingface_hub (and SAM3's own offline lookup of 'main') reads."""
    if COMMIT.match(revision):
        return
    ref = folder / "refs" / revision
    ref.parent.mkdir(parents=True, exist_ok=True)
    if not ref.exists() or ref.read_text() != commit:
        atomic_write_text(ref, commit)


def _save_record(hf_home: Path, outcome: Outcome, folder: Path, endpoint: str) -> None:
    files = {}
    for state in outcome.files:
        stat = (folder / "blobs" / state.etag).stat()
        files[state.name] = {"etag": state.etag, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    record = {
        "repo": REPO_ID,
        "requested": outcome.revision,
        "commit": outcome.commit,
        "snapshot": outcome.snapshot,
        "endpoint": endpoint,
        "verified_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "files": files,
    }
    path = record_path(hf_home)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(record, indent=2, sort_keys=True) + "\n")


def _local_only(hf_home: Path, revision: str, record, full: bool, why: str) -> Outcome | None:
    """A complete, verified local copy of the requested revision, for when the hub is not asked."""
    if not record or revision not in (record.get("requested"), record.get("commit")):
        return None
    folder, commit = repo_folder(hf_home), record.get("commit", "")
    states = []
    for name in FILES:
        entry = record.get("files", {}).get(name)
        if not entry:
            return None
        state = _inspect(folder, commit, name, entry["etag"], entry["size"], record, full)
        if state.action != "present":
            return None
        states.append(state)
    outcome = Outcome(REPO_ID, revision, commit, str(folder / "snapshots" / commit), states, checked_hub=False)
    outcome.notes.append(why)
    return outcome


def _scrub(text: str, secret: str | None) -> str:
    return secrets.scrub(text, secret)


def _status(error: BaseException) -> int | None:
    response = getattr(error, "response", None)
    return getattr(response, "status_code", None)


def _unreachable(error: BaseException) -> bool:
    """A network failure rather than an answer from the hub."""
    names = {cls.__name__ for cls in type(error).__mro__}
    network = {
        "ConnectError",
        "ConnectTimeout",
        "TimeoutException",
        "ReadTimeout",
        "ConnectionError",
        "OfflineModeIsEnabled",
        "NetworkError",
        "ProxyError",
        "LocalEntryNotFoundError",
    }
    return bool(names & network) or (_status(error) or 0) >= 500


def explain(error: BaseException, token_source: str, endpoint: str, revision: str, token: str | None) -> ToolError:
    """One line for a hub failure, with no credentials of a URL in it."""
    said = _explain(error, token_source, endpoint, revision, token)
    return type(said)(secrets.scrub(str(said)))


def _explain(error: BaseException, token_source: str, endpoint: str, revision: str, token: str | None) -> ToolError:
    """One line with the fix for each way the hub says no."""
    names = {cls.__name__ for cls in type(error).__mro__}
    status = _status(error)
    reason = _scrub(str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__, token)
    if "RevisionNotFoundError" in names:
        return ConfigError(
            f"revision {revision!r} does not exist in {REPO_ID}; pass a branch, tag or commit "
            f"listed at {ACCESS_URL}/commits/main, or leave out --revision"
        )
    if "GatedRepoError" in names and status == 403:
        return ToolError(
            f"your Hugging Face account has no access to {REPO_ID} yet (403, gated): ask for access "
            f"at {ACCESS_URL} (approval is manual; the token from {token_source} must belong to the "
            "approved account), then re-run"
        )
    if status == 401:
        return ConfigError(
            f"the Hugging Face token from {token_source} was refused (401: wrong, expired or "
            f"revoked): create a read token at {TOKENS_URL}, then export HF_TOKEN=... or run "
            f"`hf auth login`; access to {REPO_ID} is requested at {ACCESS_URL}"
        )
    if status == 403:
        return ToolError(
            f"the hub refused access to {REPO_ID} (403: {reason}); a fine-grained token needs "
            f"'read access to public gated repos'; check {TOKENS_URL} and {ACCESS_URL}"
        )
    if "RepositoryNotFoundError" in names:
        return ToolError(
            f"{REPO_ID} was not found at {endpoint} ({reason}); check HF_ENDPOINT, or ask for access at {ACCESS_URL}"
        )
    if "OfflineModeIsEnabled" in names:
        return ToolError(
            "HF_HUB_OFFLINE=1 is set and the weights are not in the cache yet; unset it on a machine "
            "with network access (a login node), run env.weights there, then run jobs offline"
        )
    if _unreachable(error):
        return ToolError(
            f"cannot reach the Hugging Face hub at {endpoint} ({reason}); check the network, "
            "HTTPS_PROXY or HF_ENDPOINT, then re-run: finished files are kept"
        )
    return ToolError(
        f"the hub answered {status or type(error).__name__} for {REPO_ID} ({reason}); re-run, or check {ACCESS_URL}"
    )


def _offline_plan(revision: str, endpoint: str, error: BaseException, seconds: float) -> Outcome:
    """A dry run that cannot reach the hub still plans: every file would be downloaded, sizes unknown."""
    files = [FileState(name, None, "", "download", "size unknown (hub not reachable)") for name in FILES]
    reason = (str(error).strip().splitlines() or [type(error).__name__])[0][:120]
    note = (
        f"the hub at {endpoint} is not reachable ({reason}): the commit and the sizes are unknown, and a real "
        "run needs the network (or copy the cache from a machine that has it: paths.hf_home)"
    )
    return Outcome(REPO_ID, revision, None, None, files, dry_run=True, checked_hub=False, notes=[note], seconds=seconds)


@dataclass
class _Hub:
    """The hub as this run talks to it: huggingface_hub, the token and where it came from, the endpoint."""

    module: Any
    api: Any
    token: str
    token_source: str
    endpoint: str  # for messages and the record: no credentials in a URL
    revision: str

    @classmethod
    def connect(cls, hf_home: Path, token: str, token_source: str, revision: str) -> "_Hub":
        hub = _import_hub(hf_home)
        from huggingface_hub import constants

        endpoint = secrets.scrub(constants.ENDPOINT)
        return cls(hub, hub.HfApi(token=token), token, token_source, endpoint, revision)

    def refusal(self, error: BaseException) -> ToolError:
        """The explained line for a hub failure."""
        return explain(error, self.token_source, self.endpoint, self.revision, self.token)


def ensure(
    hf_home: Path,
    revision: str = "main",
    need_gb: float = 0.0,
    need_source: str = "invoke.yaml",
    dry_run: bool = False,
    full_verify: bool = False,
    environ: Mapping[str, str] = os.environ,
    log: Callable[[str], None] = print,
) -> Outcome:
    """Make the SAM3 checkpoint present and verified in the cache; see the module docstring for the order."""
    started = time.perf_counter()
    hf_home = Path(hf_home)
    revision = revision or "main"
    record = read_record(hf_home)
    token, token_source = find_token(hf_home, environ)
    local = _without_hub(hf_home, revision, record, token, full_verify)
    if local is not None:
        return _timed(local, dry_run, started)

    hub = _Hub.connect(hf_home, token, token_source, revision)
    try:
        info = hub.api.model_info(REPO_ID, revision=revision, files_metadata=True, token=token)
    except Exception as error:  # noqa: BLE001 - every hub failure becomes one explained line
        return _without_answer(hub, error, hf_home, record, full_verify, dry_run, started)

    outcome = _plan(hub, info, hf_home, record, full_verify, dry_run)
    fetch = [s for s in outcome.files if s.action in ("download", "redownload")]
    _check_access(hub, outcome.commit, fetch)  # before any byte is written
    folder = repo_folder(hf_home)
    if not dry_run:
        outcome.removed_partials = [str(p) for p in clean_partials(folder)]
    _check_disk(outcome, folder, fetch, need_gb, need_source)
    if not dry_run:
        _download(hub, hf_home, outcome, fetch, log)
    outcome.seconds = time.perf_counter() - started
    return outcome


def _timed(outcome: Outcome, dry_run: bool, started: float) -> Outcome:
    outcome.dry_run = dry_run
    outcome.seconds = time.perf_counter() - started
    return outcome


def _without_hub(hf_home: Path, revision: str, record, token: str | None, full: bool) -> Outcome | None:
    """The verified local copy when the hub is not asked: there is no token, or the commit is the recorded one.

    No token and no such copy is the one-line error."""
    pinned = COMMIT.match(revision) and record and record.get("commit") == revision
    if token is not None and not pinned:
        return None
    why = "no token: not checked against the hub" if token is None else "a commit never changes: hub not asked"
    local = _local_only(hf_home, revision, record, full, why)
    if local is None and token is None:
        raise no_token_error(hf_home)
    return local


def _without_answer(
    hub: _Hub, error: BaseException, hf_home: Path, record, full: bool, dry_run: bool, started: float
) -> Outcome:
    """The hub did not answer, or said no: the verified local copy, an offline dry-run plan, or the explained error."""
    problem = hub.refusal(error)
    unreachable = _unreachable(error)
    why = f"hub not reachable ({type(error).__name__})" if unreachable else f"the hub said no: {problem}"
    local = _local_only(hf_home, hub.revision, record, full, f"{why}; using the verified local copy")
    if local is None and dry_run and unreachable:
        return _offline_plan(hub.revision, hub.endpoint, error, time.perf_counter() - started)
    if local is None:
        raise problem from None
    return _timed(local, dry_run, started)


def _plan(hub: _Hub, info, hf_home: Path, record, full: bool, dry_run: bool) -> Outcome:
    """What each file needs, from the hub's listing of the revision against the cache."""
    folder = repo_folder(hf_home)
    commit = info.sha
    siblings = {s.rfilename: s for s in (info.siblings or [])}
    missing = [name for name in FILES if name not in siblings]
    if not commit or missing:
        raise ToolError(
            f"{REPO_ID}@{hub.revision} lists no {', '.join(missing) or 'commit'} at {hub.endpoint}; "
            "pass a --revision that has the SAM3 checkpoint"
        )
    states = []
    for name in FILES:
        sibling = siblings[name]
        lfs = getattr(sibling, "lfs", None)
        etag = (lfs.sha256 if lfs else None) or sibling.blob_id
        size = (lfs.size if lfs else None) or sibling.size
        if not etag:
            raise ToolError(f"the hub gave no hash for {name} at {hub.endpoint}; re-run, or check HF_ENDPOINT")
        states.append(_inspect(folder, commit, name, etag, size, record, full))
    return Outcome(REPO_ID, hub.revision, commit, str(folder / "snapshots" / commit), states, dry_run)


def _check_access(hub: _Hub, commit: str, fetch: list[FileState]) -> None:
    """HEAD each file to fetch (no bytes): a gated file not yet approved fails here; fills in unknown sizes."""
    for state in fetch:
        url = hub.module.hf_hub_url(REPO_ID, state.name, revision=commit)
        try:
            meta = hub.module.get_hf_file_metadata(url, token=hub.token)
        except Exception as error:  # noqa: BLE001
            raise hub.refusal(error) from None
        if state.size is None:
            state.size = meta.size


def _check_disk(outcome: Outcome, folder: Path, fetch: list[FileState], need_gb: float, need_source: str) -> None:
    outcome.need_bytes = _need(fetch, need_gb)
    anchor = nearest_existing(folder)
    outcome.free_bytes = shutil.disk_usage(anchor).free
    if outcome.need_bytes > outcome.free_bytes:
        left = sum(s.size or 0 for s in fetch)
        raise ToolError(
            f"not enough disk for the SAM3 weights: {outcome.need_bytes / GB:.2f} GB needed (hw.disk_weights_gb = "
            f"{need_gb:g} from {need_source}; the hub lists {left / GB:.2f} GB to download), "
            f"{outcome.free_bytes / GB:.2f} GB free on "
            f"{mount_point(anchor)}; free space there or point paths.hf_home at a larger disk"
        )


def _download(hub: _Hub, hf_home: Path, outcome: Outcome, fetch: list[FileState], log: Callable[[str], None]) -> None:
    """Fix the cache (drop bad blobs, make missing links), fetch and verify each file, then record the commit."""
    folder, commit = repo_folder(hf_home), outcome.commit
    for state in outcome.files:
        if state.action == "redownload":
            _remove_blob(folder, commit, state)
        if state.action == "link":
            _link(folder, commit, state)
    try:
        for state in fetch:
            log(f"downloading {state.name} ({_size(state.size)}) from {hub.endpoint} ...")
            _download_file(hub, hf_home, commit, state)
            problem = blob_problem(folder / "blobs" / state.etag, state.etag, state.size)
            if problem:
                _remove_blob(folder, commit, state)
                raise ToolError(f"{state.name} arrived damaged ({problem}) and was removed; re-run env.weights")
    finally:
        outcome.removed_partials += [str(p) for p in clean_partials(folder)]
    _write_ref(folder, hub.revision, commit)
    _save_record(hf_home, outcome, folder, hub.endpoint)


def _download_file(hub: _Hub, hf_home: Path, commit: str, state: FileState) -> None:
    """One file through huggingface_hub; a cut connection is the re-run line, anything else the hub's answer."""
    try:
        hub.module.hf_hub_download(
            REPO_ID, state.name, revision=commit, cache_dir=str(hf_home / "hub"), token=hub.token
        )
    except Exception as error:  # noqa: BLE001
        status = _status(error)
        if (status is None or status >= 500) and (_unreachable(error) or isinstance(error, OSError)):
            reason = _scrub(str(error).strip().splitlines()[0] if str(error).strip() else "", hub.token)
            raise ToolError(
                f"download of {state.name} stopped ({type(error).__name__}: {reason}); re-run "
                "env.weights: finished files are kept and the partial one is removed"
            ) from None
        raise hub.refusal(error) from None


def _need(fetch: list[FileState], need_gb: float) -> int:
    """Bytes to have free: what is left to download, and the configured need while the checkpoint is."""
    left = sum(s.size or 0 for s in fetch)
    if any(s.name == CHECKPOINT for s in fetch):
        return max(left, int(need_gb * GB))
    return left
