"""Our `inv`: invoke's own Program plus fab's host flags, so that `inv -H login-node TASK ...` runs there.

scripts/bootstrap writes `.venv/bin/inv` (and `invoke`) to load this file by its path and run `program`. It
imports only invoke at module level (`inv --list` stays as fast as invoke's own), and it must not import
`invoke.main`: that module being loaded is how tasks.py tells that invoke's own script runs (a reinstall put
it back), where `-H` fails closed with the fix.

Without -H nothing changes: the same parse, collection, config and executor as invoke's own `inv`. With -H,
the core flags before the task name are read, the project's configuration (invoke.yaml, ~/.invoke.yaml) is
loaded, the task names and flags are checked here, and then the original command line, less the host flags,
runs on each host through remote.run's code (tasks/lib/remote/hosts.py): the whole task graph runs there.
"""

from pathlib import Path

from invoke import Argument, Exit, Program, __version__

HOST_FLAGS = {  # flag -> takes a value; fab's meanings for -H, -i, -S, -t
    "-H": True, "--hosts": True, "-i": True, "--identity": True, "-S": True, "--ssh-config": True,
    "-t": True, "--connect-timeout": True, "--sync": False, "--allow-dirty": False, "--setup": False,
    "--dry-run": False,
}  # fmt: skip
OURS = ("hosts", "identity", "ssh-config", "connect-timeout", "sync", "allow-dirty", "setup", "dry-run")
ACTIVE = False  # True once this Program runs: tasks.py reads it to tell our `inv` from invoke's


class HostsProgram(Program):
    """invoke's Program with -H/--hosts, -i/--identity, -S/--ssh-config, -t/--connect-timeout, --sync,
    --allow-dirty and --setup as core flags (they go before the task name)."""

    def core_args(self):
        return super().core_args() + [
            Argument(names=("hosts", "H"), help="Run the command line on these hosts over SSH, comma-separated "
                                                "(~/.ssh/config aliases or user@host[:port]), one after another."),
            Argument(names=("identity", "i"), kind=list, default=[],
                     help="Private key file for the SSH login (repeatable), as fab's -i."),
            Argument(names=("ssh-config", "S"), help="SSH config file to read instead of ~/.ssh/config."),
            Argument(names=("connect-timeout", "t"), kind=int, help="Seconds to wait for the SSH connection."),
            Argument(names=("sync",), kind=bool, default=False,
                     help="With -H: bring the login node's checkout to this commit first (remote.sync)."),
            Argument(names=("allow-dirty",), kind=bool, default=False,
                     help="With --sync: sync this commit although the working tree has uncommitted changes."),
            Argument(names=("setup",), kind=bool, default=False,
                     help="With -H: where the checkout or its .venv is missing, copy this one there and bootstrap it."),
            Argument(names=("dry-run",), kind=bool, default=False,
                     help="With -H, before the task: say what -H would do there; connect to nothing. (After the "
                          "task name, --dry-run is the task's own, run there.)"),
        ]  # fmt: skip

    def run(self, argv=None, exit=True):
        global ACTIVE
        ACTIVE = True
        return super().run(argv, exit)

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
        if self.args.hosts.value is None:
            return super().execute()
        from tasks.lib.core.errors import ToolError  # the collection (tasks.py) is loaded by now
        from tasks.lib.remote import hosts

        try:
            remote_argv, seen = hosts.strip_host_flags(self.argv[1:], self.core.unparsed, HOST_FLAGS)
            hosts.check_all_before_task({name: self.args[name].value for name in OURS}, seen)
            options = hosts.Options(
                hosts=self.args.hosts.value, identities=self.args.identity.value,
                ssh_config=self.args["ssh-config"].value, connect_timeout=self.args["connect-timeout"].value,
                sync=self.args.sync.value, allow_dirty=self.args["allow-dirty"].value, setup=self.args.setup.value,
                dry_run=self.args["dry-run"].value,
            )  # fmt: skip
            code = hosts.run_on_hosts(
                options,
                remote_argv,
                self.config,
                Path(self.collection.loaded_from),
                [context.name for context in self.tasks],
            )
        except ToolError as error:
            raise Exit(f"error: {error}", code=error.code) from None
        if code:
            raise Exit(code=code)
        return None


program = HostsProgram(name="Invoke", binary="inv[oke]", binary_names=["invoke", "inv"], version=__version__)
