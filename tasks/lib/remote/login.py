"""Logging in to a host when no master answers on its ControlPath: once, in BatchMode; where the server asks
for more than a key (a one-time code, a password) and a terminal or SSH_ASKPASS can answer, once more with ssh's
prompt (on the terminal, never on our stdout); else one line that names the host (or its ProxyJump hop) and the
fix. Loaded only then: its patterns cost time to compile, and a kept connection needs none of this.
"""

import codecs
import fcntl
import hashlib
import os
import re
import shlex
import subprocess
import sys
from contextlib import contextmanager

from ..core.errors import ConfigError, ToolError
from .openssh import PROMPTED, Target, given_flags, hint, home, run_ssh

_DENIED = re.compile(r"(\S+): Permission denied \(([^)]*)\)")
_CONNECT = re.compile(r"connect to host (\S+) port (\d+): ([^\r\n]+)")
_RESOLVE = re.compile(r"Could not resolve hostname (\S+): ([^\r\n]+?)\.?$", re.M)
_UNKNOWN_KEY = re.compile(r"No \S+ host key is known for (\S+)")
_OFFERED = re.compile(r"key sent by the remote host is\s+(\S+?)\.?\s*$", re.M)
_REMOVE = re.compile(r"ssh-keygen -f \S+ -R \S+")
_SSH_FAILURE = re.compile(
    r"Permission denied \(|Host key verification failed|connect to host |Connection closed by|"
    r"kex_exchange_identification|Could not resolve hostname"
)
_HOP_FAILED = ("kex_exchange_identification: Connection closed", "UNKNOWN port 65535")  # ProxyJump gave no stream


def can_prompt(environ=os.environ) -> bool:
    """Whether ssh can ask the user something: a terminal (ssh asks on /dev/tty), or an askpass program."""
    require = environ.get("SSH_ASKPASS_REQUIRE", "")
    graphic = environ.get("SSH_ASKPASS") and (environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY"))
    if require == "force" or (require != "never" and graphic) or (require == "prefer" and environ.get("SSH_ASKPASS")):
        return True
    try:
        os.close(os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY))
    except OSError:
        return False
    return True


