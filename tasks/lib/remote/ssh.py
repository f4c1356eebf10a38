"""Run our tasks on a cluster login node: `inv` itself, re-run there over SSH (the OpenSSH client, one login).

The whole task graph, pre-tasks included, runs on the login node with a local Context there, so there is
one code path; this module only builds the remote command line, runs it through the host's session
(session.py: one master connection, opened once, reused) and passes the exit code on.

The host resolves as `ssh` resolves it (openssh.py: `ssh -G`, the whole ~/.ssh/config) and ssh itself checks
the host keys, on every ProxyJump hop too: a changed key is always refused, an unknown one unless
StrictHostKeyChecking says no or accept-new for that host.
"""

import codecs
import os
import shlex
import subprocess
import sys
from functools import partial

from ..core.errors import ConfigError, ToolError
from .commands import HEAD_MARK, NO_CHECKOUT, checkout_probe, probed_command, remote_command
from .openssh import SshFlags, resolve
from .session import Session


def split_command(line: str) -> list[str]:
    """The quoted inv command line as arguments, split as a shell would."""
    try:
        args = shlex.split(line)
    except ValueError as exc:
        raise ConfigError(f"cannot split {line!r} into arguments ({exc}); quote it as you would in a shell") from None
    if not args:
        raise ConfigError('nothing to run: pass the inv command line, e.g. inv remote.run "run.status"')
    return args


class HeadFilter:
    """The remote stderr, less the HEAD_MARK line the probe prints before inv starts, which goes to
    on_head(commit or None). What comes before that line (a login script's words) is held until it comes and
    passed on with it; `pending` is what is held while it has not (ssh's own words, where it could not log in)."""

    LIMIT = 65536  # held at most: past that, the mark is not coming

    def __init__(self, stream, on_head):
        self.stream, self.on_head, self.pending, self.done = stream, on_head, "", False

    def write(self, text: str) -> None:
        if self.done:
            self.stream.write(text)
            return
        self.pending += text
        start = 0 if self.pending.startswith(HEAD_MARK) else self.pending.find("\n" + HEAD_MARK) + 1
        end = self.pending.find("\n", start) if start or self.pending.startswith(HEAD_MARK) else -1
        if end < 0:
            if len(self.pending) > self.LIMIT:
                self.end()
            return
        before, line, after = self.pending[:start], self.pending[start:end], self.pending[end + 1 :]
        self.pending, self.done = "", True
        self.stream.write(before)
        self.on_head(line[len(HEAD_MARK) :].strip() or None)
        self.stream.write(after)

    def end(self) -> None:
        """No mark came: pass on what was held."""
        self.done = True
        self.stream.write(self.pending)
        self.pending = ""

    def flush(self) -> None:
        self.stream.flush()


def describe(host: str, project_dir: str, inv_args: list[str], options: SshFlags | None = None) -> list[str]:
    """What run() would do, read from the SSH config only (`ssh -G`): no connection is made."""
    target = resolve(host, options)
    via = f" via {target.via}" if target.via else ""
    whose = "our ControlPath, as your ssh config sets none" if target.ours else "your ControlPath"
    persist = "ours" if target.persist != target.get("controlpersist") else "yours"
    return [
        f"would connect to {host} as {target.get('user')}@{target.get('hostname')} port {target.get('port')}{via}",
        f"would reuse the connection at {target.control_path} ({whose}) or log in once and keep it, ControlPersist "
        f"{target.persist} ({persist})",
        f"would run there: {remote_command(project_dir, inv_args)}",
    ]


def run(
    host: str,
    project_dir: str,
    inv_args: list[str],
    options: SshFlags | None = None,
    prepare=None,
    runner=None,
    on_head=None,
    missing=None,
    session=None,
    head_start=None,
) -> int:
    """Run inv in the checkout on HOST, its output streamed as it comes; its exit code.

    prepare(session), when given, runs on the open connection first and replaces the check that the checkout is
    there (inv -H: the commit comparison, --sync, --setup). runner(session, command, host), when given, runs the
    command instead and returns its exit code (inv -H run.tensorboard: the port forward). on_head(commit), when
    given, gets the checkout's commit from the command itself (probed_command); missing is the message then.
    session: the host's, where it is resolved already. head_start: that command, already started there and
    waiting (early.py); it runs if it got that far."""
    session = session or Session(resolve(host, options))
    if prepare is None and runner is None and on_head is not None:
        code = head_start.go(on_head) if head_start is not None else None
        if code is None:
            code = session.run_first(partial(_probe, on_head), probed_command(project_dir, inv_args))
        if code == NO_CHECKOUT:
            raise ConfigError(missing)
        return exit_code(code, host)
    session.open()
    if prepare is not None:
        prepare(session)
    elif on_head is None and not has_checkout(session, project_dir):
        raise ConfigError(
            f"no sam3-tasks checkout with .venv at {project_dir} on {host}: clone it there and "
            "run scripts/bootstrap (or pass --project-dir)"
        )
    if runner is not None:
        return runner(session, remote_command(project_dir, inv_args), host)
    return exit_code(stream(session.command(remote_command(project_dir, inv_args))), host)


def _probe(on_head, argv: list[str]) -> tuple[int, str | None]:
    """The probed command: its exit code, and ssh's words when it could not log in (the probe never spoke)."""
    heard = HeadFilter(sys.stderr, on_head)
    code = stream(argv, heard)
    if code == 255 and not heard.done:
        return code, heard.pending
    heard.end()
    return code, None


def stream(argv: list[str], stderr=None) -> int:
    """Run ssh's argv: the command's stdout straight to ours, its stderr to ours or through `stderr` (a
    HeadFilter). Its stdin is a pipe left open and empty until we end, as a session's (nothing of ours is sent)."""
    process = subprocess.Popen(argv, stdin=subprocess.PIPE, stderr=subprocess.PIPE if stderr else None)
    return follow(process, stderr)


def follow(process: subprocess.Popen, stderr=None) -> int:
    """Its stderr through `stderr` (when piped) until it ends; its exit code."""
    try:
        if stderr is not None:
            decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
            while chunk := os.read(process.stderr.fileno(), 65536):
                stderr.write(decoder.decode(chunk))
                stderr.flush()
        return process.wait()
    finally:
        if process.poll() is None:  # Ctrl-C here: this side stops; the command there runs on until it writes
            process.terminate()
            process.wait()
        process.stdin.close()


def exit_code(code: int, host: str) -> int:
    if code < 0 or code == 255:  # 255: ssh's own failure (the connection dropped) or a signal killed it there
        raise ToolError(
            f"the command on {host} ended without an exit status (the connection dropped, or a signal "
            "killed it); see its output above, and inv remote.run run.status"
        )
    return code


def has_checkout(session: Session, project_dir: str) -> bool:
    return session.run(checkout_probe(project_dir)).ok
