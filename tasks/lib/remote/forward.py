"""`inv -H HOST run.tensorboard`: TensorBoard runs on the login node; a local port forwards to it through the
same SSH connection (fabric's forward_local: a direct-tcpip channel per browser connection).

The remote task announces its port once TensorBoard answers there (tasks/lib/run/tensorboard.py); we then
listen on localhost here, print that URL, and wait. Ctrl-C here closes the forward and the connection;
sshd then closes the remote command's stdin, and the task stops TensorBoard there.
"""

import re
import sys
import threading
import time

from ..run.tensorboard import free_port
from .checkout import say

ANNOUNCED = re.compile(r"TensorBoard: http://localhost:(\d+)/")


def runs_tensorboard(task_names: list[str]) -> bool:
    return "run.tensorboard" in task_names


class _Announced:
    """The port the remote task announced; set from invoke's stdout thread."""

    def __init__(self):
        self.port, self.seen = None, threading.Event()


def _watcher(found: _Announced):
    from invoke.watchers import StreamWatcher

    class PortWatcher(StreamWatcher):
        """Sees the remote task's announcement in its stdout; writes nothing to its stdin. (A StreamWatcher is a
        threading.local: what it learns is kept in `found`, which every thread shares.)"""

        def submit(self, stream):
            match = found.port is None and ANNOUNCED.search(stream)
            if match:
                found.port = int(match.group(1))
                found.seen.set()
            return []

    return PortWatcher()


def tensorboard(cxn, command: str, host: str) -> int:
    """Run the remote command; once it announces its port, forward a local one to it until Ctrl-C or its end."""
    watcher = _Announced()
    # asynchronous, invoke writes output only to streams it is given
    promise = cxn.run(command, asynchronous=True, warn=True, pty=False, in_stream=False, hide=False, env={},
                      watchers=[_watcher(watcher)], out_stream=sys.stdout, err_stream=sys.stderr)  # fmt: skip
    try:
        while not watcher.seen.wait(0.2):
            if promise.runner.process_is_finished:
                return promise.join().exited
        local = free_port(watcher.port)
        with cxn.forward_local(local, remote_port=watcher.port, remote_host="localhost", local_host="localhost"):
            say(f"forwarded: http://localhost:{local}/ here -> localhost:{watcher.port} on {host}; Ctrl-C stops both")
            while not promise.runner.process_is_finished:  # not join(): without a pty, fabric would wait on the
                time.sleep(0.2)  # output threads after Ctrl-C, and they end only when the command does
            return promise.join().exited
    except KeyboardInterrupt:
        say(f"stopping TensorBoard on {host}")
        promise.runner.channel.close()  # sshd closes the command's stdin: the task there stops TensorBoard
        promise.join()
        return 0
