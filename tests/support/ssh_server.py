"""A real OpenSSH server on loopback for the tests: Debian's /usr/sbin/sshd with its own config and keys.

Registered for every module in tests/conftest.py (`pytest_plugins`), so a test just asks for it:

    def test_x(ssh_server):
        assert ssh_server.run("echo", "hi").stdout == "hi\n"

One sshd per session listens on 127.0.0.1 at a free port, in the foreground (`-D -e`, its log in a file),
with a throwaway host key, one authorized client key pair (`key`) and one it refuses (`unauthorized_key`;
`authorize()` adds more), public-key login only, an internal SFTP server, and `known_hosts` holding its host key for clients that
check it. It logs in as the user the tests run as (root logs in with a key only). It skips, with the
reason, where sshd or ssh-keygen is missing; SAM3_REQUIRE_SERVICES=1 (CI) turns that skip into a failure.
"""

import getpass
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import skip_unless_required

from tasks.lib.core import processes

SSHD = "/usr/sbin/sshd"
PRIVSEP_DIR = Path("/run/sshd")  # sshd refuses to start without its privilege-separation folder
START_S = 15.0


def why_no_sshd():
    """Why this machine cannot run the server, or None when it can."""
    if not os.access(SSHD, os.X_OK):
        return f"no OpenSSH server here ({SSHD} missing): run sudo scripts/install-system-deps"
    if shutil.which("ssh-keygen") is None:
        return "no ssh-keygen here: run sudo scripts/install-system-deps (openssh-client)"
    if os.geteuid() != 0 and not PRIVSEP_DIR.is_dir():
        return f"sshd needs {PRIVSEP_DIR}, which only root can create: run the tests as root once, or create it"
    return None


@dataclass(frozen=True)
class SSHServer:
    """A running sshd: where it listens, who logs in with which key, and the host key clients should trust."""

    host: str
    port: int
    user: str
    key: Path  # private key whose public half is authorized
    unauthorized_key: Path  # a valid key pair the server refuses
    known_hosts: Path  # one line: [host]:port and the server's host key
    authorized_keys: Path
    log: Path  # sshd's own log (-e)

    def authorize(self, public_key: Path) -> None:
        """Let one more key log in (sshd reads authorized_keys at every login)."""
        with self.authorized_keys.open("a") as out:
            out.write(Path(public_key).read_text())

    def ssh_args(self, key=None):
        """argv prefix of the OpenSSH client for this server (no config, no agent, strict host key check)."""
        return [
            "ssh",
            "-F",
            "none",
            "-p",
            str(self.port),
            "-i",
            str(key or self.key),
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "IdentityAgent=none",
            "-o",
            "BatchMode=yes",
            "-o",
            f"UserKnownHostsFile={self.known_hosts}",
            "-o",
            "StrictHostKeyChecking=yes",
            f"{self.user}@{self.host}",
        ]

    def run(self, *command, key=None, check=True, timeout=30):
        """Run a command on the server over ssh; text output."""
        done = subprocess.run(
            [*self.ssh_args(key), "--", *map(str, command)],
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        if check and done.returncode != 0:
            raise AssertionError(f"ssh {' '.join(map(str, command))} exited {done.returncode}: {done.stderr.strip()}")
        return done


def _keygen(path: Path) -> Path:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", path.name, "-f", str(path)],
        check=True,
        capture_output=True,
        stdin=subprocess.DEVNULL,
    )
    return path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _config(folder: Path, port: int, authorized: Path, extra: tuple[str, ...] = ()) -> Path:
    lines = [
        *extra,  # first: sshd takes the first value it reads for a keyword, so these override the defaults below
        f"ListenAddress 127.0.0.1:{port}",
        f"HostKey {folder / 'host_ed25519'}",
        f"PidFile {folder / 'sshd.pid'}",
        f"AuthorizedKeysFile {authorized}",
        "StrictModes no",  # the keys live in a pytest tmp folder
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "UsePAM no",
        "PermitRootLogin prohibit-password",
        "Subsystem sftp internal-sftp",
        "LogLevel VERBOSE",
    ]
    config = folder / "sshd_config"
    config.write_text("\n".join(lines) + "\n")
    return config


def _wait_for_banner(process: subprocess.Popen, port: int, log: Path) -> None:
    deadline = time.monotonic() + START_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"sshd exited {process.returncode}: {log.read_text().strip()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                if sock.recv(64).startswith(b"SSH-2.0-"):
                    return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"sshd did not answer on 127.0.0.1:{port} within {START_S:.0f} s: {log.read_text()[-2000:]}")


def start(folder: Path, extra: tuple[str, ...] = (), env: dict | None = None, program: Path | None = None):
    """Another sshd, with more sshd_config lines (e.g. `SetEnv NAME=value` for its sessions, or `UsePAM yes`:
    they win over the defaults); env: its environment; program: a link to sshd whose name is its PAM service.
    (process, SSHServer); stop() it after."""
    keys = folder / "keys"
    keys.mkdir(mode=0o700)
    host_key = _keygen(folder / "host_ed25519")
    key, wrong = _keygen(keys / "id_ed25519"), _keygen(keys / "unauthorized_ed25519")
    authorized = folder / "authorized_keys"
    authorized.write_text(Path(f"{key}.pub").read_text())
    if os.geteuid() == 0:
        PRIVSEP_DIR.mkdir(mode=0o755, exist_ok=True)
    error = None
    for _ in range(3):  # the free port may be taken between the probe and sshd's bind
        port = _free_port()
        log = folder / "sshd.log"
        with log.open("wb") as out:
            argv = [str(program or SSHD), "-D", "-e", "-f", str(_config(folder, port, authorized, extra))]
            process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out, env=env)
        try:
            _wait_for_banner(process, port, log)
        except RuntimeError as exc:
            error = exc
            stop(process)
            continue
        host_public = Path(f"{host_key}.pub").read_text().split()[:2]
        known_hosts = folder / "known_hosts"
        known_hosts.write_text(f"[127.0.0.1]:{port} {' '.join(host_public)}\n")
        return process, SSHServer("127.0.0.1", port, getpass.getuser(), key, wrong, known_hosts, authorized, log)
    raise RuntimeError(f"could not start sshd: {error}")


def stop(process: subprocess.Popen) -> None:
    processes.stop(process)


@pytest.fixture(scope="session")
def ssh_server(tmp_path_factory):
    """A running sshd on loopback for the session (skips where it cannot run)."""
    reason = why_no_sshd()
    if reason:
        skip_unless_required(reason)
    try:
        process, server = start(tmp_path_factory.mktemp("sshd"))
    except RuntimeError as exc:
        pytest.fail(str(exc))
    try:
        if shutil.which("ssh"):  # a real login, so a locked account or a refused key fails here, with sshd's words
            probe = server.run("true", check=False)
            if probe.returncode != 0:
                pytest.fail(f"ssh login to the test sshd failed: {probe.stderr.strip()}\n{server.log.read_text()}")
        yield server
    finally:
        stop(process)
