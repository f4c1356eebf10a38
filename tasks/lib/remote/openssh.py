"""`inv -H`'s transport: the OpenSSH client itself, with one login kept open and reused (ControlMaster).

Why the `ssh` binary and not a Python SSH library: the host a user names resolves exactly as `ssh` resolves it
(`ssh -G`: the whole config, Include and Match, HostName, ProxyJump, IdentitiesOnly, IdentityAgent,
CertificateFile, ServerAliveInterval, ...), ssh itself checks the host keys on every hop (known_hosts,
StrictHostKeyChecking, @cert-authority), and a login node that asks for a second factor (MFA) is answered once:
every command goes through one master connection, the user's own (ControlPath in their config) or ours.

resolve() runs `ssh -G` (about 5 ms, connects to nothing) and gives a Target: the host, ssh's flags for it and
where its master is kept. session.py runs every command through that master in BatchMode (a first command may
become the master itself); login.py logs in where ssh cannot on its own (a one-time code: prompted once, on
the terminal, never on our stdout). Commands go as `exec /bin/sh -c '...'`, which any login shell runs unchanged.
"""

import hashlib
import os
import pwd
import shlex
import shutil
import subprocess
from dataclasses import dataclass, field

from ..core.errors import ConfigError

OUR_PERSIST = "1h"  # how long our master outlives the last command, where the user's config sets no ControlPersist
CONNECT_TIMEOUT_S = 30  # unless ConnectTimeout (ssh config) or -t says otherwise
PROMPTED = ("keyboard-interactive", "password")  # what a server asks for beyond a key (a one-time code, a password)
_FORWARDS = ("localforward", "remoteforward", "dynamicforward")


@dataclass(frozen=True)
class SshFlags:
    """inv -H's connection flags (fab's names): -i key files (ssh -i), -S an SSH config file (ssh -F), -t seconds."""

    identities: list[str] = field(default_factory=list)
    ssh_config: str | None = None
    connect_timeout: int | None = None


@dataclass(frozen=True)
class Result:
    exited: int
    stdout: str = ""
    stderr: str = ""

    @property
    def ok(self) -> bool:
        return self.exited == 0

    @property
    def failed(self) -> bool:
        return self.exited != 0


def split_host(host: str) -> tuple[str | None, str, str | None]:
    """`user@host[:port]` (or `[v6]:port`) as (user, host, port); an alias comes back whole."""
    user, _, rest = host.rpartition("@")
    name, port = rest, None
    if rest.startswith("["):
        name, _, tail = rest[1:].partition("]")
        port = tail[1:] if tail.startswith(":") else None
    elif rest.count(":") == 1:
        name, port = rest.split(":")
    if not name or name.startswith("-") or (port is not None and not port.isdigit()) or not host.isprintable():
        raise ConfigError(f"cannot use host {host!r}; give an ~/.ssh/config alias or user@host[:port]")
    return user or None, name, port


def hint(host: str, flags=()) -> str:
    """The `ssh` command line that logs in to host as we do (ssh's own syntax for user@host:port)."""
    user, name, port = split_host(host)
    return shlex.join(["ssh", *flags, *(["-p", port] if port else []), f"{user}@{name}" if user else name])


def home() -> str:
    """The home ssh uses (the passwd entry's, not $HOME): where `~` in a ControlPath points."""
    return pwd.getpwuid(os.getuid()).pw_dir


