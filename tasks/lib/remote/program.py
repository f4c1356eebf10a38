"""Our `inv`: invoke's own Program plus fab's host flags, so that `inv -H login-node TASK ...` runs there.

scripts/bootstrap writes `.venv/bin/inv` (and `invoke`) to load this file by its path and run `program`. It
imports only invoke at module level (`inv --list` stays as fast as invoke's own), and it must not import
`invoke.main`: that module being loaded is how tasks.py tells that invoke's own script runs (a reinstall put
it back), where `-H` fails closed with the fix.

Without -H nothing changes: the same parse, collection, config and executor as invoke's own `inv`. With -H,
the core flags before the task name are read, the project's configuration (invoke.yaml, ~/.invoke.yaml) is
loaded, the task names and flags are checked here, and then the original command line, less the host flags,
runs on each host through remote.run's code (tasks/lib/remote/hosts.py): the whole task graph runs there.
A plain one gets a head start (tasks/lib/remote/early.py): begun from the command line alone before invoke is
imported here, it waits there (--await-go) until that check says go; where the settings here are the ones last
seen, invoke is not imported here at all, and the inv there, which checks the same way, is the check.
"""

import sys
from pathlib import Path

HOST_FLAGS = {  # flag -> takes a value; fab's names for -H, -i, -S, -t; ssh's meanings (-i, -F, ConnectTimeout)
    "-H": True,
    "--hosts": True,
    "-i": True,
    "--identity": True,
    "-S": True,
    "--ssh-config": True,
    "-t": True,
    "--connect-timeout": True,
    "--sync": False,
    "--allow-dirty": False,
    "--setup": False,
    "--dry-run": False,
}


def _head_start():
    """inv -H's head start (tasks/lib/remote/early.py), begun before invoke is imported: only for our own `inv`
    (the launcher loads this file as sam3_tasks_program) with -H, in a project of ours (the tasks.py invoke will
    find, up from here, beside tasks/lib/remote/early.py). The `tasks` package is given that folder here;
    invoke puts tasks.py itself in its place when it loads the collection."""
    if __name__ != "sam3_tasks_program" or not any(
        t in ("-H", "--hosts") or t.startswith(("-H", "--hosts=")) for t in sys.argv[1:]
    ):
        return None
    here = Path.cwd()
    root = next((folder for folder in (here, *here.parents) if (folder / "tasks.py").is_file()), None)
    if root is None or not (root / "tasks" / "lib" / "remote" / "early.py").is_file() or "tasks" in sys.modules:
        return None
    import types

    package = types.ModuleType("tasks")
    package.__path__ = [str(root / "tasks")]
    sys.modules["tasks"] = package
    try:
        from tasks.lib.remote import early

        started = early.start(sys.argv[1:], root, HOST_FLAGS)
    except Exception:  # a head start is only ever a head start: inv -H runs the usual way
        started = None
    if started is None:
        del sys.modules["tasks"]
    return started


HEAD_START = _head_start()
if HEAD_START is not None:  # a plain command whose settings here are the ones last seen: invoke is not needed here
    try:
        _ALONE = HEAD_START.run_alone()
    except KeyboardInterrupt:
        sys.exit(1)  # as invoke's own Program
    if _ALONE is not None:
        sys.exit(_ALONE)

from invoke import Argument, Exit, Program, __version__  # noqa: E402  (after the head start: it waits for nothing)

READY = "sam3-tasks-ready"  # what `inv --await-go` says on stderr once it waits (early.py)
OURS = ("hosts", "identity", "ssh-config", "connect-timeout", "sync", "allow-dirty", "setup", "dry-run")


