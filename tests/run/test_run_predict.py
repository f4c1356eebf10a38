"""run.predict: the page and contact sheets of a set of images' predictions beside their ground truth.

Two fixtures. A REAL short demo run (SAM3's Trainer, 1 epoch on `actions`, ~25 s): its PredictionDumper's
dumps and config_resolved.yaml drive `inv run.predict --name`, its trainer checkpoint (exported in SAM3's
loader layout) drives `--checkpoint`, whose dumps must equal SAM3's own. And a small COCO set written
here with its dump files in SAM3's exact format (segm: compressed RLE, area a fraction), whose matching,
worst-first order and counts are known by construction. The page is checked in Debian's chromium, driven
by playwright."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import ROOT, run_inv, skip_unless_required

from tasks.lib.data.images import jpeg_bytes
from tasks.lib.run import prediction_page, predictions

TRAIN_PYTHON = ROOT / ".venv-train" / "bin" / "python"
CHROMIUM = Path(shutil.which("chromium") or "/usr/bin/chromium")
pytestmark = pytest.mark.skipif(not TRAIN_PYTHON.exists(), reason="no training env: scripts/setup-tests builds it")
W, H = 64, 48
CATEGORIES = [{"id": 1, "name": "bolt"}, {"id": 2, "name": "nut"}]
# file: (ground truth [category, x, y, w, h], predictions [category, score, x, y, w, h])
SCENE = {
    "a.jpg": (
        [[1, 4, 4, 20, 16], [2, 30, 10, 20, 20]],
        [[1, 0.9, 4, 4, 20, 16], [2, 0.8, 40, 30, 10, 10], [2, 0.3, 30, 10, 20, 20]],
    ),
    "b.jpg": ([[1, 10, 10, 20, 20]], [[1, 0.2, 10, 10, 20, 20]]),
    "c.jpg": ([], [[1, 0.95, 0, 0, 10, 10], [1, 0.7, 20, 20, 10, 10], [2, 0.6, 5, 30, 10, 10]]),
    "d.jpg": ([[2, 5, 5, 30, 30]], [[2, 0.99, 6, 6, 30, 30], [2, 0.98, 5, 5, 30, 30]]),
}
# at 0.5: c invents 3; a misses its nut and invents one; b misses its bolt; d's second nut is invented
WORST_FIRST = ["c.jpg", "a.jpg", "b.jpg", "d.jpg"]
AT_HALF = {
    1: {"gt": 2, "predicted": 3, "matched": 1, "missed": 1, "invented": 2},
    2: {"gt": 2, "predicted": 4, "matched": 1, "missed": 1, "invented": 3},
}


# --- SAM3's formats, written here -------------------------------------------------------------------------


def rle_string(counts: list[int]) -> str:
    """pycocotools' rleToString: COCO's compressed RLE."""
    out = []
    for i, x in enumerate(counts):
        x -= counts[i - 2] if i > 2 else 0
        more = True
        while more:
            c, x = x & 0x1F, x >> 5
            more = x != -1 if c & 0x10 else x != 0
            out.append(chr((c | 0x20 if more else c) + 48))
    return "".join(out)


def box_rle(box: list[float]) -> tuple[dict, int]:
    """The box as a COCO mask (column-major runs, starting with zeros), and its number of pixels."""
    x0, y0, x1, y1 = round(box[0]), round(box[1]), round(box[0] + box[2]), round(box[1] + box[3])
    flat = [x0 <= i // H < x1 and y0 <= i % H < y1 for i in range(W * H)]
    counts, value, run = [], False, 0
    for pixel in flat:
        if pixel != value:
            counts.append(run)
            value, run = pixel, 0
        run += 1
    counts.append(run)
    return {"size": [H, W], "counts": rle_string(counts)}, sum(flat)


def write_scene(folder: Path) -> tuple[dict, dict[str, Path], Path]:
    """Images, the ground truth (boxes and polygons) and SAM3's bbox and segm dump files of SCENE."""
    images = folder / "images"
    images.mkdir(parents=True)
    gt = {"images": [], "annotations": [], "categories": CATEGORIES}
    bbox, segm = [], []
    for image_id, (name, (truth, preds)) in enumerate(SCENE.items(), 1):
        (images / name).write_bytes(jpeg_bytes(W, H, (40 * image_id, 90, 160)))
        gt["images"].append({"id": image_id, "file_name": name, "width": W, "height": H})
        for cat, x, y, w, h in truth:
            polygon = [[x, y, x + w, y, x + w, y + h, x, y + h]]
            gt["annotations"].append(
                {
                    "id": len(gt["annotations"]) + 1,
                    "image_id": image_id,
                    "category_id": cat,
                    "bbox": [x, y, w, h],
                    "area": w * h,
                    "iscrowd": 0,
                    "segmentation": polygon,
                }
            )
        for cat, score, *box in preds:
            bbox.append({"image_id": image_id, "category_id": cat, "bbox": box, "score": score})
            rle, area = box_rle(box)
            segm.append({**bbox[-1], "segmentation": rle, "area": area / (W * H)})
    dumps = {"bbox": folder / "coco_predictions_bbox.json", "segm": folder / "coco_predictions_segm.json"}
    dumps["bbox"].write_text(json.dumps(bbox))
    dumps["segm"].write_text(json.dumps(segm))
    return gt, dumps, images


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    """The page of SCENE from its segm dump, made by predictions.make with the plugin (torchvision)."""
    base = tmp_path_factory.mktemp("scene")
    gt, dumps, images = write_scene(base)
    job = predictions.Job("scene", base / "task" / "predictions", images, gt, dumps)
    summary = predictions.make(job, 0.5, 200, TRAIN_PYTHON)
    return summary, base, job


