"""Run our tasks on a cluster login node: `inv` itself, re-run there over one SSH connection (fabric).

The whole task graph, pre-tasks included, runs on the login node with a local Context there, so there is
one code path; this module only builds the remote command line, connects, and passes the exit code on.
fabric (and with it paramiko) is imported only when a connection is built: `inv --list` stays light.

Host keys: fabric accepts any server key (paramiko's AutoAddPolicy, no known_hosts read). We check them as
`ssh` does: the known_hosts files ~/.ssh/config names (default ~/.ssh/known_hosts and the system file) are
loaded, a changed key is always refused, and an unknown one is refused unless StrictHostKeyChecking says
no or accept-new for that host.
"""

import getpass
import os
import re
import shlex
import socket
import sys
from dataclasses import dataclass, field

from ..core.errors import ConfigError, ToolError

INV = ".venv/bin/inv"
NO_CREDENTIALS = "No authentication methods available"  # paramiko's SSHException when it has nothing to offer
CONNECT_TIMEOUT_S = 30  # unless ~/.ssh/config (ConnectTimeout) or timeouts.connect says otherwise
_HOME = re.compile(r"~[\w.-]*")  # ~ or ~user: left for the remote shell to expand


@dataclass(frozen=True)
class Options:
    """fab's connection flags, as `inv -H` takes them: -i key files, -S an SSH config file, -t seconds."""

    identities: list[str] = field(default_factory=list)
    ssh_config: str | None = None
    connect_timeout: int | None = None


def split_command(line: str) -> list[str]:
    """The quoted inv command line as arguments, split as a shell would."""
    try:
        args = shlex.split(line)
    except ValueError as exc:
        raise ConfigError(f"cannot split {line!r} into arguments ({exc}); quote it as you would in a shell") from None
    if not args:
        raise ConfigError('nothing to run: pass the inv command line, e.g. inv remote.run "run.status"')
    return args


def remote_path(path: str) -> str:
    """A path for the remote shell: a leading ~ or ~user stays bare so that shell expands it, the rest is quoted."""
    head, slash, tail = path.partition("/")
    if _HOME.fullmatch(head):
        return head + slash + (shlex.quote(tail) if tail else "")
    return shlex.quote(path)


def remote_command(project_dir: str, inv_args: list[str]) -> str:
    """`cd DIR && env PYTHONUNBUFFERED=1 .venv/bin/inv ARGS...`, every value quoted for the remote shell.

    Without a terminal there, Python would hold its output back in blocks; unbuffered, it streams as printed.
    """
    return f"cd {remote_path(project_dir)} && {shlex.join(['env', 'PYTHONUNBUFFERED=1', INV, *inv_args])}"


HEAD_MARK = "sam3-tasks-head:"
NO_CHECKOUT = 117  # the probed command's exit status where the checkout or its .venv is missing


def probed_command(project_dir: str, inv_args: list[str]) -> str:
    """remote_command, which first fails with NO_CHECKOUT where there is no checkout with .venv, and prints the
    checkout's commit as a first stderr line (HEAD_MARK): one remote command, one shell there, not three."""
    head = f"printf '{HEAD_MARK}%s\\n' \"$(git rev-parse HEAD 2>/dev/null)\" >&2"
    run = shlex.join(["env", "PYTHONUNBUFFERED=1", INV, *inv_args])
    return f"cd {remote_path(project_dir)} 2>/dev/null && test -x {INV} || exit {NO_CHECKOUT}; {head}; exec {run}"


class HeadFilter:
    """The remote stderr, less the HEAD_MARK line it starts with, which goes to on_head(commit or None)."""

    def __init__(self, stream, on_head):
        self.stream, self.on_head, self.pending, self.done = stream, on_head, "", False

    def write(self, text: str) -> None:
        if self.done:
            self.stream.write(text)
            return
        self.pending += text
        line, newline, rest = self.pending.partition("\n")
        if not newline and len(self.pending) < 200:
            return
        self.done = True
        if line.startswith(HEAD_MARK):
            self.on_head(line[len(HEAD_MARK) :].strip() or None)
        else:
            rest = self.pending
        if rest:
            self.stream.write(rest)

    def flush(self) -> None:
        self.stream.flush()


def checkout_probe(project_dir: str) -> str:
    """A remote command that succeeds when DIR holds a checkout with its launcher venv."""
    return f"test -x {remote_path(project_dir.rstrip('/') + '/' + INV)}"


