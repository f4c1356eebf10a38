#!/usr/bin/env python3
"""`inv run.predict --name RUN` on an evaluation of 100 images (640 x 640 JPEGs, 10 objects of 5 categories
each, SAM3's 100 predictions per image in its dump format), the page and the contact sheets included, beside
a baseline measured in the same run: reading the dump, the ground truth and every image's bytes (what any
drawing of them must do at least). The run's folder is laid out as a run.eval leaves it (launch.json,
config_resolved.yaml naming the ground truth and the images, dumps/roboflow/<dataset>/); a box dump (the
goal) and a mask dump (RLE, as SAM3's segm meter writes) are timed.

Goal (issue 20): under 10 s on 2 cores for the box dump. Set-up (the images, the files) is excluded.

Usage: .venv/bin/python scripts/bench_predict.py
"""

import io
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IMAGES, SIDE, OBJECTS, CATEGORIES, PREDICTIONS = 100, 640, 10, 5, 100
GOAL_S = 10.0


def jpeg(rng: random.Random) -> bytes:
    """A 640 x 640 photo-like JPEG (smooth colour with noise), about the size of an RF100-VL image."""
    from PIL import Image, ImageFilter

    noise = Image.effect_noise((SIDE, SIDE), 60).convert("RGB")
    tint = Image.new("RGB", (SIDE, SIDE), tuple(rng.randrange(256) for _ in range(3)))
    image = Image.blend(noise.filter(ImageFilter.GaussianBlur(2)), tint, 0.5)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def rle(box: list[float]) -> dict:
    """The box as COCO's compressed RLE at the image's size (pycocotools' format, in the training env)."""
    x0, y0, x1, y1 = (max(0, min(SIDE, round(v))) for v in (box[0], box[1], box[0] + box[2], box[1] + box[3]))
    counts = [x0 * SIDE + y0]
    for column in range(x0, x1):
        counts += [y1 - y0, SIDE - (y1 - y0)] if column < x1 - 1 else [y1 - y0]
    counts.append(SIDE * SIDE - sum(counts))
    out = []
    for i, x in enumerate(counts):
        x -= counts[i - 2] if i > 2 else 0
        more = True
        while more:
            c, x = x & 0x1F, x >> 5
            more = x != -1 if c & 0x10 else x != 0
            out.append(chr((c | 0x20 if more else c) + 48))
    return {"size": [SIDE, SIDE], "counts": "".join(out)}


def write_run(base: Path, masks: bool) -> Path:
    """A run folder as run.eval leaves it, with its dataset's images and ground truth beside."""
    rng = random.Random(0)
    name = "bench-segm" if masks else "bench"
    task, images = base / "exp" / name / "parts", base / "data" / "parts" / "test"
    dumps = task / "dumps" / "roboflow" / "parts"
    for folder in (dumps, images):
        folder.mkdir(parents=True, exist_ok=True)
    gt = {
        "images": [],
        "annotations": [],
        "categories": [{"id": i, "name": f"part-{i}"} for i in range(1, CATEGORIES + 1)],
    }
    predictions = []
    for image_id in range(1, IMAGES + 1):
        file = images / f"img-{image_id:03d}.jpg"
        if not file.exists():
            file.write_bytes(jpeg(rng))
        gt["images"].append({"id": image_id, "file_name": file.name, "width": SIDE, "height": SIDE})
        for _ in range(OBJECTS):
            box = [rng.uniform(0, 560), rng.uniform(0, 560), rng.uniform(20, 80), rng.uniform(20, 80)]
            gt["annotations"].append(
                {
                    "id": len(gt["annotations"]) + 1,
                    "image_id": image_id,
                    "iscrowd": 0,
                    "category_id": rng.randint(1, CATEGORIES),
                    "bbox": box,
                    "area": box[2] * box[3],
                }
            )
        for _ in range(PREDICTIONS):
            box = [
                round(rng.uniform(-5, 580), 5),
                round(rng.uniform(-5, 580), 5),
                round(rng.uniform(10, 90), 5),
                round(rng.uniform(10, 90), 5),
            ]
            entry = {
                "image_id": image_id,
                "category_id": rng.randint(1, CATEGORIES),
                "bbox": box,
                "score": round(rng.random() ** 3, 5),
            }
            predictions.append(entry | ({"segmentation": rle(box), "area": box[2] * box[3] / SIDE**2} if masks else {}))
    (images / "_annotations.coco.json").write_text(json.dumps(gt))
    (dumps / "coco_predictions_bbox.json").write_text(
        json.dumps([{k: p[k] for k in ("image_id", "category_id", "bbox", "score")} for p in predictions])
    )
    if masks:
        (dumps / "coco_predictions_segm.json").write_text(json.dumps(predictions))
    meter = {
        "dump_dir": str(dumps),
        "iou_type": "bbox",
        "pred_file_evaluators": [{"gt_path": str(images / "_annotations.coco.json"), "iou_type": "bbox"}],
    }
    meters = {"detection": meter} | ({"segmentation": dict(meter, iou_type="segm")} if masks else {})
    config = {
        "trainer": {
            "mode": "val",
            "meters": {"val": {"roboflow100": meters}},
            "data": {"val": {"dataset": {"img_folder": str(images) + "/"}}},
        }
    }
    (task / "config_resolved.yaml").write_text(json.dumps(config))  # JSON is YAML
    record = {
        "name": name,
        "run_dir": str(task.parent),
        "mode": "local",
        "started": "",
        "trainer_mode": "val",
        "tasks": [{"dataset": "parts", "cell": None, "experiment_dir": str(task), "state": "done"}],
    }
    (task.parent / "launch.json").write_text(json.dumps(record))
    return task


