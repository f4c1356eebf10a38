"""env.dvc with an SSH remote, for real: the real `inv` against Debian's sshd on loopback (tests/ssh_server.py).

The login (user, port, key file, passphrase) may only be in .dvc/config.local; the server's host key must be
in the user's known_hosts (DVC itself does not check it); a canary round trip proves the rest.
"""

import hashlib
import json
import shutil
import socket
import subprocess
from pathlib import Path

import pytest
from conftest import files_holding
from test_env_tracking import dvc, git_repo, run_env

from tasks.lib.env import dvc_setup

PASSPHRASE = "sshPassphraseCanary0123456789abcdefXYZ"
PASSWORD = "sshPasswordCanary0123456789abcdefXYZ"


@pytest.fixture
def ssh_env(tool_env, ssh_server):
    """The test environment with the server's host key in ~/.ssh/known_hosts and its key."""
    ssh_dir = Path(tool_env["HOME"]) / ".ssh"
    ssh_dir.mkdir(mode=0o700)
    shutil.copyfile(ssh_server.known_hosts, ssh_dir / "known_hosts")
    return dict(tool_env, SAM3_DVC_SSH_KEYFILE=str(ssh_server.key))


def remote_url(server, store: Path, port=None) -> str:
    return f"ssh://{server.user}@{server.host}:{port or server.port}{store}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def one_line_error(done) -> str:
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stderr.strip().count("\n") == 0, done.stderr
    return done.stderr


