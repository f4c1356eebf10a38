"""data.synth as plain functions: fake RF100-VL and ODinW-13 trees in SAM3's exact layout, with real
tiny JPEGs, optional defects of every kind data.validate catches, and a full-count mode for benchmarks.

Layouts are those SAM3's configs open: RF100-VL as the rf100vl package writes it (train/valid/test, each
with _annotations.coco.json) and ODinW-13 as GLIP's zips unpack. The same seed gives the same files.
"""

import copy
import hashlib
import json
import os
import random
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..core.errors import ConfigError, ToolError
from ..core.paths import nearest_existing
from . import coco, images

# RF100-VL as published (164,149 images, 1,355,491 boxes) and its split shares (rf100-vl issue #31).
RF100VL_IMAGES = 164_149
RF100VL_BOXES = 1_355_491
RF100VL_SHARES = {"train": 0.71, "valid": 0.20, "test": 0.09}
ODINW_SHARES = {"train": 0.6, "valid": 0.2, "test": 0.2}
MIN_PER_SPLIT = 2  # one image with boxes and one negative
EDGE_NAMES = ("-grccs", "train", "13-lkc01", "2024-frc")  # names that break careless code come first
ODINW_SHOTS = (1, 3, 5, 10)
SMALL_SIZES = ((64, 48), (48, 64), (80, 60), (96, 72))
TINY_SIZES = ((16, 16), (24, 16), (16, 24), (32, 24))  # full-count mode: many files, little disk
PALETTE = ((200, 30, 30), (30, 160, 60), (40, 60, 200), (230, 200, 40), (20, 20, 20), (240, 240, 240))
DATE = "2024-04-03T14:35:24+00:00"
INFO = {
    "year": "2024",
    "version": "1",
    "description": "Exported from roboflow.com",
    "contributor": "",
    "url": "https://public.roboflow.com/object-detection/undefined",
    "date_created": DATE,
}
LICENSES = [{"id": 1, "url": "https://creativecommons.org/licenses/by/4.0/", "name": "CC BY 4.0"}]


@dataclass(frozen=True)
class DatasetPlan:
    """One dataset to write: how many images and boxes per split, and the defects to inject."""

    kind: str
    name: str
    top: str  # the folder under the root that is written atomically
    images: dict[str, int]
    boxes: dict[str, int]
    categories: int
    sizes: tuple[tuple[int, int], ...]
    polygons: bool
    defects: tuple[str, ...] = ()


@dataclass
class Plan:
    """Everything data.synth will write, before it writes anything."""

    kind: str
    root: str
    seed: int
    datasets: list[DatasetPlan]

    @property
    def images(self) -> int:
        return sum(sum(d.images.values()) for d in self.datasets)

    @property
    def boxes(self) -> int:
        return sum(sum(d.boxes.values()) for d in self.datasets)

    def estimated_bytes(self) -> int:
        """A rough disk need: a filesystem block per image plus about 120 bytes of json per box."""
        return self.images * 4096 + self.boxes * (170 if any(d.polygons for d in self.datasets) else 120)


@dataclass
class Written:
    """What one dataset came to on disk."""

    name: str
    folder: str
    images: int
    annotations: int
    defects: list[tuple[str, str]] = field(default_factory=list)  # (defect, where)


# --------------------------------------------------------------------------------------------------
# Planning


