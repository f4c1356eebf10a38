"""tasks/lib/run/own_data.py: SAM3's own RF100-VL fine-tuning config pointed at a user's COCO folder, checked
key by key against SAM3's real config (the sam3 submodule's, or SAM3_CONFIGS_DIR)."""

import json
from pathlib import Path

import pytest
from support.own_coco import write_dataset
from support.sam3_configs import require_configs

from tasks.lib.core.errors import ConfigError
from tasks.lib.data import own
from tasks.lib.run import own_data, planning, sam3_config

VAL = "trainer.data.val.dataset"
GT = "trainer.meters.val.roboflow100.detection.pred_file_evaluators"


@pytest.fixture
def sam3_rf_config():
    return sam3_config.load(sam3_config.find_config(own_data.SAM3_CONFIG, [require_configs()]))


def _request(**values):
    return planning.Request(config=own_data.SAM3_CONFIG, data="unused", **values)


def test_every_key_a_user_does_not_set_stays_sam3s(tmp_path, sam3_rf_config):
    folder = write_dataset(tmp_path / "data" / "my-parts", {"train": 3, "valid": 2, "test": 2})
    prepared = own_data.prepare(sam3_rf_config, own.layout(folder), _request(), tmp_path / "run")
    config = prepared.config
    assert config["paths"]["roboflow_vl_100_root"] == str(tmp_path / "data")
    assert config["all_roboflow_supercategories"] == ["my-parts"]
    assert config["roboflow_train"]["num_images"] is None  # every training image (SAM3's: 100)
    assert config["trainer"]["skip_saving_ckpts"] is False  # SAM3's config saves none
    assert sam3_config.get_key(config, f"{VAL}.ann_file") == str(folder / "test" / own.ANNOTATIONS)
    assert sam3_config.get_key(config, GT)[0]["gt_path"] == str(folder / "test" / own.ANNOTATIONS)
    assert prepared.files == {}  # nothing to rewrite: SAM3 reads the user's files
    changed = {
        key for key, value in sam3_config.walk(config) if dict(sam3_config.walk(sam3_rf_config)).get(key) != value
    }
    expected = {
        "paths.roboflow_vl_100_root",
        "all_roboflow_supercategories.0",
        "roboflow_train.num_images",
        "trainer.skip_saving_ckpts",
        "submitit.job_array.num_tasks",
        f"{VAL}.ann_file",
        f"{VAL}.img_folder",
        f"{GT}.0.gt_path",
        "trainer.data.train.dataset.ann_file",
        "trainer.data.train.dataset.img_folder",
    }
    assert {key for key in changed if not key.startswith("sam3_tasks.")} <= expected
    assert len(config["all_roboflow_supercategories"]) == 1


def test_without_test_split_it_evaluates_on_valid_and_says_so(tmp_path, sam3_rf_config):
    folder = write_dataset(tmp_path / "my-parts", {"train": 3, "valid": 2})
    prepared = own_data.prepare(sam3_rf_config, own.layout(folder), _request(), tmp_path / "run")
    assert sam3_config.get_key(prepared.config, f"{VAL}.img_folder").endswith("/valid/")
    assert sam3_config.get_key(prepared.config, GT)[0]["gt_path"] == str(folder / "valid" / own.ANNOTATIONS)
    assert any("no test/: SAM3 evaluates on valid/" in note for note in prepared.notes)


def test_prompts_and_background_go_into_copies_never_into_an_eval_string(tmp_path, sam3_rf_config):
    folder = write_dataset(tmp_path / "my-parts", {"train": 3, "test": 2}, background=True)
    prompts = tmp_path / "prompts.yaml"
    prompts.write_text("1: hex bolt\n'2': \"nut (metal)\"\n")
    prepared = own_data.prepare(sam3_rf_config, own.layout(folder), _request(prompts=str(prompts)), tmp_path / "r")
    assert sorted(p.name for p in prepared.files) == ["test.json", "train.json"]
    for data in map(json.loads, prepared.files.values()):
        assert [(c["id"], c["name"]) for c in data["categories"]] == [(1, "hex bolt"), (2, "nut (metal)")]
    assert "prompts" not in json.dumps(sam3_config.get_key(prepared.config, VAL).get("coco_json_loader"))
    assert any("background category 0 'my-parts' dropped" in note for note in prepared.notes)
    assert prepared.config["sam3_tasks"]["own_data"]["dropped_categories"] == [0]


