"""Masks (`--task segm`, tasks/lib/run/segmentation.py): the six changes for masks on SAM3's
real RF100-VL config and on the demo, and SAM3's real Trainer training and evaluating `segm` on the CPU
with the reduced model and its reduced mask head."""

import copy
import json
import math
import os
import resource
import subprocess
import time

import pytest
import yaml
from conftest import ROOT, run_inv
from support.sam3_configs import require_configs

from tasks.lib.core.errors import ConfigError
from tasks.lib.env import tracking
from tasks.lib.run import cpu_reduction, planning, sam3_config, segmentation

DEMO_PATH = ROOT / "demo" / "demo_rf100vl_cpu.yaml"
TRAIN_PYTHON = ROOT / ".venv-train" / "bin" / "python"
SWITCH = "${scratch.enable_segmentation}"
SEGM_AP = "Meters_train/val_roboflow100/segmentation/coco_eval_segm_AP"
LOCAL = ("--use-cluster", "0", "--num-gpus", "1", "--num-nodes", "1")  # as planning's local runs
MASK_LOSSES = ("loss_mask", "loss_dice", "loss_semantic_seg", "loss_semantic_dice")
CHANGED = (
    "roboflow_train.val_transforms",
    "roboflow_train.loss.loss_fns_find",
    "roboflow_train.loss.loss_fn_semantic_seg",
    "scratch.enable_segmentation",
    "scratch.original_segm_postprocessor",
    "trainer.meters.val.roboflow100.segmentation",
)


def shipped() -> dict:
    return yaml.safe_load(sam3_config.find_config("roboflow_v100_full_ft_100_images", [require_configs()]).read_text())


def demo() -> dict:
    return yaml.safe_load(DEMO_PATH.read_text())


def flat(config: dict) -> dict:
    return dict(sam3_config.walk(config))


@pytest.mark.parametrize("load", [shipped, demo], ids=["shipped", "demo"])
def test_enable_turns_masks_on_throughout_and_leaves_the_rest(load):
    config = load()
    enabled = segmentation.enable(config)
    assert config == load()  # the input untouched
    assert enabled["scratch"]["enable_segmentation"] is True
    trainer = enabled["trainer"]
    assert trainer["model"]["enable_segmentation"] == SWITCH
    for split in ("train", "val"):
        assert trainer["data"][split]["dataset"]["load_segmentation"] == SWITCH
    assert enabled["scratch"]["collate_fn"]["with_seg_masks"] == SWITCH
    assert enabled["scratch"]["collate_fn_val"]["with_seg_masks"] == SWITCH
    loss = enabled["roboflow_train"]["loss"]
    assert loss["loss_fns_find"] == [*config["roboflow_train"]["loss"]["loss_fns_find"], segmentation.MASKS]
    assert loss["loss_fns_find"][-1] == {
        "_target_": "sam3.train.loss.loss_fns.Masks",
        "focal_alpha": 0.25,
        "focal_gamma": 2.0,
        "weight_dict": {"loss_mask": 200.0, "loss_dice": 10.0},
        "compute_aux": False,
    }
    assert loss["loss_fn_semantic_seg"] == {
        "_target_": "sam3.train.loss.loss_fns.SemanticSegCriterion",
        "presence_head": True,
        "presence_loss": False,
        "focal": True,
        "focal_alpha": 0.6,
        "focal_gamma": 2.0,
        "downsample": False,
        "weight_dict": {"loss_semantic_seg": 20.0, "loss_semantic_presence": 1.0, "loss_semantic_dice": 30.0},
    }
    steps = enabled["roboflow_train"]["val_transforms"][0]["transforms"]
    assert steps == [
        {"_target_": segmentation.DECODE_RLE},
        *config["roboflow_train"]["val_transforms"][0]["transforms"],
    ]
    box = config["scratch"]["original_box_postprocessor"]
    assert enabled["scratch"]["original_segm_postprocessor"] == {
        **box,
        "iou_type": "segm",
        "use_original_sizes_mask": True,
        "convert_mask_to_rle": True,
    }
    meters = trainer["meters"]["val"]["roboflow100"]
    assert meters["detection"] == config["trainer"]["meters"]["val"]["roboflow100"]["detection"]  # bbox as it was
    segm = copy.deepcopy(meters["detection"])
    segm.update(iou_type="segm", postprocessor="${scratch.original_segm_postprocessor}")
    segm["pred_file_evaluators"][0]["iou_type"] = "segm"
    assert meters["segmentation"] == segm
    # nothing else changed: the model's, datasets' and collators' switches already follow scratch's
    assert tuple(segmentation.missing(config)) == CHANGED
    changed = {key for key, value in flat(enabled).items() if flat(config).get(key, ()) != value}
    assert changed and all(key.startswith(CHANGED) for key in changed)
    assert segmentation.enable(enabled) == enabled  # idempotent
    assert segmentation.missing(enabled) == [] and segmentation.is_enabled(enabled)


