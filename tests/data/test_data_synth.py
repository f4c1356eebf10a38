"""data.synth: SAM3's exact layouts, real images, determinism, atomic and safe writes, the CLI."""

import hashlib
import json
import os

import pytest
from conftest import run_inv

from tasks.lib.core.errors import ConfigError, ToolError
from tasks.lib.data import coco, images, synth


def make(root, kind="rf100vl", datasets="4", images_per_dataset=9, defects=None, seed=0):
    plan = synth.plan(kind, str(root), datasets, images_per_dataset, defects, seed)
    return plan, synth.write(plan, workers=1)


def tree_digest(root) -> str:
    digest = hashlib.sha256()
    for folder, _, files in sorted(os.walk(root)):
        for name in sorted(files):
            path = os.path.join(folder, name)
            digest.update(os.path.relpath(path, root).encode())
            with open(path, "rb") as handle:
                digest.update(handle.read())
    return digest.hexdigest()


def load(path):
    with open(path) as handle:
        return json.load(handle)


def test_rf100vl_layout_is_the_cleaned_rf100vl_one(tmp_path):
    make(tmp_path)
    for name in ("-grccs", "train", "13-lkc01", "2024-frc"):  # the names that break careless code
        assert (tmp_path / name / "README.roboflow.txt").is_file()
        for split in ("train", "valid", "test"):
            data = load(tmp_path / name / split / "_annotations.coco.json")
            assert list(data) == ["info", "licenses", "categories", "images", "annotations"]
            assert [c["id"] for c in data["categories"]] == list(range(len(data["categories"])))
            assert all(c["supercategory"] != "none" for c in data["categories"])
            assert data["images"][0]["id"] == 0 and data["annotations"][0]["id"] == 1
            assert all(a["segmentation"] == [] and a["iscrowd"] == 0 for a in data["annotations"])
            annotated = {a["image_id"] for a in data["annotations"]}
            assert len(data["images"]) - len(annotated) == 1  # one negative per split
            for image in data["images"]:
                assert image["file_name"].startswith("img") and "_jpg.rf." in image["file_name"]
                header = images.read_header(str(tmp_path / name / split / image["file_name"]), deep=True)
                assert (header.format, header.problem) == ("jpeg", "")
                assert (header.width, header.height) == (image["width"], image["height"])
        test = load(tmp_path / name / "test" / "_annotations.coco.json")
        assert {a["category_id"] for a in test["annotations"]} == {c["id"] for c in test["categories"]}
    assert (tmp_path / "train" / "train" / "train" / "_annotations.coco.json").is_file() is False
    assert (tmp_path / "train" / "train" / "_annotations.coco.json").is_file()


def test_odinw_layout_has_every_path_sam3_opens_and_the_exceptions(tmp_path):
    make(tmp_path, "odinw", "all")
    for name in coco.dataset_names("odinw"):
        for file in coco.dataset_spec("odinw", name).files:
            assert (tmp_path / file.json).is_file(), file.json
            assert (tmp_path / file.image_dir).is_dir()
    assert not (tmp_path / "PascalVOC" / "test").exists()
    export = tmp_path / "pistols" / "export"
    for split in ("train", "val", "test"):
        assert (export / f"{split}_annotations_without_background.json").is_file()
    assert (export / "fewshot_val_shot10_seed300.json").is_file()
    assert (
        tmp_path / "Aquarium" / "Aquarium Combined.v2-raw-1024.coco" / "train" / "fewshot_train_shot1_seed3.json"
    ).is_file()
    for base in ("EgoHands/generic", "VehiclesOpenImages/416x416"):
        assert (tmp_path / base / "mini_val" / "annotations_without_background.json").is_file()
        assert (tmp_path / base / "mini_val" / "fewshot_minival_shot10_seed30.json").is_file()
    drone = load(tmp_path / "AerialMaritimeDrone/large/test/annotations_without_background.json")
    assert [c["id"] for c in drone["categories"]] == [1, 2, 3, 4, 5] and drone["images"][0]["id"] == 0
    mushrooms = "NorthAmericaMushrooms/North American Mushrooms.v1-416x416.coco/train/fewshot_train_shot10_seed3.json"
    assert [c["id"] for c in load(tmp_path / mushrooms)["categories"]] == [1, 2]
    starts = {
        load(tmp_path / coco.ODINW_BY_NAME[n].eval_json)["annotations"][0]["id"]
        for n in ("AerialMaritimeDrone_large", "Aquarium")
    }
    assert starts == {0, 1}  # annotation ids from 0 in some tasks, from 1 in others


