"""The git submodules SAM3 fine-tuning works from, each at a pinned commit: initialise, verify, explain.

sam3/ is facebookresearch/sam3 (the training code and its configs), GLIP/ is microsoft/GLIP (ODinW's
tooling) and rf100-vl/ is roboflow/rf100-vl (RF100-VL's tooling). Every git call is an argv list run
with prompts off. The pins are a parameter of every function, so that tests can stand local bare
repositories in for GitHub (through git's `url.<base>.insteadOf`) whose commits differ from GitHub's.
"""

import os
import shlex
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from ..core.errors import ConfigError, ToolError
from ..core.report import FAIL, PASS, WARN, Check


@dataclass(frozen=True)
class Submodule:
    """One submodule: its path in the superproject, where it comes from, the commit it must sit at."""

    path: str
    url: str
    commit: str


PINS = (
    Submodule("sam3", "https://github.com/facebookresearch/sam3.git", "99d02f28c8d34610ab35559b72642b01f10fdb1e"),
    Submodule("GLIP", "https://github.com/microsoft/GLIP.git", "9dda9558c1ef59bb6cdc8e896e2bcab775a68ff0"),
    Submodule("rf100-vl", "https://github.com/roboflow/rf100-vl.git", "3fff05aa866b78df194a6bf34532467784012391"),
)

MIRROR_HINT = "git config --global url.<mirror>/.insteadOf https://github.com/"
# No credential prompt (a 404 from GitHub asks for a password), and give up on a stalled transfer.
GIT_ENV = {
    "GIT_TERMINAL_PROMPT": "0",
    "GCM_INTERACTIVE": "never",
    "GIT_HTTP_LOW_SPEED_LIMIT": "1000",
    "GIT_HTTP_LOW_SPEED_TIME": "60",
}


@dataclass(frozen=True)
class Step:
    """One command of the plan, with the folder it runs in and why."""

    argv: list[str]
    cwd: Path
    why: str

    def line(self, root: Path) -> str:
        where = "" if self.cwd == root else f"cd {shlex.quote(_rel(self.cwd, root))} && "
        return where + shlex.join(self.argv)


@dataclass
class State:
    """What is on disk for one submodule."""

    sub: Submodule
    name: str | None = None  # the name in .gitmodules (None: not declared there)
    declared_url: str | None = None
    gitlink: str | None = None  # the commit the superproject records (None: not recorded)
    checked_out: bool = False
    head: str | None = None
    dirty: bool = False
    problem: str = ""  # the path is there but is not a checkout we can use


@dataclass
class Result:
    """The outcome: one row per submodule, the commands run (or, dry, to run), the first fetch failure."""

    states: list[State]
    checks: list[Check]
    steps: list[str] = field(default_factory=list)
    fetch_error: str = ""

    @property
    def failed(self) -> bool:
        return bool(self.fetch_error) or any(c.status == FAIL for c in self.checks)

    def as_dict(self) -> dict:
        return {
            "submodules": [
                {
                    "path": s.sub.path,
                    "url": s.declared_url or s.sub.url,
                    "pin": s.sub.commit,
                    "recorded": s.gitlink,
                    "head": s.head,
                    "dirty": s.dirty,
                }
                for s in self.states
            ],
            "checks": self.checks,
            "commands": self.steps,
            "error": self.fetch_error or None,
            "status": "fail" if self.failed else "pass",
        }


def _rel(path: Path, root: Path) -> str:
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


def _git(args: list[str], cwd: Path, timeout: float | None = 60) -> subprocess.CompletedProcess:
    return _run(["git", *args], cwd, timeout)


def _run(argv: list[str], cwd: Path, timeout: float | None = 60) -> subprocess.CompletedProcess:
    env = dict(os.environ, **GIT_ENV)
    try:
        return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        raise ToolError("git is not installed; install it (apt-get install git) and run again") from None
    except subprocess.TimeoutExpired:
        raise ToolError(f"{shlex.join(argv)} in {cwd} took over {timeout:.0f} s; check the network") from None


def select(only: str | None, pins: tuple[Submodule, ...] = PINS) -> tuple[Submodule, ...]:
    """The pins named in a comma-separated --only (all of them for None)."""
    if not only:
        return pins
    by_path = {p.path.lower(): p for p in pins}
    names = [n.strip() for n in only.split(",") if n.strip()]
    unknown = [n for n in names if n.lower() not in by_path]
    if unknown or not names:
        known = ", ".join(p.path for p in pins)
        raise ConfigError(f"--only {only!r}: unknown submodule {', '.join(unknown) or '(none)'}; pick from {known}")
    return tuple(by_path[n.lower()] for n in names)