def test_the_commented_block_of_sams_config_and_literal_switches_are_made_right():
    config = demo()
    config["roboflow_train"]["loss"]["loss_fn_semantic_seg"] = {
        **segmentation.SEMANTIC_SEG,
        "_target_": "sam3.losses.loss_fns.SemanticSegCriterion",
    }
    config["roboflow_train"]["loss"]["loss_fns_find"].append(dict(segmentation.MASKS))
    config["trainer"]["data"]["val"]["dataset"]["load_segmentation"] = False
    config["trainer"]["data"]["train"]["collate_fn"] = dict(config["scratch"]["collate_fn"], with_seg_masks=False)
    enabled = segmentation.enable(config)
    loss = enabled["roboflow_train"]["loss"]
    assert loss["loss_fn_semantic_seg"]["_target_"] == "sam3.train.loss.loss_fns.SemanticSegCriterion"
    assert [fn["_target_"] for fn in loss["loss_fns_find"]].count(segmentation.MASKS_LOSS) == 1
    assert enabled["trainer"]["data"]["val"]["dataset"]["load_segmentation"] == SWITCH
    assert enabled["trainer"]["data"]["train"]["collate_fn"]["with_seg_masks"] == SWITCH
    enabled["trainer"]["data"]["val"]["dataset"]["load_segmentation"] = True  # a literal true is on as well
    assert segmentation.missing(enabled) == []
    cpu_reduction.check(enabled, "mine.yaml", "0.1.4")


def test_a_config_not_of_the_rf100vl_shape_is_refused_in_one_line():
    odinw = require_configs() / "odinw13" / "odinw_text_only_train.yaml"
    with pytest.raises(ConfigError, match=r"^odinw\.yaml: roboflow_train is missing; masks \(--task segm\) need") as e:
        segmentation.enable(yaml.safe_load(odinw.read_text()), "odinw.yaml")
    assert "\n" not in str(e.value)
    config = demo()
    del config["trainer"]["meters"]["val"]["roboflow100"]["detection"]
    with pytest.raises(ConfigError, match=r"trainer\.meters\.val\.roboflow100\.detection is missing"):
        segmentation.enable(config, "mine.yaml")


def test_the_reduction_gives_the_reduced_model_a_mask_head_only_with_masks_on():
    box = cpu_reduction.reduce(demo())
    assert box["trainer"]["model"]["segmentation_head"] is None
    reduced = cpu_reduction.reduce(segmentation.enable(demo()))
    head = reduced["trainer"]["model"]["segmentation_head"]
    assert head["_target_"] == "sam3.model.maskformer_segmentation.UniversalSegmentationHead"
    assert head["hidden_dim"] == head["pixel_decoder"]["hidden_dim"] == "${scratch.d_model}"
    assert reduced["scratch"]["original_segm_postprocessor"]["always_interpolate_masks_on_gpu"] is False
    assert "always_interpolate_masks_on_gpu" not in reduced["scratch"]["original_box_postprocessor"]
    assert reduced["roboflow_train"]["loss"] == segmentation.enable(demo())["roboflow_train"]["loss"]
    cpu_reduction.check(segmentation.enable(demo()), "demo", "0.1.4")


def add_polygons(root):
    """data.synth's small datasets carry no segmentation: a diamond inside each box (not the box itself,
    so segm and bbox differ)."""
    for path in root.rglob("_annotations.coco.json"):
        data = json.loads(path.read_text())
        for ann in data["annotations"]:
            x, y, w, h = ann["bbox"]
            ann["segmentation"] = [[x + w / 2, y, x + w, y + h / 2, x + w / 2, y + h, x, y + h / 2]]
            ann["area"] = round(w * h / 2, 2)
        path.write_text(json.dumps(data))