# --- the logic ------------------------------------------------------------------------------------------


def scene_images() -> list[dict]:
    return [
        {"file": name, "gt": truth, "pred": sorted(preds, key=lambda p: -p[1])}
        for name, (truth, preds) in SCENE.items()
    ]


def test_matching_is_greedy_per_category_highest_score_first():
    a, _, c, d = scene_images()
    assert prediction_page.match(a, 0.5) == ([True, False], [True, False, None])
    assert prediction_page.match(a, 0.25) == ([True, True], [True, False, True])  # the 0.3 nut now counts
    assert prediction_page.match(c, 0.5) == ([], [False, False, False])
    assert prediction_page.match(d, 0.5) == ([True], [True, False])  # the best-scored one takes the box


def test_counts_and_worst_first_order_at_the_threshold():
    images = scene_images()
    counts = prediction_page.tally(images, {1: "bolt", 2: "nut"}, 0.5)
    assert counts["categories"] == AT_HALF
    assert [images[i]["file"] for i in prediction_page.worst_first(images, counts["images"])] == WORST_FIRST
    lower = prediction_page.tally(images, {1: "bolt", 2: "nut"}, 0.25)
    assert [images[i]["file"] for i in prediction_page.worst_first(images, lower["images"])] == [
        "c.jpg",
        "b.jpg",
        "a.jpg",
        "d.jpg",
    ]


