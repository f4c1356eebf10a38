"""data.validate: every defect synth injects is caught, sound data passes, ODinW's exceptions, the cache, the CLI."""

import json
import os
import shutil
import struct
import time
import zlib
from pathlib import Path

import pytest
from conftest import run_inv
from support.sam3_configs import require_configs
from support.settle import settle

from tasks.lib.core.errors import ConfigError, ToolError
from tasks.lib.data import coco, images, synth

ONE_DATASET = {"rf100vl": "actions", "odinw": "AerialMaritimeDrone_large"}  # one where every defect fits


def make(root, kind="rf100vl", datasets="3", defects=None, images_per_dataset=9):
    plan = synth.plan(kind, str(root), datasets, images_per_dataset, defects)
    return synth.write(plan, workers=1)


def validate(root, kind="rf100vl", datasets=None, **kwargs):
    return coco.validate_root(kind, root, datasets, workers=kwargs.pop("workers", 1), **kwargs)


def codes(report, severity="errors"):
    return {issue.code for issue in getattr(report, severity)}


def png_bytes(width, height, rgb=(10, 20, 30)):
    """A minimal valid RGB PNG, written by hand."""

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    raw = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    return (
        images.PNG_SIGNATURE
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def first_image(root, json_path):
    data = json.loads(Path(root, json_path).read_text())
    image = data["images"][0]
    return data, image, Path(root, json_path).parent / image["file_name"]


@pytest.mark.parametrize("kind", coco.KINDS)
def test_sound_data_gives_no_alarm_on_either_path(tmp_path, kind, monkeypatch):
    names = [w.name for w in make(tmp_path, kind, "all" if kind == "odinw" else "5")]
    for slow in (False, True):
        if slow:  # the one-annotation-at-a-time walk must agree that nothing is wrong
            monkeypatch.setattr(coco, "_annotation_columns", lambda *args: None)
        reports = validate(tmp_path, kind, names, use_cache=False)
        noisy = [(r.name, r.errors, r.warnings) for r in reports if r.errors or codes(r, "warnings") != {"synthetic"}]
        assert noisy == []
        assert all(r.images and r.annotations for r in reports)


DEFECT_CASES = [(kind, name) for name, defect in synth.DEFECTS.items() for kind in defect.kinds]


@pytest.mark.parametrize(("kind", "defect"), DEFECT_CASES, ids=[f"{k}-{d}" for k, d in DEFECT_CASES])
def test_every_defect_synth_injects_is_caught_with_its_message(tmp_path, kind, defect):
    name = ONE_DATASET[kind]
    (written,) = make(tmp_path, kind, name, defect)
    ((_, where),) = written.defects
    (report,) = validate(tmp_path, kind, [name], use_cache=False)
    code = synth.DEFECTS[defect].code
    issue = next((i for i in report.errors if i.code == code), None)
    assert issue is not None, f"{defect}: expected {code}, got {[(i.code, i.examples) for i in report.errors]}"
    assert issue.message == coco.RULES[code][1] and issue.fix == coco.RULES[code][2]
    assert os.path.basename(where.rstrip("/")) in " ".join(issue.examples)


def test_all_defects_at_once_each_in_its_own_dataset(tmp_path):
    wanted = [name for name, defect in synth.DEFECTS.items() if "rf100vl" in defect.kinds]
    written = make(tmp_path, "rf100vl", str(len(wanted)), "all")
    reports = {r.name: r for r in validate(tmp_path, "rf100vl", [w.name for w in written], workers=2)}
    for w in written:
        ((defect, _),) = w.defects
        assert synth.DEFECTS[defect].code in codes(reports[w.name]), (defect, reports[w.name].errors)


def test_odinw_exceptions_pascalvoc_valid_and_pistols_export(tmp_path):
    voc, pistols = coco.dataset_spec("odinw", "PascalVOC"), coco.dataset_spec("odinw", "pistols")
    assert [f.json for f in voc.files][:2] == [
        "PascalVOC/valid/annotations_without_background.json",
        "PascalVOC/train/fewshot_train_shot10_seed3.json",
    ]
    assert [f.json for f in pistols.files] == [
        "pistols/export/test_annotations_without_background.json",
        *(f"pistols/export/fewshot_train_shot10_seed{s}.json" for s in (3, 30, 300)),
        "pistols/export/train_annotations_without_background.json",
    ]
    assert {f.image_dir for f in pistols.files} == {"pistols/export"}
    make(tmp_path, "odinw", "PascalVOC,pistols")
    assert all(not r.errors for r in validate(tmp_path, "odinw", ["PascalVOC", "pistols"]))
    os.remove(tmp_path / "PascalVOC/valid/annotations_without_background.json")
    os.remove(tmp_path / "pistols/export/test_annotations_without_background.json")
    for report in validate(tmp_path, "odinw", ["PascalVOC", "pistols"]):
        assert codes(report) == {"missing_file"}


def test_paths_and_names_match_sam3_configs():
    yaml = pytest.importorskip("yaml")
    FIXTURES = require_configs()
    for config in ("roboflow_v100_eval.yaml", "roboflow_v100_full_ft_100_images.yaml"):
        names = yaml.safe_load((FIXTURES / "roboflow_v100" / config).read_text())["all_roboflow_supercategories"]
        assert tuple(names) == coco.RF100VL_NAMES
    config = yaml.safe_load((FIXTURES / "odinw13" / "odinw_text_only_train.yaml").read_text())
    assert [entry["name"] for entry in config["all_odinw_supercategories"]] == list(coco.dataset_names("odinw"))
    for entry in config["all_odinw_supercategories"]:
        spec = coco.dataset_spec("odinw", entry["name"])
        evaluation, fewshot = spec.files[0], spec.files[1:4]
        assert evaluation.json == entry["val"]["json"] and evaluation.image_dir == entry["val"]["img_folder"].rstrip(
            "/"
        )
        for seed, file in zip(coco.ODINW_SEEDS, fewshot, strict=True):
            expected = (
                entry["train"]["json"].strip().replace("${odinw_train.train_file}", f"fewshot_train_shot10_seed{seed}")
            )
            assert file.json == expected and file.image_dir == entry["train"]["img_folder"].rstrip("/")
        prompts = config["odinw35_prompts"][entry["name"]]
        ids = tuple(int(i) for i in __import__("re").findall(r"""['"]id['"]: (\d+)""", prompts)) if prompts else ()
        assert spec.prompt_ids == ids


def test_layout_problems_have_hints(tmp_path):
    make(tmp_path, "odinw", "pistols,pothole")
    (tmp_path / "pistols").rename(tmp_path / "x")
    (tmp_path / "pistols").mkdir()
    (tmp_path / "x").rename(tmp_path / "pistols" / "pistols")
    (tmp_path / "stray").mkdir()
    (tmp_path / "pothole.zip").write_bytes(b"PK")
    reports = {r.name: r for r in validate(tmp_path, "odinw")}
    assert "one level too deep" in reports["pistols"].errors[0].examples[0]
    assert codes(reports["(root)"], "warnings") == {"unknown_folder", "leftover_zip"}
    assert codes(reports["thermalDogsAndPeople"]) == {"missing_dataset"}
    nested = tmp_path / "outer"
    make(nested / "rf100vl", datasets="1")
    with pytest.raises(ToolError, match=f"pass --root {nested / 'rf100vl'}"):
        validate(nested)
    with pytest.raises(ToolError, match="is not a folder"):
        validate(tmp_path / "absent")
    with pytest.raises(ConfigError, match="did you mean 'pothole'"):
        validate(tmp_path, "odinw", ["pothol"])


def test_valid_split_is_optional_and_its_errors_are_warnings(tmp_path):
    make(tmp_path, datasets="2")
    shutil.rmtree(tmp_path / "-grccs" / "valid")
    Path(tmp_path, "train", "valid", "_annotations.coco.json").write_text("null")
    reports = {r.name: r for r in validate(tmp_path, datasets=["-grccs", "train"])}
    assert not reports["-grccs"].errors and "missing_split" in codes(reports["-grccs"], "warnings")
    assert not reports["train"].errors
    null = next(i for i in reports["train"].warnings if i.code == "null_json")
    assert "SAM3 does not open" in null.message


def test_image_formats_truncation_deep_mode_and_exif(tmp_path):
    make(tmp_path, datasets="1")
    json_path = "-grccs/test/_annotations.coco.json"
    data, image, path = first_image(tmp_path, json_path)
    path.write_bytes(png_bytes(image["width"], image["height"]))
    assert validate(tmp_path, datasets=["-grccs"], use_cache=False)[0].errors == []
    path.write_bytes(png_bytes(image["width"], image["height"])[:-20])
    assert codes(validate(tmp_path, datasets=["-grccs"], use_cache=False)[0]) == {"truncated_image"}
    good = png_bytes(image["width"], image["height"])
    path.write_bytes(good[:40] + bytes([good[40] ^ 0xFF]) + good[41:])  # a flipped bit inside IDAT
    assert validate(tmp_path, datasets=["-grccs"], use_cache=False)[0].errors == []
    assert codes(validate(tmp_path, datasets=["-grccs"], deep=True, use_cache=False)[0]) == {"corrupt_image"}
    jpeg = images.jpeg_bytes(image["width"], image["height"], (1, 2, 3))
    path.write_bytes(jpeg[:-2] + b"\xff\xd9" + b"\x00" * 40 + b"\xff\xd9")  # early end marker, then junk
    assert validate(tmp_path, datasets=["-grccs"], use_cache=False)[0].errors == []
    assert codes(validate(tmp_path, datasets=["-grccs"], deep=True, use_cache=False)[0]) == {"corrupt_image"}
    tiff = b"II*\x00" + struct.pack("<IH", 8, 1) + struct.pack("<HHII", 0x0112, 3, 1, 6) + b"\x00" * 4
    app1 = b"\xff\xe1" + struct.pack(">H", len(tiff) + 8) + b"Exif\x00\x00" + tiff
    path.write_bytes(jpeg[:2] + app1 + jpeg[2:])
    (report,) = validate(tmp_path, datasets=["-grccs"], use_cache=False)
    assert not report.errors and "exif_rotated" in codes(report, "warnings")
    path.write_bytes(b"GIF89a" + b"\x00" * 20)  # a format Pillow opens and we do not parse: not an error
    assert validate(tmp_path, datasets=["-grccs"], use_cache=False)[0].errors == []


def test_box_and_count_warnings(tmp_path):
    make(tmp_path, datasets="1")
    path = tmp_path / "-grccs/train/_annotations.coco.json"
    data = json.loads(path.read_text())
    image = data["images"][0]
    data["annotations"][0]["bbox"] = [image["width"] - 2.0, 1.0, 5.0, 1.0]  # 3 px past the right border
    many = [dict(data["annotations"][1], id=10_000 + i, category_id=0) for i in range(205)]
    data["annotations"].extend(many)
    path.write_text(json.dumps(data))
    (report,) = validate(tmp_path, datasets=["-grccs"])
    assert not report.errors
    assert {"bbox_clipped", "many_boxes", "crowded_query"} <= codes(report, "warnings")


def test_cache_serves_unchanged_data_and_sees_changes(tmp_path):
    make(tmp_path, datasets="all", images_per_dataset=6)
    assert not any(r.cached for r in validate(tmp_path, datasets=["pill"]) + validate(tmp_path, datasets=["pill"]))
    settle(tmp_path)
    first = validate(tmp_path, workers=2)
    assert not any(r.cached for r in first) and (tmp_path / coco.CACHE_NAME).is_file()
    started = time.perf_counter()
    second = validate(tmp_path, workers=2)
    assert time.perf_counter() - started < 0.5
    assert all(r.cached for r in second) and len(second) == 100
    assert [coco.summary_rows([r])[0][:6] for r in first] == [coco.summary_rows([r])[0][:6] for r in second]

    json_path = tmp_path / "actions/test/_annotations.coco.json"
    json_path.write_text(json_path.read_text().replace('"iscrowd": 0', '"iscrowd": 30', 1))
    _, _, image_path = first_image(tmp_path, "ball/train/_annotations.coco.json")
    image_path.unlink()
    third = {r.name: r for r in validate(tmp_path)}
    assert not third["actions"].cached and codes(third["actions"]) == {"ann_field"}
    assert not third["ball"].cached and codes(third["ball"]) == {"missing_image"}
    assert sum(r.cached for r in third.values()) == 98
    assert not any(r.cached for r in validate(tmp_path, use_cache=False))

    settle(tmp_path)
    validate(tmp_path)
    assert validate(tmp_path, datasets=["pill"])[0].cached
    (tmp_path / coco.CACHE_NAME).write_text("{not json")
    assert not validate(tmp_path, datasets=["pill"])[0].cached


def test_cache_is_dropped_when_the_validator_changes(tmp_path, monkeypatch):
    make(tmp_path, datasets="1")
    settle(tmp_path)
    validate(tmp_path, datasets=["-grccs"])
    assert validate(tmp_path, datasets=["-grccs"])[0].cached
    monkeypatch.setattr(coco, "_validator_version", lambda: "another")
    assert not validate(tmp_path, datasets=["-grccs"])[0].cached


def test_cli_json_and_exit_codes(clean_env, tmp_path):
    root = tmp_path / "odinw"
    make(root, "odinw", "all")
    done = run_inv(["data.validate", "--kind", "odinw", "--root", str(root), "--json"], clean_env)
    assert done.returncode == 0, done.stderr
    payload = json.loads(done.stdout)
    assert payload["status"] == "warn" and payload["failed"] == [] and len(payload["datasets"]) == 13
    assert {d["status"] for d in payload["datasets"]} == {"warn"}

    make(root, "odinw", "pothole", "truncated_image")
    done = run_inv(["data.validate", "--kind", "odinw", "--root", str(root), "--json"], clean_env)
    assert done.returncode == 1
    assert json.loads(done.stdout)["failed"] == ["pothole"]
    assert "error: 1 dataset(s) have errors (pothole)" in done.stderr and "Traceback" not in done.stderr

    done = run_inv(["data.validate", "--kind", "odinw", "--root", str(root)], clean_env)
    assert done.returncode == 1 and "image file is truncated" in done.stdout and "re-fetch" in done.stdout

    env = dict(clean_env, ODINW_DATA_ROOT=str(root))  # the configured root, when --root is not given
    done = run_inv(["data.validate", "--kind", "odinw", "--datasets", "Raccoon", "--json"], env)
    assert done.returncode == 0, done.stderr
    assert [d["name"] for d in json.loads(done.stdout)["datasets"]] == ["Raccoon"]
    for args in (["--kind", "coco"], ["--kind", "odinw", "--datasets", "nope"], ["--workers", "0"]):
        done = run_inv(["data.validate", "--root", str(root), *args], clean_env)
        assert done.returncode == 2 and done.stderr.startswith("error: "), (args, done.stderr)
    done = run_inv(["data.validate", "--root", str(tmp_path / "nothing")], clean_env)
    assert done.returncode == 1 and "is not a folder" in done.stderr