def plan(
    kind: str,
    root: str,
    datasets: str | None = None,
    images: int = 9,
    defects: str | None = None,
    seed: int = 0,
    full: bool = False,
    scale: float = 1.0,
) -> Plan:
    """What to write: datasets by count ("3"), "all" or names ("a,b"); full = RF100-VL's real counts x scale."""
    if kind not in coco.KINDS:
        raise ConfigError(f"--kind {kind!r} is not one of {', '.join(coco.KINDS)}; pick one of those")
    if full and kind != "rf100vl":
        raise ConfigError("--full exists for rf100vl only; drop --full or use --kind rf100vl")
    if full and datasets is not None:
        raise ConfigError("--full writes all 100 datasets at RF100-VL scale; drop --datasets")
    if not full and images < 3 * MIN_PER_SPLIT:
        raise ConfigError(f"--images {images} is too few; give at least {3 * MIN_PER_SPLIT} (2 per split)")
    names = _pick_names(kind, "all" if full else datasets)
    wanted = _parse_defects(kind, defects)
    plans = _full_plans(names, seed, scale) if full else [_small_plan(kind, name, images, seed) for name in names]
    plans = _assign_defects(kind, plans, wanted)
    for p in plans:  # try each dataset's defects on a tiny copy, so a misfit fails before anything is written
        if p.defects:
            tiny = {split: 3 * MIN_PER_SPLIT for split in p.images}
            _inject(_build(DatasetPlan(**{**p.__dict__, "images": tiny, "boxes": tiny}), seed), p.defects, kind, p.name)
    return Plan(kind, os.path.abspath(root), seed, plans)


def _pick_names(kind: str, datasets: str | None) -> list[str]:
    known = coco.dataset_names(kind)
    if datasets is None or datasets == "all":
        return list(known)
    if datasets.isdigit():
        count = int(datasets)
        if not 1 <= count <= len(known):
            raise ConfigError(f"--datasets {count}: {kind} has 1 to {len(known)} datasets")
        edge = [name for name in EDGE_NAMES if name in known]
        return (edge + [name for name in known if name not in edge])[:count]
    return coco.pick_datasets(kind, [name.strip() for name in datasets.split(",") if name.strip()])


def _parse_defects(kind: str, defects: str | None) -> list[str]:
    if not defects:
        return []
    applicable = [name for name, defect in DEFECTS.items() if kind in defect.kinds]
    if defects == "all":
        return applicable
    wanted = [name.strip() for name in defects.split(",") if name.strip()]
    for name in wanted:
        if name not in applicable:
            raise ConfigError(f"defect '{name}' does not exist for {kind}; pick from: {', '.join(applicable)}")
    return wanted


def _split_counts(total: int, shares: dict[str, float]) -> dict[str, int]:
    """Split a count by shares with at least MIN_PER_SPLIT each; the first split takes the rest."""
    counts = {split: max(MIN_PER_SPLIT, round(total * share)) for split, share in shares.items()}
    first = next(iter(shares))
    counts[first] = max(MIN_PER_SPLIT, total - sum(n for s, n in counts.items() if s != first))
    return counts


def _shares(kind: str, name: str) -> dict[str, float]:
    if kind == "rf100vl":
        return RF100VL_SHARES
    if coco.ODINW_BY_NAME[name].eval_split == "valid":  # PascalVOC has no test split
        return {"train": 0.7, "valid": 0.3}
    return ODINW_SHARES


def _categories(kind: str, name: str, rng: random.Random) -> int:
    return rng.randint(1, 4) if kind == "rf100vl" else len(coco.ODINW_BY_NAME[name].categories)


def _min_boxes(split: str, images: int, categories: int, kind: str, name: str) -> int:
    """Every image but one gets a box; the evaluation split gets a box of every category."""
    evaluation = split == "test" or (kind == "odinw" and split == coco.ODINW_BY_NAME[name].eval_split)
    return max(images - 1, categories if evaluation else 1)


def _small_plan(kind: str, name: str, count: int, seed: int) -> DatasetPlan:
    rng = random.Random(f"{seed}:{kind}:{name}")
    categories = _categories(kind, name, rng)
    split_images = _split_counts(count, _shares(kind, name))
    boxes = {s: max(2 * (n - 1), _min_boxes(s, n, categories, kind, name)) for s, n in split_images.items()}
    top = name if kind == "rf100vl" else coco.ODINW_BY_NAME[name].top
    size = rng.choice(SMALL_SIZES)
    return DatasetPlan(kind, name, top, split_images, boxes, categories, (size, size[::-1]), False)


