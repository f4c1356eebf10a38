"""The command lines inv -H sends, as text: light enough for its head start (early.py) to build one before
invoke is imported. Every value is quoted for the shell there; login_shell_safe() wraps a whole command for
whatever login shell runs it.
"""

import re
import shlex

from ..core.errors import ConfigError

INV = ".venv/bin/inv"
_HOME = re.compile(r"~[\w.-]*")  # ~ or ~user: left for the remote shell to expand


def remote_path(path: str) -> str:
    """A path for the remote shell: a leading ~ or ~user stays bare so that shell expands it, the rest is quoted."""
    head, slash, tail = path.partition("/")
    if _HOME.fullmatch(head):
        return head + slash + (shlex.quote(tail) if tail else "")
    return shlex.quote(path)


def remote_command(project_dir: str, inv_args: list[str]) -> str:
    """`cd DIR && exec env PYTHONUNBUFFERED=1 .venv/bin/inv ARGS...`, every value quoted for the remote shell
    (exec: a signal that kills inv there reaches ssh as such, not as the shell's exit code).

    Without a terminal there, Python would hold its output back in blocks; unbuffered, it streams as printed.
    """
    return f"cd {remote_path(project_dir)} && exec {shlex.join(['env', 'PYTHONUNBUFFERED=1', INV, *inv_args])}"


HEAD_MARK = "sam3-tasks-head:"
NO_CHECKOUT = 117  # the probed command's exit status where the checkout or its .venv is missing


def probed_command(project_dir: str, inv_args: list[str]) -> str:
    """remote_command, which first fails with NO_CHECKOUT where there is no checkout with .venv, and prints the
    checkout's commit as a first stderr line (HEAD_MARK): one remote command, one shell there, not three."""
    head = f"printf '{HEAD_MARK}%s\\n' \"$(git rev-parse HEAD 2>/dev/null)\" >&2"
    run = shlex.join(["env", "PYTHONUNBUFFERED=1", INV, *inv_args])
    return f"cd {remote_path(project_dir)} 2>/dev/null && test -x {INV} || exit {NO_CHECKOUT}; {head}; exec {run}"


def checkout_probe(project_dir: str) -> str:
    """A remote command that succeeds when DIR holds a checkout with its launcher venv."""
    return f"test -x {remote_path(project_dir.rstrip('/') + '/' + INV)}"


def login_shell_safe(command: str) -> str:
    """`exec /bin/sh -c '<command>'`, quoted so that any login shell passes it on unchanged: POSIX shells, and
    csh/tcsh, where `!` is history even inside single quotes (hence `'\\!'`) and a quote cannot hold a newline."""
    if "\n" in command or "\r" in command:
        raise ConfigError(
            "an argument holds a line break, which a csh or tcsh login shell cannot take; put that value in a file "
            "and pass the file's path"
        )
    return "exec /bin/sh -c " + shlex.quote(command).replace("!", "'\\!'")
