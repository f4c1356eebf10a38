"""A HOME for the local `inv` whose ~/.ssh/config names the test sshd the way users name login nodes.

`login-node` logs in with the authorized key; the other aliases are broken on purpose: `wrong-key` (a key the
server refuses), `stranger` (an empty known_hosts), `impostor` (known_hosts holds another key for that
address), `trusting` (StrictHostKeyChecking no), and two ProxyJump hops, through a good and a strange host.
"""

import os
import shutil
from pathlib import Path


def login_home(base: Path, ssh_server, project_dir: Path) -> dict:
    """Write base/home (.ssh/config, known_hosts, .invoke.yaml naming login-node and project_dir); the
    environment for the local `inv` (HOME there, none of our variables, no ssh agent)."""
    ssh_dir = base / "home" / ".ssh"
    ssh_dir.mkdir(parents=True, mode=0o700)
    shutil.copyfile(ssh_server.known_hosts, ssh_dir / "known_hosts")
    (base / "no_known_hosts").write_text("")
    wrong_key = Path(f"{ssh_server.unauthorized_key}.pub").read_text().split()[:2]
    (base / "other_known_hosts").write_text(f"[127.0.0.1]:{ssh_server.port} {' '.join(wrong_key)}\n")
    server = f"    HostName 127.0.0.1\n    Port {ssh_server.port}\n    User {ssh_server.user}\n"
    hosts = {
        "login-node": f"    IdentityFile {ssh_server.key}\n",
        "wrong-key": f"    IdentityFile {ssh_server.unauthorized_key}\n",
        "stranger": f"    IdentityFile {ssh_server.key}\n    UserKnownHostsFile {base / 'no_known_hosts'}\n",
        "impostor": f"    IdentityFile {ssh_server.key}\n    UserKnownHostsFile {base / 'other_known_hosts'}\n",
        "trusting": f"    IdentityFile {ssh_server.key}\n    UserKnownHostsFile {base / 'no_known_hosts'}\n"
                    "    StrictHostKeyChecking no\n",
        "behind-login": f"    IdentityFile {ssh_server.key}\n    ProxyJump login-node\n",
        "behind-stranger": f"    IdentityFile {ssh_server.key}\n    ProxyJump stranger\n",
    }  # fmt: skip
    (ssh_dir / "config").write_text("".join(f"Host {name}\n{server}{extra}" for name, extra in hosts.items()))
    (base / "home" / ".invoke.yaml").write_text(f"remote:\n  host: login-node\n  project_dir: {project_dir}\n")
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("INVOKE_", "SAM3_", "HF_", "SSH_"))}
    environ["HOME"] = str(base / "home")
    return environ


def one_line_error(done, code: int) -> str:
    assert done.returncode == code, done.stdout + done.stderr
    assert done.stderr.startswith("error: ") and done.stderr.strip().count("\n") == 0, done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    return done.stderr.strip()