def _apportion(total: int, weights: list[float], minimum: int) -> list[int]:
    """Integers proportional to weights, each >= minimum, summing to total (largest remainder)."""
    spare = max(0, total - minimum * len(weights))
    exact = [spare * w / sum(weights) for w in weights]
    counts = [int(x) for x in exact]
    for i in sorted(range(len(weights)), key=lambda i: counts[i] - exact[i])[: spare - sum(counts)]:
        counts[i] += 1
    return [minimum + n for n in counts]


def _full_plans(names: list[str], seed: int, scale: float) -> list[DatasetPlan]:
    """RF100-VL's published counts times scale, spread over the 100 datasets with a realistic skew."""
    rng = random.Random(f"{seed}:full")
    weights = [rng.lognormvariate(0, 1.0) for _ in names]
    density = [rng.lognormvariate(0, 0.5) for _ in names]
    per_dataset = _apportion(round(RF100VL_IMAGES * scale), weights, 3 * MIN_PER_SPLIT)
    boxes = _apportion(round(RF100VL_BOXES * scale), [n * d for n, d in zip(per_dataset, density, strict=True)], 0)
    plans = []
    for name, count, box_total in zip(names, per_dataset, boxes, strict=True):
        local = random.Random(f"{seed}:rf100vl:{name}")
        categories = local.randint(1, 11)
        split_images = _split_counts(count, RF100VL_SHARES)
        shares = _apportion(box_total, [split_images[s] for s in RF100VL_SHARES], 0)
        split_boxes = {
            s: max(b, _min_boxes(s, split_images[s], categories, "rf100vl", name))
            for s, b in zip(RF100VL_SHARES, shares, strict=True)
        }
        sizes = (local.choice(TINY_SIZES), local.choice(TINY_SIZES))
        plans.append(DatasetPlan("rf100vl", name, name, split_images, split_boxes, categories, sizes, True))
    return plans


def _assign_defects(kind: str, plans: list[DatasetPlan], wanted: list[str]) -> list[DatasetPlan]:
    """Defect i goes to dataset i mod n; prompt_ids goes to a dataset that has prompts."""
    chosen: dict[str, list[str]] = {p.name: [] for p in plans}
    prompted = [p.name for p in plans if kind == "odinw" and coco.ODINW_BY_NAME[p.name].prompt_ids]
    for index, defect in enumerate(wanted):
        if defect == "prompt_ids":
            if not prompted:
                raise ConfigError(
                    "defect prompt_ids needs AerialMaritimeDrone_large or NorthAmericaMushrooms in --datasets"
                )
            chosen[prompted[0]].append(defect)
        else:
            chosen[plans[index % len(plans)].name].append(defect)
    return [DatasetPlan(**{**p.__dict__, "defects": tuple(chosen[p.name])}) for p in plans]


def plan_rows(the_plan: Plan) -> list[tuple]:
    """One row per dataset for the --dry-run table."""
    return [
        (
            d.name,
            d.top,
            "/".join(str(n) for n in d.images.values()),
            sum(d.boxes.values()),
            d.categories,
            "x".join(map(str, d.sizes[0])),
            ", ".join(d.defects) or "-",
        )
        for d in the_plan.datasets
    ]


# --------------------------------------------------------------------------------------------------
# Building one dataset in memory


@dataclass
class Model:
    """A dataset before it is written: json objects (or raw bytes) and image bytes, by path under its top."""

    files: dict[str, Any] = field(default_factory=dict)
    blobs: dict[str, bytes] = field(default_factory=dict)
    image_dirs: dict[str, str] = field(default_factory=dict)  # json path -> its image folder
    targets: list[str] = field(default_factory=list)  # json files SAM3 opens, the evaluation file first


