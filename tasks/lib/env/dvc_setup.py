"""DVC for datasets and checkpoints: `dvc init` when absent, paths tracked on request, one remote (S3, GCS,
Azure, SSH or a folder) with `verify = true`, credentials only in the git-ignored .dvc/config.local, and a
real push and pull of a small canary object before the remote is called working.

Why `verify = true`: without it `dvc pull` accepts a corrupted remote object silently and writes it into
the workspace (checked with dvc 3.67 and an S3 remote); with it the pull fails and writes nothing.

SSH remotes: the user and port of the URL go to .dvc/config.local (the tracked URL is ssh://host/path, the
same for every teammate), with the key file, password or passphrase from SAM3_DVC_SSH_*. DVC's SSH plugin
(sshfs 2026.8) connects with known_hosts=None, so it never checks the server's host key; env.dvc checks it
against the user's known_hosts (what `ssh` trusts) before the round trip.

DVC runs as `<launcher python> -m dvc ...` subprocesses (argv lists), so the plugins installed in the
launcher venv are the ones used. Credentials are read from the environment (AWS_*, AZURE_STORAGE_*,
GOOGLE_APPLICATION_CREDENTIALS, SAM3_DVC_SSH_*) and written to .dvc/config.local by a child process that
reads the secrets from its own environment and edits the config the way `dvc remote modify --local` does
(dvc.config.Config.edit('local')), so no secret is ever in an argv, where `ps` would show it (paths and the
SSH user and port are not secrets: they are passed as values). Nothing of dvc is imported here.
"""

import importlib.metadata
import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core import secrets
from ..core.errors import ConfigError, ToolError
from ..core.paths import resolve_path
from ..core.report import FAIL, PASS, SKIP, WARN, Check


@dataclass(frozen=True)
class RemoteKind:
    """A kind of DVC remote: its URL scheme, the plugin DVC needs for it, and its credentials."""

    scheme: str
    plugin: str | None  # import name of the plugin package (dvc_s3, ...)
    extra: str | None  # pip extra of dvc that installs it (dvc[s3])
    credentials: tuple[tuple[str, str], ...] = ()  # (remote option, environment variable)
    default_chain: str = ""
    refused_hint: str = ""  # what to check when the remote refuses the credentials (default: the variables)


KINDS = {
    "s3": RemoteKind(
        "s3",
        "dvc_s3",
        "s3",
        (
            ("access_key_id", "AWS_ACCESS_KEY_ID"),
            ("secret_access_key", "AWS_SECRET_ACCESS_KEY"),
            ("session_token", "AWS_SESSION_TOKEN"),
            ("profile", "AWS_PROFILE"),
        ),
        "boto's default chain (~/.aws/credentials, AWS_PROFILE, an instance role)",
    ),
    "gs": RemoteKind(
        "gs",
        "dvc_gs",
        "gs",
        (("credentialpath", "GOOGLE_APPLICATION_CREDENTIALS"),),
        "Google's application default credentials (gcloud auth application-default login)",
    ),
    "azure": RemoteKind(
        "azure",
        "dvc_azure",
        "azure",
        (
            ("connection_string", "AZURE_STORAGE_CONNECTION_STRING"),
            ("account_name", "AZURE_STORAGE_ACCOUNT"),
            ("account_key", "AZURE_STORAGE_KEY"),
            ("sas_token", "AZURE_STORAGE_SAS_TOKEN"),
        ),
        "Azure's default credential chain (az login, managed identity)",
    ),
    "ssh": RemoteKind(
        "ssh",
        "dvc_ssh",
        "ssh",
        (
            ("keyfile", "SAM3_DVC_SSH_KEYFILE"),
            ("password", "SAM3_DVC_SSH_PASSWORD"),  # refused by local_options; listed so that it is scrubbed
            ("passphrase", "SAM3_DVC_SSH_PASSPHRASE"),
        ),
        "your ssh keys, agent and ~/.ssh/config",
        "that the key's public half is in the server's "
        "authorized_keys, the user, and the key: SAM3_DVC_SSH_KEYFILE (else ~/.ssh and the agent), "
        "SAM3_DVC_SSH_PASSPHRASE if it is encrypted",
    ),
    "local": RemoteKind("local", None, None),
}
SCHEMES = {"s3": "s3", "gs": "gs", "azure": "azure", "ssh": "ssh", "file": "local"}
# Remote options that hold credentials: never in the tracked .dvc/config.
SECRET_OPTIONS = (
    "access_key_id",
    "secret_access_key",
    "session_token",
    "connection_string",
    "account_key",
    "sas_token",
    "password",
    "passphrase",
    "gdrive_client_secret",
)
SSH_PASSWORD_ENV = "SAM3_DVC_SSH_PASSWORD"  # refused: see local_options
PATH_OPTIONS = ("keyfile", "credentialpath")  # stored as absolute paths, checked to exist
CANARY_NOTE = "each check leaves one canary object of under 100 bytes on the remote"


