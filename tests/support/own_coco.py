"""A user's own COCO dataset as Roboflow exports it: <name>/{train,valid,test}/_annotations.coco.json and
JPEG images beside each file; boxes with or without polygons, optionally Roboflow's background category
(id 0, supercategory 'none', no annotations)."""

import json
import random
from pathlib import Path

from tasks.lib.data import images

SIZE = (64, 48)


def write_dataset(
    folder: Path,
    splits: dict[str, int],
    categories: tuple[str, ...] = ("bolt", "nut"),
    masks: bool = True,
    background: bool = False,
    seed: int = 0,
) -> Path:
    """Write the dataset; splits maps a split's name to its number of images (each with 2 objects)."""
    rng = random.Random(seed)
    entries = [{"id": i + 1, "name": name, "supercategory": "parts"} for i, name in enumerate(categories)]
    if background:
        entries.insert(0, {"id": 0, "name": folder.name, "supercategory": "none"})
    for split, count in splits.items():
        target = folder / split
        target.mkdir(parents=True, exist_ok=True)
        data = {"images": [], "annotations": [], "categories": entries}
        for index in range(count):
            name = f"{split}-{index:04d}.jpg"
            (target / name).write_bytes(images.jpeg_bytes(*SIZE, (40 * index % 256, 90, 160)))
            data["images"].append({"id": index, "file_name": name, "width": SIZE[0], "height": SIZE[1]})
            for _ in range(2):
                data["annotations"].append(_annotation(len(data["annotations"]) + 1, index, rng, categories, masks))
        (target / "_annotations.coco.json").write_text(json.dumps(data))
    return folder


def _annotation(ann_id: int, image_id: int, rng: random.Random, categories: tuple, masks: bool) -> dict:
    w, h = rng.randint(8, 24), rng.randint(8, 20)
    x, y = rng.randint(0, SIZE[0] - w), rng.randint(0, SIZE[1] - h)
    polygon = [[x, y, x + w, y, x + w, y + h, x, y + h]]
    return {
        "id": ann_id,
        "image_id": image_id,
        "category_id": rng.randint(1, len(categories)),
        "bbox": [x, y, w, h],
        "area": w * h,
        "iscrowd": 0,
        "segmentation": polygon if masks else [],
    }
