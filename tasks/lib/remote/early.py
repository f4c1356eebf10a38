"""inv -H's head start: the command starts on the login node while this side is still starting up.

A plain `inv -H HOST TASK ...` (no --sync, --setup, --dry-run, run.tensorboard) spends about 100 ms here
importing invoke, loading the collection and checking the task names and flags before it sends anything, and
the login node as long again to start inv there. So program.py calls start() before it imports invoke: from
the command line alone (scan()) and what the last such command to that host used (its ssh command line, project
folder and control socket, remembered in ~/.cache/sam3-tasks/inv-hosts.json), and only through a connection
that is open (a master answers on that socket: no login, no prompt), it starts the probed command there as
`inv --await-go ...`, which loads and checks there, says READY on stderr and waits for a line on stdin.

Once this side has checked the command line, hand_over() compares: where the ssh command line the settings
make now is exactly the one that started, go() sends "go" and the command runs as it would have anyway;
otherwise cancel() closes its stdin, and it ends there having run nothing. Until READY, all it says is held
back. Where it ends before READY (no checkout, a master that died, an older inv there without --await-go, a
command line the inv there refuses), go() says so and the command runs the usual way, which says why.

Where the settings here are the ones last seen (the same invoke config files and INVOKE_ variables:
config_print()) and one host is named, invoke is not even loaded here: run_alone() checks the ssh line
(`ssh -G`) and sends "go" at READY, the inv there having checked the command line (its READY means it parsed
it, with the code that runs it, and found no host flag after the task name, as inv -H here refuses one).
"""

import codecs
import functools
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

from .commands import login_shell_safe, probed_command

READY = "sam3-tasks-ready"  # as program.py's READY: what `inv --await-go` says once it waits
AWAIT_GO = "--await-go"
CORE_FLAGS = {  # invoke's core flags a head start may see before the task name (flag -> takes a value)
    "-f": True,
    "--config": True,
    "-e": False,
    "--echo": False,
    "-w": False,
    "--warn-only": False,
    "-d": False,
    "--debug": False,
    "--hide": True,
    "-p": False,
    "--pty": False,
    "-T": True,
    "--command-timeout": True,
}
NOT_PLAIN = ("--sync", "--setup", "--dry-run", "--allow-dirty")
LONG = {"--hosts": "-H", "--identity": "-i", "--ssh-config": "-S", "--connect-timeout": "-t"}


def scan(args: list[str], host_flags: dict[str, bool]) -> tuple[dict, list[str]] | None:
    """The command line (less the program name) as the real parse will split it: (host flags, the remote
    command line); None where a plain head start is not sure (then there is none)."""
    values, kept, i = {"-i": []}, [], 0
    while i < len(args) and args[i].startswith("-"):
        token = args[i]
        name, _, inline = token.partition("=") if token.startswith("--") else (token[:2], "", token[2:])
        flags = host_flags if name in host_flags else CORE_FLAGS if name in CORE_FLAGS else None
        if flags is None or name in NOT_PLAIN or (inline and not flags[name]):
            return None
        step = 2 if flags[name] and not inline else 1
        value = (inline or (args[i + 1] if i + 1 < len(args) else None)) if flags[name] else True
        if flags is CORE_FLAGS:
            kept += args[i : i + step]
        elif LONG.get(name, name) == "-i":
            values["-i"].append(value)
        else:
            values[LONG.get(name, name)] = value
        i += step
    task = args[i:]
    if not task or not values.get("-H") or {"-h", "--help", "run.tensorboard"} & set(task):
        return None
    return values, kept + task


def _cache() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "sam3-tasks" / "inv-hosts.json"


def _key(root: Path, host: str, flags: tuple) -> str:
    """root, host and the ssh flags of inv -H (-i list, -S, -t) as one key."""
    return json.dumps([str(Path(root).resolve()), host, *flags])


def remembered(root: Path, host: str, flags: tuple) -> dict:
    """What the last plain inv -H to host from this checkout used: {"project_dir", "ssh"} (or nothing)."""
    try:
        return json.loads(_cache().read_text()).get(_key(root, host, flags), {})
    except (OSError, ValueError, AttributeError):
        return {}


def remember(root: Path, host: str, flags: tuple, entry: dict) -> None:
    """Keep it for the next head start (written only when it changed; where it cannot be, no head start)."""
    if remembered(root, host, flags) == entry:
        return
    path = _cache()
    try:
        known = json.loads(path.read_text()) if path.exists() else {}
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({**known, _key(root, host, flags): entry}, indent=1))
        path.chmod(0o600)  # host names and paths: the user's alone
    except (OSError, ValueError):
        pass