def test_smoke_evaluates_a_few_images_with_their_own_ground_truth(tmp_path, sam3_rf_config):
    folder = write_dataset(tmp_path / "my-parts", {"train": 3, "test": 30})
    prepared = own_data.prepare(sam3_rf_config, own.layout(folder), _request(smoke=True), tmp_path / "run")
    ((path, text),) = prepared.files.items()
    subset = json.loads(text)
    assert len(subset["images"]) == own_data.SMOKE_EVAL_IMAGES
    assert {a["image_id"] for a in subset["annotations"]} <= {i["id"] for i in subset["images"]}
    assert sam3_config.get_key(prepared.config, f"{VAL}.ann_file") == str(path)
    assert sam3_config.get_key(prepared.config, GT)[0]["gt_path"] == str(path)


def test_evaluation_reads_no_train_split_and_runs_sam3s_val_mode(tmp_path, sam3_rf_config):
    folder = write_dataset(tmp_path / "my-parts", {"test": 2})
    prepared = own_data.prepare(sam3_rf_config, own.layout(folder), _request(evaluate=True), tmp_path / "run")
    assert prepared.config["trainer"]["mode"] == "val" and prepared.config["trainer"]["model"]["eval_mode"] is True
    with pytest.raises(ConfigError, match="no train/ split to fine-tune on"):
        own_data.prepare(sam3_rf_config, own.layout(folder), _request(), tmp_path / "run")


@pytest.mark.parametrize(
    ("prompts", "message"),
    [
        ("7: gear\n", "no category has id 7"),
        ("1: ''\n", "cannot be a prompt"),
        ("[1, 2]\n", "not a mapping"),
        ("1: '${oops}'\n", "cannot be a prompt"),
    ],
)
def test_a_prompts_file_that_cannot_be_used_is_one_line(tmp_path, sam3_rf_config, prompts, message):
    folder = write_dataset(tmp_path / "my-parts", {"train": 2, "test": 2})
    path = tmp_path / "prompts.yaml"
    path.write_text(prompts)
    with pytest.raises(ConfigError, match=message) as raised:
        own_data.prepare(sam3_rf_config, own.layout(folder), _request(prompts=str(path)), tmp_path / "run")
    assert "\n" not in str(raised.value)


def test_segm_on_boxes_only_data_and_unnamed_categories_are_refused(tmp_path, sam3_rf_config):
    boxes = write_dataset(tmp_path / "boxes", {"train": 2, "test": 2}, masks=False)
    with pytest.raises(ConfigError, match="--task segm: boxes has boxes only"):
        own_data.prepare(sam3_rf_config, own.layout(boxes), _request(task="segm"), tmp_path / "run")
    unnamed = write_dataset(tmp_path / "unnamed", {"train": 2, "test": 2}, categories=("bolt", " "))
    with pytest.raises(ConfigError, match="category id 2 has the name ' '"):
        own_data.prepare(sam3_rf_config, own.layout(unnamed), _request(), tmp_path / "run")


def test_a_folder_that_is_not_a_coco_dataset_names_the_fix(tmp_path):
    write_dataset(tmp_path / "root" / "my-parts", {"train": 2, "test": 2})
    with pytest.raises(ConfigError, match=r"it holds datasets \(my-parts\): pass --data .*/root/my-parts"):
        own.layout(tmp_path / "root")
    with pytest.raises(ConfigError, match="no such folder"):
        own.layout(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="not a COCO dataset in Roboflow's layout"):
        own.layout(tmp_path / "empty")


def test_the_run_is_named_after_the_dataset(tmp_path):
    dataset = own.layout(write_dataset(tmp_path / "my-parts", {"train": 2, "test": 2}))
    names = [
        planning._default_name(_request(**flags), Path("x.yaml"), dataset)
        for flags in ({}, {"task": "segm"}, {"evaluate": True}, {"task": "segm", "evaluate": True})
    ]
    assert names == ["my-parts", "my-parts-segm", "my-parts-baseline", "my-parts-segm-baseline"]
