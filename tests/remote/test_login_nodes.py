"""`inv -H` against the login nodes people really have, each a real sshd on loopback, the laptop's ssh config
being the one a user writes (aliases in an Included file): a bastion hop (ProxyJump through a second sshd),
a login node that asks for a one-time code after the key (PAM, tests/support/mfa_server.py) used through one
kept connection, a login shell that is tcsh, an agent reached only through IdentityAgent; and what goes wrong
there: an alias ssh cannot resolve, a kept connection whose master died, a wrong code.

The checkout there is the one tests/remote/conftest.py set up (`site`); every sshd here serves that folder.
"""

import fcntl
import json
import os
import pty
import re
import select
import shlex
import signal
import subprocess
import termios
import time
from pathlib import Path

import pytest
from conftest import ROOT
from support import mfa_server
from support import ssh_server as sshd
from support.remote_site import INV, git
from support.ssh_login import add_host, alias, close_masters, one_line_error, passwd_env

TRAIN_VENV = ROOT / ".venv-train"
OWN_MASTER = "    ControlMaster auto\n    ControlPath ~/.ssh/cm-%n\n    ControlPersist 10m\n"


def started_sessions(server) -> int:
    return server.log.read_text().count("Starting session:")


def logins(server) -> int:
    return len(re.findall(r"Accepted (publickey|keyboard-interactive)", server.log.read_text()))


# --- the ssh config as users write it: Include, a bastion hop, IdentityAgent -------------------------------


def test_an_alias_only_in_an_included_file_resolves_and_one_login_serves_every_command(site, ssh_server):
    home = Path(site.environ["HOME"])
    assert (home / ".ssh" / "config").read_text() == "Include config.d/*\n"  # login-node is in config.d/cluster
    first = site.inv("-H", "login-node", "run.list", "--json")
    assert first.returncode == 0 and '"runs"' in first.stdout, first.stdout + first.stderr
    before = logins(ssh_server)
    for _ in range(2):  # the connection the first command left open (ControlPersist, ours) serves these
        again = site.inv("-H", "login-node", "run.list", "--json")
        assert again.returncode == 0 and '"runs"' in again.stdout, again.stdout + again.stderr
    assert logins(ssh_server) == before
    assert [path for path in (home / ".ssh").glob("sam3-*") if path.is_socket()]  # our ControlPath: none in config


@pytest.fixture(scope="module")
def bastion(site, ssh_server, tmp_path_factory):
    """A second sshd as the bastion: `behind-bastion` is the login node, reached with ProxyJump bastion;
    `behind-strange-bastion` jumps through the same bastion under an alias whose known_hosts lacks its key."""
    folder = tmp_path_factory.mktemp("sshd-bastion")
    process, server = sshd.start(folder)
    empty = folder / "empty_known_hosts"
    empty.write_text("")
    add_host(site.environ, alias("bastion", server), server)
    add_host(site.environ, alias("strange-bastion", server, f"    UserKnownHostsFile {empty}\n"))
    add_host(site.environ, alias("behind-bastion", ssh_server, "    ProxyJump bastion\n"))
    add_host(site.environ, alias("behind-strange-bastion", ssh_server, "    ProxyJump strange-bastion\n"))
    try:
        yield server
    finally:
        close_masters(site.environ)
        sshd.stop(process)


def test_a_bastion_hop_carries_the_login_and_its_host_key_is_checked_too(site, bastion):
    dry = site.inv("-H", "behind-bastion", "--dry-run", "run.list")
    assert dry.stdout.splitlines()[0].endswith(" via bastion"), dry.stdout + dry.stderr
    done = site.inv("-H", "behind-bastion", "run.list", "--json")
    assert done.returncode == 0 and '"runs"' in done.stdout, done.stdout + done.stderr
    assert "Accepted publickey" in bastion.log.read_text()  # the login went through the bastion
    line = one_line_error(site.inv("-H", "behind-strange-bastion", "run.list"), 2)
    assert line == (
        "error: the SSH host key of strange-bastion (the ProxyJump hop to behind-strange-bastion) is not in your "
        "known_hosts; run `ssh strange-bastion` once to check and accept it"
    )


