"""data.validate --kind coco: a user's own data in Roboflow's COCO layout, or explicit files, gets every
RF100-VL rule plus what SAM3 needs of a dataset it has never seen (splits, prompts, masks, crowding)."""

import json
from pathlib import Path

import pytest
from conftest import run_inv
from support.settle import settle

from tasks.lib.core.errors import ConfigError
from tasks.lib.data import coco, images, own

SIZE = (32, 24)


def coco_split(count=4, per_image=2, names=("bolt", "nut"), masks=True):
    """One split as a COCO dict: count images of SIZE, per_image boxes each, categories cycling."""
    categories = [{"id": i + 1, "name": name, "supercategory": "parts"} for i, name in enumerate(names)]
    entries = [{"id": i, "file_name": f"img{i}.jpg", "width": SIZE[0], "height": SIZE[1]} for i in range(count)]
    annotations = []
    for image in entries:
        for k in range(per_image):
            x, y, w, h = 2 + k % 10, 3 + k % 10, 8, 6
            polygon = [[x, y, x + w, y, x + w, y + h, x, y + h]]
            category = categories[len(annotations) % len(categories)]["id"]
            annotation = {"id": len(annotations) + 1, "image_id": image["id"], "category_id": category}
            annotation.update(bbox=[x, y, w, h], area=w * h, iscrowd=0, segmentation=polygon if masks else [])
            annotations.append(annotation)
    return {"images": entries, "annotations": annotations, "categories": categories}


def write_split(folder, data):
    """The json and a tiny JPEG per image, as Roboflow's export lays them out."""
    folder.mkdir(parents=True, exist_ok=True)
    for image in data["images"]:
        (folder / image["file_name"]).write_bytes(images.jpeg_bytes(image["width"], image["height"], (10, 20, 30)))
    (folder / own.ANNOTATIONS).write_text(json.dumps(data))
    return folder / own.ANNOTATIONS


def make(folder, splits=("train", "valid", "test"), edit=None, **kwargs):
    """A dataset folder; edit(split, data) changes a split's COCO dict before it is written."""
    for split in splits:
        data = coco_split(**kwargs)
        if edit:
            edit(split, data)
        write_split(Path(folder) / split, data)
    return Path(folder)


def only(reports):
    (report,) = reports
    return report


def issues(report, severity="warnings"):
    return {issue.code: issue.count for issue in getattr(report, severity)}


def snapshot(root):
    return sorted((str(p), p.stat().st_mtime_ns) for p in Path(root).rglob("*"))


def test_a_clean_dataset_passes_with_its_stats(tmp_path):
    folder = make(tmp_path / "parts")
    (folder / "parts.v1i.coco.zip").write_bytes(b"PK")  # the export's zip is no broken download of ours
    (folder / "train" / "notes.tmp").write_bytes(b"")
    report = only(own.validate(folder, workers=1))
    assert (report.name, report.errors, report.warnings) == ("parts", [], [])
    assert (report.images, report.annotations) == (12, 24)
    stats = report.stats
    assert (stats["train_split"], stats["eval_split"], stats["categories"]) == ("train", "test", 2)
    assert stats["mask_coverage"] == [16, 16] and (stats["polygons"], stats["rle"]) == (16, 0)
    assert stats["max_per_image"] == 1 and stats["max_at"].startswith("train/_annotations.coco.json: img0.jpg")
    assert coco.summary_rows([report], coco.OWN)[0][4:8] == ("test", 2, "16/16", "1")
    assert own.check(folder).status == "pass"
    dataset = own.layout(folder)
    assert own.mask_coverage(dataset.train) == (8, 8) and own.has_masks(dataset)