def test_odinw_ground_truth_is_reindexed_as_sam3_does(tmp_path):
    """ODinW configs read gt_path through sam3.eval.coco_reindex.reindex_coco_to_temp: the ids its dumps use."""
    gt = {
        "images": [{"id": 0, "file_name": "x.jpg"}, {"id": 1, "file_name": "y.jpg"}],
        "categories": [{"id": 0, "name": "fish"}, {"id": 1, "name": "shark"}],
        "annotations": [{"id": 0, "image_id": 1, "category_id": 0, "bbox": [1, 2, 3, 4]}],
    }
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(gt))
    sam3 = subprocess.run(
        [
            str(TRAIN_PYTHON),
            "-c",
            "import sys; from sam3.eval.coco_reindex import "
            "reindex_coco_to_temp as r; print(open(r(sys.argv[1])).read())",
            str(path),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    theirs = json.loads(sam3.stdout)
    gt_path = {"_target_": "sam3.eval.coco_reindex.reindex_coco_to_temp", "input_json_path": str(path)}
    dumper = {
        "dump_dir": "/elsewhere/exp/task/dumps/odinw/Aquarium",
        "iou_type": "bbox",
        "pred_file_evaluators": [{"gt_path": gt_path}],
    }
    config = {"trainer": {"meters": {"val": {"odinw35": {"detection": dumper}}}}}
    meter = predictions.meter_of(config, tmp_path / "task" / "dumps" / "odinw" / "Aquarium" / "x.json")
    ours = predictions.read_gt(meter["pred_file_evaluators"], "odinw")
    for key in ("images", "categories", "annotations"):
        assert ours[key] == theirs[key]


@pytest.mark.parametrize("value", ["1.5", "-0.1", "abc"])
def test_a_threshold_outside_0_to_1_is_refused(value):
    with pytest.raises(predictions.ConfigError, match="is not a score from 0 to 1"):
        predictions.parse_threshold(value)


# --- the files ------------------------------------------------------------------------------------------


def test_the_page_sheets_and_summary_of_a_segm_dump(scene):
    summary, base, _ = scene
    folder = base / "task" / "predictions"
    assert sorted(p.name for p in folder.iterdir()) == ["predictions.html", "sheet-01.png", "summary.json"]
    assert json.loads((folder / "summary.json").read_text())["order"] == WORST_FIRST == summary["order"]
    assert {row["id"]: {k: row[k] for k in AT_HALF[1]} for row in summary["categories"]} == AT_HALF
    assert summary["masks"] and summary["shown"] == 4 and summary["missing_images"] == []
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]  # no temporary folder left
    page = (folder / "predictions.html").read_text()
    assert "__DATA__" not in page and page.count("data:image/jpeg;base64,") == 4  # self-contained


def test_the_sheet_draws_masks_and_boxes_in_their_colours(scene):
    """Tile 2 of the sheet is c.jpg's predictions (worst first): its three invented boxes in red over red-tinted
    masks; tile 1, c's ground truth, has none."""
    from PIL import Image

    sheet = Image.open(scene[1] / "task" / "predictions" / "sheet-01.png").convert("RGB")
    tile = 320 / W  # px per image pixel (the image fills a 320 px tile)
    left = 6 + 320 + 6  # make_grid's padding, the ground-truth tile, the gap
    top = 6 + 20  # padding, the caption
    inside = sheet.getpixel((int(left + 25 * tile), int(top + 25 * tile)))  # inside the 0.7 bolt at 20,20 10x10
    r, g, b = inside
    assert r > g + 40 and r > b + 20, inside  # the image's blue tinted red by the invented mask
    plain = sheet.getpixel((int(6 + 45 * tile), int(top + 5 * tile)))  # c's ground-truth tile: no box, no mask
    assert plain[2] > plain[0], plain


def test_a_failed_drawing_leaves_the_earlier_page_as_it_was(scene, monkeypatch):
    """Everything is built under a temporary name and renamed into place: a failure writes nothing."""
    summary, base, job = scene
    folder = base / "task" / "predictions"
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    monkeypatch.setattr(predictions, "PLUGIN", base / "no-such-plugin.py")
    with pytest.raises(predictions.ToolError, match="sam3_predict draw failed"):
        predictions.make(job, 0.5, 200, TRAIN_PYTHON)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert sorted(p.name for p in folder.parent.iterdir()) == ["predictions"]


def test_an_image_browsers_do_not_show_goes_in_as_a_jpeg_copy(tmp_path):
    """A TIFF (torchvision cannot decode it; PIL does) is embedded as a smaller JPEG the plugin wrote."""
    from PIL import Image

    (tmp_path / "images").mkdir()
    Image.new("RGB", (W, H), (200, 30, 30)).save(tmp_path / "images" / "x.tif")
    gt = {
        "images": [{"id": 1, "file_name": "x.tif", "width": W, "height": H}],
        "categories": CATEGORIES,
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 9, 9]}],
    }
    dump = tmp_path / "coco_predictions_bbox.json"
    dump.write_text(json.dumps([{"image_id": 1, "category_id": 1, "bbox": [1, 1, 9, 9], "score": 0.9}]))
    job = predictions.Job("tiff", tmp_path / "out", tmp_path / "images", gt, {"bbox": dump})
    summary = predictions.make(job, 0.5, 200, TRAIN_PYTHON)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["predictions.html", "sheet-01.png", "summary.json"]
    assert (tmp_path / "out" / "predictions.html").read_text().count("data:image/jpeg;base64,") == 1
    assert summary["categories"][0]["matched"] == 1