def render(base, dataset: str) -> str:
    """The demo with masks on and reduced, as planning renders a run's config (enable, check, reduce, fill):
    one dataset, one epoch. The config's name for SAM3's train.py -c."""
    config = segmentation.enable(demo(), "demo")
    cpu_reduction.check(config, "demo", "0.1.4")
    config = cpu_reduction.reduce(config)
    config["trainer"]["max_epochs"] = 1
    config["submitit"]["job_array"]["task_index"] = config["all_roboflow_supercategories"].index(dataset)
    package = next((ROOT / ".venv-train" / "lib").glob("python*/site-packages/sam3"))
    bpe = planning.find_bpe(ROOT / "sam3", package, {})
    values = {"<YOUR_DATASET_DIR>": str(base / "rf"), "<YOUR EXPERIMENET LOG_DIR>": str(base / "exp")}
    config = sam3_config.fill(config, {**values, "<BPE_PATH>": str(bpe)})
    name = f"{sam3_config.CONFIG_PREFIX}/segm.yaml"
    (base / "configs" / name).parent.mkdir(parents=True)
    (base / "configs" / name).write_text(sam3_config.to_text(config, DEMO_PATH))
    return name


@pytest.fixture(scope="module")
def segm_run(tmp_path_factory):
    if not TRAIN_PYTHON.exists():
        pytest.skip("no training env: scripts/setup-tests builds .venv-train")
    base = tmp_path_factory.mktemp("segm")
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("INVOKE_", "SAM3_", "HF_"))}
    synth = run_inv(["data.synth", "--root", str(base / "rf"), "--datasets", "actions", "--images", "6"], environ)
    assert synth.returncode == 0, synth.stderr
    add_polygons(base / "rf")
    name = render(base, "actions")
    env = dict(environ, PYTHONPATH=str(tracking.PLUGIN_DIR), HF_HUB_OFFLINE="1", HOME=str(base))
    env[sam3_config.CONFIG_DIR_VAR] = str(base / "configs")
    argv = [str(TRAIN_PYTHON), "-m", "sam3.train.train", "-c", name, *LOCAL]
    started = time.monotonic()
    done = subprocess.run(argv, cwd=base, env=env, capture_output=True, text=True, timeout=600)
    seconds = time.monotonic() - started
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
    print(f"SAM3's Trainer, masks on, reduced on the CPU: {seconds:.0f} s, peak RSS {peak:.2f} GiB")
    return done, base / "exp"


def test_sam3s_trainer_trains_and_evaluates_masks_on_the_cpu(segm_run):
    done, folder = segm_run
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "sam3_cpu: " in done.stderr  # SAM3's Trainer came through the plugin (CPU patches, or CUDA present)
    resolved = yaml.safe_load((folder / "config_resolved.yaml").read_text())
    assert resolved["trainer"]["model"]["segmentation_head"]["_target_"].endswith("UniversalSegmentationHead")
    logs = folder / "logs" / "actions"
    train = json.loads((logs / "train_stats.json").read_text().splitlines()[-1])
    for loss in MASK_LOSSES:
        assert math.isfinite(train[f"Losses/train_all_{loss}"]), (loss, train)
    val = json.loads((logs / "val_stats.json").read_text().splitlines()[-1])
    assert 0 <= val[SEGM_AP] <= 1, val
    assert 0 <= val["Meters_train/val_roboflow100/detection/coco_eval_bbox_AP"] <= 1
    predictions = json.loads((folder / "dumps" / "roboflow" / "actions" / "coco_predictions_segm.json").read_text())
    assert predictions and {"size", "counts"} <= set(predictions[0]["segmentation"])
    truth = json.loads((folder.parent / "rf" / "actions" / "test" / "_annotations.coco.json").read_text())
    sizes = {image["id"]: [image["height"], image["width"]] for image in truth["images"]}
    assert all(p["segmentation"]["size"] == sizes[p["image_id"]] for p in predictions)  # RLE at the original size
    (checkpoint,) = (folder / "checkpoints").glob("checkpoint.pt")
    assert checkpoint.stat().st_size > 1_000_000