def _declared(root: Path) -> dict[str, tuple[str, str | None]]:
    """path -> (name, url) from .gitmodules."""
    if not (root / ".gitmodules").is_file():
        raise ConfigError(f"no .gitmodules in {root}; restore it: git checkout -- .gitmodules")
    done = _git(["config", "-f", ".gitmodules", "--get-regexp", r"^submodule\..*\.(path|url)$"], root)
    paths: dict[str, str] = {}
    urls: dict[str, str] = {}
    for line in done.stdout.splitlines():
        key, _, value = line.partition(" ")
        name, _, what = key[len("submodule.") :].rpartition(".")
        (paths if what == "path" else urls)[name] = value
    return {path: (name, urls.get(name)) for name, path in paths.items()}


def _gitlinks(root: Path, paths: list[str]) -> dict[str, str]:
    done = _git(["ls-files", "-s", "--", *paths], root)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["?"])[-1]
        raise ConfigError(f"{root} is not a git repository ({last}); clone the project with git")
    links = {}
    for line in done.stdout.splitlines():
        meta, _, path = line.partition("\t")
        mode, sha, _stage = meta.split()
        if mode == "160000":
            links[path] = sha
    return links


def inspect(root: Path, pins: tuple[Submodule, ...] = PINS) -> list[State]:
    """Read .gitmodules, the recorded commits and each checkout; change nothing."""
    declared = _declared(root)
    links = _gitlinks(root, [p.path for p in pins])
    states = []
    for sub in pins:
        name, url = declared.get(sub.path, (None, None))
        state = State(sub, name, url, links.get(sub.path))
        folder = root / sub.path
        if (folder / ".git").exists():
            head = _git(["rev-parse", "--verify", "-q", "HEAD"], folder)
            if head.returncode == 0:
                state.checked_out, state.head = True, head.stdout.strip()
                status = _git(["status", "--porcelain", "--untracked-files=no"], folder)
                state.dirty = bool(status.stdout.strip())
            else:
                state.problem = f"{sub.path}/ is a git folder without a commit checked out"
        elif folder.is_dir() and any(folder.iterdir()):
            state.problem = f"{sub.path}/ holds files but is not a git checkout"
        elif folder.exists() and not folder.is_dir():
            state.problem = f"{sub.path} is a file, not a folder"
        states.append(state)
    return states


def _init_step(root: Path, state: State) -> Step:
    return Step(["git", "submodule", "update", "--init", "--", state.sub.path], root, "check out (clone)")


def _pin_steps(root: Path, state: State) -> list[Step]:
    folder = root / state.sub.path
    steps = []
    if _git(["cat-file", "-e", f"{state.sub.commit}^{{commit}}"], folder).returncode != 0:
        steps.append(Step(["git", "fetch", "--quiet", "origin", state.sub.commit], folder, "fetch the pinned commit"))
    steps.append(Step(["git", "checkout", "--quiet", "--force", "--detach", state.sub.commit], folder, "move to pin"))
    return steps