# --- the page in a real browser -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        skip_unless_required("no chromium: run sudo scripts/install-system-deps")
    sync_api = pytest.importorskip("playwright.sync_api", reason="no playwright: run scripts/setup-tests")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM))
        yield chromium
        chromium.close()


def open_page(browser, path: Path):
    """The page loaded from its file, every image decoded; and the console errors it raised."""
    page = browser.new_page(viewport={"width": 1400, "height": 2000})
    errors = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(path.as_uri())
    page.wait_for_selector("body[data-ready='1']")
    page.wait_for_function("[...document.images].every((i) => i.complete)")
    return page, errors


def test_the_page_renders_its_images_counts_and_masks_and_its_slider_refilters(scene, browser):
    summary, base, _ = scene
    page, errors = open_page(browser, base / "task" / "predictions" / "predictions.html")
    widths = page.evaluate("[...document.images].map((i) => i.naturalWidth)")
    assert len(widths) == 8 and all(w == W for w in widths)  # ground truth and predictions panels
    assert page.evaluate("[...document.querySelectorAll('.card')].map((c) => c.dataset.file)") == WORST_FIRST
    shown = page.evaluate("window.predictionCounts.categories")
    assert {int(k): v for k, v in shown.items()} == AT_HALF  # the script's matching is the module's
    assert page.locator("svg.pred rect").count() == 7 and page.locator("svg.gt rect.missed").count() == 2
    page.wait_for_function("document.querySelector('.card canvas').dataset.masks === '3'")
    alpha = page.evaluate(
        "(() => { const c = document.querySelector('.card canvas');"
        "return c.getContext('2d').getImageData(0, 0, c.width, c.height).data"
        ".filter((v, i) => i % 4 === 3 && v > 0).length; })()"
    )
    assert alpha > 0
    page.fill("#threshold", "0.25")
    assert page.locator("svg.pred rect").count() == 8
    assert page.evaluate("[...document.querySelectorAll('.card')].map((c) => c.dataset.file)") == [
        "c.jpg",
        "b.jpg",
        "a.jpg",
        "d.jpg",
    ]
    page.fill("#threshold", "0.15")
    assert page.locator("svg.pred rect").count() == 9
    assert errors == []


def test_the_pages_rle_decoder_reads_the_masks_sam3_wrote(scene, browser):
    """COCO's compressed RLE decoded by the page: each dump mask's pixel count is its area x h x w."""
    _, base, _ = scene
    page, _ = open_page(browser, base / "task" / "predictions" / "predictions.html")
    for entry in json.loads((base / "coco_predictions_segm.json").read_text()):
        counts = page.evaluate("(s) => rleCounts(s)", entry["segmentation"]["counts"])
        assert sum(counts) == W * H and sum(counts[1::2]) == round(entry["area"] * W * H)