def ssh_hint(cxn) -> str:
    """The OpenSSH command that reaches a connection's host, ~/.ssh/config supplying the rest as it does for us."""
    port = [] if cxn.port == int(cxn.ssh_config.get("port", 22)) else ["-p", str(cxn.port)]
    user = "" if cxn.user == cxn.ssh_config.get("user", getpass.getuser()) else f"{cxn.user}@"
    return shlex.join(["ssh", *port, user + cxn.original_host])


def connection(host: str, config, options: Options | None = None):
    """A fabric Connection to HOST (~/.ssh/config, or -S's file, applies), from the task's invoke config;
    nothing connects yet. Agent forwarding stays off unless that SSH config says ForwardAgent yes."""
    from fabric import Config, Connection
    from paramiko.ssh_exception import ConfigParseError

    options = options or Options()
    kwargs = {}
    if options.connect_timeout is not None:  # -t wins over ConnectTimeout, as ssh's -o would
        if options.connect_timeout <= 0:
            raise ConfigError(f"-t {options.connect_timeout} is not a number of seconds; give one above 0, e.g. -t 30")
        kwargs["connect_timeout"] = options.connect_timeout
    if options.identities:
        missing = [path for path in options.identities if not os.path.isfile(os.path.expanduser(path))]
        if missing:
            raise ConfigError(f"-i {missing[0]}: no such key file; give the path of your private key")
        kwargs["connect_kwargs"] = {"key_filename": [os.path.expanduser(path) for path in options.identities]}
    try:
        fabric_config = config.clone(into=Config)
        if options.ssh_config is not None:
            if not os.path.isfile(os.path.expanduser(options.ssh_config)):
                raise ConfigError(f"-S {options.ssh_config}: no such SSH config file; give the file's path")
            fabric_config.set_runtime_ssh_path(os.path.expanduser(options.ssh_config))
        fabric_config.load_ssh_config()  # a clone from an invoke Config skips ~/.ssh/config (fabric 3.2.3)
        if fabric_config.timeouts.connect is None:
            fabric_config.timeouts.connect = CONNECT_TIMEOUT_S
        cxn = Connection(host, config=fabric_config, **kwargs)
    except (ValueError, ConfigParseError) as exc:
        raise ConfigError(
            f"cannot use host {host!r} ({exc}); give an ~/.ssh/config alias or user@host[:port]"
        ) from None
    hop = cxn
    while isinstance(hop, Connection):  # the login node, then each ProxyJump hop before it
        _check_host_keys_like_ssh(hop)
        hop = hop.gateway
    return cxn


def _check_host_keys_like_ssh(cxn) -> None:
    ssh_config = cxn.ssh_config
    user_files = ssh_config.get("userknownhostsfile", "~/.ssh/known_hosts ~/.ssh/known_hosts2")
    system_files = ssh_config.get("globalknownhostsfile", "/etc/ssh/ssh_known_hosts /etc/ssh/ssh_known_hosts2")
    for path in (os.path.expanduser(p) for p in f"{user_files} {system_files}".split()):
        if os.path.isfile(path):
            cxn.client.load_system_host_keys(path)
    if ssh_config.get("stricthostkeychecking", "ask").lower() not in ("no", "off", "accept-new"):
        cxn.client.set_missing_host_key_policy(_RefuseUnknownHostKey(cxn.original_host, ssh_hint(cxn)))


class _RefuseUnknownHostKey:
    """paramiko's missing-host-key policy, duck-typed so that paramiko is imported only when connecting."""

    def __init__(self, host: str, hint: str):
        self.host, self.hint = host, hint

    def missing_host_key(self, client, hostname, key):
        raise ConfigError(f"the SSH host key of {self.host} ({hostname}, {key.get_name()} {key.fingerprint}) is not "
                          f"in your known_hosts; run `{self.hint}` once to check and accept it")  # fmt: skip


def describe(host: str, project_dir: str, inv_args: list[str], config, options: Options | None = None) -> list[str]:
    """What run() would do, read from ~/.ssh/config only: no connection is made."""
    cxn = connection(host, config, options)
    via = f" via {cxn.gateway.original_host}" if hasattr(cxn.gateway, "original_host") else ""
    return [f"would connect to {host} as {cxn.user}@{cxn.host} port {cxn.port}{via}",
            f"would run there: {remote_command(project_dir, inv_args)}"]  # fmt: skip


