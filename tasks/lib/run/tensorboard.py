"""run.tensorboard: TensorBoard (from the training venv) on a run's folder, until Ctrl-C or the SSH session ends.

It prints `TensorBoard: http://localhost:PORT/ ...` once TensorBoard answers HTTP on that port; `inv -H` reads
that line on the laptop to forward a local port to it over the same SSH connection (tasks/lib/remote/forward.py).
Run through SSH without a terminal (SSH_CONNECTION set, stdin not a terminal), it stops TensorBoard when its
stdin closes, which sshd does when the session ends: nothing is left listening on the login node.
"""

import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from ..core import processes
from ..core.errors import ConfigError, ToolError

DEFAULT_PORT = 6006
READY_S = 120.0
ANNOUNCE = "TensorBoard: http://localhost:{port}/ (run {name}: {run_dir}); Ctrl-C stops it"


def binary(train_venv: Path) -> Path:
    path = train_venv / "bin" / "tensorboard"
    if not os.access(path, os.X_OK):
        raise ConfigError(
            f"no TensorBoard at {path}: build the training env (inv env.sam3, or scripts/setup-train-env)"
        )
    return path


def free_port(preferred: int | None = DEFAULT_PORT) -> int:
    """preferred when nothing listens there on loopback, else a free port the system picks."""
    for port in ([preferred] if preferred else []) + [0]:
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return probe.getsockname()[1]
    raise ToolError("no free TCP port on 127.0.0.1; close something listening and try again")


def command(tensorboard: Path, run_dir: Path, port: int) -> list[str]:
    return [str(tensorboard), "--logdir", str(run_dir), "--port", str(port), "--host", "localhost"]


def answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://localhost:{port}/", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def tied_to_session(environ=os.environ, stdin=sys.stdin) -> bool:
    """Run by `inv -H` (SSH, no terminal): stdin closes when the SSH session ends."""
    return bool(environ.get("SSH_CONNECTION")) and not stdin.isatty()


def _stop_at_eof(stream, process: subprocess.Popen, stopping: threading.Event) -> None:
    """Stop TensorBoard when stdin ends (the SSH session closed) or brings ETX (invoke's Ctrl-C, without a pty)."""
    while True:
        data = stream.read1(4096)
        if not data or b"\x03" in data:
            break
    stopping.set()
    process.terminate()


def serve(argv: list[str], port: int, name: str, run_dir: Path, tied: bool) -> int:
    """Start TensorBoard, say where it answers, wait; 0 when stopped by Ctrl-C or the session's end."""
    process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, start_new_session=True)
    stopping = threading.Event()
    if tied:
        threading.Thread(target=_stop_at_eof, args=(sys.stdin.buffer, process, stopping), daemon=True).start()
    try:
        deadline = time.monotonic() + READY_S
        while not answers(port):
            if process.poll() is not None:
                if stopping.is_set():
                    return 0
                raise ToolError(
                    f"TensorBoard exited {process.returncode} before it answered on port {port}; see its output above"
                )
            if time.monotonic() > deadline:
                raise ToolError(
                    f"TensorBoard did not answer on port {port} within {READY_S:.0f} s; see its output above"
                )
            time.sleep(0.3)
        print(ANNOUNCE.format(port=port, name=name, run_dir=run_dir), flush=True)
        code = process.wait()
        return 0 if stopping.is_set() else code
    except KeyboardInterrupt:
        return 0
    finally:
        processes.stop(process)
