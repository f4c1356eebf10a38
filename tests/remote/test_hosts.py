"""`inv -H` for real: our `.venv/bin/inv` here, Debian's sshd on loopback as the login node, and there a
checkout that `inv -H login-node --setup` made itself (a git bundle over SSH, then scripts/bootstrap: one
real bootstrap for the package, tests/remote/conftest.py). Here is a project copy of our own
(tests/support/project_copy.py) with the working tree committed, so that "our commit" is the code under test.

sshd's sessions get sshd's environment, not ours: the login node's settings travel in a runtime file (-f).
"""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import ROOT, run_inv
from support.canaries import CANARIES
from support.remote_site import INV, git
from support.ssh_login import one_line_error

from tasks.lib.remote import openssh

MARKER = "# sam3-tasks inv: invoke's Program with -H"
TRAIN_VENV = ROOT / ".venv-train"
slurm = pytest.mark.skipif(not (TRAIN_VENV / "bin" / "python").exists(), reason="no training env: scripts/setup-tests")


def test_setup_on_request_copies_our_commit_there_and_bootstraps_it(site):
    done = site.setup
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert f"setup: copying this checkout ({git(site.local, 'rev-parse', 'HEAD')[:12]}) to login-node:" in done.stderr
    assert "setup: running scripts/bootstrap on login-node" in done.stderr and "bootstrap: done" in done.stdout
    assert git(site.remote, "rev-parse", "HEAD") == git(site.local, "rev-parse", "HEAD")
    assert MARKER in (site.remote / ".venv" / "bin" / "inv").read_text()  # the login node's inv is ours too
    shown = json.loads(done.stdout[done.stdout.index("{") :])["values"]  # the whole command ran there
    assert shown["sam3.checkout"]["value"] == str(site.remote / "sam3")
    assert shown["paths.experiment_root"]["value"] == str(site.base / "exp")


def test_without_setup_a_missing_checkout_says_which_flag_sets_it_up(site):
    done = site.inv("-H", "login-node", "hw.check", INVOKE_REMOTE_PROJECT_DIR="~/no such checkout")
    assert one_line_error(done, 2) == (
        "error: no sam3-tasks checkout with .venv at ~/no such checkout on login-node: pass --setup to copy this one "
        "there and bootstrap it (or set remote.project_dir)"
    )


def test_hw_check_runs_there_and_its_exit_code_comes_back(site, ssh_server):
    bare = ssh_server.run("cd", str(site.remote), "&&", ".venv/bin/inv", "hw.check", "--json", check=False)
    done = site.inv("-H", "login-node", "hw.check", "--json")
    assert done.returncode == bare.returncode, done.stdout + done.stderr
    assert json.loads(done.stdout).keys() == json.loads(bare.stdout).keys()


def test_data_validate_there_passes_and_fails_as_it_does_there(site):
    good, bad = site.base / "data-good", site.base / "data-bad"
    assert site.inv("-H", "login-node", "data.synth", "--root", good, "--datasets", "actions,bees").returncode == 0
    made = site.inv(
        "-H", "login-node", "data.synth", "--root", bad, "--datasets", "actions", "--defects", "invalid_json"
    )
    assert made.returncode == 0, made.stdout + made.stderr
    passed = site.inv("-H", "login-node", "data.validate", "--root", good, "--datasets", "actions,bees")
    assert passed.returncode == 0, passed.stdout + passed.stderr
    failed = site.inv("-H", "login-node", "data.validate", "--root", bad, "--datasets", "actions")
    assert failed.returncode == 1 and "file is not valid JSON" in failed.stdout, failed.stdout + failed.stderr
    assert (
        failed.stderr == "error: 1 dataset(s) have errors (actions); see the fix column above\n"
    )  # its stderr, as stderr


def test_an_unknown_or_changed_host_key_is_refused(site, ssh_server):
    line = one_line_error(site.inv("-H", "stranger", "hw.check"), 2)
    assert line.startswith("error: the SSH host key of stranger ([127.0.0.1]:") and "is not in your known_hosts" in line
    line = one_line_error(site.inv("-H", "impostor", "hw.check"), 2)
    assert line.startswith("error: the SSH host key of impostor is not the one in your known_hosts")
    assert (site.base / "no_known_hosts").read_text() == ""


def test_several_hosts_run_in_turn_and_the_worst_exit_code_wins(site):
    done = site.inv("-H", "login-node,stranger", "run.list", "--json")
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.splitlines()[0] == "== login-node" and '"runs"' in done.stdout
    assert "== stranger" in done.stderr and "error: the SSH host key of stranger" in done.stderr