@dataclass(frozen=True)
class Remote:
    name: str
    url: str  # what the tracked .dvc/config holds
    kind: RemoteKind
    endpoint: str = ""
    local: tuple[tuple[str, str], ...] = ()  # options from the URL for .dvc/config.local (SSH user, port)
    given: str = ""  # the URL as given, for messages

    @property
    def shown(self) -> str:
        return self.given or self.url


def parse_remote(url: str, name: str, endpoint: str = "") -> Remote:
    """The remote a URL (or folder) names; credentials in the URL and unknown schemes are refused."""
    url = url.strip()
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name or ""):
        raise ConfigError(f"DVC remote name {name!r} is not a plain name; use letters, digits, '.', '_' or '-'")
    match = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*)://", url)
    if not match:
        return Remote(name, str(resolve_path(url)), KINDS["local"])
    scheme = match.group(1).lower()
    if scheme not in SCHEMES:
        raise ConfigError(
            f"DVC remote {url!r}: scheme {scheme}:// is not one env.dvc sets up; use s3://, gs://, "
            "azure://, ssh:// or a folder path"
        )
    netloc = url[match.end() :].split("/", 1)[0]
    if ":" in netloc.rsplit("@", 1)[0] and "@" in netloc:
        raise ConfigError(
            f"the DVC remote URL holds a password ({scheme}://user:***@...); it would be written to "
            "the tracked .dvc/config. Remove it from the URL and provide it through the environment "
            "(it then goes to .dvc/config.local only)"
        )
    if scheme == "file":
        return Remote(name, str(resolve_path(url[len("file://") :])), KINDS["local"])
    if scheme == "s3" and endpoint and not re.match(r"^https?://", endpoint):
        raise ConfigError(f"tracking.dvc_endpoint_url {endpoint!r} is not an http(s) URL; e.g. http://minio:9000")
    if scheme == "ssh":
        return _ssh_remote(url, name)
    return Remote(name, url, KINDS[SCHEMES[scheme]], endpoint if scheme == "s3" else "")


