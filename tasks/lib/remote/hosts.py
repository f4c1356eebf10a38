"""`inv -H HOST[,HOST...] [-i KEY] [-S SSH_CONFIG] [-t SECONDS] [--sync] [--setup] TASK ...` (program.py).

The command line as typed, less the host flags, runs on each host in turn through remote.run's code path
(ssh.run: the OpenSSH client through one kept login, host keys checked by ssh, output streamed, exit code passed
on);
the worst exit code wins. Before it runs, the login node's checkout is compared with ours (checkout.py).
"""

import sys
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from ..core import settings as settings_lib
from ..core.errors import ConfigError, ToolError
from . import checkout, early, forward, ssh


@dataclass(frozen=True)
class HostFlags:
    """What `inv -H` was given before the task name: the hosts, fab's connection flags, and ours."""

    hosts: str
    identities: list[str]
    ssh_config: str | None
    connect_timeout: int | None
    sync: bool
    allow_dirty: bool
    setup: bool
    dry_run: bool = False


def strip_host_flags(args: list[str], unparsed: list[str], flags: dict[str, bool]) -> tuple[list[str], set[str]]:
    """argv (without the program name) less the host flags and their values; and which host flags were seen.

    invoke's core parse stops at the task name and leaves the rest raw (`unparsed`): host flags are taken
    only before it, where invoke split `-Hhost` and `--hosts=a` too."""
    head = args[: len(args) - len(unparsed)]
    kept, seen, i = [], set(), 0
    while i < len(head):
        token = head[i]
        name = token.partition("=")[0] if token.startswith("--") else token[:2]
        if name in flags and (token == name or flags[name]):
            seen.add(name)
            i += 2 if token == name and flags[name] else 1
            continue
        kept.append(token)
        i += 1
    return kept + list(unparsed), seen


def check_all_before_task(values: dict[str, object], seen: set[str]) -> None:
    """A host flag after the task name is refused: it would travel to the login node as part of the task's."""
    spellings = {
        "hosts": ("-H", "--hosts"),
        "identity": ("-i", "--identity"),
        "ssh-config": ("-S", "--ssh-config"),
        "connect-timeout": ("-t", "--connect-timeout"),
        "sync": ("--sync",),
        "allow-dirty": ("--allow-dirty",),
        "setup": ("--setup",),
        "dry-run": ("--dry-run",),
    }
    for name, value in values.items():
        if value not in (None, False, []) and not seen.intersection(spellings[name]):
            raise ConfigError(
                f"{spellings[name][-1]} goes before the task name: inv -H HOST {spellings[name][-1]} ... TASK"
            )


def host_list(value: str) -> list[str]:
    hosts = [host.strip() for host in value.split(",") if host.strip()]
    if not hosts:
        raise ConfigError(
            f"-H {value!r} names no host; give an ~/.ssh/config alias or user@host[:port], comma-separated"
        )
    return hosts


def run_on_hosts(options: HostFlags, remote_argv: list[str], config, root: Path, task_names=(), head_start=None) -> int:
    """Run the command line on every host in turn; the worst exit code. root: this checkout (tasks.py's folder).
    head_start (early.py): the command already started on the first host from the command line alone; it runs
    only if that is the command these settings make, else it is cancelled (and runs nothing there)."""
    if not remote_argv:
        raise ConfigError("nothing to run there: give the task after the host flags, e.g. inv -H login1 run.status")
    hosts = host_list(options.hosts)
    settings = settings_lib.from_invoke(config)
    project_dir = settings["remote.project_dir"]
    ssh_options = ssh.SshFlags(list(options.identities), options.ssh_config, options.connect_timeout)
    sync = options.sync or settings["remote.sync"] == "sync"
    if options.dry_run:
        for host in hosts:
            print("\n".join(describe(host, project_dir, remote_argv, ssh_options, root, sync, options)))
        return 0
    runner = forward.tensorboard if forward.runs_tensorboard(list(task_names)) else None
    worst = 0
    for host in hosts:
        if len(hosts) > 1:
            checkout.say(f"== {host}")
        steps = _steps(options, root, project_dir, host, sync, runner)
        try:
            if host == hosts[0] and "on_head" in steps:
                steps["session"] = ssh.Session(ssh.resolve(host, ssh_options))
                steps["head_start"] = early.hand_over(
                    head_start, root, host, ssh_options, steps["session"], project_dir, remote_argv
                )
            elif head_start is not None:
                head_start.cancel()  # it runs where it is this very command, else nothing
            code = ssh.run(host, project_dir, remote_argv, ssh_options, **steps)
        except ToolError as error:
            if len(hosts) == 1:
                raise
            print(f"error: {error}", file=sys.stderr, flush=True)
            code = error.code
        worst = max(worst, code)
    return worst


def _steps(options: HostFlags, root: Path, project_dir: str, host: str, sync: bool, runner) -> dict:
    """What ssh.run does around the command on host: prepare the checkout first, or only hear its commit."""
    if sync or options.setup or runner:  # the checkout is looked at (and acted on) before the command
        prepare = partial(
            checkout.prepare,
            root=root,
            project_dir=project_dir,
            host=host,
            sync_=sync,
            allow_dirty=options.allow_dirty,
            setup=options.setup,
        )
        return {"prepare": prepare, "runner": runner}
    # only said: the command itself reports the commit there (one remote command)
    return {
        "on_head": partial(checkout.report, root, project_dir, host),
        "missing": checkout.missing(project_dir, host),
    }


def describe(host, project_dir, remote_argv, ssh_options, root: Path, sync: bool, options: HostFlags):
    """What inv -H would do on HOST, read from the SSH config (`ssh -G`) and this checkout only: nothing connects."""
    *connection, command = ssh.describe(host, project_dir, remote_argv, ssh_options)
    ours = checkout.local_head(root)
    changes = checkout.local_changes(root) if ours else []
    lines = list(connection)
    if options.setup:
        lines.append(
            f"would set up {project_dir} there if it has no checkout with .venv: clone {ours and ours[:12]} "
            "from a git bundle sent over the SSH connection, then scripts/bootstrap"
        )
    if ours is None:
        lines.append("would not compare commits: this folder is not a git checkout")
    elif sync:
        refused = " (refused: uncommitted changes here; --allow-dirty)" if changes and not options.allow_dirty else ""
        lines.append(
            f"would bring the checkout there to {ours[:12]} if it is at another commit: a git bundle over "
            f"the SSH connection, git fetch and checkout there, scripts/bootstrap{refused}"
        )
    else:
        lines.append(f"would compare the checkout there with {ours[:12]} and say if it differs (--sync brings it here)")
    return [*lines, command]