def test_fabs_identity_ssh_config_and_timeout_flags(site, ssh_server):
    config = site.base / "other_ssh_config"  # no IdentityFile: -i brings the key
    config.write_text(
        f"Host elsewhere\n    HostName 127.0.0.1\n    Port {ssh_server.port}\n    User {ssh_server.user}\n"
        f"    UserKnownHostsFile {ssh_server.known_hosts}\n    IdentityAgent none\n"
    )
    done = site.inv("-H", "elsewhere", "-S", config, "-i", ssh_server.key, "-t", "5", "run.list")
    assert done.returncode == 0, done.stdout + done.stderr
    refused = site.inv("-H", "elsewhere", "-S", config, "-i", ssh_server.unauthorized_key, "run.list")
    assert "refused to log in" in one_line_error(refused, 2)
    assert "no such SSH config file" in one_line_error(site.inv("-H", "x", "-S", site.base / "nope", "run.list"), 2)


def test_host_flags_go_before_the_task_and_only_with_H(site):
    line = one_line_error(site.inv("-H", "login-node", "run.list", "--sync"), 2)
    assert line == "error: --sync goes before the task name: inv -H HOST --sync ... TASK"
    assert (
        one_line_error(site.inv("--sync", "run.list"), 2) == "error: --sync goes with -H: inv -H HOST --sync ... TASK"
    )
    assert "nothing to run there" in one_line_error(site.inv("-H", "login-node"), 2)