def test_valid_only_evaluates_on_valid_and_valid_beside_test_is_not_read(tmp_path):
    report = only(own.validate(make(tmp_path / "a", ("train", "valid")), workers=1))
    assert not report.errors and issues(report) == {"eval_on_valid": 1}
    assert report.stats["eval_split"] == "valid" and report.stats["mask_coverage"] == [16, 16]

    def break_valid(split, data):
        if split == "valid":
            data["annotations"][0]["bbox"] = [1, 1, -4, 5]

    report = only(own.validate(make(tmp_path / "b", edit=break_valid), workers=1))
    assert not report.errors and issues(report) == {"bbox_size": 1}
    assert "SAM3 does not open" in report.warnings[0].message
    report = only(own.validate(make(tmp_path / "c", ("train", "valid"), edit=break_valid), workers=1))
    assert issues(report, "errors") == {"bbox_size": 1}


def test_a_missing_train_split_warns_and_a_missing_evaluation_split_fails(tmp_path):
    report = only(own.validate(make(tmp_path / "eval-only", ("test",)), workers=1))
    assert not report.errors and issues(report) == {"no_train_split": 1}
    assert report.stats["train_split"] is None and report.stats["eval_split"] == "test"
    report = only(own.validate(make(tmp_path / "train-only", ("train",)), workers=1))
    assert issues(report, "errors") == {"no_eval_split": 1} and report.stats["eval_split"] is None


def test_category_names_are_checked_as_prompts(tmp_path):
    def rename(split, data):
        data["categories"][1]["name"] = "12"
        data["categories"].append({"id": 3, "name": "bolt", "supercategory": "parts"})
        data["categories"].append({"id": 4, "name": " ", "supercategory": "parts"})

    report = only(own.validate(make(tmp_path / "d", edit=rename), workers=1))
    assert issues(report, "errors") == {"category_field": 2}  # train and test; valid's is a warning
    warnings = issues(report)
    assert warnings["numeric_prompt"] == 3 and warnings["duplicate_category_name"] == 3
    numeric = next(issue for issue in report.warnings if issue.code == "numeric_prompt")
    assert warnings["category_field"] == 1 and "'12'" in numeric.examples[0]


def test_roboflow_background_category_is_one_warning_not_a_root_class_error(tmp_path):
    def background(split, data):
        data["categories"].insert(0, {"id": 0, "name": "bg", "supercategory": "none"})
        for category in data["categories"][1:]:
            category["supercategory"] = "bg"

    report = only(own.validate(make(tmp_path / "bg", edit=background), workers=1))
    assert not report.errors
    assert issues(report) == {"background_category": 3}  # once per split; no category_missing_in_eval for it
    assert report.warnings[0].examples[0] == "train/_annotations.coco.json: category id 0 'bg'"
    assert report.stats["categories"] == 3


def test_masks_are_counted_and_partial_masks_warn(tmp_path):
    def strip_some(split, data):
        for annotation in data["annotations"][:3]:
            annotation["segmentation"] = []
        if split == "test":
            data["annotations"][3]["segmentation"] = {"size": [SIZE[1], SIZE[0]], "counts": "0" + "1" * 5}

    report = only(own.validate(make(tmp_path / "m", edit=strip_some), workers=1))
    assert not report.errors and issues(report) == {"partial_masks": 9}
    assert report.stats["mask_coverage"] == [10, 16] and (report.stats["polygons"], report.stats["rle"]) == (9, 1)
    boxes = make(tmp_path / "boxes", masks=False)
    report = only(own.validate(boxes, workers=1))
    assert (report.warnings, report.stats["mask_coverage"]) == ([], [0, 16])
    dataset = own.layout(boxes)
    assert own.mask_coverage(dataset.evaluation) == (0, 8) and not own.has_masks(dataset)


def test_more_boxes_of_one_category_on_one_image_than_sam3_keeps(tmp_path):
    def crowd(split, data):
        first = data["annotations"][0]
        data["annotations"] += [dict(first, id=1000 + i) for i in range(coco.MAX_BOXES_PER_QUERY)]

    report = only(own.validate(make(tmp_path / "crowd", ("train", "test"), edit=crowd), workers=1))
    assert not report.errors and issues(report)["crowded_query"] == 2
    example = next(i for i in report.warnings if i.code == "crowded_query").examples[0]
    assert "img0.jpg" in example and "'bolt'" in example and "201 boxes" in example
    assert report.stats["max_per_image"] == 201 and "img0.jpg, category 'bolt'" in report.stats["max_at"]
    assert coco.summary_rows([report], coco.OWN)[0][7] == "201 > 200"