def _ssh_remote(url: str, name: str) -> Remote:
    """ssh://[user@]host[:port]/path: user and port go to .dvc/config.local, ssh://host/path is tracked."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        raise ConfigError(f"DVC remote {url!r}: the port is not a number from 1 to 65535") from None
    if not parts.hostname:
        raise ConfigError(f"DVC remote {url!r} names no host; e.g. ssh://user@login.cluster:22/scratch/dvc")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    local = (("user", parts.username),) if parts.username else ()
    local += (("port", str(port)),) if port else ()
    return Remote(name, f"ssh://{host}{parts.path}", KINDS["ssh"], local=local, given=url)


# --- running dvc --------------------------------------------------------------------------------------


@dataclass
class Runner:
    """Runs `python -m dvc` (and pip) with the launcher's interpreter; every command is recorded."""

    python: str = sys.executable
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    log: Callable[[str], None] = print
    commands: list[str] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        env = dict(self.environ)
        env.setdefault("DVC_NO_ANALYTICS", "1")
        return env

    def dvc(self, args: Sequence[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
        self.commands.append(shlex.join(["dvc", *args]))
        done = subprocess.run(
            [self.python, "-m", "dvc", *args],
            cwd=cwd,
            env=self.env(),
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
        )
        if check and done.returncode != 0:
            raise ToolError(f"`dvc {shlex.join(args)}` failed in {cwd}: {last_error(done, self.environ)}")
        return done

    def python_code(self, code: str, args: Sequence[str], cwd: Path) -> subprocess.CompletedProcess:
        return subprocess.run(
            [self.python, "-c", code, *args],
            cwd=cwd,
            env=self.env(),
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
        )


def last_error(done: subprocess.CompletedProcess, environ: Mapping[str, str]) -> str:
    """DVC's own words, the lines that say what went wrong, with secrets masked."""
    lines = [
        line.strip()
        for line in (done.stderr + "\n" + done.stdout).splitlines()
        if line.strip() and not line.startswith("Having any troubles?")
    ]
    errors = [line for line in lines if line.startswith(("ERROR", "error"))] or lines[-2:] or ["no output"]
    return secrets.scrub(" ".join(errors)[:600], environ=environ)


_CREDENTIALS = re.compile(
    r"InvalidAccessKeyId|SignatureDoesNotMatch|AccessDenied|Access Denied|Forbidden|\b403\b|\b401\b|Unauthorized|"
    r"AuthenticationFailed|AuthorizationFailure|InvalidAuthenticationInfo|NoCredentialsError|"
    r"Unable to locate credentials|Permission denied|invalid_grant|Authentication failed|ExpiredToken|"
    r"InvalidToken|credentials|passphrase",
    re.IGNORECASE,
)
_MISSING = re.compile(r"NoSuchBucket|ContainerNotFound|bucket does not exist|\b404\b|Not Found", re.IGNORECASE)
_NETWORK = re.compile(
    r"Could not connect|EndpointConnectionError|Connection refused|timed out|Name or service not known|"
    r"Temporary failure in name resolution|ConnectTimeout|Network is unreachable|No route to host|"
    r"Connect call failed|Connection lost",
    re.IGNORECASE,
)


def explain_failure(step: str, remote: Remote, detail: str) -> str:
    """What a failed push or pull means, and the fix, in one line."""
    kind, shown = remote.kind, remote.shown
    names = kind.refused_hint or ", ".join(env for _, env in kind.credentials) or kind.default_chain
    if _CREDENTIALS.search(detail):
        return (
            f"remote '{remote.name}' ({shown}) refused the credentials on {step} ({detail}); check {names}"
            " (stored in .dvc/config.local), then re-run env.dvc"
        )
    if _NETWORK.search(detail):
        where = remote.endpoint or shown
        return f"cannot reach remote '{remote.name}' at {where} on {step} ({detail}); check the network and the URL"
    if _MISSING.search(detail):
        return f"remote '{remote.name}' ({shown}) does not exist ({detail}); create the bucket or container first"
    return f"{step} to remote '{remote.name}' ({shown}) failed: {detail}"


# --- the steps ----------------------------------------------------------------------------------------


def _git_toplevel(repo: Path) -> Path | None:
    if shutil.which("git") is None:
        return None
    done = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "--show-toplevel"],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    return Path(done.stdout.strip()).resolve() if done.returncode == 0 else None


def init_args(repo: Path) -> list[str]:
    top = _git_toplevel(repo)
    if top is None:
        return ["init", "-q", "--no-scm"]
    return ["init", "-q"] if top == repo.resolve() else ["init", "-q", "--subdir"]


def project_config(runner: Runner, repo: Path) -> dict[str, str]:
    """The tracked .dvc/config as flat keys (remote.NAME.url=...): no secrets are read."""
    done = runner.dvc(["config", "--project", "--list"], repo, check=False)
    pairs = (line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)
    return {key.strip(): value.strip() for key, value in pairs}


def plugin_command(kind: RemoteKind, python: str = sys.executable) -> list[str] | None:
    """How to install the DVC plugin this kind needs into the launcher venv, or None when it is there."""
    if kind.plugin is None or importlib.util.find_spec(kind.plugin) is not None:
        return None
    try:
        requirement = f"dvc[{kind.extra}]=={importlib.metadata.version('dvc')}"  # keep the installed dvc
    except importlib.metadata.PackageNotFoundError:
        requirement = f"dvc[{kind.extra}]"
    if importlib.util.find_spec("pip") is not None:
        return [python, "-m", "pip", "install", "--quiet", requirement]
    uv = shutil.which("uv")
    if uv:
        return [uv, "pip", "install", "--quiet", "--python", python, requirement]
    raise ToolError(
        f"the DVC plugin {requirement} is needed and this venv has neither pip nor uv; install it: "
        f"{python} -m ensurepip && {python} -m pip install '{requirement}'"
    )


_WRITE_LOCAL = r"""
import os, sys
from dvc.config import Config, merge
os.umask(0o077)  # a new config.local is 0600 from the start
dvc_dir, name = sys.argv[1], sys.argv[2]
config = Config(dvc_dir=dvc_dir)
with config.edit("local") as conf:  # what `dvc remote modify --local NAME OPTION VALUE` does
    merged = config.load_config_to_level("local")
    merge(merged, conf)
    if name not in merged["remote"]:
        sys.exit(f"remote {name} is not configured")
    section = conf["remote"].setdefault(name, {})
    for arg in sys.argv[3:]:  # env:OPTION=VARIABLE (a secret, read here) or set:OPTION=VALUE (not a secret)
        source, pair = arg.split(":", 1)
        option, value = pair.split("=", 1)
        section[option] = os.environ[value] if source == "env" else value
"""


@dataclass(frozen=True)
class LocalOptions:
    """What env.dvc writes into .dvc/config.local: plain values (SSH user and port, key file paths) and
    options whose values are read from environment variables (secrets) by the child that writes them."""

    values: tuple[tuple[str, str], ...] = ()
    from_env: tuple[tuple[str, str], ...] = ()

    def command(self, name: str) -> str:
        shown = [f"{option} {value}" for option, value in self.values]
        return f"dvc remote modify --local {name} " + " ".join(shown + [f"{o} ${e}" for o, e in self.from_env])

    def described(self) -> str:
        return ", ".join([f"{o} {v}" for o, v in self.values] + [f"{o} (from ${e})" for o, e in self.from_env])


def local_options(remote: Remote, environ: Mapping[str, str]) -> LocalOptions:
    """The URL's local options and the credentials set in the environment; a key file that is not there is a
    ConfigError (its path is stored absolute, so DVC finds it from any folder)."""
    values, from_env = list(remote.local), []
    if remote.kind.scheme == "ssh" and environ.get(SSH_PASSWORD_ENV):
        raise ConfigError(
            f"${SSH_PASSWORD_ENV} is set, but DVC's SSH plugin does not check the server's host key on "
            "push and pull (sshfs connects with known_hosts=None), so a stored password would go to "
            "whatever answers at that address; use a key, which is never sent: unset "
            f"{SSH_PASSWORD_ENV} and set SAM3_DVC_SSH_KEYFILE (or use your agent)"
        )
    for option, env in remote.kind.credentials:
        if not environ.get(env):
            continue
        if option not in PATH_OPTIONS:
            from_env.append((option, env))
            continue
        path = Path(os.path.abspath(Path(environ[env]).expanduser()))
        if not path.is_file():
            raise ConfigError(
                f"${env} is {environ[env]!r}, and {path} is not a file; point it at the file "
                f"DVC should use for '{remote.name}' ({option}), or unset it"
            )
        values.append((option, str(path)))
    return LocalOptions(tuple(values), tuple(from_env))


def store_credentials(runner: Runner, repo: Path, remote: Remote, local: LocalOptions) -> None:
    """Write options into .dvc/config.local, secrets read from the environment (never in argv), 0600."""
    args = [
        str(repo / ".dvc"),
        remote.name,
        *(f"set:{option}={value}" for option, value in local.values),
        *(f"env:{option}={env}" for option, env in local.from_env),
    ]
    runner.commands.append(local.command(remote.name))
    done = runner.python_code(_WRITE_LOCAL, args, repo)
    if done.returncode != 0:
        raise ToolError(f"could not write .dvc/config.local: {last_error(done, runner.environ)}")
    (repo / ".dvc" / "config.local").chmod(0o600)


_HOST_KEY = r"""
import asyncio, json, sys
import asyncssh
host, port, user = sys.argv[1], int(sys.argv[2]) if sys.argv[2] else (), sys.argv[3] or ()
NO_AUTH = dict(client_keys=None, agent_path=None, password_auth=False, kbdint_auth=False, gss_auth=False,
               host_based_auth=False, connect_timeout=30)
async def main():
    try:
        key = await asyncio.wait_for(asyncssh.get_server_host_key(host, port), 30)
        shown = f"{key.get_algorithm()} {key.get_fingerprint()}"
        try:  # known_hosts as ssh reads it (~/.ssh/known_hosts, or UserKnownHostsFile in ~/.ssh/config)
            async with asyncssh.connect(host, port, username=user, **NO_AUTH):
                pass
        except asyncssh.PermissionDenied:
            pass  # no credentials offered: the host key was trusted, authentication is the round trip's part
        except asyncssh.HostKeyNotVerifiable as exc:
            return {"trusted": False, "key": shown, "detail": str(exc)}
        return {"trusted": True, "key": shown}
    except (OSError, asyncio.TimeoutError, asyncssh.Error) as exc:
        return {"unreachable": f"{type(exc).__name__}: {exc}".rstrip(": ")}
print(json.dumps(asyncio.run(main())))
"""


def host_key_check(runner: Runner, repo: Path, remote: Remote) -> Check:
    """Whether the SSH server's host key is one the user's known_hosts trusts. DVC's SSH plugin never checks
    it (sshfs connects with known_hosts=None), so this is the one place a wrong server is caught."""
    import json
    from urllib.parse import urlsplit

    host, options = urlsplit(remote.url).hostname or "", dict(remote.local)
    port = options.get("port", "")
    runner.commands.append(f"check the host key of {host}{':' + port if port else ''} against known_hosts")
    done = runner.python_code(_HOST_KEY, [host, port, options.get("user", "")], repo)
    try:
        answer = json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return Check(
            "host key", remote.shown, FAIL, f"could not check the host key: {last_error(done, runner.environ)}"
        )
    if "unreachable" in answer:
        return Check(
            "host key",
            remote.shown,
            FAIL,
            f"cannot reach remote '{remote.name}' at {remote.shown} "
            f"({answer['unreachable']}); check the network and the URL",
            "check the host and port",
        )
    if not answer["trusted"]:
        login = f"ssh{' -p ' + port if port else ''} {options['user'] + '@' if 'user' in options else ''}{host}"
        return Check(
            "host key",
            remote.shown,
            FAIL,
            f"the SSH host key of remote '{remote.name}' ({answer['key']}) "
            f"is not in your known_hosts, or differs from the one there ({answer['detail']}); compare it "
            f"with the server's (ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub there), then connect once "
            f"with `{login}` and accept it",
            "add the host key to known_hosts",
        )
    return Check("host key", remote.shown, PASS, f"{answer['key']} is in your known_hosts (DVC does not check it)")


def local_config_ignored(repo: Path) -> bool:
    """Whether git ignores .dvc/config.local (dvc init writes that rule into .dvc/.gitignore)."""
    if _git_toplevel(repo) is None:
        return True  # no git: nothing is tracked
    done = subprocess.run(
        ["git", "-C", str(repo), "check-ignore", "-q", ".dvc/config.local"],
        capture_output=True,
        stdin=subprocess.DEVNULL,
    )
    return done.returncode == 0


def round_trip(runner: Runner, repo: Path, remote: Remote) -> tuple[bool, str]:
    """Push a fresh canary object to the remote and pull it back through a throwaway DVC repo that uses this
    repo's config (and credentials), with verify = true. Proves credentials, connectivity and integrity."""
    tmp = Path(tempfile.mkdtemp(prefix="sam3-dvc-canary-"))
    os.chmod(tmp, 0o700)
    try:
        runner.dvc(["init", "-q", "--no-scm"], tmp)
        shutil.copyfile(repo / ".dvc" / "config", tmp / ".dvc" / "config")
        if (repo / ".dvc" / "config.local").exists():
            fd = os.open(tmp / ".dvc" / "config.local", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write((repo / ".dvc" / "config.local").read_bytes())
        runner.dvc(["config", "core.no_scm", "true"], tmp)
        runner.dvc(["config", "--local", "cache.dir", str(tmp / ".dvc" / "cache")], tmp)
        canary = tmp / "sam3-dvc-canary.txt"
        payload = f"sam3-tasks DVC canary {time.strftime('%Y-%m-%dT%H:%M:%S')} {os.urandom(16).hex()}\n".encode()
        canary.write_bytes(payload)
        runner.dvc(["add", "-q", canary.name], tmp)
        for step, args in (("push", ["push", "-r", remote.name]), ("pull", ["pull", "-r", remote.name])):
            if step == "pull":
                shutil.rmtree(tmp / ".dvc" / "cache")
                canary.unlink()
            done = runner.dvc(args, tmp, check=False)  # not -q: it hides DVC's error line
            if done.returncode != 0:
                return False, explain_failure(step, remote, last_error(done, runner.environ))
        if not canary.exists() or canary.read_bytes() != payload:
            return False, f"remote '{remote.name}' returned different bytes for the canary object"
        return True, f"pushed and pulled a {len(payload)}-byte canary through {remote.url}, verified; {CANARY_NOTE}"
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# --- the whole task -----------------------------------------------------------------------------------


@dataclass
class Result:
    repo: str
    checks: list[Check] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    dry_run: bool = False

    @property
    def failed(self) -> list[Check]:
        return [check for check in self.checks if check.status == FAIL]

    def as_dict(self) -> dict[str, Any]:
        return {"repo": self.repo, "dry_run": self.dry_run, "checks": self.checks, "commands": self.commands}


def setup(
    repo: Path,
    remote: Remote | None,
    track: Sequence[str] = (),
    push: bool = False,
    dry_run: bool = False,
    runner: Runner | None = None,
) -> Result:
    """Every step in order; in a dry run only the reads, and the commands that would run."""
    runner = runner or Runner()
    repo = Path(repo).resolve()
    result = Result(str(repo), dry_run=dry_run)
    add = result.checks.append
    if importlib.util.find_spec("dvc") is None:
        raise ToolError("dvc is not installed in the launcher venv; run scripts/bootstrap")
    if not repo.is_dir():
        raise ConfigError(f"--repo {repo} is not a folder; pass the project folder or another existing folder")
    targets = [_track_target(repo, path) for path in track]
    local = local_options(remote, runner.environ) if remote else LocalOptions()

    _init_step(runner, repo, dry_run, add)
    config = project_config(runner, repo) if (repo / ".dvc").is_dir() else {}
    if remote is None:
        add(
            Check(
                "remote",
                "tracking.dvc_remote_url",
                WARN,
                "no remote configured: data stays on this machine",
                "set tracking.dvc_remote_url (s3://, gs://, azure://, ssh:// or a folder) or pass --remote",
            )
        )
    else:
        _remote_steps(runner, repo, remote, local, config, dry_run, add)
    _track_steps(runner, repo, targets, dry_run, add)

    if remote is not None and dry_run:
        add(Check("round trip", remote.name, SKIP, f"dry run: would push and pull a canary object; {CANARY_NOTE}"))
    elif remote is not None and not result_failed(result.checks):
        ok, detail = round_trip(runner, repo, remote)
        add(Check("round trip", remote.name, PASS if ok else FAIL, detail, "" if ok else "fix what the detail names"))
        if ok and push and targets:
            _push_tracked(runner, repo, remote, targets, add)
    result.commands = list(runner.commands)
    return result


def _init_step(runner: Runner, repo: Path, dry_run: bool, add) -> None:
    """`dvc init` unless the folder already is a DVC repository."""
    if (repo / ".dvc").is_dir():
        add(Check("init", str(repo), PASS, "already a DVC repository"))
        return
    args = init_args(repo)
    if not dry_run:
        runner.dvc(args, repo)
    add(Check("init", str(repo), PASS, f"{'would run' if dry_run else 'ran'} dvc {shlex.join(args)}"))


def _track_steps(runner: Runner, repo: Path, targets: Sequence[Path], dry_run: bool, add) -> None:
    """`dvc add` each --track target, with the pointer files to commit."""
    would = "would run" if dry_run else "ran"
    for target in targets:
        args = ["add", "-q", str(target.relative_to(repo))]
        if not dry_run:
            runner.dvc(args, repo)
        else:
            runner.commands.append(shlex.join(["dvc", *args]))
        rel = target.relative_to(repo)
        add(
            Check(
                "track",
                str(rel),
                PASS,
                f"{would} dvc {shlex.join(args)}",
                f"commit the pointer: git add {rel}.dvc {rel.parent / '.gitignore'}",
            )
        )


def _push_tracked(runner: Runner, repo: Path, remote: Remote, targets: Sequence[Path], add) -> None:
    """--push: the tracked targets' data to the remote, once the round trip proved it works."""
    files = [str(t.relative_to(repo)) + ".dvc" for t in targets]
    done = runner.dvc(["push", "-r", remote.name, *files], repo, check=False)
    if done.returncode == 0:
        add(Check("push", remote.name, PASS, f"pushed {', '.join(files)}"))
        return
    add(
        Check(
            "push",
            remote.name,
            FAIL,
            explain_failure("push", remote, last_error(done, runner.environ)),
            "fix the remote, then re-run with --push",
        )
    )


def result_failed(checks: Sequence[Check]) -> bool:
    return any(check.status == FAIL for check in checks)


def _track_target(repo: Path, path: str) -> Path:
    target = Path(os.path.abspath(resolve_path(path, Path.cwd())))
    if not target.exists():
        raise ConfigError(f"--track {path}: {target} does not exist; pass a dataset root or checkpoint folder")
    if not target.is_relative_to(repo) or target == repo:
        raise ConfigError(
            f"--track {path}: {target} is not inside the DVC repository {repo}; DVC tracks files "
            "inside it (move the data there, or pass --repo)"
        )
    if ".dvc" in target.relative_to(repo).parts or ".git" in target.relative_to(repo).parts:
        raise ConfigError(f"--track {path}: DVC cannot track files inside .dvc or .git")
    return target


def _remote_steps(
    runner: Runner, repo: Path, remote: Remote, local: LocalOptions, config: dict[str, str], dry_run: bool, add
) -> None:
    """The remote's plugin, its entry in .dvc/config, its credentials in config.local, and (ssh) its host key."""
    _plugin_step(runner, remote.kind, dry_run, add)
    _config_steps(runner, repo, remote, config, dry_run, add)
    _credentials_step(runner, repo, remote, local, dry_run, add)
    if not dry_run:
        _secrets_stay_local(repo, runner.environ, add)
    if remote.kind.scheme == "ssh":
        if dry_run:
            add(Check("host key", remote.shown, SKIP, "dry run: would check the server's host key against known_hosts"))
        else:
            add(host_key_check(runner, repo, remote))


def _plugin_step(runner: Runner, kind: RemoteKind, dry_run: bool, add) -> None:
    """Install the DVC plugin for the remote's storage into the launcher venv when it is missing."""
    install = plugin_command(kind, runner.python)
    if install is None:
        detail = f"{kind.plugin} installed" if kind.plugin else "no plugin needed for a local folder"
        add(Check("plugin", f"dvc[{kind.extra}]" if kind.extra else "local", PASS, detail))
        return
    shown = shlex.join(install)
    runner.commands.append(shown)
    if not dry_run:
        runner.log(f"installing the DVC plugin: {shown}")
        done = subprocess.run(install, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if done.returncode != 0:
            raise ToolError(
                f"could not install dvc[{kind.extra}] ({last_error(done, runner.environ)}); run "
                f"{shown} yourself, then re-run env.dvc"
            )
        importlib.invalidate_caches()
    add(Check("plugin", f"dvc[{kind.extra}]", PASS, f"{'would run' if dry_run else 'ran'} {shown}"))


def _config_changes(remote: Remote, config: dict[str, str]) -> list[tuple[str, list[str], str]]:
    """(check, dvc arguments, detail) for each setting of the remote that .dvc/config does not have yet."""
    name = remote.name
    steps: list[tuple[str, list[str], str]] = []
    current = config.get(f"remote.{name}.url")
    if current is None:
        default = [] if config.get("core.remote") else ["-d"]
        steps.append(("remote", ["remote", "add", *default, name, remote.url], f"added {name} -> {remote.url}"))
    elif current != remote.url:
        steps.append(("remote", ["remote", "modify", name, "url", remote.url], f"url changed from {current}"))
    if remote.endpoint and config.get(f"remote.{name}.endpointurl") != remote.endpoint:
        steps.append(("endpoint", ["remote", "modify", name, "endpointurl", remote.endpoint], remote.endpoint))
    if config.get(f"remote.{name}.verify", "").lower() != "true":
        steps.append(
            (
                "verify",
                ["remote", "modify", name, "verify", "true"],
                "pulls re-hash every object: a corrupted one is refused",
            )
        )
    return steps


def _config_steps(runner: Runner, repo: Path, remote: Remote, config: dict[str, str], dry_run: bool, add) -> None:
    """Apply the missing settings (or list them in a dry run); say which were already there."""
    name = remote.name
    would = "would run" if dry_run else "ran"
    steps = _config_changes(remote, config)
    for check, args, detail in steps:
        if dry_run:
            runner.commands.append(shlex.join(["dvc", *args]))
        else:
            runner.dvc(args, repo)
        add(Check(check, name, PASS, f"{would} dvc {shlex.join(args)}: {detail}"))
    if not any(step[0] == "remote" for step in steps):
        add(Check("remote", name, PASS, f"{remote.url} already configured"))
    if not any(step[0] == "verify" for step in steps):
        add(Check("verify", name, PASS, "verify = true already set"))


def _credentials_step(runner: Runner, repo: Path, remote: Remote, local: LocalOptions, dry_run: bool, add) -> None:
    """Credentials from the environment into the git-ignored config.local, or which default chain DVC uses."""
    kind = remote.kind
    if local.values or local.from_env:
        if dry_run:
            runner.commands.append(local.command(remote.name))
        else:
            store_credentials(runner, repo, remote, local)
        verb = "would store" if dry_run else "stored"
        options = {option for option, _ in kind.credentials}
        chain = "" if options & {o for o, _ in local.values + local.from_env} else f"; DVC uses {kind.default_chain}"
        add(
            Check(
                "credentials", ".dvc/config.local", PASS, f"{verb} {local.described()}; mode 0600, git-ignored" + chain
            )
        )
    elif kind.credentials:
        add(Check("credentials", remote.name, SKIP, f"none in the environment: DVC uses {kind.default_chain}"))


def _secrets_stay_local(repo: Path, environ: Mapping[str, str], add) -> None:
    """The tracked config holds no credential option and no credential value; config.local is git-ignored."""
    tracked = (repo / ".dvc" / "config").read_text() if (repo / ".dvc" / "config").exists() else ""
    options = [option for option in SECRET_OPTIONS if re.search(rf"^\s*{option}\s*=", tracked, re.MULTILINE)]
    leaked = secrets.spans(tracked) or [value for value in secrets.secret_values(environ) if value in tracked]
    if options or leaked:
        what = ", ".join(options) or "a credential value"
        add(
            Check(
                "secrets",
                ".dvc/config",
                FAIL,
                f"the tracked .dvc/config holds {what}",
                "dvc remote modify --unset NAME OPTION, then set it again with --local (env.dvc does)",
            )
        )
    elif not local_config_ignored(repo):
        add(
            Check(
                "secrets",
                ".dvc/config.local",
                FAIL,
                "git does not ignore .dvc/config.local",
                "add '/config.local' to .dvc/.gitignore",
            )
        )
    else:
        add(Check("secrets", ".dvc/config", PASS, "no credentials in tracked files; .dvc/config.local is git-ignored"))