class HostsProgram(Program):
    """invoke's Program with -H/--hosts, -i/--identity, -S/--ssh-config, -t/--connect-timeout, --sync,
    --allow-dirty and --setup as core flags (they go before the task name)."""

    def core_args(self):
        return super().core_args() + [
            Argument(
                names=("hosts", "H"),
                help="Run the command line on these hosts over SSH, comma-separated "
                "(~/.ssh/config aliases or user@host[:port]), one after another.",
            ),
            Argument(
                names=("identity", "i"),
                kind=list,
                default=[],
                help="Private key file for the SSH login (repeatable), as ssh -i.",
            ),
            Argument(names=("ssh-config", "S"), help="SSH config file to read instead of ~/.ssh/config."),
            Argument(names=("connect-timeout", "t"), kind=int, help="Seconds to wait for the SSH connection."),
            Argument(
                names=("sync",),
                kind=bool,
                default=False,
                help="With -H: bring the login node's checkout to this commit first (remote.sync).",
            ),
            Argument(
                names=("allow-dirty",),
                kind=bool,
                default=False,
                help="With --sync: sync this commit although the working tree has uncommitted changes.",
            ),
            Argument(
                names=("setup",),
                kind=bool,
                default=False,
                help="With -H: where the checkout or its .venv is missing, copy this one there and bootstrap it.",
            ),
            Argument(
                names=("dry-run",),
                kind=bool,
                default=False,
                help="With -H, before the task: say what -H would do there; connect to nothing. (After the "
                "task name, --dry-run is the task's own, run there.)",
            ),
            Argument(
                names=("await-go",),
                kind=bool,
                default=False,
                help="inv -H's own, on the login node: load and check, then run only once a line 'go' comes "
                "on stdin (its head start).",
            ),
        ]

    def parse_core(self, argv):
        super().parse_core(argv)
        if self.args.hosts.value is None:
            for name in OURS[1:]:
                if self.args[name].value not in (None, False, []):
                    raise Exit(f"error: --{name} goes with -H: inv -H HOST --{name} ... TASK", code=2)

    def parse_cleanup(self):
        if self.args.hosts.value is None:
            return super().parse_cleanup()
        return None  # --help TASK and --list with -H are answered by the login node

    def update_config(self, merge=True):
        if self.args.hosts.value is None:
            return super().update_config(merge)
        return None  # -f FILE and the run flags are the login node's: they travel in the command line

    def execute(self):
        if self.args.hosts.value is None and self.args["await-go"].value:
            after = [name for name in OURS[1:] if self.args[name].value not in (None, False, [])]
            if after:  # a host flag after the task name, as inv -H there refuses it (early.py: before READY)
                raise Exit(f"error: --{after[0]} goes before the task name: inv -H HOST --{after[0]} ... TASK", code=2)
            print(READY, file=sys.stderr, flush=True)
            if sys.stdin.readline().strip() != "go":
                return None  # the inv -H that started it found another command there, or went away: nothing runs
        if self.args.hosts.value is None:
            return super().execute()
        from tasks.lib.core.errors import ToolError  # the collection (tasks.py) is loaded by now
        from tasks.lib.remote import hosts

        head_start = HEAD_START if self.argv[1:] == sys.argv[1:] else None
        try:
            remote_argv, seen = hosts.strip_host_flags(self.argv[1:], self.core.unparsed, HOST_FLAGS)
            hosts.check_all_before_task({name: self.args[name].value for name in OURS}, seen)
            options = hosts.HostFlags(
                hosts=self.args.hosts.value,
                identities=self.args.identity.value,
                ssh_config=self.args["ssh-config"].value,
                connect_timeout=self.args["connect-timeout"].value,
                sync=self.args.sync.value,
                allow_dirty=self.args["allow-dirty"].value,
                setup=self.args.setup.value,
                dry_run=self.args["dry-run"].value,
            )
            code = hosts.run_on_hosts(
                options,
                remote_argv,
                self.config,
                Path(self.collection.loaded_from),
                [context.name for context in self.tasks],
                head_start,
            )
        except ToolError as error:
            raise Exit(f"error: {error}", code=error.code) from None
        finally:
            if head_start is not None:
                head_start.cancel()
        if code:
            raise Exit(code=code)
        return None


program = HostsProgram(name="Invoke", binary="inv[oke]", binary_names=["invoke", "inv"], version=__version__)