@contextmanager
def one_opener(target: Target):
    """Two `inv -H` starting at once open one master, not two (a lock file beside our sockets, in ~/.ssh)."""
    folder = os.path.join(home(), ".ssh")
    os.makedirs(folder, mode=0o700, exist_ok=True)
    name = f"sam3-{hashlib.sha1(target.control_path.encode()).hexdigest()[:16]}.lock"
    with open(os.path.join(folder, name), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def log_in(target: Target, said: str | None = None, dead: bool = False) -> None:
    """Open the master (said: what ssh said when a BatchMode login already failed; dead: a socket was there but
    no master answered). Returns once one answers; else raises one line, and nothing ran there."""
    if said is None:
        batch = run_ssh(_open_argv(target, "-o", "BatchMode=yes"))
        if batch.returncode == 0:
            sys.stderr.write(batch.stderr)  # ssh's notes (a host key added under accept-new)
            return
        said = batch.stderr
    if not _asks_more(said, target):
        raise login_error(target, _hop_said(target, said))
    if not can_prompt():
        raise _no_terminal(target, said, dead)
    _log_in_prompted(target)


def _open_argv(target: Target, *extra: str) -> list[str]:
    argv = target.open_argv()
    return [argv[0], *extra, *argv[1:]]


def _hop_said(target: Target, said: str) -> str:
    """With ControlPersist, ssh silences its ProxyJump hop's stderr: when a hop failed, one plain login (no
    master, BatchMode) hears why."""
    if not _hop_failed(said, target):
        return said
    plain = ["ssh", *target.flags, *target.defaults, "-oControlPath=none", "-oBatchMode=yes", target.name]
    return run_ssh([*plain, "true"]).stderr


def _log_in_prompted(target: Target) -> None:
    """ssh asks on the terminal (or SSH_ASKPASS); the server's own words (e.g. which code) come on stderr."""
    process = subprocess.Popen(_open_argv(target), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    said = _tee(process.stderr, sys.stderr)
    if process.wait() == 0:
        whose = "our default, as your ssh config sets none" if target.ours else "your ssh config's"
        print(
            f"ssh: logged in to {target.host} once; inv -H reuses this connection until it has been idle for "
            f"{target.persist} (ControlPersist: {whose})",
            file=sys.stderr,
            flush=True,
        )
        return
    if _asks_more(said, target):
        raise ConfigError(
            f"{target.host} did not accept the answer ({_DENIED.search(said).group(2)}): a wrong or "
            "expired one-time code, or password; run the command again and answer with a fresh one"
        )
    raise login_error(target, said)


def _no_terminal(target: Target, said: str, dead: bool) -> ConfigError:
    methods = _DENIED.search(said).group(2)
    ended = f"the connection kept at {target.control_path} has ended, and " if dead else ""
    return ConfigError(
        f"{ended}{target.host} asks for more than a key ({methods}: a one-time code or password) and "
        "nothing here can answer it (no terminal, no SSH_ASKPASS); log in once from a terminal, which "
        f"inv -H then reuses: {shlex.join(target.open_argv(shown=True))}"
    )


def _tee(stream, sink) -> str:
    """All ssh said; what the server said (PAM's instructions, a banner) is passed on to sink as it comes, line by
    line, less ssh's own failure lines: a failure becomes our one line instead."""
    decoder, said, pending = codecs.getincrementaldecoder("utf-8")(errors="replace"), [], ""
    while chunk := os.read(stream.fileno(), 65536):
        said.append(decoder.decode(chunk))
        *lines, pending = (pending + said[-1]).split("\n")
        sink.write("".join(f"{line}\n" for line in lines if not _SSH_FAILURE.search(line)))
        sink.flush()
    if pending and not _SSH_FAILURE.search(pending):
        sink.write(pending)
    return "".join(said)


def _asks_more(said: str, target: Target) -> bool:
    """The server took the key (or wants no key) and asks for a code or a password: an answer is wanted."""
    denied = _DENIED.search(said)
    return bool(denied) and not _hop_failed(said, target) and any(m in denied.group(2) for m in PROMPTED)


def _hop_failed(said: str, target: Target) -> bool:
    return bool(target.via) and any(mark in said for mark in _HOP_FAILED)


def _who(target: Target, hop: bool) -> tuple[str, str]:
    """Who failed (the host, or its ProxyJump hop), and the ssh command that reaches it."""
    if not hop:
        return target.host, hint(target.host, given_flags(target.flags))
    first = target.get("proxyjump").split(",")[0].removeprefix("ssh://")
    return f"{target.via} (the ProxyJump hop to {target.host})", hint(first) if first else hint(target.host)


def login_error(target: Target, said: str) -> ToolError:
    """ssh's words when a login failed, as one line that names the host (or the ProxyJump hop) and the fix."""
    said = said.replace("\r", "")
    hop = _hop_failed(said, target)
    who, how = _who(target, hop)
    if "Host key verification failed" in said:
        return _host_key_error(target, said, who, how)
    denied = _DENIED.search(said)
    if denied:
        tried = "" if hop else f"; {_credentials(target)}"
        return ConfigError(
            f"{who} refused to log in {denied.group(1)} (Permission denied ({denied.group(2)}){tried}); "
            f"make `{how}` log in without a password: IdentityFile for it in ~/.ssh/config, or ssh-add "
            "your key"
        )
    connect = _CONNECT.search(said)
    if connect:
        address, port, reason = connect.groups()
        if "timed out" in reason:
            reason = f"no answer from {address} port {port} within {_timeout(target)} s"
        else:
            reason = f"{reason} at {address} port {port}"
        return ToolError(f"cannot reach {who} over SSH ({reason}); check `{how}` works")
    unresolved = _RESOLVE.search(said)
    if unresolved and not hop and target.get("hostname") == target.name.lower():
        return ConfigError(
            f"{target.host} is no Host in your ssh config and DNS does not know it "
            f"({unresolved.group(2)}); add a `Host {target.name}` block with its HostName to "
            "~/.ssh/config, or check the spelling"
        )
    if unresolved:
        return ToolError(
            f"cannot reach {who} over SSH ({unresolved.group(1)}: {unresolved.group(2)}); check `{how}` works"
        )
    if "timed out during banner exchange" in said:
        return ToolError(
            f"cannot reach {who} over SSH (no SSH answer within {_timeout(target)} s); check `{how}` works"
        )
    last = [line.strip() for line in said.splitlines() if line.strip()] or ["ssh exited 255 and said nothing"]
    return ToolError(f"cannot log in to {who} over SSH ({last[-1].rstrip('.')}); check `{how}` works")


def _host_key_error(target: Target, said: str, who: str, how: str) -> ConfigError:
    if "has changed" in said or "HAS CHANGED" in said:
        offered = _OFFERED.search(said)
        remove = _REMOVE.search(said)
        fix = remove.group(0).replace('"', "'") if remove else f"ssh-keygen -R {target.get('hostname')}"
        return ConfigError(
            f"the SSH host key of {who} is not the one in your known_hosts (it offered "
            f"{offered.group(1) if offered else 'another key'}): ask the cluster's admins whether it "
            f"changed before you replace the line ({fix})"
        )
    known = _UNKNOWN_KEY.search(said)
    address = known.group(1) if known else _address(target)
    where = "" if who != target.host else f" ({address})"
    return ConfigError(
        f"the SSH host key of {who}{where} is not in your known_hosts; run `{how}` once to check and accept it"
    )


def _address(target: Target) -> str:
    port = target.get("port", "22")
    return target.get("hostname") if port == "22" else f"[{target.get('hostname')}]:{port}"


def _timeout(target: Target) -> str:
    for flag in reversed([*target.flags, *target.defaults]):
        if flag.startswith("ConnectTimeout="):
            return flag.partition("=")[2]
    return target.get("connecttimeout")


def _credentials(target: Target) -> str:
    """Which keys ssh offered: identity files that exist (IdentityFile, -i, the defaults), and the agent."""
    files = [
        path.replace("~", home(), 1) if path.startswith("~") else path for path in target.config.get("identityfile", [])
    ]
    tried = [f"key {path}" for path in dict.fromkeys(files) if os.path.isfile(path)]
    agent = target.get("identityagent") or "SSH_AUTH_SOCK"
    if agent == "SSH_AUTH_SOCK":
        agent = os.environ.get("SSH_AUTH_SOCK", "none")
    if agent != "none" and target.get("identitiesonly") != "yes" or agent != "none" and not tried:
        tried.append("the ssh agent")
    return f"tried {', '.join(tried)}" if tried else "no key file and no ssh agent found"