@dataclass(frozen=True)
class Target:
    """A host as ssh resolves it: the name given, ssh's flags for it (-F, -i, -l, -p, -o), and `ssh -G`'s answer."""

    host: str
    name: str
    flags: tuple[str, ...]  # as the user gave them
    config: dict
    defaults: tuple[str, ...] = ()  # ours, where the config sets nothing: -o ConnectTimeout=30

    def get(self, key: str, default: str = "") -> str:
        values = self.config.get(key)
        return values[0] if values else default

    @property
    def via(self) -> str:
        return self.get("proxyjump") or (self.get("proxycommand") and "its ProxyCommand")

    @property
    def ours(self) -> bool:
        """Whether the master is ours: the user's ssh config names no ControlPath for this host."""
        return "controlpath" not in self.config

    @property
    def control_path(self) -> str:
        if not self.ours:
            return self.get("controlpath")
        key = [
            self.host,
            *self.flags,
            *(self.get(k) for k in ("user", "hostname", "port", "proxyjump", "proxycommand")),
        ]
        return f"~/.ssh/sam3-{hashlib.sha1(' '.join(key).encode()).hexdigest()[:16]}"

    @property
    def persist(self) -> str:
        theirs = self.get("controlpersist", "no")
        return OUR_PERSIST if theirs in ("no", "false") else theirs

    def ssh(self, *extra: str, shown: bool = False) -> list[str]:
        """`ssh FLAGS [-o ControlPath=ours] EXTRA NAME`: a command line for this host, through its master (shown:
        as a user would type it, without our defaults)."""
        path = ["-o", f"ControlPath={self.control_path}"] if self.ours else []
        return ["ssh", *self.flags, *(() if shown else self.defaults), *extra, *path, self.name]

    def master_options(self) -> list[str]:
        """ssh's options that make it the kept master where none answers: auto (a live one is joined, a dead
        one's socket replaced), ControlPersist (theirs, else ours), no forwards of the config's."""
        options = []
        if self.ours or self.get("controlmaster") not in ("auto", "autoask"):
            options += ["-o", "ControlMaster=auto"]
        if self.persist != self.get("controlpersist"):
            options += ["-o", f"ControlPersist={self.persist}"]
        if any(key in self.config for key in _FORWARDS):
            options += ["-o", "ClearAllForwardings=yes"]
        return options

    def open_argv(self, shown: bool = False) -> list[str]:
        """The command that opens the master and keeps it (shown: what a user without a terminal is told to run)."""
        return self.ssh("-fN", *self.master_options(), shown=shown)


def run_ssh(argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    if shutil.which(argv[0]) is None:
        raise ConfigError("no OpenSSH client (ssh) here, which inv -H logs in with; install it (openssh-client)")
    return subprocess.run(argv, **{"stdin": subprocess.DEVNULL, "capture_output": True, "text": True, **kwargs})


def given_flags(flags) -> list[str]:
    """-F and -i as given to inv -H (the -l and -p of user@host:port are in the host itself)."""
    pairs = zip(flags, list(flags)[1:], strict=False)
    return [part for flag, value in pairs if flag in ("-F", "-i") for part in (flag, value)]


def _flags(host: str, options: SshFlags) -> list[str]:
    user, _, port = split_host(host)
    flags = []
    if options.ssh_config is not None:
        if not os.path.isfile(os.path.expanduser(options.ssh_config)):
            raise ConfigError(f"-S {options.ssh_config}: no such SSH config file; give the file's path")
        flags += ["-F", os.path.expanduser(options.ssh_config)]
    for path in options.identities:
        if not os.path.isfile(os.path.expanduser(path)):
            raise ConfigError(f"-i {path}: no such key file; give the path of your private key")
        flags += ["-i", os.path.expanduser(path)]
    if options.connect_timeout is not None:  # -t wins over ConnectTimeout, as ssh's -o would
        if options.connect_timeout <= 0:
            raise ConfigError(f"-t {options.connect_timeout} is not a number of seconds; give one above 0, e.g. -t 30")
        flags += ["-o", f"ConnectTimeout={options.connect_timeout}"]
    return flags + (["-l", user] if user else []) + (["-p", port] if port else [])


def resolve(host: str, options: SshFlags | None = None) -> Target:
    """HOST as `ssh` resolves it (`ssh -G`: the whole config, -S's file instead where given); nothing connects."""
    flags = _flags(host, options or SshFlags())
    name = split_host(host)[1]
    done = run_ssh(["ssh", *flags, "-G", "-T", name])
    if done.returncode != 0:
        said = [
            line.strip().rstrip(".") for line in done.stderr.splitlines() if line.strip() and "terminating," not in line
        ]
        said = "; ".join(said) or f"ssh -G exited {done.returncode}"
        shows = hint(host, [*given_flags(flags), "-G"])
        raise ConfigError(
            f"ssh cannot resolve {host}: {said}; fix your SSH config there (`{shows}` shows what ssh makes of it)"
        )
    config: dict[str, list[str]] = {}
    for line in done.stdout.splitlines():
        key, _, value = line.partition(" ")
        config.setdefault(key, []).append(value)
    unset = config.get("connecttimeout", ["none"])[0] == "none"
    return Target(host, name, tuple(flags), config, ("-o", f"ConnectTimeout={CONNECT_TIMEOUT_S}") if unset else ())
