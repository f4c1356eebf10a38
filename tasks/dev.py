"""Chores of working on this repository: tests, lint, format, re-lock, clean."""

import shlex
import sys
from pathlib import Path

from .common import task
from .lib.core.paths import PROJECT_ROOT


def _python_tool(*args: str) -> str:
    """A command that runs a tool installed in this interpreter's environment."""
    return shlex.join([sys.executable, "-m", *args])


@task(help={"args": "Extra pytest arguments, e.g. '-k settings -x'.", "dry_run": "Print the command only."})
def test(c, args="", dry_run=False):
    """Run the test suite (pytest)."""
    import importlib.util

    from .lib.core.errors import ToolError

    if importlib.util.find_spec("pytest") is None:
        raise ToolError(
            "pytest is not in this venv (scripts/bootstrap installs only what inv needs to run); "
            "install the development tools: scripts/setup-tests"
        )
    import os
    import shutil

    missing = [tool for tool in ("slurmctld", "sshd") if not (shutil.which(tool) or Path("/usr/sbin", tool).exists())]
    if missing or os.geteuid() != 0:
        why = f"{', '.join(missing)} not installed" if missing else "not root (SLURM's daemons need it)"
        print(
            f"note: {why}: the tests that start a real SLURM cluster or sshd (about 40) will be skipped; to run "
            "them: sudo scripts/install-system-deps, then the tests as root",
            flush=True,
        )
    command = _python_tool("pytest") + (" " + args if args else "")
    c.run(command, dry=dry_run, pty=sys.stdout.isatty())


@task(help={"fix": "Apply ruff's safe fixes.", "dry_run": "Print the commands only."})
def lint(c, fix=False, dry_run=False):
    """Lint with ruff, and check that the code is formatted."""
    with c.cd(str(PROJECT_ROOT)):
        c.run(_python_tool("ruff", "check", *(["--fix"] if fix else []), "."), dry=dry_run)
        c.run(_python_tool("ruff", "format", "--check", "."), dry=dry_run)


@task(name="format", help={"dry_run": "Print the command only."})
def format_(c, dry_run=False):
    """Format the code with ruff."""
    with c.cd(str(PROJECT_ROOT)):
        c.run(_python_tool("ruff", "format", "."), dry=dry_run)


@task(help={"upgrade": "Take the newest versions allowed by requirements.in.", "dry_run": "Print the command only."})
def lock(c, upgrade=False, dry_run=False):
    """Re-compile requirements.txt and requirements-dev.txt from their .in files (uv pip compile)."""
    with c.cd(str(PROJECT_ROOT)):
        for name in ("requirements", "requirements-dev"):  # the runtime first: the dev lock is constrained by it
            argv = ["uv", "pip", "compile", f"{name}.in", "-o", f"{name}.txt", "--python-version", "3.11", "-q"]
            c.run(_python_tool(*argv, *(["--upgrade"] if upgrade else [])), dry=dry_run)


@task(help={"dry_run": "List what would be removed without removing it."})
def clean(c, dry_run=False):
    """Remove caches and unread configs older versions left in SAM3's package (never data, experiments, venvs)."""
    import shutil

    from .common import load_settings
    from .lib.dev import clean as clean_lib

    settings = load_settings(c)
    keep = [
        settings.path(key)
        for key in (
            "paths.roboflow_vl_100_root",
            "paths.odinw_data_root",
            "paths.experiment_root",
            "paths.demo_data_root",
            "paths.hf_home",
        )
    ]
    found = clean_lib.targets(PROJECT_ROOT, keep)
    legacy = clean_lib.legacy_config_folders(PROJECT_ROOT, settings.path("sam3.train_venv"))
    readers = clean_lib.legacy_readers(legacy, settings.path("paths.experiment_root")) if legacy else []
    for line in readers:
        print(f"keeping {', '.join(map(str, legacy))} (configs an older version rendered): {line}")
    if not readers:  # no task launched by an older version reads them any more
        found += legacy
    for path in found:
        print(f"{'would remove' if dry_run else 'removing'} {path}")
        if not dry_run:
            shutil.rmtree(path)
