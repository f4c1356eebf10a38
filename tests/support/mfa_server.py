"""A login node with a second factor, as MFA sites run them: Debian's sshd asks for the key and then, through
real PAM (KbdInteractiveAuthentication, `AuthenticationMethods publickey,keyboard-interactive:pam`), for a
time-based one-time code checked by pam_oath (libpam-oath). A code is good once: pam_oath refuses it again.

OpenSSH 9.2 has no PAMServiceName: the PAM service is the name sshd runs under, so sshd starts through a
link named after a service file of our own in /etc/pam.d (removed again by stop()).

Answering: `askpass_env()` gives ssh an SSH_ASKPASS program (SSH_ASKPASS_REQUIRE=force) that logs every
prompt it is shown in `asked` and answers the current code (or a wrong one), `code()` the code for a terminal.
"""

import getpass
import os
import secrets
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from conftest import skip_unless_required

from . import ssh_server

PAM_DIR = Path("/etc/pam.d")
PAM_OATH = ("/lib/x86_64-linux-gnu/security/pam_oath.so", "/usr/lib/x86_64-linux-gnu/security/pam_oath.so")


def why_no_mfa_server():
    if ssh_server.why_no_sshd():
        return ssh_server.why_no_sshd()
    if os.geteuid() != 0:
        return "an sshd with its own PAM service needs root (a file in /etc/pam.d)"
    if shutil.which("oathtool") is None or not any(os.path.exists(path) for path in PAM_OATH):
        return "no oathtool or pam_oath here: run sudo scripts/install-system-deps (oathtool, libpam-oath)"
    return None


@dataclass
class MfaServer:
    server: ssh_server.SSHServer
    process: subprocess.Popen
    folder: Path
    secret: str  # hex, for oathtool
    service: Path  # /etc/pam.d/<ours>

    @property
    def asked(self) -> Path:
        return self.folder / "asked"

    def prompts(self) -> list[str]:
        return self.asked.read_text().splitlines() if self.asked.exists() else []

    def accepted(self) -> int:
        """How many logins answered the second factor (sshd's log)."""
        return self.server.log.read_text().count("Accepted keyboard-interactive/pam")

    def code(self) -> str:
        """The next one-time code: each answer (here or by askpass) takes a later 30 s step, since pam_oath takes
        a step once and no earlier one after it (the window, 20 steps, lets them run ahead of the clock)."""
        with (self.folder / "answered").open("a+") as answered:
            answered.seek(0)
            ahead = len(answered.read().splitlines())
            answered.write("code\n")
        now = int(time.time()) + 30 * ahead
        done = subprocess.run(["oathtool", "--totp", f"--now=@{now}", self.secret], capture_output=True, text=True)
        return done.stdout.strip()

    def askpass_env(self, wrong: bool = False) -> dict:
        script = self.folder / ("askpass-wrong" if wrong else "askpass")
        answered = self.folder / "answered"
        answer = "echo 000000" if wrong else f"oathtool --totp --now=@$(( $(date +%s) + 30 * $n )) {self.secret}"
        script.write_text(
            f'#!/bin/sh\necho "$1" >> {self.asked}\nn=$(cat {answered} 2>/dev/null | wc -l)\necho askpass >> {answered}\n'
            f"{answer}\n"
        )
        script.chmod(0o755)
        return {"SSH_ASKPASS": str(script), "SSH_ASKPASS_REQUIRE": "force"}


def start(folder: Path) -> MfaServer:
    reason = why_no_mfa_server()
    if reason:
        skip_unless_required(reason)
    name = f"sam3-mfa-test-{secrets.token_hex(4)}"
    secret = secrets.token_hex(20)
    users = folder / "users.oath"
    users.write_text(f"HOTP/T30/6 {getpass.getuser()} - {secret}\n")
    users.chmod(0o600)
    service = PAM_DIR / name
    service.write_text(
        f"auth required pam_oath.so usersfile={users} window=20 digits=6\n"  # window: the askpass codes run ahead
        "auth required pam_permit.so\naccount required pam_permit.so\nsession required pam_permit.so\n"
    )
    link = folder / name
    link.symlink_to(ssh_server.SSHD)
    extra = (
        "UsePAM yes",
        "KbdInteractiveAuthentication yes",
        "PermitRootLogin yes",
        "AuthenticationMethods publickey,keyboard-interactive:pam",
    )
    try:
        process, server = ssh_server.start(folder, extra, program=link)
    except Exception:
        service.unlink()
        raise
    return MfaServer(server, process, folder, secret, service)


def stop(mfa: MfaServer) -> None:
    ssh_server.stop(mfa.process)
    mfa.service.unlink(missing_ok=True)
