#!/usr/bin/env python3
"""Time data.validate --kind coco on one generated own dataset against the I/O floor.

    .venv/bin/python scripts/bench_validate_coco.py                  # 20,000 images, 3 boxes each
    .venv/bin/python scripts/bench_validate_coco.py --images 2000    # a quick run
    .venv/bin/python scripts/bench_validate_coco.py --root /scratch/bench

The dataset is Roboflow's COCO export layout (train/valid/test, 70/15/15), one tiny 8x8 JPEG per image,
polygons on every box. In one run, with a warm page cache, best of --repeat: the floor (parse every json
and os.stat every image, in one process, as the validator checks one dataset in one process),
data.validate cold (no cache) and data.validate cached. Goal: cold <= 1.5x floor.
"""

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import tasks  # noqa: E402,F401  (tasks.py sets up the tasks package path)
from tasks.lib.data import coco, images, own  # noqa: E402

SHARES = {"train": 0.7, "valid": 0.15, "test": 0.15}
CATEGORIES = ("bolt", "nut", "washer", "screw", "spring")
SIZE = 8


def split_data(split: str, count: int, boxes: int, rng: random.Random) -> dict:
    """One split's COCO dict: count images, boxes per image, a polygon for every box."""
    categories = [{"id": i + 1, "name": name, "supercategory": "parts"} for i, name in enumerate(CATEGORIES)]
    entries = [{"id": i, "file_name": f"{split}_{i:06d}.jpg", "width": SIZE, "height": SIZE} for i in range(count)]
    annotations = []
    for image in entries:
        for _ in range(boxes):
            x, y = rng.randint(0, 3), rng.randint(0, 3)
            w, h = rng.randint(1, SIZE - x), rng.randint(1, SIZE - y)
            polygon = [[x, y, x + w, y, x + w, y + h, x, y + h]]
            annotation = {"id": len(annotations) + 1, "image_id": image["id"], "iscrowd": 0, "area": w * h}
            annotation.update(category_id=rng.randint(1, len(CATEGORIES)), bbox=[x, y, w, h], segmentation=polygon)
            annotations.append(annotation)
    return {"images": entries, "annotations": annotations, "categories": categories}


def write(folder: Path, total: int, boxes: int, seed: int) -> None:
    """The dataset: one json per split and the same tiny JPEG's bytes under every image name."""
    rng = random.Random(seed)
    blob = images.jpeg_bytes(SIZE, SIZE, (90, 120, 150))
    for split, share in SHARES.items():
        data = split_data(split, round(total * share), boxes, rng)
        (folder / split).mkdir(parents=True, exist_ok=True)
        for image in data["images"]:
            with open(folder / split / image["file_name"], "wb") as handle:
                handle.write(blob)
        (folder / split / own.ANNOTATIONS).write_text(json.dumps(data))


def floor(folder: Path, parser: str) -> int:
    """Parse each split's json and stat each image it lists: what any validator must at least do."""
    loads = json.loads
    if parser == "orjson":
        import orjson

        loads = orjson.loads
    count = 0
    for split in SHARES:
        with open(folder / split / own.ANNOTATIONS, "rb") as handle:
            data = loads(handle.read())
        base = str(folder / split)
        for image in data["images"]:
            os.stat(os.path.join(base, image["file_name"]))
        count += len(data["images"])
    return count


def best(repeat: int, function, *args, **kwargs) -> tuple[float, object]:
    """The fastest of repeat runs, and the last result."""
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = function(*args, **kwargs)
        times.append(time.perf_counter() - started)
    return min(times), result


def prepare(args) -> Path:
    root = Path(args.root or os.path.join(tempfile.gettempdir(), f"sam3-bench-coco-{args.images}-{args.boxes}"))
    folder = root / "parts"
    stamp = root / f".bench-{args.images}-{args.boxes}-{args.seed}"
    if stamp.exists():
        print(f"reusing {folder}: {args.images:,} images, {args.images * args.boxes:,} boxes")
        return folder
    print(f"writing {args.images:,} images, {args.images * args.boxes:,} boxes under {folder} ...", flush=True)
    started = time.perf_counter()
    write(folder, args.images, args.boxes, args.seed)
    stamp.touch()
    print(f"  written in {time.perf_counter() - started:.1f} s")
    time.sleep(coco.SETTLE_SECONDS)  # the cache keeps only datasets that have not changed for a moment
    return folder


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", help="where the dataset goes (default: a folder under the temp dir)")
    parser.add_argument("--images", type=int, default=20_000, help="images in all splits (default: 20000)")
    parser.add_argument("--boxes", type=int, default=3, help="boxes per image (default: 3)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each measurement; the fastest counts")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    folder = prepare(args)
    json_mb = sum(os.path.getsize(folder / split / own.ANNOTATIONS) for split in SHARES) / 1e6
    print(f"{json_mb:,.1f} MB of json; CPUs: {os.cpu_count()}\n", flush=True)

    floor(folder, "json")  # warm the page cache
    results = {}
    for name in ("orjson", "json"):
        try:
            results[f"floor ({name} + stat)"] = best(args.repeat, floor, folder, name)[0]
        except ImportError:
            print(f"{name} is not installed; its floor is skipped")
    results["data.validate cold"], reports = best(args.repeat, own.validate, folder, use_cache=False)
    results["data.validate cached"], cached = best(args.repeat, own.validate, folder)
    for label, seconds in results.items():
        print(f"{label:26s} {seconds:8.3f} s")
    (report,) = reports
    counts = f"{report.images:,} images, {report.annotations:,} boxes, status {report.status}"
    print(f"\n{counts}, {len(report.errors)} error kinds (expected 0); cached on the second run: {cached[0].cached}")
    cold, fastest = results["data.validate cold"], min(v for k, v in results.items() if k.startswith("floor"))
    print(f"cold / fastest floor:   {cold / fastest:5.2f}x   (goal <= 1.5x)")
    if "floor (json + stat)" in results:
        print(f"cold / json floor:      {cold / results['floor (json + stat)']:5.2f}x")
    print(f"cached:                 {results['data.validate cached']:5.3f} s")
    return 0 if not report.errors else 1


if __name__ == "__main__":
    sys.exit(main())