def test_fewshot_files_are_subsets_of_their_split(tmp_path):
    make(tmp_path, "odinw", "Raccoon")
    task = coco.ODINW_BY_NAME["Raccoon"]
    train = load(tmp_path / task.split_json("train"))
    train_images = {i["id"]: i["file_name"] for i in train["images"]}
    for seed in coco.ODINW_SEEDS:
        shot = load(tmp_path / task.fewshot_json(seed))
        assert shot["categories"] == train["categories"]
        assert {i["id"]: i["file_name"] for i in shot["images"]}.items() <= train_images.items()


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    make(tmp_path / "a", "odinw", "2", seed=7)
    make(tmp_path / "b", "odinw", "2", seed=7)
    make(tmp_path / "c", "odinw", "2", seed=8)
    assert tree_digest(tmp_path / "a") == tree_digest(tmp_path / "b") != tree_digest(tmp_path / "c")


def test_rewrite_replaces_synthetic_data_and_never_touches_real_data(tmp_path):
    make(tmp_path, datasets="2", images_per_dataset=6)
    make(tmp_path, datasets="2", images_per_dataset=12)
    assert len(load(tmp_path / "-grccs" / "train" / "_annotations.coco.json")["images"]) > 4
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".")]  # no staging folder left behind
    real = tmp_path / "real"
    (real / "train").mkdir(parents=True)
    (real / "train" / "keep.txt").write_text("real data")
    with pytest.raises(ToolError, match="not made by data.synth"):
        make(real, datasets="train")
    assert (real / "train" / "keep.txt").read_text() == "real data"


def test_full_count_plan_matches_rf100vl(tmp_path):
    plan = synth.plan("rf100vl", str(tmp_path), full=True)
    assert len(plan.datasets) == 100
    assert (plan.images, plan.boxes) == (synth.RF100VL_IMAGES, synth.RF100VL_BOXES)
    assert all(d.polygons and d.sizes[0] in synth.TINY_SIZES for d in plan.datasets)
    assert not os.listdir(tmp_path)  # planning writes nothing


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "coco"}, "not one of"),
        ({"images": 5}, "at least 6"),
        ({"datasets": "actoins"}, "did you mean 'actions'"),
        ({"datasets": "101"}, "1 to 100"),
        ({"defects": "nope"}, "does not exist"),
        ({"defects": "missing_seed"}, "does not exist for rf100vl"),
        ({"kind": "odinw", "datasets": "pothole", "defects": "prompt_ids"}, "needs AerialMaritimeDrone_large"),
        ({"kind": "odinw", "full": True}, "rf100vl only"),
        ({"datasets": "1", "defects": "all"}, "does not fit into -grccs"),
    ],
)
def test_bad_requests_are_one_line_config_errors(tmp_path, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        synth.plan(root=str(tmp_path), **{"kind": "rf100vl", **kwargs})


def test_cli_dry_run_writes_nothing_and_bad_flags_exit_2(clean_env, tmp_path):
    done = run_inv(
        ["data.synth", "--root", str(tmp_path / "d"), "--kind", "odinw", "--defects", "all", "--dry-run"], clean_env
    )
    assert done.returncode == 0, done.stderr
    assert "dry run: nothing written" in done.stdout and "PascalVOC" in done.stdout
    assert not (tmp_path / "d").exists()
    done = run_inv(["data.synth", "--kind", "odinw"], clean_env)
    assert done.returncode == 2 and "pass --root" in done.stderr
    done = run_inv(["data.synth", "--root", str(tmp_path / "d"), "--defects", "nope"], clean_env)
    assert done.returncode == 2 and "Traceback" not in done.stderr


def test_cli_writes_and_lists_injected_defects(clean_env, tmp_path):
    root = tmp_path / "d"
    done = run_inv(
        ["data.synth", "--root", str(root), "--datasets", "3", "--defects", "truncated_image,null_json"], clean_env
    )
    assert done.returncode == 0, done.stderr
    assert "3 datasets" in done.stdout and "truncated_image" in done.stdout and "null_json" in done.stdout
    assert sorted(os.listdir(root)) == ["-grccs", "13-lkc01", "train"]