def _image_name(name: str, split: str, index: int) -> str:
    digest = hashlib.md5(f"{name}/{split}/{index}".encode()).hexdigest()
    return f"img{index:04d}_jpg.rf.{digest}.jpg"


def _split(
    name: str,
    split: str,
    count: int,
    boxes: int,
    categories: list[dict],
    sizes: tuple,
    polygons: bool,
    rng: random.Random,
    first_ann_id: int,
    folder: str,
    model: Model,
) -> dict:
    """One split as a COCO dict; its images go into model.blobs under folder. The last image stays negative."""
    image_entries, annotations = [], []
    for index in range(count):
        width, height = sizes[index % len(sizes)]
        file_name = _image_name(name, split, index)
        image_entries.append(
            {"id": index, "license": 1, "file_name": file_name, "height": height, "width": width, "date_captured": DATE}
        )
        model.blobs[f"{folder}/{file_name}"] = images.jpeg_bytes(width, height, PALETTE[index % len(PALETTE)])
    annotated = max(1, count - 1)
    for j in range(boxes):
        image = image_entries[j % annotated]
        width, height = image["width"], image["height"]
        w = round(rng.uniform(1, width / 2), 1)
        h = round(rng.uniform(1, height / 2), 1)
        x = round(rng.uniform(0, width - w), 1)
        y = round(rng.uniform(0, height - h), 1)
        segmentation = [[x, y, round(x + w, 1), y, round(x + w, 1), round(y + h, 1), x, round(y + h, 1)]]
        annotations.append(
            {
                "id": first_ann_id + j,
                "image_id": image["id"],
                "category_id": categories[j % len(categories)]["id"],
                "bbox": [x, y, w, h],
                "area": round(w * h, 2),
                "segmentation": segmentation if polygons else [],
                "iscrowd": 0,
            }
        )
    return {
        "info": dict(INFO),
        "licenses": [dict(x) for x in LICENSES],
        "categories": copy.deepcopy(categories),
        "images": image_entries,
        "annotations": annotations,
    }


def _build(p: DatasetPlan, seed: int) -> Model:
    return build_rf100vl(p, seed) if p.kind == "rf100vl" else build_odinw(p, seed)


def build_rf100vl(p: DatasetPlan, seed: int) -> Model:
    """A dataset as rf100vl leaves it: train/valid/test, each with a cleaned _annotations.coco.json."""
    rng = random.Random(f"{seed}:rf100vl:{p.name}:boxes")
    model = Model()
    model.blobs["README.dataset.txt"] = f"{p.name}: synthetic dataset made by `inv data.synth`\n".encode()
    model.blobs["README.roboflow.txt"] = b"Not exported by Roboflow: fake data for tests and benchmarks.\n"
    for split in coco.RF100VL_SPLITS:
        categories = [
            {"id": k, "name": f"{p.name}-cls{k}", "supercategory": f"{p.name}-root"} for k in range(p.categories)
        ]
        path = f"{split}/{coco.RF100VL_JSON}"
        model.files[path] = _split(
            p.name, split, p.images[split], p.boxes[split], categories, p.sizes, p.polygons, rng, 1, split, model
        )
        model.image_dirs[path] = split
    model.targets = [f"test/{coco.RF100VL_JSON}", f"train/{coco.RF100VL_JSON}"]
    return model


def _fewshot(split_data: dict, shot: int, rng_key: str) -> dict:
    """A few-shot subset: images picked in a seeded order until every category has `shot` boxes."""
    rng = random.Random(rng_key)
    by_image: dict[int, list[dict]] = {}
    for a in split_data["annotations"]:
        by_image.setdefault(a["image_id"], []).append(a)
    order = sorted(by_image)
    rng.shuffle(order)
    need = {c["id"]: shot for c in split_data["categories"]}
    keep = []
    for image_id in order:
        if any(need[a["category_id"]] > 0 for a in by_image[image_id]):
            keep.append(image_id)
            for a in by_image[image_id]:
                need[a["category_id"]] -= 1
        if all(n <= 0 for n in need.values()):
            break
    kept = set(keep)
    return copy.deepcopy(
        {key: split_data[key] for key in ("info", "licenses", "categories")}
        | {
            "images": [i for i in split_data["images"] if i["id"] in kept],
            "annotations": [a for a in split_data["annotations"] if a["image_id"] in kept],
        }
    )