# --- a real run ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_run(tmp_path_factory):
    """A real 1-epoch demo run of `actions` (SAM3's Trainer, its PredictionDumper), named pred."""
    base = tmp_path_factory.mktemp("real")
    (base / "home").mkdir()
    skip = ("INVOKE_", "SAM3_", "HF_", "WANDB_", "DISPLAY", "WAYLAND_DISPLAY", "BROWSER")
    environ = {k: v for k, v in os.environ.items() if not k.startswith(skip)}
    environ.update(
        HOME=str(base / "home"),
        SAM3_EXPERIMENT_ROOT=str(base / "exp"),
        INVOKE_PATHS_DEMO_DATA_ROOT=str(base / "demo-data"),
    )
    done = run_inv(
        ["run.train", "--datasets", "actions", "--set", "trainer.max_epochs=1", "--name", "pred"], environ, timeout=900
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return base, environ


def test_a_runs_dumps_drawn_without_a_model(real_run):
    base, environ = real_run
    done = run_inv(["run.predict", "--name", "pred", "--threshold", "0.3", "--json"], environ)
    assert done.returncode == 0, done.stdout + done.stderr
    (summary,) = json.loads(done.stdout)["pages"]
    task = base / "exp" / "pred" / "actions"
    assert summary["page"] == str(task / "predictions" / "predictions.html") and summary["has_gt"]
    assert "no display here: open file://" in done.stderr  # no DISPLAY: the path, never a blocking browser
    dump = json.loads((task / "dumps" / "roboflow" / "actions" / "coco_predictions_bbox.json").read_text())
    gt = json.loads((base / "demo-data" / "actions" / "test" / "_annotations.coco.json").read_text())
    rows = {row["id"]: row for row in summary["categories"]}
    for category in gt["categories"]:
        predicted = sum(1 for p in dump if p["category_id"] == category["id"] and p["score"] >= 0.3)
        truth = sum(1 for a in gt["annotations"] if a["category_id"] == category["id"])
        row = rows[category["id"]]
        assert (row["predicted"], row["gt"], row["name"]) == (predicted, truth, category["name"])
        assert row["matched"] + row["missed"] == truth and row["matched"] + row["invented"] == predicted
    assert summary["images"] == len(gt["images"]) and Path(summary["sheets"][0]).read_bytes()[:4] == b"\x89PNG"
    results = run_inv(["run.results", "--name", "pred", "--no-plot"], environ)
    assert f"predictions (actions): {summary['page']}" in results.stdout
    as_json = json.loads(run_inv(["run.results", "--name", "pred", "--no-plot", "--json"], environ).stdout)
    assert as_json["tasks"][0]["predictions"] == summary["page"]


def test_with_wandb_on_the_contact_sheet_goes_to_the_runs_group(real_run):
    from test_run_wandb import wandb_records

    base, environ = real_run
    environ = dict(environ, INVOKE_TRACKING_WANDB_PROJECT="sam3-ft", INVOKE_TRACKING_WANDB_MODE="offline")
    done = run_inv(["run.predict", "--name", "pred", "--no-open"], environ)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "W&B: contact sheets logged to pred/predictions in group pred (offline:" in done.stdout
    (run_file,) = (base / "exp" / "pred" / "wandb").glob("offline-run-*/run-*.wandb")
    identity, row = {}, {}
    for record in wandb_records(run_file):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            identity = {"name": record.run.display_name, "group": record.run.run_group, "job_type": record.run.job_type}
        elif kind == "history":
            row.update({i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in record.history.item})
    assert identity == {"name": "pred/predictions", "group": "pred", "job_type": "predictions"}
    assert row["predictions/actions/sheet/_type"] == "image-file" and row["predictions/actions/sheet/format"] == "png"
    assert isinstance(row["predictions/actions/invented"], int)


def export(base: Path) -> Path:
    """The run's trainer checkpoint in SAM3's loader layout ({"model": {"detector." + key: tensor}})."""
    target = base / "export" / "model.pt"
    if not target.exists():
        target.parent.mkdir()
        source = base / "exp" / "pred" / "actions" / "checkpoints" / "checkpoint.pt"
        script = (
            "import sys, torch; m = torch.load(sys.argv[1], map_location='cpu', weights_only=True)['model'];"
            "torch.save({'model': {'detector.' + k: v for k, v in m.items()}}, sys.argv[2])"
        )
        subprocess.run([str(TRAIN_PYTHON), "-c", script, str(source), str(target)], check=True)
    return target


def test_a_checkpoint_run_on_a_dataset_gives_what_sam3s_evaluation_dumped(real_run):
    """--checkpoint with the run's own model config (the reduced demo model) on the dataset it was evaluated
    on: its dump holds SAM3's own evaluation's predictions (the last epoch's model), ground truth beside."""
    base, environ = real_run
    out = base / "from-checkpoint"
    done = run_inv(
        [
            "run.predict",
            "--checkpoint",
            str(export(base)),
            "--name",
            "pred",
            "--data",
            str(base / "demo-data" / "actions"),
            "--out",
            str(out),
            "--json",
        ],
        environ,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (summary,) = json.loads(done.stdout)["pages"]
    assert summary["has_gt"] and summary["page"] == str(out / "predictions.html")
    theirs = json.loads(
        (
            base / "exp" / "pred" / "actions" / "dumps" / "roboflow" / "actions" / "coco_predictions_bbox.json"
        ).read_text()
    )
    ours = json.loads((out / "coco_predictions_bbox.json").read_text())

    def best(dump, image_id):
        return sorted((p for p in dump if p["image_id"] == image_id), key=lambda p: -p["score"])[:10]

    for image_id in {p["image_id"] for p in theirs}:
        for a, b in zip(best(ours, image_id), best(theirs, image_id), strict=True):
            assert a["category_id"] == b["category_id"] and abs(a["score"] - b["score"]) < 1e-4
            assert all(abs(x - y) < 1e-3 for x, y in zip(a["bbox"], b["bbox"], strict=True))


def test_a_checkpoint_on_images_without_ground_truth(real_run, browser):
    base, environ = real_run
    out = base / "on-images"
    done = run_inv(
        [
            "run.predict",
            "--checkpoint",
            str(export(base)),
            "--name",
            "pred",
            "--images",
            str(base / "demo-data" / "actions" / "test"),
            "--prompts",
            "cls0,cls1",
            "--out",
            str(out),
            "--threshold",
            "0.3",
            "--json",
        ],
        environ,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (summary,) = json.loads(done.stdout)["pages"]
    assert not summary["has_gt"] and [row["name"] for row in summary["categories"]] == ["cls0", "cls1"]
    assert summary["order"] == sorted(summary["order"])  # no ground truth: by file name
    page, errors = open_page(browser, out / "predictions.html")
    drawn = sum(row["predicted"] for row in summary["categories"])
    assert page.locator("svg.pred rect").count() == drawn and not page.locator("svg.gt").count()
    assert errors == []


def snapshot(base: Path) -> dict[str, float | None]:
    """Every file (its time) and folder under the run's experiments, data and checkpoints."""
    roots = [base / "exp", base / "demo-data", base / "export", base / "empty"]
    return {str(p): p.stat().st_mtime if p.is_file() else None for root in roots for p in root.rglob("*")}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--threshold", "1.5"], "--threshold 1.5 is not a score from 0 to 1"),
        (["--max-images", "0"], "--max-images 0 is not a positive whole number"),
        (["--name", "nope"], "no run named 'nope'"),
        (["--name", "pred", "--dataset", "nope"], "--dataset 'nope' matches no task of run pred"),
        (["--name", "pred", "--cell", "nope"], "--cell 'nope' matches no task of run pred"),
        (["--name", "nodumps"], "no prediction dumps under"),
        (["--name", "pred", "--images", "{base}/empty"], "no images in it"),
        (["--data", "{base}/demo-data/actions"], "--data and --prompts go with --checkpoint"),
        (["--checkpoint", "{base}/export/model.pt", "--images", "{base}/empty", "--prompts", "a"], "no images in it"),
        (["--checkpoint", "{base}/export/model.pt", "--images", "{base}/demo-data/actions/test"], "needs --prompts"),
        (
            [
                "--checkpoint",
                "{base}/exp/pred/actions/checkpoints/checkpoint.pt",
                "--images",
                "{base}/demo-data/actions/test",
                "--prompts",
                "a",
            ],
            "no detector.* weights (a trainer checkpoint?)",
        ),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(real_run, args, message):
    base, environ = real_run
    export(base)
    (base / "empty").mkdir(exist_ok=True)
    nodumps = base / "exp" / "nodumps"
    if not nodumps.exists():  # the run as a training without validation leaves it: no dumps/
        shutil.copytree(base / "exp" / "pred", nodumps, ignore=shutil.ignore_patterns("dumps", "predictions", "wandb"))
        record = (nodumps / "launch.json").read_text().replace(str(base / "exp" / "pred"), str(nodumps))
        (nodumps / "launch.json").write_text(record.replace('"name": "pred"', '"name": "nodumps"'))
    before = snapshot(base)
    done = run_inv(["run.predict", *[a.format(base=base) for a in args]], environ)
    assert done.returncode == 2 and message in done.stderr, done.stdout + done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert snapshot(base) == before
