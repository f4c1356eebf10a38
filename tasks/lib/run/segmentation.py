"""Masks in a SAM3 RF100-VL-style config (`--task segm`): six coordinated changes,
made together so that SAM3's Trainer trains a mask head and
evaluates `segm` next to `bbox`.

1. scratch.enable_segmentation true, and every switch it feeds in the RF config (the model's
   enable_segmentation, both datasets' load_segmentation, both collators' with_seg_masks) pointed
   back at it, even where a config wrote a literal;
2. the mask loss of the RF config's commented block (Masks, SemanticSegCriterion at its real path);
3. DecodeRle first in the val transforms (val loads masks too, as the switch says);
4. scratch.original_segm_postprocessor: the box postprocessor with masks at the original size, as RLE;
5. a `segmentation` meter beside `detection`, iou_type segm;
6. (the data) polygon or RLE `segmentation` in the annotations: data.validate's business, not this one.

The box side stays as the config has it. enable() is idempotent. The CPU reduction
(cpu_reduction.reduce) reads the switch to give its reduced model a mask head: enable first, then reduce.
"""

import copy
import re
from typing import Any

from ..core.errors import ConfigError
from . import sam3_config

SWITCH = "${scratch.enable_segmentation}"
POSTPROCESSOR = "original_segm_postprocessor"
MASKS_LOSS = "sam3.train.loss.loss_fns.Masks"
SEMANTIC_LOSS = "sam3.train.loss.loss_fns.SemanticSegCriterion"
COMMENTED_LOSS_PATH = "sam3.losses.loss_fns."  # the RF config's comment; no such module (#189, #411)
DECODE_RLE = "sam3.train.transforms.segmentation.DecodeRle"
MASKS = {
    "_target_": MASKS_LOSS,
    "focal_alpha": 0.25,
    "focal_gamma": 2.0,
    "weight_dict": {"loss_mask": 200.0, "loss_dice": 10.0},
    "compute_aux": False,
}
SEMANTIC_SEG = {
    "_target_": SEMANTIC_LOSS,
    "presence_head": True,
    "presence_loss": False,
    "focal": True,
    "focal_alpha": 0.6,
    "focal_gamma": 2.0,
    "downsample": False,
    "weight_dict": {"loss_semantic_seg": 20.0, "loss_semantic_presence": 1.0, "loss_semantic_dice": 30.0},
}
_REFERENCE = re.compile(r"\$\{([A-Za-z0-9_.]+)\}")
_FIX = "masks (--task segm) need SAM3's RF100-VL layout: start from roboflow_v100_full_ft_100_images or the demo"


def lookup(config: dict, dotted: str) -> Any:
    """The node at a dotted key, None where any step is missing."""
    node: Any = config
    for key in dotted.split("."):
        node = node.get(key) if isinstance(node, dict) else None
    return node


def resolve(config: dict, node: Any) -> Any:
    """The node a plain `${a.b}` reference stands for (followed to the end); anything else as it is."""
    for _ in range(10):
        match = _REFERENCE.fullmatch(node) if isinstance(node, str) else None
        if match is None:
            return node
        node = lookup(config, match.group(1))
    return node


def is_enabled(config: dict) -> bool:
    """Whether the model is asked for masks: its enable_segmentation or scratch's, resolved."""
    model = lookup(config, "trainer.model") or {}
    flag = model.get("enable_segmentation", lookup(config, "scratch.enable_segmentation"))
    return resolve(config, flag) is True


def missing(config: dict, source: str = "the config") -> list[str]:
    """The keys enable(config) would change (each list or new block once): [] when masks are on throughout.
    A switch written as a literal true counts as on."""
    have = dict(sam3_config.walk(config))
    done = sam3_config.walk(enable(config, source))
    changed = [
        key for key, value in done if have.get(key, ()) != value and not (value == SWITCH and have.get(key) is True)
    ]
    return list(dict.fromkeys(_owner(config, key) for key in changed))


def _owner(config: dict, key: str) -> str:
    """The key as far as the config has it: up to a list, or to where the config has no mapping."""
    parts = key.split(".")
    for end in range(1, len(parts)):
        if parts[end].isdigit() or not isinstance(lookup(config, ".".join(parts[:end])), dict):
            return ".".join(parts[:end])
    return key