def run(host: str, project_dir: str, inv_args: list[str], config, options: Options | None = None, prepare=None,
        runner=None, on_head=None, missing=None) -> int:  # fmt: skip
    """Run inv in the checkout on HOST, its output streamed as it comes; its exit code.

    prepare(cxn), when given, runs on the open connection first and replaces the check that the checkout is
    there (inv -H: the commit comparison, --sync, --setup). runner(cxn, command, host), when given, runs the
    command instead and returns its exit code (inv -H run.tensorboard: the port forward). on_head(commit), when
    given, gets the checkout's commit from the command itself (probed_command); missing is the message then."""
    cxn = connection(host, config, options)
    try:
        _open(cxn, host)
        if prepare is not None:
            prepare(cxn)
        elif on_head is None and not has_checkout(cxn, project_dir):
            raise ConfigError(f"no sam3-tasks checkout with .venv at {project_dir} on {host}: clone it there and "
                              "run scripts/bootstrap (or pass --project-dir)")  # fmt: skip
        if runner is not None:
            return runner(cxn, remote_command(project_dir, inv_args), host)
        if on_head is not None:
            result = cxn.run(probed_command(project_dir, inv_args), warn=True, pty=False, in_stream=False, hide=False,
                             env={}, err_stream=HeadFilter(sys.stderr, on_head))  # fmt: skip
            if result.exited == NO_CHECKOUT:
                raise ConfigError(missing)
            return _exit_code(result, host)
        # env={}: nothing from our side reaches the remote environment (its secrets are its own).
        result = cxn.run(remote_command(project_dir, inv_args), warn=True, pty=False, in_stream=False, hide=False,
                         env={})  # fmt: skip
    finally:
        cxn.close()
    return _exit_code(result, host)


def _exit_code(result, host: str) -> int:
    if result.exited < 0:
        raise ToolError(f"the command on {host} ended without an exit status (the connection dropped, or a signal "
                        "killed it); see its output above, and inv remote.run run.status")  # fmt: skip
    return result.exited


def has_checkout(cxn, project_dir: str) -> bool:
    return not cxn.run(checkout_probe(project_dir), hide=True, warn=True, in_stream=False).failed


def _open(cxn, host: str) -> None:
    from paramiko.ssh_exception import AuthenticationException, BadHostKeyException, SSHException

    try:
        cxn.open()
    except BadHostKeyException as exc:
        name = f"[{exc.hostname}]:{cxn.port}" if exc.hostname == cxn.host and cxn.port != 22 else exc.hostname
        raise ConfigError(f"the SSH host key of {exc.hostname} is not the one in your known_hosts (it offered "
                          f"{exc.key.get_name()} {exc.key.fingerprint}, known_hosts has {exc.expected_key.fingerprint}): "
                          "ask the cluster's admins whether it changed before you replace the line "
                          f"(ssh-keygen -R {shlex.quote(name)})") from None  # fmt: skip
    except (OSError, SSHException) as exc:
        if isinstance(exc, AuthenticationException) or str(exc) == NO_CREDENTIALS:
            raise ConfigError(f"{host} refused to log in {cxn.user} ({str(exc).rstrip('.')}; {_credentials(cxn)}); "
                              f"make `{ssh_hint(cxn)}` log in without a password: IdentityFile for it in "
                              "~/.ssh/config, or ssh-add your key") from None  # fmt: skip
        # DNS, refused, timed out, no SSH server on that port
        raise ToolError(f"cannot reach {host} over SSH ({_reason(exc, cxn)}); check `{ssh_hint(cxn)}` works") from None


def _reason(exc: Exception, cxn) -> str:
    from paramiko.ssh_exception import NoValidConnectionsError

    if isinstance(exc, NoValidConnectionsError):
        return ", ".join(f"{error.strerror or error} at {address[0]} port {address[1]}"
                         for address, error in exc.errors.items())  # fmt: skip
    if isinstance(exc, socket.gaierror):
        return f"{cxn.host}: {exc.strerror}"
    if isinstance(exc, TimeoutError):
        return f"no answer from {cxn.host} port {cxn.port} within {cxn.connect_timeout} s"
    return getattr(exc, "strerror", None) or str(exc)


def _credentials(cxn) -> str:
    """Which keys paramiko offered: the IdentityFile lines, ~/.ssh/id_*, the agent."""
    files = cxn.connect_kwargs.get("key_filename") or []
    files = [files] if isinstance(files, str) else list(files)
    if cxn.connect_kwargs.get("look_for_keys", True):
        files += [p for p in (os.path.expanduser(f"~/.ssh/id_{kind}") for kind in ("rsa", "ecdsa", "ed25519"))
                  if os.path.isfile(p)]  # fmt: skip
    tried = [f"key {path}" for path in dict.fromkeys(files)]
    if cxn.connect_kwargs.get("allow_agent", True) and os.environ.get("SSH_AUTH_SOCK"):
        tried.append("the ssh agent")
    return f"tried {', '.join(tried)}" if tried else "no key file and no ssh agent found"
