"""SAM3's real configs for the contract tests, found one way everywhere: the sam3 submodule when it is
checked out, else $SAM3_CONFIGS_DIR (.ci/run points it at the fixtures beside the checkout). Missing,
a test is skipped, or fails under SAM3_REQUIRE_SERVICES=1 (CI)."""

import os
from pathlib import Path

from tasks.lib.run import sam3_config

ROOT = Path(__file__).resolve().parents[2]
MISSING = "no SAM3 configs: check out the sam3 submodule (inv env.submodules) or set SAM3_CONFIGS_DIR"


def configs_root() -> Path | None:
    roots = sam3_config.config_roots(ROOT / "sam3", os.environ)
    return roots[0] if roots else None


def require_configs() -> Path:
    """The configs folder, or skip (fail in CI) naming how to get it."""
    from conftest import skip_unless_required

    root = configs_root()
    if root is None:
        skip_unless_required(MISSING)
    return root


def config_files(*families: str) -> list[Path]:
    """Every config of these families (folders such as roboflow_v100, odinw13); [] without configs."""
    root = configs_root()
    return sorted(path for family in families for path in (root / family).glob("*.yaml")) if root else []