@pytest.fixture
def agent(tmp_path):
    """An ssh-agent holding the login node's key, at a socket only IdentityAgent names (no SSH_AUTH_SOCK)."""
    socket = tmp_path / "agent.sock"
    process = subprocess.Popen(["ssh-agent", "-D", "-a", str(socket)], stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not socket.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        yield socket
    finally:
        sshd.stop(process)


def test_an_agent_reached_only_through_IdentityAgent_logs_in(site, ssh_server, agent):
    added = subprocess.run(["ssh-add", str(ssh_server.key)], env={"SSH_AUTH_SOCK": str(agent)}, capture_output=True)
    assert added.returncode == 0, added.stderr
    add_host(site.environ, alias("agent-only", ssh_server, f"    IdentityAgent {agent}\n", key=False))
    assert "SSH_AUTH_SOCK" not in site.environ
    done = site.inv("-H", "agent-only", "run.list", "--json")
    assert done.returncode == 0 and '"runs"' in done.stdout, done.stdout + done.stderr


# --- bad input: one line, the fix, an exit code that means it, nothing run there ---------------------------


def test_an_alias_ssh_cannot_resolve_is_one_line_exit_2(site, ssh_server):
    broken = site.base / "broken_ssh_config"
    broken.write_text("Host broken\n    HostName 127.0.0.1\n    Port notaport\n")
    before = started_sessions(ssh_server)
    assert one_line_error(site.inv("-H", "broken", "-S", broken, "run.list"), 2) == (
        f"error: ssh cannot resolve broken: {broken} line 3: Bad port 'notaport'; fix your SSH config there "
        f"(`ssh -F {broken} -G broken` shows what ssh makes of it)"
    )
    assert one_line_error(site.inv("-H", "no-such-alias.invalid", "run.list"), 2).startswith(
        "error: no-such-alias.invalid is no Host in your ssh config and DNS does not know it ("
    )
    assert started_sessions(ssh_server) == before


# --- a login node that asks for a one-time code after the key ----------------------------------------------


@pytest.fixture(scope="module")
def mfa(site, tmp_path_factory):
    """The MFA login node, as `mfa-login` (no ControlMaster in the user's config: ours is used) and `mfa-own`
    (the user's own ControlMaster/ControlPath/ControlPersist), `mfa-wrong` and `mfa-pty` (ours, apart)."""
    server = mfa_server.start(tmp_path_factory.mktemp("sshd-mfa"))
    add_host(site.environ, alias("mfa-login", server.server), server.server)
    add_host(site.environ, alias("mfa-own", server.server, OWN_MASTER))
    add_host(site.environ, alias("mfa-wrong", server.server))
    add_host(site.environ, alias("mfa-pty", server.server))
    try:
        yield server
    finally:
        close_masters(site.environ)
        mfa_server.stop(server)


def test_without_a_terminal_an_mfa_login_names_the_ssh_command_that_logs_in_once(site, mfa):
    before = started_sessions(mfa.server)
    line = one_line_error(site.inv("-H", "mfa-login", "run.list"), 2)
    prefix = (
        "error: mfa-login asks for more than a key (keyboard-interactive: a one-time code or password) and nothing "
        "here can answer it (no terminal, no SSH_ASKPASS); log in once from a terminal, which inv -H then reuses: "
    )
    assert line.startswith(prefix), line
    command = shlex.split(line[len(prefix) :])
    assert (
        command[:4] == ["ssh", "-fN", "-o", "ControlMaster=auto"]
        and command[-1] == "mfa-login"
        and "ControlPersist=1h" in command
    ), command
    assert started_sessions(mfa.server) == before and mfa.prompts() == []  # nothing ran, nobody was asked
    opened = subprocess.run(
        command,
        env=dict(site.environ, **mfa.askpass_env()),
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        timeout=60,
    )
    assert opened.returncode == 0, opened.stderr
    done = site.inv("-H", "mfa-login", "run.list", "--json")  # no terminal, no askpass: the kept login serves it
    assert done.returncode == 0 and '"runs"' in done.stdout, done.stdout + done.stderr
    assert len(mfa.prompts()) == 1


def test_an_mfa_login_asks_for_the_code_once_across_every_kind_of_command(site, mfa):
    """The user's own ControlMaster config; one prompt, then: output and exit codes, stderr, --sync (a bundle
    through the kept connection), --setup, remote.run; every later command without any way to answer."""
    asked, accepted = len(mfa.prompts()), mfa.accepted()
    first = site.inv("-H", "mfa-own", "run.list", "--json", **mfa.askpass_env())
    assert first.returncode == 0 and '"runs"' in first.stdout, first.stdout + first.stderr
    assert "One-time password" not in first.stdout + first.stderr
    assert "ControlPersist: your ssh config's" in first.stderr and "ssh: logged in to mfa-own once" in first.stderr
    bad = site.base / "mfa-data-bad"
    assert (
        site.inv(
            "-H", "mfa-own", "data.synth", "--root", bad, "--datasets", "actions", "--defects", "invalid_json"
        ).returncode
        == 0
    )
    failed = site.inv("-H", "mfa-own", "data.validate", "--root", bad, "--datasets", "actions")
    assert failed.returncode == 1 and "file is not valid JSON" in failed.stdout, failed.stdout + failed.stderr
    assert failed.stderr == "error: 1 dataset(s) have errors (actions); see the fix column above\n"
    (site.local / "MFA.md").write_text("a commit only the laptop has\n")
    git(site.local, "add", "MFA.md")
    git(site.local, "commit", "-qm", "a commit for the mfa login node")
    synced = site.inv("-H", "mfa-own", "--sync", "run.list")
    assert synced.returncode == 0 and "sync: sending" in synced.stderr, synced.stdout + synced.stderr
    assert git(site.remote, "rev-parse", "HEAD") == git(site.local, "rev-parse", "HEAD")
    present = site.inv("-H", "mfa-own", "--setup", "run.list", "--json")  # --setup where the checkout is: a look
    assert present.returncode == 0 and '"runs"' in present.stdout, present.stdout + present.stderr
    remote_run = site.inv("remote.run", "--version", "--host", "mfa-own")
    assert remote_run.returncode == 0 and remote_run.stdout.startswith("Invoke "), remote_run.stderr
    assert len(mfa.prompts()) == asked + 1 and mfa.accepted() == accepted + 1
    assert (Path(site.environ["HOME"]) / ".ssh" / "cm-mfa-own").is_socket()  # the user's ControlPath


@pytest.mark.skipif(not (TRAIN_VENV / "bin" / "python").exists(), reason="no training env: scripts/setup-tests")
def test_tensorboard_is_forwarded_through_the_kept_mfa_login(site, mfa, held_run):
    import urllib.request

    asked = len(mfa.prompts())
    laptop = subprocess.Popen(
        [INV, "-H", "mfa-own", "-f", site.runtime, "run.tensorboard", "--name", "held"],
        cwd=site.local,
        env=site.environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        url, deadline = None, time.monotonic() + 180
        while url is None and time.monotonic() < deadline:
            line = laptop.stderr.readline()
            assert line or laptop.poll() is None, laptop.stdout.read()
            if line.startswith("forwarded: http://localhost:"):
                url = line.split()[1]
        with urllib.request.urlopen(url, timeout=30) as page:
            assert page.status == 200 and b"TensorBoard" in page.read()
        laptop.send_signal(signal.SIGINT)
        assert laptop.wait(timeout=60) == 0
    finally:
        if laptop.poll() is None:
            laptop.kill()
            laptop.wait()
    assert len(mfa.prompts()) == asked  # the login of the test above served it


def test_a_kept_connection_whose_master_died_is_named_with_the_command_that_reopens_it(site, mfa):
    control = Path(site.environ["HOME"]) / ".ssh" / "cm-mfa-own"
    if not control.is_socket():
        assert site.inv("-H", "mfa-own", "run.list", **mfa.askpass_env()).returncode == 0
    check = subprocess.run(["ssh", "-O", "check", "mfa-own"], env=site.environ, capture_output=True, text=True)
    pid = int(re.search(r"pid=(\d+)", check.stderr).group(1))
    os.kill(pid, signal.SIGKILL)  # the master we opened dies; its socket stays behind
    deadline = time.monotonic() + 10
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    before = started_sessions(mfa.server)
    line = one_line_error(site.inv("-H", "mfa-own", "run.list"), 2)
    assert line.startswith(f"error: the connection kept at {control} has ended, and mfa-own asks for more than a key")
    assert line.endswith("which inv -H then reuses: ssh -fN mfa-own"), line
    assert started_sessions(mfa.server) == before


def test_a_wrong_one_time_code_is_one_line_exit_2_and_nothing_runs(site, mfa):
    before = started_sessions(mfa.server)
    line = one_line_error(site.inv("-H", "mfa-wrong", "run.list", **mfa.askpass_env(wrong=True)), 2)
    assert line == (
        "error: mfa-wrong did not accept the answer (keyboard-interactive): a wrong or expired one-time code, or "
        "password; run the command again and answer with a fresh one"
    )
    assert started_sessions(mfa.server) == before


def _on_a_terminal(argv, environ, cwd, answer):
    """Run argv with a pseudo-terminal as its controlling terminal (stdin too) and stdout/stderr as pipes;
    answer each prompt the terminal shows. (exit code, stdout, stderr, what the terminal showed)."""
    leader, follower = pty.openpty()

    def take_terminal():
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    process = subprocess.Popen(
        argv,
        cwd=cwd,
        env=environ,
        stdin=follower,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=take_terminal,
    )
    os.close(follower)
    shown, deadline = b"", time.monotonic() + 120
    while process.poll() is None and time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(leader, 4096)
            except OSError:
                break
            shown += chunk
            if chunk.rstrip().endswith(b":"):
                os.write(leader, answer().encode() + b"\n")
    out, err = process.communicate(timeout=120)
    os.close(leader)
    return process.returncode, out.decode(), err.decode(), shown.decode(errors="replace")


def test_on_a_terminal_the_code_is_asked_there_and_never_on_stdout(site, mfa):
    env = dict(site.environ, TERM="dumb")
    code, out, err, shown = _on_a_terminal([str(INV), "-H", "mfa-pty", "run.list", "--json"], env, site.local, mfa.code)
    assert code == 0, out + err + shown
    assert shown.count("One-time password") == 1 and "One-time password" not in out + err
    assert json.loads(out)["runs"] is not None
    code, out, err, shown = _on_a_terminal([str(INV), "-H", "mfa-pty", "run.list", "--json"], env, site.local, mfa.code)
    assert code == 0 and "One-time password" not in shown, out + err + shown  # the kept login: no prompt


# --- a login shell that is tcsh ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tcsh_login(site, tmp_path_factory):
    """An sshd whose user has tcsh as login shell (its passwd entry, through libnss-wrapper), as `tcsh-login`."""
    if not Path("/usr/bin/tcsh").exists():
        pytest.skip("no tcsh here: run sudo scripts/install-system-deps")
    folder = tmp_path_factory.mktemp("sshd-tcsh")
    process, server = sshd.start(folder, env=dict(os.environ, **passwd_env(folder, shell="/usr/bin/tcsh")))
    add_host(site.environ, alias("tcsh-login", server), server)
    try:
        yield server
    finally:
        close_masters(site.environ)
        sshd.stop(process)


def test_a_tcsh_login_shell_runs_every_command_unchanged(site, tcsh_login):
    posix = tcsh_login.run("echo $(id -u)", check=False)  # what a POSIX command meets there without the wrapper
    assert "Illegal variable name." in posix.stderr, posix.stdout + posix.stderr
    done = site.inv("-H", "tcsh-login", "run.list", "--json")  # the probe: $(...), 2>/dev/null, >&2, exit N
    assert done.returncode == 0 and '"runs"' in done.stdout, done.stdout + done.stderr
    assert "Illegal variable name" not in done.stdout + done.stderr
    odd = "it's $HOME! `id` \\!x"
    shown = site.inv("-H", "tcsh-login", "--sync", "--setup", "run.status", "--name", odd)  # the checkout's probe
    here = one_line_error(site.inv("run.status", "--name", odd), 2)  # the same task here names the same run
    assert one_line_error(shown, 2).partition(" under ")[0] == here.partition(" under ")[0]  # if; then, ' ! $ \\
    bad = site.base / "tcsh-data-bad"
    assert (
        site.inv(
            "-H", "tcsh-login", "data.synth", "--root", bad, "--datasets", "actions", "--defects", "invalid_json"
        ).returncode
        == 0
    )
    failed = site.inv("-H", "tcsh-login", "data.validate", "--root", bad, "--datasets", "actions")
    assert failed.returncode == 1 and "file is not valid JSON" in failed.stdout, failed.stdout + failed.stderr
    missing = site.inv("remote.run", "--command", "run.list", "--host", "tcsh-login", "--project-dir", "~/no such")
    assert "no sam3-tasks checkout with .venv at ~/no such on tcsh-login" in one_line_error(missing, 2)
