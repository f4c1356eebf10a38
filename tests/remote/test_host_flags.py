"""The plain parts of `inv -H`: which tokens are host flags, the probed remote command in a real shell, and the
filter that takes the commit line out of the remote stderr."""

import io
import subprocess

import pytest

from tasks.lib.remote import hosts, ssh
from tasks.lib.remote.program import HOST_FLAGS


@pytest.mark.parametrize(
    ("argv", "unparsed", "kept", "seen"),
    [
        (["-H", "a", "-f", "x.yaml", "--sync", "run.train", "--name", "n"], ["run.train", "--name", "n"],
         ["-f", "x.yaml", "run.train", "--name", "n"], {"-H", "--sync"}),
        (["-Ha,b", "-i", "k1", "--identity=k2", "-t5", "-S", "cfg", "hw.check"], ["hw.check"], ["hw.check"],
         {"-H", "-i", "--identity", "-t", "-S"}),
        (["--hosts=a", "--dry-run", "-e", "env.torch", "-t", "2.9"], ["env.torch", "-t", "2.9"],
         ["-e", "env.torch", "-t", "2.9"], {"--hosts", "--dry-run"}),  # -t after the task is env.torch's own
        (["-H", "a", "--list"], [], ["--list"], {"-H"}),
    ],
)  # fmt: skip
def test_host_flags_are_taken_only_before_the_task_name(argv, unparsed, kept, seen):
    assert hosts.strip_host_flags(argv, unparsed, HOST_FLAGS) == (kept, seen)


def test_a_host_flag_that_invoke_took_after_the_task_is_refused():
    with pytest.raises(hosts.ConfigError, match="--setup goes before the task name"):
        hosts.check_all_before_task({"hosts": "a", "setup": True}, {"-H"})
    hosts.check_all_before_task({"hosts": "a", "identity": []}, {"-H"})


def test_the_probed_command_in_a_real_shell(tmp_path):
    missing = subprocess.run(["sh", "-c", ssh.probed_command(str(tmp_path / "none"), ["run.list"])],
                             capture_output=True, text=True)  # fmt: skip
    assert missing.returncode == ssh.NO_CHECKOUT and missing.stderr == ""
    checkout = tmp_path / "it's here"
    inv = checkout / ".venv" / "bin" / "inv"
    inv.parent.mkdir(parents=True)
    inv.write_text('#!/bin/sh\nprintf "%s|" "$@"; echo "$PYTHONUNBUFFERED"; echo oops >&2; exit 3\n')
    inv.chmod(0o755)
    subprocess.run(["git", "init", "-q", str(checkout)], check=True)
    subprocess.run(["git", "-C", str(checkout), "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q",
                    "--allow-empty", "-m", "x"], check=True)  # fmt: skip
    head = subprocess.run(["git", "-C", str(checkout), "rev-parse", "HEAD"], capture_output=True, text=True).stdout
    done = subprocess.run(["sh", "-c", ssh.probed_command(str(checkout), ["run.list", "--set", "a=$(id); b"])],
                          capture_output=True, text=True)  # fmt: skip
    assert (done.returncode, done.stdout) == (3, "run.list|--set|a=$(id); b|1\n")
    assert done.stderr == f"{ssh.HEAD_MARK}{head}oops\n"


def test_the_head_line_is_taken_out_of_the_remote_stderr_however_it_arrives():
    for pieces in (["sam3-tasks-head:abc\nrest\n"], ["sam3-", "tasks-head:ab", "c\nre", "st\n"]):
        out, heads = io.StringIO(), []
        stream = ssh.HeadFilter(out, heads.append)
        for piece in pieces:
            stream.write(piece)
        assert (heads, out.getvalue()) == (["abc"], "rest\n")
    out, heads = io.StringIO(), []
    ssh.HeadFilter(out, heads.append).write("not ours\nmore\n")
    assert (heads, out.getvalue()) == ([], "not ours\nmore\n")