def build_odinw(p: DatasetPlan, seed: int) -> Model:
    """One ODinW-13 task as GLIP's zip unpacks it: split files, few-shot files, and mini_val where GLIP has one."""
    task = coco.ODINW_BY_NAME[p.name]
    rng = random.Random(f"{seed}:odinw:{p.name}:boxes")
    model = Model()
    base = task.base[len(task.top) :].strip("/")
    first_ann_id = coco.ODINW13.index(task) % 2  # annotation ids from 0 for some tasks, from 1 for others
    categories = [
        {"id": k, "name": name, "supercategory": task.top.lower()} for k, name in enumerate(task.categories, start=1)
    ]
    splits = {}
    for split in p.images:
        folder = "/".join(x for x in (base, "" if task.flat else split) if x)
        path = task.split_json(split)[len(task.top) + 1 :]
        data = _split(
            p.name,
            split,
            p.images[split],
            p.boxes[split],
            categories,
            p.sizes,
            p.polygons,
            rng,
            first_ann_id,
            folder,
            model,
        )
        model.files[path] = splits[split] = data
        model.image_dirs[path] = folder
    if task.name in ("EgoHands_generic", "VehiclesOpenImages"):  # GLIP's mini_val, a copy of part of valid
        mini = _fewshot(splits["valid"], 1, f"{seed}:{p.name}:mini")
        for image in mini["images"]:
            name = image["file_name"]
            model.blobs[f"{base}/mini_val/{name}"] = model.blobs[f"{base}/valid/{name}"]
        model.files[f"{base}/mini_val/{coco.ODINW_JSON}"] = mini
        splits["mini_val"] = mini
    for split, data in splits.items():
        if split == "test":
            continue
        for shot in ODINW_SHOTS:
            for s in coco.ODINW_SEEDS:
                path = task.fewshot_json(s, shot, split)[len(task.top) + 1 :]
                model.files[path] = _fewshot(data, shot, f"{seed}:{p.name}:{split}:{shot}:{s}")
                model.image_dirs[path] = "/".join(x for x in (base, "" if task.flat else split) if x)
    evaluation = task.eval_json[len(task.top) + 1 :]
    model.targets = [evaluation] + [task.fewshot_json(s)[len(task.top) + 1 :] for s in coco.ODINW_SEEDS]
    return model


# --------------------------------------------------------------------------------------------------
# Defects: each one breaks a rule of data.validate; `code` is the issue it must raise


@dataclass(frozen=True)
class Defect:
    code: str  # the coco.RULES code data.validate reports for it
    kinds: tuple[str, ...]
    what: str
    apply: Callable[[Model, str, str], str]  # (model, target json, kind) -> where it was injected
    target: str = ""  # "" any file SAM3 opens, "eval" the evaluation file, else the end of a file name


def _first_image(model: Model, target: str) -> tuple[dict, str]:
    data = model.files[target]
    image = next(i for i in data["images"] if any(a["image_id"] == i["id"] for a in data["annotations"]))
    folder = model.image_dirs[target]
    return image, f"{folder}/{image['file_name']}" if folder else image["file_name"]


def _set(edit: Callable[[dict], Any]) -> Callable[[Model, str, str], str]:
    """A defect that edits the target json in place."""

    def apply(model: Model, chosen: str, kind: str) -> str:
        edit(model.files[chosen])
        return chosen

    return apply


def _null_json(model: Model, target: str, kind: str) -> str:
    model.files[target] = None
    return target


