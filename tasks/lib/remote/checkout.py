"""The login node's checkout at our commit: compare, sync, or set it up, all over the one SSH connection.

The login node may reach neither this machine nor GitHub, so our commits travel as a `git bundle` over SSH:
only the commits it lacks when its commit is one of our ancestors, else the whole history. There it is
fetched and checked out (detached at our commit), and scripts/bootstrap brings its .venv up to date (well
under a second when nothing changed). Set-up is the same bundle cloned into a folder that is not there yet.
Every remote command is built from quoted arguments; nothing secret is in any of them.
"""

import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

from ..core.errors import ConfigError, ToolError
from .commands import checkout_probe, remote_path

GIT_STATUS = ["status", "--porcelain", "--untracked-files=no", "--ignore-submodules=all"]


def say(line: str) -> None:
    """Progress and notes go to stderr: stdout is the remote command's own (--json stays parseable)."""
    print(line, file=sys.stderr, flush=True)


def _git(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, stdin=subprocess.DEVNULL)


def local_head(root: Path) -> str | None:
    done = _git(root, "rev-parse", "HEAD")
    return done.stdout.strip() if done.returncode == 0 else None


def local_changes(root: Path) -> list[str]:
    """Tracked files with uncommitted changes (submodules and untracked files aside)."""
    return [line[3:] for line in _git(root, *GIT_STATUS).stdout.splitlines()]


def _remote_git(project_dir: str, *args: str) -> str:
    return f"git -C {remote_path(project_dir)} {shlex.join(args)}"


def probe(session, project_dir: str) -> tuple[bool, str | None]:
    """In one remote command (each costs a shell there): is the checkout there with its .venv, and its commit."""
    check = f"if {checkout_probe(project_dir)}; then echo checkout; fi"
    done = session.run(f"{check}; {_remote_git(project_dir, 'rev-parse', 'HEAD')} 2>/dev/null")
    words = done.stdout.split()
    return "checkout" in words, next((word for word in words if len(word) == 40), None)


def _stream(session, command: str, what: str, host: str) -> None:
    done = session.run(command, capture=False)
    if done.failed:
        raise ToolError(f"{what} on {host} failed (exit {done.exited}); see its output above")


def _send_bundle(session, root: Path, host: str, ours: str, theirs: str | None = None):
    """Bundle our HEAD (less what theirs already holds) here, put it in a fresh temp folder there; (that folder,
    the bundle's path there). A bundle takes refs, not commit ids: ours is HEAD here."""
    revs = ["HEAD", f"^{theirs}"] if theirs else ["HEAD"]
    what = f"{ours[:12]} less {theirs[:12]} and before" if theirs else f"{ours[:12]} and its history"
    with tempfile.TemporaryDirectory(prefix="sam3-sync-") as scratch:
        bundle = Path(scratch) / "sync.bundle"
        made = _git(root, "bundle", "create", "-q", str(bundle), *revs)
        if made.returncode != 0:
            raise ToolError(f"git bundle create failed here: {made.stderr.strip()}; check `git -C {root} status`")
        folder = session.run("mktemp -d").stdout.strip()
        say(f"sync: sending {what} ({os.path.getsize(bundle) / 1e6:.1f} MB bundle) to {host}")
        session.put(str(bundle), f"{folder}/sync.bundle")
    return folder, f"{folder}/sync.bundle"


def sync(session, root: Path, project_dir: str, host: str, ours: str, theirs: str | None) -> None:
    """Bring the checkout there to our commit (their tracked files must be clean): fetch, detach, bootstrap."""
    changed = session.run(_remote_git(project_dir, *GIT_STATUS))
    if changed.failed or changed.stdout.strip():
        raise ConfigError(
            f"the checkout at {project_dir} on {host} has uncommitted changes (or is not a git "
            "checkout); commit or stash them there first, or sync by hand"
        )
    known = session.run(_remote_git(project_dir, "cat-file", "-e", f"{ours}^{{commit}}")).ok
    folder = None
    try:
        if not known:
            ancestor = theirs and _git(root, "merge-base", "--is-ancestor", theirs, ours).returncode == 0
            folder, bundle = _send_bundle(session, root, host, ours, theirs if ancestor else None)
            _stream(session, _remote_git(project_dir, "fetch", "-q", bundle, "HEAD"), "git fetch of the bundle", host)
        _stream(session, _remote_git(project_dir, "checkout", "-q", "--detach", ours), "git checkout", host)
    finally:
        if folder:
            session.run(shlex.join(["rm", "-rf", folder]))
    say(f"sync: {host}:{project_dir} is at {ours[:12]}; bootstrapping its .venv")
    _stream(session, f"cd {remote_path(project_dir)} && scripts/bootstrap", "scripts/bootstrap", host)


