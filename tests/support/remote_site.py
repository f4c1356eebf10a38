"""The login node of tests/remote: a project copy here (the commit under test) and the checkout that
`inv -H login-node --setup` made of it there, on the loopback sshd; helpers to run the real `inv` against it.

`inv` runs in a session of its own (no controlling terminal): ssh can prompt nobody, unless a test says how
(SSH_ASKPASS, or a pseudo-terminal of its own).
"""

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

INV = Path(sys.executable).with_name("inv")


def git(folder: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(folder), "-c", "user.name=t", "-c", "user.email=t@t", *args],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def inv(args, environ: dict, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """The real `inv` with no terminal (a new session), stdin empty; text output."""
    return subprocess.run(
        [str(INV), *map(str, args)],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )


@dataclass
class Site:
    base: Path
    local: Path  # our checkout: the commit under test
    remote: Path  # the login node's checkout, made by --setup
    runtime: Path  # the login node's runtime settings (-f)
    environ: dict
    setup: subprocess.CompletedProcess

    def inv(self, *args, timeout=300, **env):
        return inv(args, dict(self.environ, **env), cwd=self.local, timeout=timeout)