def rewrite(path, edit):
    """Change a written json (its images stay as they are)."""
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def test_rf100vl_rules_apply_to_own_data(tmp_path):
    folder = make(tmp_path / "bad")
    rewrite(folder / "train" / own.ANNOTATIONS, lambda data: data["images"][1].update(width=40))
    rewrite(folder / "train" / own.ANNOTATIONS, lambda data: data["annotations"][0].update(image_id=99))
    rewrite(
        folder / "test" / own.ANNOTATIONS,
        lambda data: data["images"].append(dict(data["images"][0], id=9, file_name="gone.jpg")),
    )
    report = only(own.validate(folder, workers=1))
    assert issues(report, "errors") == {"size_mismatch": 1, "unknown_image": 1, "missing_image": 1}
    (tmp_path / "empty" / "train").mkdir(parents=True)
    (tmp_path / "empty" / "train" / own.ANNOTATIONS).write_text(json.dumps(coco_split(count=0)))
    assert "no_images" in issues(only(own.validate(tmp_path / "empty", workers=1)), "errors")


def test_several_datasets_under_one_root(tmp_path):
    for name in ("alpha", "beta", "gamma"):
        make(tmp_path / name, edit=(lambda s, d: d["images"].pop()) if name == "gamma" else None)
    (tmp_path / "notes").mkdir()
    reports = {r.name: r for r in own.validate(tmp_path, workers=2)}
    assert list(reports) == ["alpha", "beta", "gamma", "(root)"]
    assert [r.status for r in reports.values()] == ["pass", "pass", "fail", "warn"]
    assert issues(reports["gamma"], "errors") == {"unknown_image": 4}  # 2 boxes in train and test; valid: a warning
    assert issues(reports["(root)"]) == {"unknown_folder": 1}
    assert [r.name for r in coco.validate_root(coco.OWN, tmp_path, ["gamma", "alpha"], workers=1)] == ["gamma", "alpha"]
    with pytest.raises(ConfigError, match="did you mean 'beta'"):
        own.validate(tmp_path, ["betta"])


def test_cache_for_a_dataset_folder_root(tmp_path):
    folder = make(tmp_path / "parts")
    settle(folder)
    first = only(own.validate(folder, workers=1))
    assert not first.cached and (folder / coco.CACHE_NAME).is_file()
    second = only(own.validate(folder, workers=1))
    assert second.cached and second.stats == first.stats  # the cache file in the folder does not void itself
    assert own.check(folder).cached
    path = folder / "test" / own.ANNOTATIONS
    path.write_text(path.read_text().replace('"iscrowd": 0', '"iscrowd": 7', 1))
    report = only(own.validate(folder, workers=1))
    assert not report.cached and issues(report, "errors") == {"ann_field": 1}
    assert not only(own.validate(folder, workers=1, use_cache=False)).cached


def test_explicit_files_with_image_folders_write_nothing(tmp_path):
    write_split(tmp_path / "proj" / "images" / "train", coco_split())
    write_split(tmp_path / "proj" / "images" / "val", coco_split(count=3))
    for split in ("train", "val"):
        (tmp_path / "proj" / "images" / split / own.ANNOTATIONS).rename(tmp_path / "proj" / f"{split}.json")
    before = snapshot(tmp_path)
    proj = tmp_path / "proj"
    report = only(
        own.validate_files(proj / "train.json", proj / "val.json", proj / "images/train", proj / "images/val")
    )
    assert (report.name, report.status, report.images, report.stats["eval_split"]) == ("proj", "pass", 7, "val")
    assert snapshot(tmp_path) == before
    report = only(own.validate_files(tmp_path / "proj/train.json", tmp_path / "proj/val.json"))
    assert issues(report, "errors") == {"missing_image": 4}  # proj/img0-3.jpg (relative to the json), each once
    report = only(own.validate_files(tmp_path / "proj/train.json", None, tmp_path / "proj/images/train"))
    assert issues(report, "errors") == {"no_eval_split": 1}
    assert snapshot(tmp_path) == before