def _invalid_json(model: Model, target: str, kind: str) -> str:
    text = json.dumps(model.files[target]).encode()
    model.files[target] = text[: len(text) // 2]
    return target


def _first_ann(data: dict) -> dict:
    return data["annotations"][0]


def _duplicate_image_id(data: dict) -> None:
    data["images"][1]["id"] = data["images"][0]["id"]


def _duplicate_ann_id(data: dict) -> None:
    data["annotations"][1]["id"] = data["annotations"][0]["id"]


def _outside(data: dict) -> None:
    annotation = _first_ann(data)
    image = next(i for i in data["images"] if i["id"] == annotation["image_id"])
    annotation["bbox"][0] = image["width"] + 5


def _root_class(data: dict) -> None:
    """Undo rf100vl's cleaning: a root class 0 that parents the others, ids 1..K, annotation ids from 0."""
    root_name = data["categories"][0]["supercategory"]
    for category in data["categories"]:
        category["id"] += 1
    data["categories"].insert(0, {"id": 0, "name": root_name, "supercategory": "none"})
    for index, annotation in enumerate(data["annotations"]):
        annotation["category_id"] += 1
        annotation["id"] = index


def _shift_categories(data: dict) -> None:
    """Category ids 2..K+1: after SAM3's reindex they no longer match the prompt ids 1..K."""
    for category in data["categories"]:
        category["id"] += 1
    for annotation in data["annotations"]:
        annotation["category_id"] += 1


def _missing_image(model: Model, target: str, kind: str) -> str:
    _, path = _first_image(model, target)
    del model.blobs[path]
    return path


def _truncated_image(model: Model, target: str, kind: str) -> str:
    _, path = _first_image(model, target)
    model.blobs[path] = model.blobs[path][: len(model.blobs[path]) // 2]
    return path


def _not_an_image(model: Model, target: str, kind: str) -> str:
    _, path = _first_image(model, target)
    model.blobs[path] = b"<!DOCTYPE html><html><body>Rate limit exceeded</body></html>\n"
    return path


def _size_mismatch(model: Model, target: str, kind: str) -> str:
    image, path = _first_image(model, target)
    image["width"] += 8
    return path


def _leftover_zip(model: Model, target: str, kind: str) -> str:
    path = "roboflow.zip" if kind == "rf100vl" else "download.zip"
    model.blobs[path] = b"PK\x03\x04 partial"
    return path


def _missing_file(model: Model, target: str, kind: str) -> str:
    """Drop the target json; for RF100-VL's evaluation file, the whole test/ folder."""
    del model.files[target]
    if kind == "rf100vl":
        folder = model.image_dirs[target] + "/"
        for path in [p for p in model.blobs if p.startswith(folder)]:
            del model.blobs[path]
        return folder
    return target


def _fewshot_stranger(model: Model, path: str, kind: str) -> str:
    """A few-shot file listing an image (present on disk) that the train split does not have."""
    data = model.files[path]
    stranger = dict(data["images"][0], id=10**6, file_name="stranger_jpg.rf.0.jpg")
    data["images"].append(stranger)
    folder = model.image_dirs[path]
    model.blobs[f"{folder}/{stranger['file_name']}" if folder else stranger["file_name"]] = images.jpeg_bytes(
        stranger["width"], stranger["height"], PALETTE[0]
    )
    return path


BOTH = ("rf100vl", "odinw")
DEFECTS: dict[str, Defect] = {
    "null_json": Defect("null_json", BOTH, "annotation file holds null", _null_json),
    "invalid_json": Defect("invalid_json", BOTH, "annotation file cut in half", _invalid_json),
    "missing_key": Defect("top_level", BOTH, "no 'annotations' key", _set(lambda d: d.pop("annotations"))),
    "missing_field": Defect(
        "ann_field", BOTH, "an annotation without iscrowd", _set(lambda d: _first_ann(d).pop("iscrowd"))
    ),
    "string_id": Defect(
        "image_field",
        BOTH,
        "an image id that is a string",
        _set(lambda d: d["images"][0].update(id=str(d["images"][0]["id"]))),
    ),
    "duplicate_image_id": Defect("duplicate_image_id", BOTH, "two images share an id", _set(_duplicate_image_id)),
    "duplicate_ann_id": Defect("duplicate_ann_id", BOTH, "two annotations share an id", _set(_duplicate_ann_id)),
    "unknown_image": Defect(
        "unknown_image",
        BOTH,
        "an annotation of an image that is not listed",
        _set(lambda d: _first_ann(d).update(image_id=10**6)),
    ),
    "unknown_category": Defect(
        "unknown_category",
        BOTH,
        "an annotation of a category that is not listed",
        _set(lambda d: _first_ann(d).update(category_id=999)),
    ),
    "bbox_size": Defect("bbox_size", BOTH, "a box of width 0", _set(lambda d: _first_ann(d)["bbox"].__setitem__(2, 0))),
    "bbox_format": Defect("bbox_format", BOTH, "a box of 3 numbers", _set(lambda d: _first_ann(d)["bbox"].pop())),
    "bbox_outside": Defect("bbox_outside", BOTH, "a box right of its image", _set(_outside)),
    "bad_polygon": Defect(
        "segmentation", BOTH, "a polygon of one point", _set(lambda d: _first_ann(d).update(segmentation=[[1, 2]]))
    ),
    "bad_rle": Defect(
        "segmentation",
        BOTH,
        "an RLE without counts",
        _set(lambda d: _first_ann(d).update(segmentation={"size": [1, 1]})),
    ),
    "empty_categories": Defect(
        "no_categories", BOTH, "an empty category list", _set(lambda d: d.update(categories=[]))
    ),
    "blank_category": Defect(
        "category_field", BOTH, "a category named '  '", _set(lambda d: d["categories"][0].update(name="  "))
    ),
    "empty_images": Defect(
        "no_images", BOTH, "no images and no annotations", _set(lambda d: d.update(images=[], annotations=[]))
    ),
    "root_class": Defect("root_class", BOTH, "a raw Roboflow export (root class 0)", _set(_root_class)),
    "empty_eval": Defect(
        "empty_eval", BOTH, "an evaluation split without annotations", _set(lambda d: d.update(annotations=[])), "eval"
    ),
    "missing_image": Defect("missing_image", BOTH, "an image file deleted", _missing_image),
    "truncated_image": Defect("truncated_image", BOTH, "a JPEG cut in half", _truncated_image),
    "not_an_image": Defect("not_an_image", BOTH, "an HTML error page saved as .jpg", _not_an_image),
    "size_mismatch": Defect("size_mismatch", BOTH, "json width 8 px wider than the file", _size_mismatch),
    "leftover_zip": Defect("partial_download", BOTH, "a partial zip left in the dataset", _leftover_zip),
    "missing_split": Defect("missing_file", BOTH, "the evaluation file removed", _missing_file, "eval"),
    "prompt_ids": Defect(
        "prompt_ids", ("odinw",), "category ids 2..K+1 where prompts need 1..K", _set(_shift_categories), "eval"
    ),
    "missing_seed": Defect(
        "missing_file", ("odinw",), "fewshot_train_shot10_seed30.json removed", _missing_file, "_seed30.json"
    ),
    "fewshot_not_subset": Defect(
        "fewshot_not_subset", ("odinw",), "a few-shot image not in the train split", _fewshot_stranger, "_seed3.json"
    ),
}


def _inject(model: Model, defects: tuple[str, ...], kind: str, dataset: str) -> list[tuple[str, str]]:
    """Apply defects, each to its own file where there are enough: those bound to a file first, then the
    others to the files SAM3 opens that are still untouched (evaluation file first)."""
    done: list[tuple[str, str]] = []
    used: set[str] = set()
    for name in sorted(defects, key=lambda n: not DEFECTS[n].target):
        bound = DEFECTS[name].target
        if bound == "eval":
            target = model.targets[0]
        elif bound:
            target = next(t for t in model.targets if t.endswith(bound))
        else:
            target = next((t for t in model.targets if t not in used), model.targets[len(done) % len(model.targets)])
        used.add(target)
        try:
            done.append((name, DEFECTS[name].apply(model, target, kind)))
        except (KeyError, IndexError, StopIteration, TypeError, AttributeError):
            raise ConfigError(
                f"defect {name} does not fit into {dataset} after {', '.join(d for d, _ in done)}; "
                "give --datasets at least as many datasets as defects"
            ) from None
    return done


# --------------------------------------------------------------------------------------------------
# Writing


def check_writable(the_plan: Plan) -> None:
    """Refuse before writing anything: a dataset folder not made by data.synth, or too little disk."""
    for d in the_plan.datasets:
        folder = os.path.join(the_plan.root, d.top)
        if os.path.exists(folder) and not os.path.exists(os.path.join(folder, coco.SYNTH_MARKER)):
            raise ToolError(
                f"{folder} exists and was not made by data.synth; "
                "choose an empty --root (synth never overwrites real data)"
            )
    free = shutil.disk_usage(nearest_existing(the_plan.root)).free
    need = the_plan.estimated_bytes()
    if free < need:
        raise ToolError(
            f"{the_plan.root}: {free / 1e9:.1f} GB free, about {need / 1e9:.1f} GB needed; "
            "free space or choose another --root"
        )


def write_dataset(root: str, p: DatasetPlan, seed: int) -> Written:
    """Build one dataset in a hidden folder beside its target, then rename it into place."""
    model = _build(p, seed)
    injected = _inject(model, p.defects, p.kind, p.name)
    marker = {"made_by": "inv data.synth", "seed": seed, "defects": dict(injected)}
    model.blobs[coco.SYNTH_MARKER] = json.dumps(marker, indent=2).encode()
    target = os.path.join(root, p.top)
    staging = os.path.join(root, f".{p.top}.synth-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    made: set[str] = set()
    for path, content in (*model.files.items(), *model.blobs.items()):
        full = os.path.join(staging, path)
        folder = os.path.dirname(full)
        if folder not in made:
            os.makedirs(folder, exist_ok=True)
            made.add(folder)
        raw = content if isinstance(content, bytes) else json.dumps(content).encode()
        with open(full, "wb") as handle:
            handle.write(raw)
    _swap_in(staging, target)
    annotations = sum(
        len(d["annotations"])
        for path, d in model.files.items()
        if isinstance(d, dict) and "fewshot" not in path and "annotations" in d
    )
    pictures = sum(1 for path in model.blobs if path.endswith(".jpg"))
    return Written(p.name, p.top, pictures, annotations, injected)


def _swap_in(staging: str, target: str) -> None:
    """Replace target by staging: each step leaves either the old or the new dataset in place."""
    if os.path.exists(target):
        retired = f"{staging}.old"
        os.rename(target, retired)
        os.rename(staging, target)
        shutil.rmtree(retired)
    else:
        os.rename(staging, target)


def write(the_plan: Plan, workers: int | None = None) -> list[Written]:
    """Write every dataset of the plan, several at a time; results in plan order."""
    check_writable(the_plan)
    os.makedirs(the_plan.root, exist_ok=True)
    count = min(workers or coco.available_cpus(), len(the_plan.datasets))
    if count <= 1:
        return [write_dataset(the_plan.root, d, the_plan.seed) for d in the_plan.datasets]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else None)
    order = sorted(the_plan.datasets, key=lambda d: -sum(d.boxes.values()))
    with ProcessPoolExecutor(max_workers=count, mp_context=context) as pool:
        futures = {d.name: pool.submit(write_dataset, the_plan.root, d, the_plan.seed) for d in order}
        return [futures[d.name].result() for d in the_plan.datasets]