def set_up(session, root: Path, project_dir: str, host: str, ours: str, theirs: str | None) -> None:
    """A checkout of our commit where there is none (or one without its .venv), then scripts/bootstrap there."""
    there = session.run(f"test -e {remote_path(project_dir)}").ok
    has_git = there and theirs is not None
    if there and not has_git:
        raise ConfigError(
            f"{project_dir} on {host} exists but is not a git checkout; move it away or pass another remote.project_dir"
        )
    if not has_git:
        say(f"setup: copying this checkout ({ours[:12]}) to {host}:{project_dir}")
        folder, bundle = _send_bundle(session, root, host, ours)
        try:
            clone = shlex.join(["git", "clone", "-q", "--no-checkout", bundle]) + " " + remote_path(project_dir)
            _stream(session, clone, "git clone of the bundle", host)
            _stream(session, _remote_git(project_dir, "checkout", "-q", "--detach", ours), "git checkout", host)
        finally:
            session.run(shlex.join(["rm", "-rf", folder]))
    say(f"setup: running scripts/bootstrap on {host} in {project_dir}")
    _stream(session, f"cd {remote_path(project_dir)} && scripts/bootstrap", "scripts/bootstrap", host)


def missing(project_dir: str, host: str) -> str:
    return (
        f"no sam3-tasks checkout with .venv at {project_dir} on {host}: pass --setup to copy this one there and "
        "bootstrap it (or set remote.project_dir)"
    )


def report(root: Path, project_dir: str, host: str, theirs: str | None, ours=False, changes=None) -> None:
    """Say what differs between the checkout there (its commit: theirs) and this one; change nothing."""
    if ours is False:
        ours = local_head(root)
        changes = local_changes(root) if ours else []
    if ours is None or theirs == ours:
        if changes:
            say(f"note: uncommitted changes here ({', '.join(changes[:3])}) do not reach {host}")
        return
    said = theirs[:12] if theirs else "no git commit"
    say(
        f"note: the checkout on {host} ({project_dir}) is at {said}, this one at {ours[:12]}; pass --sync "
        "(or set remote.sync: sync) to bring it to this commit"
    )


def prepare(session, root: Path, project_dir: str, host: str, *, sync_: bool, allow_dirty: bool, setup: bool) -> None:
    """Before the command runs there: the checkout is there (or set up), at our commit (or said, or synced)."""
    ours = local_head(root)
    changes = local_changes(root) if ours else []
    if (sync_ or setup) and ours is None:
        raise ConfigError(f"{root} is not a git checkout, so there is no commit to send; run from a clone")
    present, theirs = probe(session, project_dir)
    if (sync_ or (setup and not present)) and changes and not allow_dirty:
        raise ConfigError(
            f"this checkout has uncommitted changes ({', '.join(changes[:3])}); commit them, or pass "
            "--allow-dirty to send the last commit without them"
        )
    if not present:
        if not setup:
            raise ConfigError(missing(project_dir, host))
        set_up(session, root, project_dir, host, ours, theirs)
        theirs = probe(session, project_dir)[1]
    if ours is None or theirs == ours or not sync_:
        report(root, project_dir, host, theirs, ours, changes)
        return
    say(f"sync: {host}:{project_dir} is at {theirs[:12] if theirs else 'no commit'}; bringing it to {ours[:12]}")
    sync(session, root, project_dir, host, ours, theirs)
