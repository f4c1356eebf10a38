"""The plain parts of `inv -H`: which tokens are host flags, the probed remote command in a real shell, and the
filter that takes the commit line out of the remote stderr."""

import io
import shlex
import shutil
import subprocess

import pytest

from tasks.lib.remote import commands, early, hosts, ssh
from tasks.lib.remote.program import HOST_FLAGS


@pytest.mark.parametrize(
    ("argv", "unparsed", "kept", "seen"),
    [
        (
            ["-H", "a", "-f", "x.yaml", "--sync", "run.train", "--name", "n"],
            ["run.train", "--name", "n"],
            ["-f", "x.yaml", "run.train", "--name", "n"],
            {"-H", "--sync"},
        ),
        (
            ["-Ha,b", "-i", "k1", "--identity=k2", "-t5", "-S", "cfg", "hw.check"],
            ["hw.check"],
            ["hw.check"],
            {"-H", "-i", "--identity", "-t", "-S"},
        ),
        (
            ["--hosts=a", "--dry-run", "-e", "env.torch", "-t", "2.9"],
            ["env.torch", "-t", "2.9"],
            ["-e", "env.torch", "-t", "2.9"],
            {"--hosts", "--dry-run"},
        ),  # -t after the task is env.torch's own
        (["-H", "a", "--list"], [], ["--list"], {"-H"}),
    ],
)
def test_host_flags_are_taken_only_before_the_task_name(argv, unparsed, kept, seen):
    assert hosts.strip_host_flags(argv, unparsed, HOST_FLAGS) == (kept, seen)


def test_a_host_flag_that_invoke_took_after_the_task_is_refused():
    with pytest.raises(hosts.ConfigError, match="--setup goes before the task name"):
        hosts.check_all_before_task({"hosts": "a", "setup": True}, {"-H"})
    hosts.check_all_before_task({"hosts": "a", "identity": []}, {"-H"})


def test_the_probed_command_in_a_real_shell(tmp_path):
    missing = subprocess.run(
        ["sh", "-c", ssh.probed_command(str(tmp_path / "none"), ["run.list"])], capture_output=True, text=True
    )
    assert missing.returncode == ssh.NO_CHECKOUT and missing.stderr == ""
    checkout = tmp_path / "it's here"
    inv = checkout / ".venv" / "bin" / "inv"
    inv.parent.mkdir(parents=True)
    inv.write_text('#!/bin/sh\nprintf "%s|" "$@"; echo "$PYTHONUNBUFFERED"; echo oops >&2; exit 3\n')
    inv.chmod(0o755)
    subprocess.run(["git", "init", "-q", str(checkout)], check=True)
    subprocess.run(
        [
            "git",
            "-C",
            str(checkout),
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            "x",
        ],
        check=True,
    )
    head = subprocess.run(["git", "-C", str(checkout), "rev-parse", "HEAD"], capture_output=True, text=True).stdout
    done = subprocess.run(
        ["sh", "-c", ssh.probed_command(str(checkout), ["run.list", "--set", "a=$(id); b"])],
        capture_output=True,
        text=True,
    )
    assert (done.returncode, done.stdout) == (3, "run.list|--set|a=$(id); b|1\n")
    assert done.stderr == f"{ssh.HEAD_MARK}{head}oops\n"


def test_the_head_line_is_taken_out_of_the_remote_stderr_however_it_arrives():
    said = "a login script says hi\n"
    cases = (
        (["sam3-tasks-head:abc\nrest\n"], ""),
        (["sam3-", "tasks-head:ab", "c\nre", "st\n"], ""),
        ([said + "sam3-tasks-head:abc\n", "rest\n"], said),  # held until the mark, then passed on
        (["a login script", " says hi\nsam3-ta", "sks-head:abc", "\nrest\n"], said),
    )
    for pieces, before in cases:
        out, heads = io.StringIO(), []
        stream = ssh.HeadFilter(out, heads.append)
        for piece in pieces:
            stream.write(piece)
        stream.end()
        assert (heads, out.getvalue()) == (["abc"], before + "rest\n"), pieces
    out, heads = io.StringIO(), []
    unheard = ssh.HeadFilter(out, heads.append)
    unheard.write("root@host: Permission denied (keyboard-interactive).\n")
    assert (heads, out.getvalue(), unheard.done) == ([], "", False)  # ssh's words, held for the caller
    unheard.end()
    assert out.getvalue() == "root@host: Permission denied (keyboard-interactive).\n"


@pytest.mark.parametrize("shell", ["sh", "bash", "tcsh", "csh"])
def test_every_command_survives_any_login_shell(shell, tmp_path):
    """What sshd does with our command (`SHELL -c COMMAND`), in each shell there is here: the POSIX command
    inside reaches /bin/sh unchanged, quotes, `!`, `$`, backquotes, `\\` and redirections included."""
    if shutil.which(shell) is None:
        pytest.skip(f"no {shell} here")
    odd = ["it's", "$HOME", "!x", "a!!b", "`id`", "\\!y", '"q"', "sp ace", "~"]
    command = f"printf '%s|' {shlex.join(odd)} >&2; test -x /nope 2>/dev/null || echo \"$(echo ok)\"; exit 3"
    done = subprocess.run(
        [shell, "-c", commands.login_shell_safe(command)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert (done.returncode, done.stdout, done.stderr) == (3, "ok\n", "|".join(odd) + "|")
    with pytest.raises(commands.ConfigError, match="line break"):
        commands.login_shell_safe("echo 'a\nb'")


@pytest.mark.parametrize(
    ("argv", "task_at", "scanned"),
    [
        (
            ["-H", "a,b", "-f", "x.yaml", "run.train", "--name", "n"],
            4,
            ({"-H": "a,b", "-i": []}, ["-f", "x.yaml", "run.train", "--name", "n"]),
        ),
        (
            ["-Ha", "-i", "k1", "--identity=k2", "-t5", "-S", "cfg", "hw.check"],
            7,
            ({"-H": "a", "-i": ["k1", "k2"], "-t": "5", "-S": "cfg"}, ["hw.check"]),
        ),
        (["--hosts=a", "-e", "env.torch", "-t", "2.9"], 2, ({"-H": "a", "-i": []}, ["-e", "env.torch", "-t", "2.9"])),
        (["-H", "a", "--sync", "run.list"], 3, None),  # not a plain command: no head start
        (["-H", "a", "--dry-run", "run.list"], 3, None),
        (["-H", "a", "--list"], 3, None),  # invoke's own flags that answer here, or that it is not sure of
        (["-H", "a", "-c", "other", "run.list"], 4, None),
        (["-H", "a", "run.list", "--help"], 2, None),
        (["-H", "a", "run.tensorboard"], 2, None),
        (["-f", "x.yaml", "run.list"], 2, None),  # no host
    ],
)
def test_the_head_start_reads_the_command_line_as_the_real_parse_will(argv, task_at, scanned):
    assert early.scan(argv, HOST_FLAGS) == scanned
    if scanned is not None:  # the remote command line is the one the real parse makes (strip_host_flags)
        assert hosts.strip_host_flags(argv, argv[task_at:], HOST_FLAGS)[0] == scanned[1]
