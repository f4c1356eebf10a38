"""Remote: the same tasks on a cluster login node, `inv` re-run there over SSH (the OpenSSH client)."""

from invoke import Exit

from .common import load_settings, task
from .lib.core.errors import ConfigError


@task(
    auto_shortflags=False,
    help={
        "command": 'The inv command line to run there, quoted: "run.train --config x --mode cluster". One that starts '
        'with inv\'s own flags goes after --command: --command "-f cluster.yaml run.train ...".',
        "host": "Login node: an ~/.ssh/config alias or user@host[:port]. Default: remote.host.",
        "project_dir": "This project's checkout there (~ is the remote home). Default: remote.project_dir.",
        "dry_run": "Print the host and the exact remote command; connect to nothing.",
    },
)
def run(c, command, host=None, project_dir=None, dry_run=False):
    """Run an inv command line on the login node, its output streamed back and its exit code ours.

    The whole task graph runs there (pre-tasks included) with that checkout's configuration, and the
    secrets of that machine: nothing from this environment is sent.
    """
    from .lib.remote import ssh as remote_lib

    settings = load_settings(
        c, **{"remote.host": ("--host", host), "remote.project_dir": ("--project-dir", project_dir)}
    )
    host, project_dir = settings["remote.host"], settings["remote.project_dir"]
    inv_args = remote_lib.split_command(command)
    if not host:
        raise ConfigError(
            "no login node given: pass --host (an ~/.ssh/config alias or user@host[:port]) or set "
            "remote.host in ~/.invoke.yaml"
        )
    if dry_run:
        print("\n".join(remote_lib.describe(host, project_dir, inv_args)))
        return
    code = remote_lib.run(host, project_dir, inv_args)
    if code:
        raise Exit(code=code)
