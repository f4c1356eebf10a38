"""SAM3's own Trainer on a CPU: a SAM3 image config reduced to what a laptop or a login node can run.

The reduction (cpu_reduction.yaml) keeps the config's losses, matchers, data pipeline, meters and COCO
evaluation, and swaps in SAM3's model classes at a reduced size with random weights, the CPU settings
(cpu, gloo, no AMP, no workers, 224 px), and the run-time patches of plugins/sam3_cpu.py (guarded on CUDA
being absent and on the sam3 version). The demo always runs reduced; `--smoke` does on a machine
without a GPU. Nothing is reduced that the reduction cannot stand for: other model builders and
GPU-only settings are refused. A config with masks on throughout (segmentation.enable, before reduce)
gets a reduced mask head of SAM3's classes; a config that asks for masks only in part is refused.
"""

import copy
from pathlib import Path
from typing import Any

import yaml

from ..core.errors import ConfigError
from . import segmentation

REDUCTION_FILE = Path(__file__).with_name("cpu_reduction.yaml")
REDUCIBLE_MODELS = ("sam3.model_builder.build_sam3_image_model", "sam3.model.sam3_image.Sam3Image")
CHECKED_SAM3_VERSIONS = ("0.1.4",)  # as plugins/sam3_cpu.py, which the training process imports
RESIZE_SCALES = "sam3.train.transforms.basic.get_random_resize_scales"
SEGM_POSTPROCESSOR = "sam3.eval.postprocessors.PostProcessImage"
TRAINER_TARGET = "sam3_cpu.trainer_on_this_machine"
SUMMARY = (
    "SAM3's Trainer with SAM3's model classes at a reduced size (22 M parameters, 24 M with the mask head, "
    "random weights, 224 px) on the CPU"
)


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
        raise ConfigError(
            f"{source}: trainer.model is {target or 'missing'}, which the CPU reduction cannot stand "
            f"for (it reduces {REDUCIBLE_MODELS[0]}); run it on a GPU machine without --smoke"
        )
    if segmentation.is_enabled(config) or _flag(config, "scratch", "enable_segmentation") is True:
        _check_masks(config, source)
    if _flag(config, "trainer", "model", "compile") is True:
        raise ConfigError(
            f"{source}: trainer.model.compile is true, which a CPU smoke run cannot use; "
            "--set trainer.model.compile=false"
        )
    if sam3_version not in CHECKED_SAM3_VERSIONS:
        raise ConfigError(
            f"the training env has sam3 {sam3_version or 'not installed'}; the CPU patches were checked "
            f"against sam3 {', '.join(CHECKED_SAM3_VERSIONS)}: inv env.sam3 --source pypi --force"
        )


def reduce(config: dict) -> dict:
    """The config with the CPU reduction merged in (check() first)."""
    bpe = (_flag(config, "trainer", "model") or {}).get("bpe_path")
    masks = segmentation.is_enabled(config)
    reduced = merge(config, yaml.safe_load(REDUCTION_FILE.read_text()))
    model = reduced["trainer"]["model"]
    if bpe:
        model["backbone"]["text"]["tokenizer"]["bpe_path"] = bpe
    if not masks:
        model["segmentation_head"] = None  # box-only, as the builder with enable_segmentation false
    for node in _mappings(reduced):
        # SAM3's train transforms hard-code min_size 480 inside a list, which Hydra cannot override one
        # element of: below 480 px the scale list is empty. Every such node follows the reduced floor.
        if node.get("_target_") == RESIZE_SCALES and "min_size" in node:
            node["min_size"] = "${scratch.train_min_resolution}"
        # a segm postprocessor moves masks to CUDA to resize them unless told otherwise
        if node.get("_target_") == SEGM_POSTPROCESSOR and node.get("iou_type") == "segm":
            node["always_interpolate_masks_on_gpu"] = False
    return reduced


def _mappings(node: Any):
    """Every mapping in the config, depth first."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _mappings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _mappings(value)


def _check_masks(config: dict, source: str) -> None:
    """Masks asked for: the reduced model carries a mask head (reduce), so the rest of the config must ask
    for masks too, or the run fails at its first validation (segmentation.py)."""
    differ = segmentation.missing(config, source)
    if differ:
        raise ConfigError(
            f"{source}: enable_segmentation is true but not the rest of what masks need ({', '.join(differ)}); "
            "use --task segm, which sets them all, or set enable_segmentation false"
        )