def baseline_seconds(task: Path) -> float:
    """Reading what the page is made of: the dump(s), the ground truth and every image's bytes."""
    started = time.monotonic()
    for dump in (task / "dumps").glob("**/coco_predictions_*.json"):
        json.loads(dump.read_bytes())
    images = Path(
        json.loads((task / "config_resolved.yaml").read_text())["trainer"]["data"]["val"]["dataset"]["img_folder"]
    )
    gt = json.loads((images / "_annotations.coco.json").read_bytes())
    for entry in gt["images"]:
        (images / entry["file_name"]).read_bytes()
    return time.monotonic() - started


def import_seconds() -> float:
    """The floor of drawing with torchvision here: the training env's python started, torchvision imported."""
    started = time.monotonic()
    subprocess.run([ROOT / ".venv-train" / "bin" / "python", "-c", "import torchvision.utils"], check=True)
    return time.monotonic() - started


def predict_seconds(name: str, env: dict) -> float:
    inv = Path(sys.executable).with_name("inv")
    started = time.monotonic()
    done = subprocess.run(
        [inv, "run.predict", "--name", name, "--no-open", "--no-wandb"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    seconds = time.monotonic() - started
    if done.returncode != 0:
        sys.exit(done.stdout[-3000:] + done.stderr[-2000:])
    return seconds


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="bench-predict-") as tmp:
        base = Path(tmp)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("INVOKE_", "SAM3_", "WANDB_"))}
        env.update(SAM3_EXPERIMENT_ROOT=str(base / "exp"))
        rows = []
        for masks in (False, True):
            task = write_run(base, masks)
            base_s = baseline_seconds(task)
            predict_s = predict_seconds(task.parent.name, env)
            page = task / "predictions" / "predictions.html"
            rows.append(
                (masks, base_s, predict_s, page.stat().st_size / 1e6, len(list(page.parent.glob("sheet-*.png"))))
            )
    for masks, base_s, predict_s, megabytes, sheets in rows:
        what = "mask dump (segm) " if masks else "box dump (bbox)  "
        verdict = "" if masks else f"; goal under {GOAL_S:.0f} s: {'met' if predict_s < GOAL_S else 'NOT met'}"
        print(
            f"{what} baseline (read dump, ground truth, image bytes): {base_s:5.2f} s | inv run.predict: "
            f"{predict_s:5.2f} s ({predict_s / base_s:.0f}x){verdict}; page {megabytes:.1f} MB, {sheets} sheets"
        )
    print(f"floor: the training env's python started and torchvision imported: {import_seconds():.2f} s")
    print(
        f"{IMAGES} images of {SIDE} px, {OBJECTS} objects and {PREDICTIONS} predictions each; on {os.cpu_count()} CPUs; "
        "run.predict whole (invoke start, the page, the sheets drawn by torchvision in the training env)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
