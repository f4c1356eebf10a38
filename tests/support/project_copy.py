"""A project of a test's own: a clone of this checkout (its commits, submodule pins and .gitmodules, no
submodule initialised) with the working tree's code on top, so that tests which run env.submodules or
env.setup act on it and never on the checkout they run in, whatever state that is in."""

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CODE = ("tasks.py", "invoke.yaml", ".gitmodules", "tasks", "scripts", "demo")


def project_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "project"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(copy)], check=True, capture_output=True, text=True)
    for name in CODE:
        source, target = ROOT / name, copy / name
        if source.is_dir():
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        elif source.exists():
            shutil.copy2(source, target)
    return copy
