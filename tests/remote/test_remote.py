"""remote.run for real: the real `inv` here, Debian's sshd on loopback (tests/ssh_server.py) as the login node,
and this checkout as the project there. ~/.ssh/config names the server the way users name login nodes.

sshd's sessions get sshd's environment, not ours, so the remote side's settings travel in a runtime file
(`-f`) in the command line: its runs land in a temp folder, never in this checkout's experiments/.
"""

import json
import re
import socket
import subprocess
from pathlib import Path

import pytest
from conftest import ROOT, run_inv
from support.ssh_login import close_masters, login_home, one_line_error, passwd_env

from tasks.lib.remote import commands, ssh

TRAIN_VENV = ROOT / ".venv-train"


@pytest.fixture(scope="module")
def login(ssh_server, tmp_path_factory):
    """A HOME whose ~/.ssh/config names the test sshd `login-node` (tests/support/ssh_login.py), a runtime file
    for the remote side, and an environment for the local `inv`."""
    base = tmp_path_factory.mktemp("remote")
    environ = login_home(base, ssh_server, ROOT)
    runtime = base / "runtime.yaml"
    runtime.write_text(f"paths:\n  experiment_root: {base / 'exp'}\n  demo_data_root: {base / 'demo-data'}\n")
    yield base, runtime, environ
    close_masters(environ)


@pytest.mark.slow
@pytest.mark.skipif(not (TRAIN_VENV / "bin" / "python").exists(), reason="no training env: scripts/setup-tests")
def test_run_train_on_the_login_node_streams_its_output_and_records_the_run_there(login):
    base, runtime, environ = login
    done = run_inv(
        ["remote.run", "--command", f"-f {runtime} run.train --datasets actions --name remote-demo"],
        environ,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "pre-flight" in done.stdout and "remote-demo (local)" in done.stdout
    assert "from your laptop: ssh -N -L 6006:localhost:6006" in done.stdout  # the login node saw SSH_CONNECTION
    assert "sam3_cpu: no CUDA, sam3 0.1.4: CPU patches applied" in done.stdout  # SAM3's Trainer ran there
    record = json.loads((base / "exp" / "remote-demo" / "launch.json").read_text())
    assert [(t["dataset"], t["exit_code"]) for t in record["tasks"]] == [("actions", 0)]
    logs = base / "exp" / "remote-demo" / "actions" / "logs" / "actions"
    assert "Meters_train/val_roboflow100/detection/coco_eval_bbox_AP" in (logs / "val_stats.json").read_text()
    assert "Losses/train_all_loss_giou" in (logs / "train_stats.json").read_text() and (logs / "log.txt").is_file()
    assert not (ROOT / "experiments" / "remote-demo").exists()


def test_the_remote_exit_code_and_one_line_error_come_back(login):
    _, runtime, environ = login
    done = run_inv(["remote.run", "--command", f"-f {runtime} run.train --config no-such-config --dry-run"], environ)
    assert one_line_error(done, 2).startswith("error: ") and "no-such-config" in done.stderr


def test_nothing_from_our_environment_reaches_the_login_node(login):
    _, runtime, environ = login
    canary = "hf_remoteCanary0123456789abcdef"
    done = run_inv(["remote.run", "--command", f"-f {runtime} config.show --json"], dict(environ, HF_TOKEN=canary))
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout)["secrets"]["HF_TOKEN"] == "not set" and canary not in done.stdout + done.stderr


def test_a_closed_port_is_one_line_exit_1(login, ssh_server):
    _, _, environ = login
    done = run_inv(["remote.run", "run.list", "--host", f"{ssh_server.user}@127.0.0.1:1"], environ)
    assert one_line_error(done, 1) == (
        f"error: cannot reach {ssh_server.user}@127.0.0.1:1 over SSH (Connection refused at 127.0.0.1 port 1); "
        f"check `ssh -p 1 {ssh_server.user}@127.0.0.1` works"
    )


