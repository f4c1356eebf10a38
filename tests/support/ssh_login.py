"""A HOME for the local `inv` whose ~/.ssh/config names the test sshd the way users name login nodes.

OpenSSH takes `~` (its config, known_hosts, ControlPath) from the passwd entry, not from $HOME: the
environment returned here runs every program under libnss-wrapper (Debian's libnss-wrapper), with a copy of
the passwd file whose entry for this user has that HOME, so the real `ssh` reads the test's ~/.ssh/config.

~/.ssh/config only Includes config.d/*, where the aliases are (paramiko could not see them): `login-node`
logs in with the authorized key; the others are broken on purpose: `wrong-key` (a key the server refuses),
`stranger` (an empty known_hosts), `impostor` (known_hosts holds another key for that address), `trusting`
(StrictHostKeyChecking no: ssh adds the key to a known_hosts file of its own), and two ProxyJump hops, through
a good and a strange host.
"""

import glob
import os
import shutil
import subprocess
from pathlib import Path

from conftest import skip_unless_required

NSS_WRAPPER = "libnss_wrapper.so"


def why_no_nss_wrapper():
    found = glob.glob(f"/usr/lib/*/{NSS_WRAPPER}") + glob.glob(f"/usr/lib/{NSS_WRAPPER}")
    return None if found else "no libnss-wrapper here: run sudo scripts/install-system-deps"


def passwd_env(folder: Path, home: Path | None = None, shell: str | None = None) -> dict:
    """Variables under which this user's passwd entry has home and/or shell changed (files written in folder)."""
    reason = why_no_nss_wrapper()
    if reason:
        skip_unless_required(reason)
    lines = []
    for line in Path("/etc/passwd").read_text().splitlines():
        fields = line.split(":")
        if len(fields) == 7 and fields[2] == str(os.getuid()):
            fields[5], fields[6] = str(home or fields[5]), shell or fields[6]
        lines.append(":".join(fields))
    (folder / "passwd").write_text("\n".join(lines) + "\n")
    shutil.copyfile("/etc/group", folder / "group")
    return {
        "LD_PRELOAD": NSS_WRAPPER,
        "NSS_WRAPPER_PASSWD": str(folder / "passwd"),
        "NSS_WRAPPER_GROUP": str(folder / "group"),
    }


def alias(name: str, server, extra: str = "", key=None) -> str:
    """A Host block for the test sshd `server`."""
    key_line = f"    IdentityFile {key or server.key}\n" if key is not False else ""
    return f"Host {name}\n    HostName {server.host}\n    Port {server.port}\n    User {server.user}\n{key_line}{extra}"


def login_home(base: Path, ssh_server, project_dir: Path) -> dict:
    """Write base/home (.ssh/config, config.d, known_hosts, .invoke.yaml naming login-node and project_dir); the
    environment for the local `inv` (HOME there, as ssh sees it too; none of our variables, no ssh agent)."""
    home = base / "home"
    ssh_dir = home / ".ssh"
    (ssh_dir / "config.d").mkdir(parents=True, mode=0o700)
    shutil.copyfile(ssh_server.known_hosts, ssh_dir / "known_hosts")
    (base / "no_known_hosts").write_text("")
    wrong_key = Path(f"{ssh_server.unauthorized_key}.pub").read_text().split()[:2]
    (base / "other_known_hosts").write_text(f"[127.0.0.1]:{ssh_server.port} {' '.join(wrong_key)}\n")
    trusting = base / "trusting_known_hosts"
    hosts = [
        alias("login-node", ssh_server),
        alias("wrong-key", ssh_server, key=ssh_server.unauthorized_key),
        alias("stranger", ssh_server, f"    UserKnownHostsFile {base / 'no_known_hosts'}\n"),
        alias("impostor", ssh_server, f"    UserKnownHostsFile {base / 'other_known_hosts'}\n"),
        alias("trusting", ssh_server, f"    UserKnownHostsFile {trusting}\n    StrictHostKeyChecking no\n"),
        alias("behind-login", ssh_server, "    ProxyJump login-node\n"),
        alias("behind-stranger", ssh_server, "    ProxyJump stranger\n"),
    ]
    (ssh_dir / "config").write_text("Include config.d/*\n")
    (ssh_dir / "config.d" / "cluster").write_text("".join(hosts))
    (home / ".invoke.yaml").write_text(f"remote:\n  host: login-node\n  project_dir: {project_dir}\n")
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("INVOKE_", "SAM3_", "HF_", "SSH_"))}
    return dict(environ, HOME=str(home), **passwd_env(base, home=home))


def add_host(environ: dict, block: str, server=None) -> None:
    """One more alias in the HOME's ssh config (its own Included file), and the server's key in known_hosts."""
    ssh_dir = Path(environ["HOME"]) / ".ssh"
    name = block.split()[1]
    (ssh_dir / "config.d" / name).write_text(block)
    if server is not None:
        with (ssh_dir / "known_hosts").open("a") as known:
            known.write(server.known_hosts.read_text())


def masters(environ: dict) -> list[Path]:
    """The control sockets of the masters in that HOME (ours: ~/.ssh/sam3-*; the tests' own: ~/.ssh/cm-*)."""
    ssh_dir = Path(environ["HOME"]) / ".ssh"
    return sorted(p for p in ssh_dir.glob("*") if p.is_socket())


def close_masters(environ: dict) -> None:
    """`ssh -O exit` every master that HOME's `inv -H` left behind (they outlive it: ControlPersist)."""
    for socket in masters(environ):
        subprocess.run(
            ["ssh", "-F", "none", "-o", f"ControlPath={socket}", "-O", "exit", "x"],
            capture_output=True,
            stdin=subprocess.DEVNULL,
            env=environ,
            timeout=30,
        )


def one_line_error(done, code: int) -> str:
    assert done.returncode == code, done.stdout + done.stderr
    assert done.stderr.startswith("error: ") and done.stderr.strip().count("\n") == 0, done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    return done.stderr.strip()