def _need(config: dict, dotted: str, kind: type, source: str) -> Any:
    node = resolve(config, lookup(config, dotted))
    if not isinstance(node, kind):
        what = "missing" if node is None else f"a {type(node).__name__}, not a {kind.__name__}"
        raise ConfigError(f"{source}: {dotted} is {what}; {_FIX}")
    return node


def enable(config: dict, source: str = "the config") -> dict:
    """The config with masks turned on throughout (a copy); ConfigError, one line, when it is not of the
    RF100-VL shape these changes are made for."""
    out = copy.deepcopy(config)
    _need(out, "roboflow_train", dict, source)
    scratch = _need(out, "scratch", dict, source)
    scratch["enable_segmentation"] = True
    _turn_switches(out, source)
    train_key = _need(out, "trainer.data.train.collate_fn", dict, source).get("dict_key", "all")
    _add_losses(_need(out, f"trainer.loss.{train_key}", dict, source), source)
    _decode_rle_first(_need(out, "trainer.data.val.dataset.transforms", list, source), source)
    _add_meter(out, scratch, source)
    return out


def _turn_switches(config: dict, source: str) -> None:
    model = _need(config, "trainer.model", dict, source)
    if "enable_segmentation" in model or str(model.get("_target_", "")).endswith("build_sam3_image_model"):
        model["enable_segmentation"] = SWITCH
    for split in ("train", "val"):
        _need(config, f"trainer.data.{split}.dataset", dict, source)["load_segmentation"] = SWITCH
        _need(config, f"trainer.data.{split}.collate_fn", dict, source)["with_seg_masks"] = SWITCH


def _add_losses(loss: dict, source: str) -> None:
    finders = loss.get("loss_fns_find")
    if not isinstance(finders, list):
        raise ConfigError(f"{source}: the training loss has no loss_fns_find list; {_FIX}")
    if not any(isinstance(fn, dict) and fn.get("_target_") == MASKS_LOSS for fn in finders):
        finders.append(copy.deepcopy(MASKS))
    semantic = loss.get("loss_fn_semantic_seg")
    if not isinstance(semantic, dict):
        loss["loss_fn_semantic_seg"] = copy.deepcopy(SEMANTIC_SEG)
    elif str(semantic.get("_target_", "")).startswith(COMMENTED_LOSS_PATH):
        semantic["_target_"] = SEMANTIC_LOSS


def _decode_rle_first(transforms: list, source: str) -> None:
    compose = transforms[0] if transforms and isinstance(transforms[0], dict) else {}
    steps = compose.get("transforms")
    if not isinstance(steps, list):
        raise ConfigError(f"{source}: the val transforms do not start with a ComposeAPI list of transforms; {_FIX}")
    if not any(isinstance(step, dict) and step.get("_target_") == DECODE_RLE for step in steps):
        steps.insert(0, {"_target_": DECODE_RLE})


def _add_meter(config: dict, scratch: dict, source: str) -> None:
    """The `segmentation` meter beside `detection` in the val collator's group, and its postprocessor."""
    group_key = _need(config, "trainer.data.val.collate_fn", dict, source).get("dict_key")
    detection = _need(config, f"trainer.meters.val.{group_key}.detection", dict, source)
    box = resolve(config, detection.get("postprocessor"))
    evaluators = detection.get("pred_file_evaluators")
    first = evaluators[0] if isinstance(evaluators, list) and evaluators else None
    for name, node in (("postprocessor", box), ("pred_file_evaluators", first)):
        if not isinstance(node, dict):
            raise ConfigError(f"{source}: trainer.meters.val.{group_key}.detection has no {name}; {_FIX}")
    post = scratch.setdefault(POSTPROCESSOR, {k: v for k, v in box.items() if k != "iou_type"})
    post.update(iou_type="segm", use_original_sizes_mask=True, convert_mask_to_rle=True)
    group = _need(config, f"trainer.meters.val.{group_key}", dict, source)
    meter = group.setdefault("segmentation", copy.deepcopy(detection))
    meter.update(iou_type="segm", postprocessor="${scratch." + POSTPROCESSOR + "}")
    meter["pred_file_evaluators"][0]["iou_type"] = "segm"
