"""SAM3's own Trainer on a CPU: a SAM3 image config reduced to what a laptop or a login node can run.

The reduction (cpu_reduction.yaml) keeps the config's losses, matchers, data pipeline, meters and COCO
evaluation, and swaps in SAM3's model classes at a reduced size with random weights, the CPU settings
of shared/reference/sam3-on-cpu.md, and the run-time patches of plugins/sam3_cpu.py (guarded on CUDA
being absent and on the sam3 version). The demo always runs reduced; `--smoke` does on a machine
without a GPU. Nothing is reduced that the reduction cannot stand for: other model builders and
GPU-only settings are refused.
"""

import copy
from pathlib import Path
from typing import Any

import yaml

from ..core.errors import ConfigError

REDUCTION_FILE = Path(__file__).with_name("cpu_reduction.yaml")
REDUCIBLE_MODELS = ("sam3.model_builder.build_sam3_image_model", "sam3.model.sam3_image.Sam3Image")
CHECKED_SAM3_VERSIONS = ("0.1.4",)  # as plugins/sam3_cpu.py, which the training process imports
RESIZE_SCALES = "sam3.train.transforms.basic.get_random_resize_scales"
TRAINER_TARGET = "sam3_cpu.make_trainer"
SUMMARY = ("SAM3's Trainer with SAM3's model classes at a reduced size (22 M parameters, random weights, "
           "224 px) on the CPU")  # fmt: skip


def merge(base: Any, over: Any, path: tuple = ()) -> Any:
    """Mappings merged key by key; anything else, and trainer.model, replaced whole."""
    if not isinstance(base, dict) or not isinstance(over, dict) or path == ("trainer", "model"):
        return copy.deepcopy(over)
    merged = dict(base)
    for key, value in over.items():
        merged[key] = merge(base[key], value, (*path, key)) if key in base else copy.deepcopy(value)
    return merged


def _flag(config: dict, *keys: str) -> Any:
    node: Any = config
    for key in keys:
        node = node.get(key) if isinstance(node, dict) else None
    return node


def check(config: dict, source: str, sam3_version: str | None) -> None:
    """Refuse, in one line with the fix, a config the reduction cannot stand for."""
    model = _flag(config, "trainer", "model") or {}
    target = str(model.get("_target_", ""))
    if target not in REDUCIBLE_MODELS:
        raise ConfigError(f"{source}: trainer.model is {target or 'missing'}, which the CPU reduction cannot stand "
                          f"for (it reduces {REDUCIBLE_MODELS[0]}); run it on a GPU machine without --smoke")  # fmt: skip
    for keys in (("scratch", "enable_segmentation"), ("trainer", "model", "enable_segmentation")):
        if _flag(config, *keys) is True:
            raise ConfigError(f"{source}: {'.'.join(keys)} is true, a GPU-only setting for a CPU smoke run (the "
                              f"reduced model is box-only); --set {'.'.join(keys)}=false, or smoke on a GPU machine")  # fmt: skip
    if _flag(config, "trainer", "model", "compile") is True:
        raise ConfigError(f"{source}: trainer.model.compile is true, which a CPU smoke run cannot use; "
                          "--set trainer.model.compile=false")  # fmt: skip
    if sam3_version not in CHECKED_SAM3_VERSIONS:
        raise ConfigError(f"the training env has sam3 {sam3_version or 'not installed'}; the CPU patches were checked "
                          f"against sam3 {', '.join(CHECKED_SAM3_VERSIONS)}: inv env.sam3 --source pypi --force")  # fmt: skip


def reduce(config: dict) -> dict:
    """The config with the CPU reduction merged in (check() first)."""
    bpe = (_flag(config, "trainer", "model") or {}).get("bpe_path")
    reduced = merge(config, yaml.safe_load(REDUCTION_FILE.read_text()))
    if bpe:
        reduced["trainer"]["model"]["backbone"]["text"]["tokenizer"]["bpe_path"] = bpe
    _lower_resize_floor(reduced)
    return reduced


def _lower_resize_floor(node: Any) -> None:
    """SAM3's train transforms hard-code min_size 480 inside a list, which Hydra cannot override one
    element of: below 480 px the scale list is empty. Point every such node at the reduced floor."""
    if isinstance(node, dict):
        if node.get("_target_") == RESIZE_SCALES and "min_size" in node:
            node["min_size"] = "${scratch.train_min_resolution}"
        for value in node.values():
            _lower_resize_floor(value)
    elif isinstance(node, list):
        for value in node:
            _lower_resize_floor(value)
