#!/usr/bin/env python3
"""How much `inv -H` adds: `inv -H HOST run.train --dry-run` against a bare
`ssh HOST 'cd DIR && .venv/bin/inv run.train --dry-run'`, same host, same checkout, same run, and the same
connection reuse on both sides (the ssh config's ControlMaster auto, ControlPath, ControlPersist: one login,
then every command through it). Also the first `inv -H` (it logs in) and a second one through the live
connection. The two commands take turns, so that load on the machine falls on both alike.

Goal (issue 21): a median ratio within 1.15. By default the login node is a throwaway sshd on loopback (the
tests' tests/support/ssh_server.py; root, Debian's sshd) serving this checkout; --host and --project-dir
measure a real one instead (an ~/.ssh/config alias, with ControlMaster/ControlPath/ControlPersist there for
the reuse, that logs in without a prompt or already has its connection open; this commit checked out there).
Usage: .venv/bin/python scripts/bench_remote.py [--runs 10] [--host ALIAS --project-dir DIR]
"""

import argparse
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TASK = ["run.train", "--dry-run"]


def timed(argv: list[str], env: dict) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    took = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"error: {shlex.join(argv)} exited {done.returncode}: {done.stderr.strip()[-500:]}")
    return took


def loopback_login(folder: Path):
    """A throwaway sshd on loopback and a HOME whose ~/.ssh/config names it bench-login; (process, env)."""
    sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # tasks.py and the tests' support modules
    from support import ssh_server

    if ssh_server.why_no_sshd():
        sys.exit(f"error: {ssh_server.why_no_sshd()}; or pass --host and --project-dir for a real login node")
    (folder / "sshd").mkdir()
    process, server = ssh_server.start(folder / "sshd")
    ssh_dir = folder / "home" / ".ssh"
    ssh_dir.mkdir(parents=True, mode=0o700)
    (ssh_dir / "known_hosts").write_text(server.known_hosts.read_text())
    (ssh_dir / "config").write_text(
        f"Host bench-login\n    HostName 127.0.0.1\n    Port {server.port}\n    User {server.user}\n"
        f"    IdentityFile {server.key}\n    UserKnownHostsFile {ssh_dir / 'known_hosts'}\n"
        f"    IdentitiesOnly yes\n    BatchMode yes\n    ControlMaster auto\n    ControlPath {ssh_dir / 'cm-%C'}\n"
        "    ControlPersist 10m\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INVOKE_", "SSH_"))}
    return process, dict(env, HOME=str(folder / "home")), ssh_server.stop, ssh_dir / "config"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--host", help="an ~/.ssh/config alias (default: a loopback sshd serving this checkout)")
    parser.add_argument("--project-dir", help="the checkout on --host")
    args = parser.parse_args()
    if bool(args.host) != bool(args.project_dir):
        sys.exit("error: --host and --project-dir go together; pass both, or neither for the loopback sshd")
    inv = str(Path(sys.executable).with_name("inv"))
    with tempfile.TemporaryDirectory(prefix="bench-remote-") as scratch:
        process, stop, ssh_config, config = None, None, [], []
        if args.host:
            host, project_dir, env = args.host, args.project_dir, dict(os.environ)
        else:  # OpenSSH reads the passwd entry's home, not $HOME: name the file (-F for ssh, -S for inv -H)
            process, env, stop, path = loopback_login(Path(scratch))
            host, project_dir, ssh_config, config = "bench-login", str(ROOT), ["-F", str(path)], ["-S", str(path)]
        env["INVOKE_REMOTE_PROJECT_DIR"] = project_dir
        ours = [inv, "-H", host, *config, *TASK]
        bare = ["ssh", *ssh_config, host, f"cd {shlex.quote(project_dir)} && .venv/bin/inv {shlex.join(TASK)}"]
        try:
            if stop:  # a fresh start: no connection is open yet
                subprocess.run(["ssh", *ssh_config, "-O", "exit", host], capture_output=True, env=env)
            first, second = timed(ours, env), timed(ours, env)  # logs in (and warms the caches); reuses it
            bare_s, ours_s = [], []
            for _ in range(args.runs):
                bare_s.append(timed(bare, env))
                ours_s.append(timed(ours, env))
        finally:
            if stop:
                subprocess.run(["ssh", *ssh_config, "-O", "exit", host], capture_output=True, env=env)
                stop(process)
    report(ours, bare_s, ours_s, first, second)
    return 0


def report(ours, bare_s, ours_s, first, second) -> None:
    base = statistics.median(bare_s)
    print(f"{'command (' + str(len(bare_s)) + ' runs each, taking turns)':66} {'median ms':>10} {'ratio':>7}")
    for name, samples in (
        ("ssh HOST 'cd DIR && .venv/bin/inv run.train --dry-run'", bare_s),
        (shlex.join(ours), ours_s),
    ):
        print(f"{name:66} {statistics.median(samples) * 1000:10.1f} {statistics.median(samples) / base:7.2f}")
    print(
        f"first inv -H (logs in, opens the connection): {first * 1000:.1f} ms; a second one through the live "
        f"connection: {second * 1000:.1f} ms"
    )
    ratio = statistics.median(ours_s) / base
    print(f"inv -H / bare ssh = {ratio:.2f} (goal <= 1.15): {'met' if ratio <= 1.15 else 'NOT met'}")


if __name__ == "__main__":
    sys.exit(main())