def test_dry_run_before_the_task_says_what_H_would_do_and_connects_to_nothing(site, ssh_server):
    ours = git(site.local, "rev-parse", "HEAD")
    done = site.inv(
        "-H", "login-node,nobody@nosuch.invalid", "--dry-run", "--sync", "--setup", "run.train", "--dry-run"
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"would connect to login-node as {ssh_server.user}@127.0.0.1 port {ssh_server.port}"
    assert lines[1].startswith("would reuse the connection at ~/.ssh/sam3-") and "ControlPersist 1h (ours)" in lines[1]
    assert lines[2:5] == [
        f"would set up {site.remote} there if it has no checkout with .venv: clone {ours[:12]} from a git bundle sent "
        "over the SSH connection, then scripts/bootstrap",
        f"would bring the checkout there to {ours[:12]} if it is at another commit: a git bundle over the SSH "
        "connection, git fetch and checkout there, scripts/bootstrap",
        f"would run there: cd {site.remote} && exec env PYTHONUNBUFFERED=1 .venv/bin/inv run.train --dry-run",
    ]
    assert lines[5] == "would connect to nobody@nosuch.invalid as nobody@nosuch.invalid port 22"


def test_without_H_our_inv_answers_as_invokes_own(site):
    for args in (["--list"], ["--help", "run.status"], ["no.such.task"], ["run.list", "--no-such-flag"]):
        ours = run_inv(args, site.environ, cwd=site.local)
        theirs = subprocess.run(
            [sys.executable, "-m", "invoke", *args], cwd=site.local, env=site.environ, capture_output=True, text=True
        )
        assert (ours.returncode, ours.stdout, ours.stderr) == (theirs.returncode, theirs.stdout, theirs.stderr), args


def test_a_checkout_at_another_commit_is_reported_and_synced_on_request(site):
    ours = git(site.local, "rev-parse", "HEAD")
    git(site.remote, "checkout", "-q", "--detach", "HEAD~1")
    older = git(site.remote, "rev-parse", "HEAD")
    done = site.inv("-H", "login-node", "run.list")
    assert done.returncode == 0, done.stderr
    assert (
        f"note: the checkout on login-node ({site.remote}) is at {older[:12]}, this one at {ours[:12]}; pass --sync "
        "(or set remote.sync: sync) to bring it to this commit"
    ) in done.stderr
    readme = site.local / "README.md"
    readme.write_text(readme.read_text() + "\nlocal edit\n")
    line = one_line_error(site.inv("-H", "login-node", "--sync", "run.list"), 2)
    assert line.startswith(
        "error: this checkout has uncommitted changes (README.md); commit them, or pass --allow-dirty"
    )
    git(site.local, "commit", "-qam", "a commit the login node lacks")
    newer = git(site.local, "rev-parse", "HEAD")
    synced = site.inv("-H", "login-node", "--sync", "run.list")
    assert synced.returncode == 0, synced.stdout + synced.stderr
    assert f"sync: sending {newer[:12]} less {older[:12]} and before" in synced.stderr  # only what it lacks
    assert git(site.remote, "rev-parse", "HEAD") == newer and "note:" not in synced.stderr
    again = site.inv("-H", "login-node", "run.list", INVOKE_REMOTE_SYNC="sync")  # in step: nothing to say or send
    assert again.returncode == 0 and "sync:" not in again.stderr and "note:" not in again.stderr


def test_a_reinstalled_invoke_fails_closed_on_H_until_bootstrap_restores_ours(site):
    venv = site.remote / ".venv"
    reinstall = subprocess.run(
        [venv / "bin" / "python", "-m", "pip", "install", "-q", "--force-reinstall", "--no-deps", "invoke==2.2.1"],
        capture_output=True,
        text=True,
    )
    assert reinstall.returncode == 0, reinstall.stderr
    assert MARKER not in (venv / "bin" / "inv").read_text()
    there = dict(site.environ)
    refused = subprocess.run(
        [venv / "bin" / "inv", "-H", "login-node", "hw.check"],
        cwd=site.remote,
        env=there,
        capture_output=True,
        text=True,
    )
    assert one_line_error(refused, 2) == (
        "error: this inv is invoke's own script, which has no -H (a reinstall of invoke put it back); run "
        "scripts/bootstrap to restore ours"
    )
    restored = subprocess.run([site.remote / "scripts" / "bootstrap"], capture_output=True, text=True)
    assert "restored its inv" in restored.stdout, restored.stdout + restored.stderr
    assert MARKER in (venv / "bin" / "inv").read_text() and MARKER in (venv / "bin" / "invoke").read_text()
    again = subprocess.run(
        [venv / "bin" / "inv", "-H", "login-node"], cwd=site.remote, env=there, capture_output=True, text=True
    )
    assert "nothing to run there" in one_line_error(again, 2)


def test_agent_forwarding_stays_off_unless_the_ssh_config_asks(site, monkeypatch):
    for name, value in site.environ.items():  # ssh -G here sees the test HOME as the laptop's
        monkeypatch.setenv(name, value)
    assert openssh.resolve("login-node").get("forwardagent") == "no"
    asking = site.base / "forward_agent_config"
    asking.write_text("Host login-node\n    HostName 127.0.0.1\n    ForwardAgent yes\n")
    assert openssh.resolve("login-node", openssh.SshFlags(ssh_config=str(asking))).get("forwardagent") == "yes"


def squeue(slurm_cluster, job_ids) -> list[str]:
    listed = slurm_cluster.run("squeue", "-h", "-o", "%i %T", "-j", ",".join(job_ids), check=False).stdout
    return sorted(line for line in listed.splitlines() if line.strip())


@slurm
def test_run_train_from_the_laptop_queues_its_jobs_on_the_login_nodes_slurm(held_run, slurm_cluster):
    done, record = held_run
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "pre-flight" in done.stdout and "held: where things are" in done.stdout  # streamed from the login node
    jobs = [task["job_id"] for task in record["tasks"]]
    assert len(jobs) == 1 and squeue(slurm_cluster, jobs) == [f"{jobs[0]} PENDING"]


@slurm
def test_run_status_and_logs_from_the_laptop(site, held_run):
    status = site.inv("-H", "slurm-login", "-f", site.runtime, "run.status", "--name", "held", "--json")
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["states"] == ["pending"]
    logs = site.inv("-H", "slurm-login", "-f", site.runtime, "run.logs", "--name", "held")
    assert logs.returncode == 0, logs.stdout + logs.stderr


def _remote_tensorboards(run_dir: Path) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"--logdir" in argv and str(run_dir).encode() in argv:
            found.append(int(proc.name))
    return found


@slurm
def test_tensorboard_here_and_forwarded_from_the_login_node(site, held_run):
    run_dir = site.base / "exp" / "held"
    dry = site.inv("-f", site.runtime, "run.tensorboard", "--name", "held", "--port", "6123", "--dry-run")
    tensorboard = (ROOT / ".venv-train").resolve() / "bin" / "tensorboard"
    assert dry.stdout == f"would run: {tensorboard} --logdir {run_dir} --port 6123 --host localhost\n", dry.stderr
    laptop = subprocess.Popen(
        [INV, "-H", "slurm-login", "-f", site.runtime, "run.tensorboard", "--name", "held"],
        cwd=site.local,
        env=dict(site.environ, **CANARIES),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = None
        deadline = time.monotonic() + 180
        while url is None and time.monotonic() < deadline:
            line = laptop.stderr.readline()
            assert line or laptop.poll() is None, laptop.stdout.read()
            if line.startswith("forwarded: http://localhost:"):
                url = line.split()[1]
        assert url, "no forward announced"
        with urllib.request.urlopen(url, timeout=30) as page:  # through our local port, the SSH channel, to there
            assert page.status == 200 and b"TensorBoard" in page.read()
        remote = _remote_tensorboards(run_dir)
        assert len(remote) == 1
        for pid in remote:  # nothing of our environment in the login node's process table
            seen = Path(f"/proc/{pid}/cmdline").read_bytes() + Path(f"/proc/{pid}/environ").read_bytes()
            assert [name for name, value in CANARIES.items() if value.encode() in seen] == []
        laptop.send_signal(signal.SIGINT)
        assert laptop.wait(timeout=30) == 0
        deadline = time.monotonic() + 30
        while _remote_tensorboards(run_dir) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _remote_tensorboards(run_dir) == []  # it ended with the SSH session
    finally:
        if laptop.poll() is None:
            laptop.kill()
            laptop.wait()


@slurm
def test_run_cancel_from_the_laptop_then_logs_follow_ends(site, held_run, slurm_cluster):
    _, record = held_run
    jobs = [task["job_id"] for task in record["tasks"]]
    dry = site.inv("-H", "slurm-login", "-f", site.runtime, "run.cancel", "--name", "held", "--dry-run")
    assert f"actions: would cancel SLURM job {jobs[0]}" in dry.stdout, dry.stdout + dry.stderr
    assert squeue(slurm_cluster, jobs) == [f"{jobs[0]} PENDING"]
    done = site.inv("-H", "slurm-login", "-f", site.runtime, "run.cancel", "--name", "held")
    assert done.returncode == 0 and f"actions: cancelled SLURM job {jobs[0]}" in done.stdout, done.stdout + done.stderr
    deadline = time.monotonic() + 60
    while squeue(slurm_cluster, jobs) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert squeue(slurm_cluster, jobs) == []
    follow = site.inv("-H", "slurm-login", "-f", site.runtime, "run.logs", "--name", "held", "--follow", timeout=120)
    assert follow.returncode == 0, follow.stdout + follow.stderr


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _processes_with(*words: str) -> list[int]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if all(word.encode() in argv for word in words):
            found.append(int(cmdline.parent.name))
    return found


def _all_jobs(slurm_cluster) -> set[str]:
    return set(slurm_cluster.run("squeue", "-h", "-r", "-o", "%i").stdout.split())


def _descendants(pid: int) -> list[int]:
    found = []
    for child in _children(pid):
        found += [child, *_descendants(child)]
    return found


@slurm
@pytest.mark.parametrize("killed", ["session", "session and its processes"])
def test_a_session_killed_right_after_submission_then_run_again_queues_one_set_of_jobs(
    site, held_run, slurm_login, slurm_cluster, killed
):
    """The SSH session dies after the login node submitted and before the answer came back (sbatch answers
    late, so squeue shows the jobs while the launch still waits): SIGKILL to the sshd process serving it (the
    launch there runs on, cut off from its output), or to it and every process it started (as a login node
    that kills a user's processes with the session: the record stays "started", without job ids). The same
    command again reports the jobs already queued and submits nothing."""
    _, sshd_process, answers_late = slurm_login
    name = "dropped" if killed == "session" else "dropped-all"
    command = [
        INV,
        "-H",
        "slurm-login",
        "-f",
        site.runtime,
        "run.train",
        "--mode",
        "cluster",
        "--partition",
        "debug",
        "--num-gpus",
        "1",
        "--datasets",
        "actions,-grccs",
        "--name",
        name,
    ]
    before = _all_jobs(slurm_cluster)
    answers_late.touch()
    laptop = subprocess.Popen(
        command, cwd=site.local, env=site.environ, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        deadline = time.monotonic() + 400
        while not _all_jobs(slurm_cluster) - before:
            assert laptop.poll() is None and time.monotonic() < deadline, laptop.stdout.read()
            time.sleep(0.1)
        sessions = _children(sshd_process.pid)
        assert sessions, "no sshd session serving the launch"
        for pid in sessions + (_descendants(sessions[0]) if killed != "session" else []):
            os.kill(pid, signal.SIGKILL)
        output, _ = laptop.communicate(timeout=60)
    finally:
        answers_late.unlink()
        if laptop.poll() is None:
            laptop.kill()
            laptop.wait()
    assert laptop.returncode != 0, output  # cut off before the command there ended
    assert "SLURM job" not in output, output  # it had not heard back
    deadline = time.monotonic() + 120  # what was left running there, cut off from its session, ends
    while _processes_with("run.train", name) and time.monotonic() < deadline:
        time.sleep(0.5)
    queued = sorted(_all_jobs(slurm_cluster) - before)
    assert len(queued) == 2, queued  # one array task per dataset
    record = json.loads((site.base / "exp" / name / "launch.json").read_text())
    assert record["launches"][-1]["submission"] in ("started", "done"), record["launches"]
    print(f"{killed} killed: the record says submission {record['launches'][-1]['submission']!r}")
    again = site.inv("-H", "slurm-login", *command[3:], timeout=600)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-2000:]
    assert sorted(_all_jobs(slurm_cluster) - before) == queued  # submitted nothing more
    record = json.loads((site.base / "exp" / name / "launch.json").read_text())
    assert sorted(task["job_id"] for task in record["tasks"]) == queued
    assert record["launches"][-1]["submission"].startswith("done"), record["launches"]
    for job in queued:
        assert f"SLURM job {job}" in again.stdout or job in again.stdout, again.stdout
    slurm_cluster.run("scancel", *queued, check=False)


@pytest.fixture
def fake_checkout(tmp_path):
    """A checkout there whose inv logs how it was called and follows --await-go as ours does: it checks the
    task name (no.such.task: refused, before READY) and waits for "go"; with OLD there, it refuses --await-go
    as an older inv would."""
    folder = tmp_path / "fake checkout"
    inv = folder / ".venv" / "bin" / "inv"
    inv.parent.mkdir(parents=True)
    log, old = folder / "calls", folder / "OLD"
    inv.write_text(
        f'#!/bin/sh\necho "$*" >> "{log}"\nif [ "$1" = --await-go ]; then\n'
        f'  if [ -e "{old}" ]; then echo "No idea what \'--await-go\' is!" >&2; exit 1; fi\n'
        f'  shift; if [ "$1" = no.such.task ]; then echo "No idea what \'$1\' is!" >&2; exit 1; fi\n'
        f'  echo sam3-tasks-ready >&2; read go; [ "$go" = go ] || exit 0; echo "went $*" >> "{log}"\n'
        f'fi\necho "ran $*"\n'
    )
    inv.chmod(0o755)
    return folder, log, old


def test_a_plain_command_gets_a_head_start_that_waits_for_the_check_here(site, fake_checkout):
    folder, log, old = fake_checkout
    env = {"INVOKE_REMOTE_PROJECT_DIR": str(folder)}
    first = site.inv("-H", "login-node", "run.list", "--json", **env)  # remembers the ssh command line for host
    assert first.returncode == 0 and first.stdout == "ran run.list --json\n", first.stdout + first.stderr
    second = site.inv("-H", "login-node", "run.list", "--json", **env)  # the settings as last time: run alone
    assert second.returncode == 0 and second.stdout == "ran run.list --json\n", second.stdout + second.stderr
    assert log.read_text().splitlines()[-2:] == ["--await-go run.list --json", "went run.list --json"]
    assert "is at no git commit" in second.stderr  # the same note on the checkout there
    changed = site.inv("-H", "login-node", "run.list", **env, INVOKE_SAM3_TEST_MARK="1")  # settings to read again
    assert changed.returncode == 0 and changed.stdout == "ran run.list\n", changed.stdout + changed.stderr
    assert log.read_text().splitlines()[-2:] == ["--await-go run.list", "went run.list"]
    refused = site.inv("-H", "login-node", "no.such.task", **env)  # started there, refused here: it never runs
    assert refused.returncode == 1 and "No idea what 'no.such.task' is!" in refused.stderr, refused.stderr
    time.sleep(2)
    assert log.read_text().splitlines()[-1] == "--await-go no.such.task"
    old.touch()  # an inv there without --await-go: the command runs the usual way, once, and nothing shows
    older = site.inv("-H", "login-node", "run.list", "--json", **env)
    assert older.returncode == 0 and older.stdout == "ran run.list --json\n", older.stdout + older.stderr
    assert "--await-go" not in older.stderr and log.read_text().splitlines()[-2:] == [
        "--await-go run.list --json",
        "run.list --json",
    ]
