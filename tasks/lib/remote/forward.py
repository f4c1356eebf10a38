"""`inv -H HOST run.tensorboard`: TensorBoard runs on the login node; a local port forwards to it through the
same SSH connection (`ssh -O forward -L` on the master: a direct-tcpip channel per browser connection).

The remote task announces its port once TensorBoard answers there (tasks/lib/run/tensorboard.py); we then
listen on localhost here, print that URL, and wait. Ctrl-C here closes the command's stdin there (and the
forward); the task sees its stdin end and stops TensorBoard there.
"""

import re
import subprocess
import sys
import threading

from .checkout import say

ANNOUNCED = re.compile(r"TensorBoard: http://localhost:(\d+)/")
STOP_S = 30  # how long Ctrl-C waits for the task there to stop TensorBoard and end


def runs_tensorboard(task_names: list[str]) -> bool:
    return "run.tensorboard" in task_names


class _Announced:
    """The port the remote task announced; set from the thread that relays its stdout."""

    def __init__(self):
        self.port, self.seen = None, threading.Event()


def _relay(stream, found: _Announced) -> None:
    """The remote stdout to ours, line by line, watching for the announcement."""
    for raw in iter(stream.readline, b""):
        line = raw.decode(errors="replace")
        match = found.port is None and ANNOUNCED.search(line)
        if match:
            found.port = int(match.group(1))
            found.seen.set()
        sys.stdout.write(line)
        sys.stdout.flush()


def tensorboard(session, command: str, host: str) -> int:
    """Run the remote command; once it announces its port, forward a local one to it until Ctrl-C or its end."""
    from ..run.tensorboard import free_port  # here, not above: it loads urllib, which inv -H needs only here

    # stdin: a pipe that stays open and empty; closing it is how the task there learns to stop
    process = session.popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    found, local = _Announced(), None
    relay = threading.Thread(target=_relay, args=(process.stdout, found), daemon=True)
    relay.start()
    try:
        while not found.seen.wait(0.2):
            if process.poll() is not None:
                relay.join()
                return process.returncode
        local = free_port(found.port)
        session.forward(local, found.port)
        say(f"forwarded: http://localhost:{local}/ here -> localhost:{found.port} on {host}; Ctrl-C stops both")
        code = process.wait()
        relay.join()
        return code
    except KeyboardInterrupt:
        say(f"stopping TensorBoard on {host}")
        process.stdin.close()  # EOF there: the task stops TensorBoard and ends
        try:
            process.wait(timeout=STOP_S)
        except subprocess.TimeoutExpired:
            process.terminate()
            process.wait()
        return 0
    finally:
        if local is not None:
            session.forward(local, found.port, cancel=True)
        if not process.stdin.closed:
            process.stdin.close()