def test_round_trip_over_ssh_keeps_the_login_local_and_verify_refuses_a_corrupted_object(ssh_env, tmp_path, ssh_server):
    repo, store = git_repo(tmp_path / "repo"), tmp_path / "store"
    args = [
        "env.dvc",
        "--repo",
        str(repo),
        "--remote",
        remote_url(ssh_server, store),
        "--track",
        str(repo / "data" / "ds"),
        "--push",
    ]
    done = run_env(args, ssh_env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "pushed and pulled a" in done.stdout and "pushed data/ds.dvc" in done.stdout
    assert "is in your known_hosts" in done.stdout
    tracked = (repo / ".dvc" / "config").read_text()
    assert f"url = ssh://127.0.0.1{store}\n" in tracked and "verify = true" in tracked
    assert "port" not in tracked and "user" not in tracked and "keyfile" not in tracked
    local = repo / ".dvc" / "config.local"
    assert local.read_text().split("\n", 1)[1].split() == [
        "user",
        "=",
        ssh_server.user,
        "port",
        "=",
        str(ssh_server.port),
        "keyfile",
        "=",
        str(ssh_server.key),
    ]
    assert oct(local.stat().st_mode & 0o777) == "0o600"
    subprocess.run(["git", "-C", str(repo), "check-ignore", "-q", ".dvc/config.local"], check=True)
    assert len(list((store / "files" / "md5").rglob("*"))) >= 4  # the dataset (dir + file) and the canary

    again = run_env(["env.dvc", "--repo", str(repo), "--remote", remote_url(ssh_server, store)], ssh_env)
    assert again.returncode == 0 and "already configured" in again.stdout, again.stdout + again.stderr

    # The server's copy of data/ds/a.json gets other bytes; with verify = true the pull must refuse it.
    md5 = hashlib.md5((repo / "data" / "ds" / "a.json").read_bytes()).hexdigest()
    stored = store / "files" / "md5" / md5[:2] / md5[2:]
    stored.unlink()
    stored.write_text('{"x": 2}\n')
    (repo / "data" / "ds" / "a.json").unlink()
    shutil.rmtree(repo / ".dvc" / "cache")
    refused = dvc(["pull"], repo, ssh_env, check=False)
    assert refused.returncode != 0 and not (repo / "data" / "ds" / "a.json").exists()
    dvc(["remote", "modify", "storage", "verify", "false"], repo, ssh_env)
    accepted = dvc(["pull"], repo, ssh_env, check=False)  # the corruption did reach the client: verify caught it
    assert accepted.returncode == 0 and (repo / "data" / "ds" / "a.json").read_text() == '{"x": 2}\n'


def test_a_key_the_server_refuses_is_named_as_the_credentials(ssh_env, tmp_path, ssh_server):
    repo = git_repo(tmp_path / "repo")
    env = dict(ssh_env, SAM3_DVC_SSH_KEYFILE=str(ssh_server.unauthorized_key))
    error = one_line_error(
        run_env(["env.dvc", "--repo", str(repo), "--remote", remote_url(ssh_server, tmp_path / "store")], env)
    )
    assert "refused the credentials on push" in error and "Permission denied" in error, error
    assert "SAM3_DVC_SSH_KEYFILE" in error and "authorized_keys" in error
    assert not (tmp_path / "store").exists()


def test_an_unreachable_port_is_named_as_connectivity(ssh_env, tmp_path, ssh_server):
    repo = git_repo(tmp_path / "repo")
    closed = free_port()
    error = one_line_error(
        run_env(
            ["env.dvc", "--repo", str(repo), "--remote", remote_url(ssh_server, tmp_path / "store", closed)], ssh_env
        )
    )
    assert error.startswith("error: cannot reach remote 'storage' at ssh://") and f":{closed}/" in error, error
    assert "Connect call failed" in error and "check the network and the URL" in error


def test_an_unknown_or_changed_host_key_stops_before_anything_is_sent(ssh_env, tmp_path, ssh_server):
    repo, store = git_repo(tmp_path / "repo"), tmp_path / "store"
    known_hosts = Path(ssh_env["HOME"]) / ".ssh" / "known_hosts"
    other = tmp_path / "other_host_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    impostor = f"[127.0.0.1]:{ssh_server.port} {' '.join(Path(f'{other}.pub').read_text().split()[:2])}\n"
    for content in ("", impostor):  # not there; there with another key (what a man in the middle looks like)
        known_hosts.write_text(content)
        error = one_line_error(
            run_env(["env.dvc", "--repo", str(repo), "--remote", remote_url(ssh_server, store)], ssh_env)
        )
        assert "the SSH host key of remote 'storage' (ssh-ed25519 SHA256:" in error, error
        assert f"ssh -p {ssh_server.port} {ssh_server.user}@127.0.0.1" in error
        assert not store.exists()


def test_an_encrypted_key_works_with_its_passphrase_which_stays_in_config_local(ssh_env, tmp_path, ssh_server):
    key = tmp_path / "keys" / "id_encrypted"
    key.parent.mkdir()
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", PASSPHRASE, "-f", str(key)], check=True)
    ssh_server.authorize(Path(f"{key}.pub"))
    repo, url = git_repo(tmp_path / "repo"), remote_url(ssh_server, tmp_path / "store")
    env = dict(ssh_env, SAM3_DVC_SSH_KEYFILE=str(key), SAM3_DVC_SSH_PASSPHRASE=PASSPHRASE)
    done = run_env(["env.dvc", "--repo", str(repo), "--remote", url, "--json"], env)
    assert done.returncode == 0, done.stdout + done.stderr
    details = {c["check"]: c["detail"] for c in json.loads(done.stdout)["checks"]}
    assert "passphrase (from $SAM3_DVC_SSH_PASSPHRASE)" in details["credentials"]
    assert details["round trip"].startswith("pushed and pulled a")
    local = repo / ".dvc" / "config.local"
    assert f"passphrase = {PASSPHRASE}" in local.read_text()
    assert files_holding(PASSPHRASE, tmp_path, allow={local}) == []

    wrong = "wrong" + PASSPHRASE
    error = one_line_error(
        run_env(["env.dvc", "--repo", str(repo), "--remote", url], dict(env, SAM3_DVC_SSH_PASSPHRASE=wrong))
    )
    assert "refused the credentials on push" in error and "SAM3_DVC_SSH_PASSPHRASE" in error, error
    assert files_holding(wrong, tmp_path, allow={local}) == []
    for output in (done.stdout + done.stderr, error):
        assert PASSPHRASE not in output


def test_dry_run_shows_the_local_options_and_no_secret(tool_env, tmp_path):
    repo, key = git_repo(tmp_path / "repo"), tmp_path / "id_test"
    key.write_text("not read in a dry run\n")
    env = dict(tool_env, SAM3_DVC_SSH_KEYFILE=str(key), SAM3_DVC_SSH_PASSPHRASE=PASSWORD)
    done = run_env(
        ["env.dvc", "--repo", str(repo), "--remote", "ssh://alice@login.example:2222/scratch/dvc", "--dry-run"], env
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout.replace("\n", " ")
    assert "dvc remote add -d storage ssh://login.example/scratch/dvc" in out
    assert (
        f"dvc remote modify --local storage user alice port 2222 keyfile {key} passphrase $SAM3_DVC_SSH_PASSPHRASE"
    ) in out
    assert PASSWORD not in done.stdout + done.stderr
    assert sorted(p.name for p in repo.iterdir()) == [".git", "data"]

    missing = run_env(
        ["env.dvc", "--repo", str(repo), "--remote", "ssh://h/p", "--dry-run"],
        dict(env, SAM3_DVC_SSH_KEYFILE=str(tmp_path / "nope")),
    )
    assert missing.returncode == 2 and "$SAM3_DVC_SSH_KEYFILE is" in missing.stderr, missing.stderr


def test_ssh_urls_split_into_the_tracked_url_and_the_local_login():
    remote = dvc_setup.parse_remote("ssh://bob@Cluster.example:2200/data/dvc", "r")
    assert (remote.url, remote.local, remote.shown) == (
        "ssh://cluster.example/data/dvc",
        (("user", "bob"), ("port", "2200")),
        "ssh://bob@Cluster.example:2200/data/dvc",
    )
    assert dvc_setup.parse_remote("ssh://[::1]/x", "r").url == "ssh://[::1]/x"
    assert dvc_setup.parse_remote("ssh://host/x", "r").local == ()
    for bad in ("ssh://host:port/x", "ssh://host:99999/x", "ssh:///x"):
        with pytest.raises(dvc_setup.ConfigError):
            dvc_setup.parse_remote(bad, "r")


def test_a_password_for_an_ssh_remote_is_refused_since_dvc_never_checks_the_host_key(tool_env, tmp_path):
    """DVC's own push and pull do not check the server's host key: a stored password could go to anyone."""
    repo = git_repo(tmp_path / "repo")
    done = run_env(
        ["env.dvc", "--repo", str(repo), "--remote", "ssh://alice@login.example/scratch/dvc", "--dry-run"],
        dict(tool_env, SAM3_DVC_SSH_PASSWORD=PASSWORD),
    )
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "does not check the server's host key on push and pull" in done.stderr
    assert "SAM3_DVC_SSH_KEYFILE" in done.stderr and PASSWORD not in done.stdout + done.stderr
    assert sorted(p.name for p in repo.iterdir()) == [".git", "data"]
