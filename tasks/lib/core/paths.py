"""Where the project lives, and small filesystem helpers shared by the checks."""

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[3]


def resolve_path(value: str, base: Path = PROJECT_ROOT) -> Path:
    """Expand ~ and $VARS; a relative path is taken from the project root, not the cwd."""
    path = Path(os.path.expandvars(os.path.expanduser(str(value))))
    return path if path.is_absolute() else (base / path)


def nearest_existing(path: Path) -> Path:
    """The path itself if it exists, else its closest existing ancestor."""
    path = Path(os.path.abspath(path))
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def atomic_write_text(path: Path, text: str) -> None:
    """Write to a temporary name beside the target, then rename: never half-written."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