def test_a_port_that_never_answers_times_out_as_ssh_config_says(tmp_path, clean_env):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(0)  # a full accept queue: Linux drops further SYNs, as a firewall would
        port = server.getsockname()[1]
        queued = [socket.socket() for _ in range(3)]
        for client in queued:
            client.setblocking(False)
            client.connect_ex(("127.0.0.1", port))
        ssh_dir = Path(clean_env["HOME"]) / ".ssh"
        ssh_dir.mkdir()
        (ssh_dir / "config").write_text(f"Host silent\n    HostName 127.0.0.1\n    Port {port}\n    ConnectTimeout 1\n")
        environ = dict(clean_env, **passwd_env(tmp_path, home=ssh_dir.parent))
        done = run_inv(["remote.run", "run.list", "--host", "silent"], environ)
        for client in queued:
            client.close()
    assert one_line_error(done, 1) == (
        f"error: cannot reach silent over SSH (no answer from 127.0.0.1 port {port} within 1 s); check `ssh silent` works"
    )


def test_no_key_to_offer_is_an_authentication_error(login, ssh_server):
    _, _, environ = login
    done = run_inv(["remote.run", "run.list", "--host", f"127.0.0.1:{ssh_server.port}"], environ)
    assert one_line_error(done, 2) == (
        f"error: 127.0.0.1:{ssh_server.port} refused to log in {ssh_server.user}@127.0.0.1 (Permission denied "
        f"(publickey); no key file and no ssh agent found); make `ssh -p {ssh_server.port} 127.0.0.1` log in without a "
        "password: IdentityFile for it in ~/.ssh/config, or ssh-add your key"
    )


def test_a_refused_key_names_user_and_key_exit_2(login, ssh_server):
    _, _, environ = login
    done = run_inv(["remote.run", "run.list", "--host", "wrong-key"], environ)
    assert one_line_error(done, 2) == (
        f"error: wrong-key refused to log in {ssh_server.user}@127.0.0.1 (Permission denied (publickey); tried key "
        f"{ssh_server.unauthorized_key}); make `ssh wrong-key` log in without a password: IdentityFile for it in "
        "~/.ssh/config, or ssh-add your key"
    )


def test_an_unknown_host_key_is_refused_unless_ssh_config_says_otherwise(login, ssh_server):
    base, _, environ = login
    done = run_inv(["remote.run", "--version", "--host", "stranger"], environ)
    assert one_line_error(done, 2) == (
        f"error: the SSH host key of stranger ([127.0.0.1]:{ssh_server.port}) is not in your known_hosts; run "
        "`ssh stranger` once to check and accept it"
    )
    assert (base / "no_known_hosts").read_text() == ""
    trusting = run_inv(["remote.run", "--version", "--host", "trusting"], environ)  # StrictHostKeyChecking no
    assert trusting.returncode == 0 and trusting.stdout.startswith("Invoke "), trusting.stdout + trusting.stderr


def test_a_changed_host_key_is_always_refused(login, ssh_server):
    base, _, environ = login
    line = one_line_error(run_inv(["remote.run", "--version", "--host", "impostor"], environ), 2)
    assert line.startswith("error: the SSH host key of impostor is not the one in your known_hosts (it offered SHA256:")
    assert line.endswith(f"(ssh-keygen -f '{base / 'other_known_hosts'}' -R '[127.0.0.1]:{ssh_server.port}')")


def test_a_command_killed_there_is_one_line_exit_1(login, tmp_path):
    _, _, environ = login
    inv = tmp_path / "fake-checkout" / ".venv" / "bin" / "inv"
    inv.parent.mkdir(parents=True)
    inv.write_text("#!/bin/sh\nkill -KILL $$\n")  # no exit status: sshd reports the signal instead
    inv.chmod(0o755)
    done = run_inv(["remote.run", "run.list", "--project-dir", str(inv.parents[2])], environ)
    assert one_line_error(done, 1) == (
        "error: the command on login-node ended without an exit status (the connection dropped, or a signal killed "
        "it); see its output above, and inv remote.run run.status"
    )


def test_proxyjump_hops_are_held_to_known_hosts_too(login):
    _, _, environ = login
    done = run_inv(["remote.run", "--version", "--host", "behind-login"], environ)
    assert done.returncode == 0 and done.stdout.startswith("Invoke "), done.stdout + done.stderr
    line = one_line_error(run_inv(["remote.run", "--version", "--host", "behind-stranger"], environ), 2)
    assert line.startswith("error: the SSH host key of stranger ")