def test_cli_table_json_and_explicit_files(clean_env, tmp_path):
    make(tmp_path / "data" / "parts", ("train", "valid"))
    done = run_inv(["data.validate", "--kind", "coco", "--root", str(tmp_path / "data")], clean_env)
    assert done.returncode == 0, done.stderr
    assert (
        "eval split" in done.stdout and "max/img" in done.stdout and "no test/: SAM3 evaluates on valid/" in done.stdout
    )
    done = run_inv(["data.validate", "--kind", "coco", "--root", str(tmp_path / "data/parts"), "--json"], clean_env)
    payload = json.loads(done.stdout)
    assert (done.returncode, payload["kind"], payload["status"]) == (0, "coco", "warn")
    assert payload["datasets"][0]["stats"]["eval_split"] == "valid"

    train, val = tmp_path / "data/parts/train" / own.ANNOTATIONS, tmp_path / "data/parts/valid" / own.ANNOTATIONS
    before = snapshot(tmp_path / "data")
    done = run_inv(["data.validate", "--train", str(train), "--val", str(val), "--json"], clean_env)
    assert done.returncode == 0, done.stderr
    assert [d["name"] for d in json.loads(done.stdout)["datasets"]] == ["parts"]
    assert snapshot(tmp_path / "data") == before

    data = json.loads(val.read_text())
    data["images"] = []
    val.write_text(json.dumps(data))
    done = run_inv(["data.validate", "--kind", "coco", "--train", str(train), "--val", str(val)], clean_env)
    assert done.returncode == 1 and "'images' is empty" in done.stdout
    assert "error: 1 dataset(s) have errors (parts)" in done.stderr


BAD_INPUTS = {
    "no root": (["--kind", "coco"], "pass --root DIR"),
    "not a dataset": (["--kind", "coco", "--root", "{plain}"], "not a COCO dataset in Roboflow's layout"),
    "one level too deep": (["--kind", "coco", "--root", "{deep}"], "datasets are one level down: pass --root"),
    "no such root": (["--kind", "coco", "--root", "{tmp}/absent"], "no such folder"),
    "missing train file": (
        ["--train", "{tmp}/absent.json", "--val", "{val}"],
        "--train {tmp}/absent.json: no such file",
    ),
    "train is a folder": (["--train", "{tmp}/data/parts"], "is a folder"),
    "files with another kind": (["--kind", "rf100vl", "--train", "{val}"], "use them with --kind coco"),
    "images without a file": (["--kind", "coco", "--root", "{tmp}/data", "--val-images", "{tmp}"], "go with --train"),
    "files and root": (["--train", "{val}", "--root", "{tmp}/data"], "drop --root"),
    "unknown dataset": (["--kind", "coco", "--root", "{tmp}/data", "--datasets", "part"], "did you mean 'parts'"),
    "unknown kind": (["--kind", "yolo", "--root", "{tmp}/data"], "is not one of rf100vl, odinw, coco"),
}


@pytest.mark.parametrize("case", BAD_INPUTS, ids=list(BAD_INPUTS))
def test_bad_input_is_one_line_exit_2_and_writes_nothing(clean_env, tmp_path, case):
    make(tmp_path / "data" / "parts", ("train", "test"))
    (tmp_path / "plain" / "photos").mkdir(parents=True)
    make(tmp_path / "deep" / "export" / "parts", ("test",))
    val = tmp_path / "data/parts/test" / own.ANNOTATIONS
    places = {"tmp": tmp_path, "plain": tmp_path / "plain", "deep": tmp_path / "deep", "val": val}
    args, expected = BAD_INPUTS[case]
    before = snapshot(tmp_path)
    done = run_inv(["data.validate", *(arg.format(**places) for arg in args)], clean_env)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert done.stderr.startswith("error: ") and done.stderr.strip().count("\n") == 0, done.stderr
    assert expected.format(**places) in done.stderr and done.stdout == ""
    assert snapshot(tmp_path) == before
