"""One login to a host, kept open by OpenSSH (its master connection), and the commands run through it.

Every command goes to the host's ControlPath in BatchMode: it never prompts. open() makes sure a master
answers there first (`ssh -O check`; else login.py logs in); run_first() skips that check, for the one
command of a plain `inv -H`: that ssh uses a live master, or becomes the kept master itself, and only where it
cannot log in on its own (nothing of the command ran then) does login.py take over, and the command runs again.
Every command is wrapped for the login shell there (login_shell_safe): csh and tcsh run it unchanged.
"""

import os
import shlex
import subprocess

from ..core.errors import ToolError
from .commands import login_shell_safe
from .openssh import Result, Target, home, run_ssh


class Session:
    """The master connection to one host (Target), and the commands that go through it."""

    def __init__(self, target: Target):
        self.target = target

    def open(self, said: str | None = None, dead: bool = False) -> None:
        """A master answers on the ControlPath once this returns; else a one-line error, nothing run there.
        said: what ssh said when a BatchMode login failed already; dead: a socket was there, no master behind."""
        from . import login

        with login.one_opener(self.target):
            check = run_ssh(self.target.ssh("-O", "check"))
            if check.returncode != 0:
                login.log_in(self.target, said, dead or "Connection refused" in check.stderr)

    def socket(self) -> str:
        """The control socket's path here (ssh expands `~` to the passwd entry's home)."""
        path = self.target.control_path
        return home() + path[1:] if path.startswith("~/") else path

    def had_master(self) -> bool:
        """Whether a control socket is there (a master answers on it, or one did and died)."""
        return os.path.exists(self.socket())

    def run_first(self, run, command: str):
        """run(argv) -> (exit code, what ssh said when it could not log in: None once the command started).
        The command through a live master, or through the master its ssh opens; where that login needs more
        than ssh can do alone, login.py logs in (prompting where it can), and the command runs again."""
        from . import login

        dead = self.had_master()
        if self.target.ours:  # ssh makes no folder for the socket
            os.makedirs(os.path.join(home(), ".ssh"), mode=0o700, exist_ok=True)
        code, failed = run(self.command(command, master=True))
        if failed is None:
            return code
        self.open(failed, dead)
        code, failed = run(self.command(command))
        if failed is not None:
            raise login.login_error(self.target, failed)
        return code

    def command(self, command: str, master: bool = False) -> list[str]:
        """ssh's argv for one command there, through the master (master: or as the master, where none answers);
        it never prompts."""
        options = self.target.master_options() if master else ["-o", "ControlMaster=no"]
        options += ["-o", "BatchMode=yes", "-o", "ClearAllForwardings=yes", "-o", "RemoteCommand=none"]
        return [*self.target.ssh("-T", *options), login_shell_safe(command)]

    def run(self, command: str, capture: bool = True) -> Result:
        """The command's exit code, and its output when captured (else it streams to ours); stdin: none."""
        if capture:
            done = subprocess.run(self.command(command), stdin=subprocess.DEVNULL, capture_output=True, text=True)
            return Result(done.returncode, done.stdout, done.stderr)
        return Result(subprocess.run(self.command(command), stdin=subprocess.DEVNULL).returncode)

    def popen(self, command: str, **kwargs) -> subprocess.Popen:
        return subprocess.Popen(self.command(command), **kwargs)

    def put(self, local: str, remote: str) -> None:
        """Copy a file there (its contents on the command's stdin, through the master)."""
        with open(local, "rb") as source:
            done = subprocess.run(self.command(f"cat > {shlex.quote(remote)}"), stdin=source, capture_output=True)
        if done.returncode != 0:
            said = done.stderr.decode(errors="replace").strip() or f"exit {done.returncode}"
            raise ToolError(f"copying {local} to {self.target.host}:{remote} failed ({said}); check the space there")

    def forward(self, local_port: int, remote_port: int, cancel: bool = False) -> None:
        """localhost:local_port here to localhost:remote_port there, through the master (`ssh -O forward`)."""
        spec = f"localhost:{local_port}:localhost:{remote_port}"
        done = run_ssh(self.target.ssh("-O", "cancel" if cancel else "forward", "-L", spec))
        if done.returncode != 0 and not cancel:
            said = " ".join(done.stderr.split())
            raise ToolError(f"cannot forward localhost:{local_port} to {self.target.host} ({said}); try again")