def fetch_failure(sub: Submodule, url: str, stderr: str, root: Path) -> str:
    """One line that explains a failed clone or fetch, naming the URL and the fix."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    fatal = [line.removeprefix("fatal: ") for line in lines if line.startswith(("fatal:", "error:"))]
    reason = (fatal or lines or ["no output"])[0]
    if "transport 'file' not allowed" in stderr:
        return (
            f"git refused to fetch {sub.path} from a file:// mirror of {url} (protocol.file.allow); "
            "allow it: git config --global protocol.file.allow always"
        )
    rewritten = _git(["ls-remote", "--get-url", url], root).stdout.strip()
    via = f" (rewritten to {rewritten} by url.insteadOf)" if rewritten and rewritten != url else ""
    return (
        f"could not fetch {sub.path} from {url}{via}: {reason}; this machine may not reach it: "
        f"use a mirror ({MIRROR_HINT}) and run inv env.submodules again"
    )


def _undo_failed_init(root: Path, state: State, before: dict) -> None:
    """Leave no half-made submodule: the folder, its git dir and its .git/config entry as they were."""
    folder = root / state.sub.path
    if not before["folder"] and folder.exists():
        shutil.rmtree(folder, ignore_errors=True)
    elif before["folder"] and folder.is_dir() and not before["folder_files"]:
        for child in folder.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
    if not before["gitdir"] and before["gitdir_path"].exists():
        shutil.rmtree(before["gitdir_path"], ignore_errors=True)
    if not before["configured"]:
        _git(["config", "--remove-section", f"submodule.{state.name}"], root)


def _before(root: Path, state: State) -> dict:
    folder = root / state.sub.path
    gitdir = Path(_git(["rev-parse", "--git-path", f"modules/{state.name}"], root).stdout.strip())
    gitdir = gitdir if gitdir.is_absolute() else root / gitdir
    configured = _git(["config", "--get", f"submodule.{state.name}.url"], root).returncode == 0
    return {
        "folder": folder.exists(),
        "folder_files": folder.is_dir() and any(folder.iterdir()),
        "gitdir_path": gitdir,
        "gitdir": gitdir.exists(),
        "configured": configured,
    }


def verify(root: Path, states: list[State]) -> list[Check]:
    """One row per submodule: at its pin, or what differs and the fix."""
    return [_verify_one(s) for s in states]


def _verify_one(s: State) -> Check:
    pin, path = s.sub.commit, s.sub.path
    recorded = "" if s.gitlink in (None, pin) else f"; the superproject records {s.gitlink[:12]}"
    if s.name is None:
        return Check("submodule", path, FAIL, "not declared in .gitmodules", "restore it: git checkout -- .gitmodules")
    if s.problem:
        return Check("submodule", path, FAIL, s.problem, f"move {path} aside, then inv env.submodules")
    if not s.checked_out:
        fix = (
            f"record it first: git update-index --add --cacheinfo 160000,{pin},{path}"
            if s.gitlink is None
            else "inv env.submodules"
        )
        detail = "not checked out" + (recorded if s.gitlink else "; the superproject records no commit for it")
        return Check("submodule", path, FAIL, detail, fix)
    if s.head != pin:
        return Check(
            "submodule",
            path,
            FAIL,
            f"at {s.head[:12]}, pinned at {pin[:12]}{recorded}",
            f"git -C {shlex.quote(path)} checkout {pin}, or inv env.submodules --force"
            + (" (discards its local changes)" if s.dirty else ""),
        )
    return _at_pin(s)


def _at_pin(s: State) -> Check:
    """A submodule at its pin: a pass, or a warning for what still differs (record, URL, local changes)."""
    pin, path = s.sub.commit, s.sub.path
    notes = []
    if s.gitlink is None:
        notes.append("not recorded in the superproject")
    elif s.gitlink != pin:
        notes.append(f"the superproject records {s.gitlink[:12]}")
    if s.declared_url and s.declared_url != s.sub.url:
        notes.append(f".gitmodules says {s.declared_url}")
    if s.dirty:
        notes.append("local changes to tracked files")
    detail = f"at pin {pin[:12]}" + (f"; {'; '.join(notes)}" if notes else "")
    fix = ""
    if s.gitlink != pin:
        fix = f"git update-index --add --cacheinfo 160000,{pin},{path}"
    elif s.dirty:
        fix = f"git -C {shlex.quote(path)} diff shows them"
    return Check("submodule", path, WARN if notes else PASS, detail, fix)


def sync(root: Path, pins: tuple[Submodule, ...] = PINS, force: bool = False, dry_run: bool = False) -> Result:
    """Check out absent submodules, move those off their pin when forced, and report each one.

    Idempotent: with every submodule at its pin this runs a few read-only git commands and nothing else.
    A failed clone is undone (folder, git dir, .git/config entry) and the rest are still tried."""
    states = inspect(root, pins)
    result = Result(states, [])
    for state in states:
        if state.name is None or state.problem:
            continue
        if not state.checked_out and not _check_out(root, state, result, force, dry_run):
            continue
        if force and state.checked_out and state.head != state.sub.commit:
            _move_to_pin(root, state, result, dry_run)
    result.checks = verify(root, states)
    return result


def _check_out(root: Path, state: State, result: Result, force: bool, dry_run: bool) -> bool:
    """Clone an absent submodule at the commit the superproject records; True once it is checked out.

    A dry run lists the commands (and the move to the pin when forced); a failed clone is undone."""
    if state.gitlink is None:
        return False  # nothing recorded to check out; verify() says how to record it
    step = _init_step(root, state)
    result.steps.append(step.line(root))
    if dry_run:
        if force and state.gitlink != state.sub.commit:
            folder = root / state.sub.path
            result.steps += [
                Step(["git", "fetch", "--quiet", "origin", state.sub.commit], folder, "").line(root),
                Step(["git", "checkout", "--quiet", "--force", "--detach", state.sub.commit], folder, "").line(root),
            ]
        return False
    before = _before(root, state)
    done = _run(step.argv, root, timeout=None)
    if done.returncode != 0:
        _undo_failed_init(root, state, before)
        result.fetch_error = result.fetch_error or fetch_failure(
            state.sub, state.declared_url or state.sub.url, done.stderr, root
        )
        return False
    _reinspect(root, state)
    return True


def _move_to_pin(root: Path, state: State, result: Result, dry_run: bool) -> None:
    """Fetch the pinned commit when it is not there, then check it out (--force); the first failure stops."""
    for step in _pin_steps(root, state):
        result.steps.append(step.line(root))
        if dry_run:
            continue
        done = _run(step.argv, step.cwd, timeout=None)
        if done.returncode != 0:
            result.fetch_error = result.fetch_error or _step_failure(root, state, step, done.stderr)
            break
    if not dry_run:
        _reinspect(root, state)


def _step_failure(root: Path, state: State, step: Step, stderr: str) -> str:
    if "fetch" in step.argv:
        return fetch_failure(state.sub, state.declared_url or state.sub.url, stderr, root)
    last = (stderr.strip().splitlines() or ["?"])[-1]
    return f"{step.line(root)} failed: {last}"


def _reinspect(root: Path, state: State) -> None:
    """Read the submodule's state again after git changed it."""
    state.__dict__.update(inspect(root, (state.sub,))[0].__dict__)