def start(args: list[str], root: Path, host_flags: dict[str, bool]) -> "HeadStart | None":
    """Start the command there now, from the command line alone, where it is a plain one; else None."""
    scanned = scan(args, host_flags)
    if scanned is None:
        return None
    values, remote_argv = scanned
    try:
        timeout = int(values["-t"]) if values.get("-t") else None
    except ValueError:
        return None
    host = values["-H"].split(",")[0].strip()
    last = remembered(root, host, (values["-i"], values.get("-S"), timeout))
    project_dir = os.environ.get("INVOKE_REMOTE_PROJECT_DIR") or last.get("project_dir")
    if not project_dir or (last.get("ssh") or [None])[0] != "ssh" or os.environ.get("INVOKE_REMOTE_SYNC") == "sync":
        return None
    if not _answers(last.get("control")):  # no live connection: the usual way logs in (and may ask)
        return None
    argv = [*last["ssh"], login_shell_safe(probed_command(project_dir, [AWAIT_GO, *remote_argv]))]
    try:
        process = subprocess.Popen(argv, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    except OSError:
        return None
    alone = "," not in values["-H"] and last.get("config") == config_print(root)
    guess = (root, host, (values["-i"], values.get("-S"), timeout), project_dir, remote_argv)
    return HeadStart(argv, process, guess if alone else None)


def config_print(root: Path) -> list:
    """What inv -H's settings here are read from: invoke's config files (system, user, this project's: their
    size and time) and the INVOKE_ variables. The same print, the same remote.project_dir and remote.sync."""
    stats = []
    for prefix in ("/etc/invoke.", os.path.expanduser("~/.invoke."), f"{Path(root).resolve()}/invoke."):
        for path in (f"{prefix}{ext}" for ext in ("yaml", "yml", "json", "py")):
            try:
                stat = os.stat(path)
            except OSError:
                continue
            stats.append([path, stat.st_mtime_ns, stat.st_size])
    return [stats, sorted([name, value] for name, value in os.environ.items() if name.startswith("INVOKE_"))]


def _answers(path: str | None) -> bool:
    """Whether a master listens on that control socket (a connect and nothing more)."""
    import socket

    try:
        with socket.socket(socket.AF_UNIX) as probe:
            probe.settimeout(1)
            probe.connect(path)
    except (OSError, TypeError):
        return False
    return True


def hand_over(head_start, root: Path, host: str, options, session, project_dir: str, remote_argv: list[str]):
    """The head start, where it started exactly the command this session would start now (else it is
    cancelled: None); and this command's ssh line is remembered for the next one."""
    argv = session.command(probed_command(project_dir, [AWAIT_GO, *remote_argv]), master=True)
    flags = (options.identities, options.ssh_config, options.connect_timeout)
    entry = {"project_dir": project_dir, "ssh": argv[:-1], "control": session.socket(), "config": config_print(root)}
    remember(root, host, flags, entry)
    if head_start is not None and (head_start.cancelled or head_start.argv != argv):
        head_start.cancel()
        return None
    return head_start


class HeadStart:
    """The command started there ahead of the check here, held at READY until go() or cancel()."""

    def __init__(self, argv: list[str], process: subprocess.Popen, alone: tuple | None = None):
        self.argv, self.process, self.alone = argv, process, alone
        self.held, self.ready, self.ended, self.cancelled = "", threading.Event(), False, False
        threading.Thread(target=self._hold, daemon=True).start()

    def _hold(self) -> None:
        """Read its stderr until its READY line (or its end), holding all of it back."""
        decoder, mark = codecs.getincrementaldecoder("utf-8")(errors="replace"), f"{READY}\n"
        while chunk := os.read(self.process.stderr.fileno(), 65536):
            self.held += decoder.decode(chunk)
            if self.held.startswith(mark) or f"\n{mark}" in self.held:
                before, _, after = self.held.partition(mark)
                self.held = before + after
                self.ready.set()
                return
        self.ended = True
        self.ready.set()

    def go(self, on_head) -> int | None:
        """Let it run; its exit code, or None where it ended before it was ready (then run it the usual way)."""
        from . import ssh

        self.ready.wait()
        if self.ended:
            self.process.wait()
            return None
        self.process.stdin.write(b"go\n")
        self.process.stdin.flush()
        heard = ssh.HeadFilter(sys.stderr, on_head)
        heard.write(self.held)
        code = ssh.follow(self.process, heard)
        heard.end()
        return code

    def cancel(self) -> None:
        """It runs nothing: its stdin ends, and so does the inv waiting there."""
        self.cancelled = True
        if not self.process.stdin.closed:
            self.process.stdin.close()

    def run_alone(self) -> int | None:
        """Where the settings here are the ones last seen (config_print) and one host is named: run without
        loading invoke here at all, once the ssh line checks out (`ssh -G`): the inv there, the same code at the
        same commit, checks the command line before it says READY. Its exit code; None where this command
        needs the usual way after all (which then says what went wrong, or runs it)."""
        if self.alone is None:
            return None
        from . import checkout, openssh, ssh
        from .session import Session

        root, host, flags, project_dir, remote_argv = self.alone
        options = openssh.SshFlags(*flags)
        try:
            session = Session(openssh.resolve(host, options))
        except openssh.ConfigError:
            return None
        if hand_over(self, root, host, options, session, project_dir, remote_argv) is None:
            return None
        code = self.go(functools.partial(checkout.report, root, project_dir, host))
        try:
            return None if code is None else ssh.exit_code(code, host)
        except ssh.ToolError as error:
            print(f"error: {error}", file=sys.stderr, flush=True)
            return error.code
