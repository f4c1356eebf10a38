"""One launch of a run at a time: a lock on the run, held from reading its record to the last job id saved.

The lock is filelock's FileLock, an OS lock (flock) that the kernel drops with the process holding it:
a launcher killed by SIGKILL, a closed terminal or a dropped SSH session never leaves the run locked.
It lives beside the run folder (`<experiment_root>/.<run>.lock`), so it exists before the run does and
stays put when --restart renames the folder. Beside it, `.<run>.holder` names the holder (pid, host,
command, since) for the one line a second launch prints after waiting a little.
"""

import contextlib
import json
import os
import platform
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from ..core.errors import EXIT_BUSY, ToolError
from ..core.paths import atomic_write_text

WAIT_S = 10.0


class RunBusy(ToolError):
    """Another launch holds the run's lock."""

    code = EXIT_BUSY


def lock_path(run_dir: Path) -> Path:
    return run_dir.with_name(f".{run_dir.name}.lock")


def holder_path(run_dir: Path) -> Path:
    return run_dir.with_name(f".{run_dir.name}.holder")


@contextlib.contextmanager
def hold(run_dir: Path, wait_s: float = WAIT_S, command: list[str] | None = None) -> Iterator[None]:
    """Hold the run's lock for the block: wait up to wait_s for another launch to finish, then RunBusy
    naming it. Re-entrant within one process."""
    from filelock import FileLock, Timeout

    run_dir.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(lock_path(run_dir), is_singleton=True, thread_local=False)
    try:
        lock.acquire(timeout=wait_s)
    except Timeout:
        raise RunBusy(_busy_message(run_dir, wait_s)) from None
    first = lock.lock_counter == 1
    try:
        if first:
            holder = {
                "pid": os.getpid(),
                "host": platform.node(),
                "since": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "command": " ".join(command or sys.argv),
            }
            atomic_write_text(holder_path(run_dir), json.dumps(holder) + "\n")
        yield
    finally:
        if first:
            holder_path(run_dir).unlink(missing_ok=True)
        lock.release()


def _busy_message(run_dir: Path, wait_s: float) -> str:
    name = run_dir.name
    try:
        holder = json.loads(holder_path(run_dir).read_text())
        pid, host = int(holder["pid"]), str(holder["host"])
    except (OSError, ValueError, KeyError, TypeError):
        return (
            f"run {name!r} is locked by another launch (no readable holder in {holder_path(run_dir)}); wait for "
            f"it, or if no launch of {name!r} runs anywhere, remove {lock_path(run_dir)}"
        )
    if host == platform.node() and not _alive(pid):
        return (
            f"run {name!r} is locked, but its holder, pid {pid} on {host}, is not running: the file system "
            f"did not release its lock (NFS without locking?); remove {lock_path(run_dir)} and try again"
        )
    return (
        f"run {name!r} is being launched by pid {pid} on {host} since {holder.get('since')} "
        f"({holder.get('command', '')[:80]}); waited {wait_s:.0f} s: let it finish, then see "
        f"inv run.status --name {name}"
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True