def test_a_missing_checkout_is_one_line_exit_2(login):
    _, _, environ = login
    done = run_inv(["remote.run", "run.list", "--project-dir", "~/no such checkout"], environ)
    assert one_line_error(done, 2) == (
        "error: no sam3-tasks checkout with .venv at ~/no such checkout on login-node: clone it there and run "
        "scripts/bootstrap (or pass --project-dir)"
    )


def test_no_host_is_one_line_exit_2(clean_env):
    line = one_line_error(run_inv(["remote.run", "run.list"], clean_env), 2)
    assert "pass --host" in line and "remote.host" in line


def test_dry_run_connects_to_nothing_and_prints_the_exact_command(login, ssh_server):
    _, _, environ = login
    command = "-f 'my cfg.yaml' run.train --config 'a b;$(touch /tmp/pwned).yaml' --set x=\"it's\""
    done = run_inv(["remote.run", "--command", command, "--dry-run", "--host", "nobody@nosuch.invalid:2222"], environ)
    assert done.returncode == 0, done.stderr
    connect, reuse, command = done.stdout.splitlines()
    assert connect == "would connect to nobody@nosuch.invalid:2222 as nobody@nosuch.invalid port 2222"
    assert re.fullmatch(
        r"would reuse the connection at ~/\.ssh/sam3-[0-9a-f]{16} \(our ControlPath, as your ssh "
        r"config sets none\) or log in once and keep it, ControlPersist 1h \(ours\)",
        reuse,
    )
    assert command == (
        f"would run there: cd {ROOT} && exec env PYTHONUNBUFFERED=1 .venv/bin/inv -f 'my cfg.yaml' run.train "
        "--config 'a b;$(touch /tmp/pwned).yaml' --set 'x=it'\"'\"'s'"
    )
    alias = run_inv(["remote.run", "run.status", "--dry-run", "--host", "behind-login"], environ)
    assert alias.stdout.splitlines()[0] == (
        f"would connect to behind-login as {ssh_server.user}@127.0.0.1 port {ssh_server.port} via login-node"
    )


@pytest.mark.parametrize(
    ("path", "quoted", "expanded"),
    [
        ("~/sam3-tasks", "~/sam3-tasks", "{home}/sam3-tasks"),
        ("~", "~", "{home}"),
        ("~/my dir/x", "~/'my dir/x'", "{home}/my dir/x"),
        ("~/$(touch pwned);x", "~/'$(touch pwned);x'", "{home}/$(touch pwned);x"),
        ("~root/x", "~root/x", "/root/x"),
        ("/opt/a b", "'/opt/a b'", "/opt/a b"),
        ("~;touch pwned", "'~;touch pwned'", "~;touch pwned"),
        ("$HOME/x", "'$HOME/x'", "$HOME/x"),
    ],
)
def test_remote_paths_expand_only_a_leading_tilde_in_a_real_shell(tmp_path, path, quoted, expanded):
    assert commands.remote_path(path) == quoted
    shown = subprocess.run(
        ["sh", "-c", f"printf '%s' {quoted}"],
        cwd=tmp_path,
        env={"HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert shown.stdout == expanded.format(home=tmp_path) and not (tmp_path / "pwned").exists()


def test_remote_command_quotes_every_argument():
    args = ssh.split_command("-f 'a b.yaml' run.train --set 'x=$(id); y' --name \"n m\"")
    assert args == ["-f", "a b.yaml", "run.train", "--set", "x=$(id); y", "--name", "n m"]
    assert commands.remote_command("~/sam3 tasks", args) == (
        "cd ~/'sam3 tasks' && exec env PYTHONUNBUFFERED=1 .venv/bin/inv -f 'a b.yaml' run.train --set 'x=$(id); y' --name 'n m'"
    )
    assert commands.checkout_probe("~/sam3-tasks/") == "test -x ~/sam3-tasks/.venv/bin/inv"
    assert commands.checkout_probe("/") == "test -x /.venv/bin/inv"
