"""dev.clean as a plain function: what it removes, and what it never touches."""

import os
from pathlib import Path

# Generated files and caches; nothing a user made.
CACHE_NAMES = ("__pycache__",)
TOP_LEVEL = (".pytest_cache", ".ruff_cache", "tests/.tmp")


def targets(project_root: Path, train_venv: Path, keep: list[Path]) -> list[Path]:
    """Caches under project_root and the configs run.train rendered into SAM3's package. Never a
    venv, and never anything under keep (data roots, experiments, the HF cache), which the walk does
    not even enter (a data root may hold 160,000 images)."""
    fenced = {path.resolve() for path in keep}
    found = [project_root / name for name in TOP_LEVEL if (project_root / name).exists()]
    for folder, subfolders, _ in os.walk(project_root):
        here = Path(folder)
        for name in list(subfolders):
            path = here / name
            if name.startswith(".venv") or name == ".git" or path.resolve() in fenced or path.is_symlink():
                subfolders.remove(name)
            elif name in CACHE_NAMES:
                found.append(path)
                subfolders.remove(name)
    # configs run.train rendered where SAM3's train.py looks for them (experiments keep their own copies)
    found += sorted(train_venv.glob("lib/python*/site-packages/sam3/train/configs/generated"))
    found += sorted((project_root / "sam3" / "sam3" / "train" / "configs").glob("generated"))
    return sorted(set(found))
