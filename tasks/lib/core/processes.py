"""Child processes: stopped politely, then for sure."""

import subprocess


def stop(process: subprocess.Popen, grace_s: float = 10.0) -> None:
    """SIGTERM, wait up to grace_s, then SIGKILL; returns once it is gone (at once if it already is)."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
