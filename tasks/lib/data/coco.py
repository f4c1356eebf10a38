"""data.validate as plain functions: check RF100-VL, ODinW-13 and own COCO data against what SAM3's loaders need.

The rules are what SAM3's configs and loaders need (sam3/train/data/coco_json_loaders.py and
sam3_image_dataset.py: the paths each config opens, ODinW's prompt ids, the fields each loader reads). Each dataset is checked in its own process; a result is reused while the dataset's json
files and folders keep their size and mtime (see CACHE_NAME). A user's own data (kind "coco", Roboflow's
COCO export layout) is found and described by own.py, and checked here by the same rules plus its own.
"""

import contextlib
import hashlib
import json
import math
import os
import time
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from functools import partial
from itertools import chain
from operator import add, itemgetter, sub
from pathlib import Path
from typing import Any

from ..core.errors import ConfigError, ToolError
from ..core.paths import atomic_write_text
from . import images

KINDS = ("rf100vl", "odinw")  # the benchmark trees data.fetch and data.synth know
OWN = "coco"  # a user's own COCO data (own.py), data.validate --kind coco
VALIDATE_KINDS = (*KINDS, OWN)
ERROR, WARNING = "error", "warning"
CACHE_NAME = ".sam3-validate-cache.json"
SYNTH_MARKER = ".sam3-synth"  # written by data.synth into every dataset it makes
MAX_EXAMPLES = 3
SETTLE_SECONDS = 2  # a dataset modified more recently than this is not cached yet
EDGE_TOLERANCE = 1.0  # pixels a box may pass the image border before it counts as clipped
MAX_BOXES_PER_IMAGE = 100  # COCOeval maxDets
MAX_BOXES_PER_QUERY = 200  # FilterFindQueriesWithTooManyOut
PARTIAL_SUFFIXES = (".zip", ".part", ".partial", ".tmp", ".download", ".crdownload", ".incomplete")

# SAM3's all_roboflow_supercategories, in its task_index order (never map datasets by rf100vl's order).
RF100VL_NAMES = (
    "-grccs",
    "zebrasatasturias",
    "cod-mw-warzone",
    "canalstenosis",
    "label-printing-defect-version-2",
    "new-defects-in-wood",
    "orionproducts",
    "aquarium-combined",
    "varroa-mites-detection--test-set",
    "clashroyalechardetector",
    "stomata-cells",
    "halo-infinite-angel-videogame",
    "pig-detection",
    "urine-analysis1",
    "aerial-sheep",
    "orgharvest",
    "actions",
    "mahjong",
    "liver-disease",
    "needle-base-tip-min-max",
    "wheel-defect-detection",
    "aircraft-turnaround-dataset",
    "xray",
    "wildfire-smoke",
    "spinefrxnormalvindr",
    "ufba-425",
    "speech-bubbles-detection",
    "train",
    "pill",
    "truck-movement",
    "car-logo-detection",
    "inbreast",
    "sea-cucumbers-new-tiles",
    "uavdet-small",
    "penguin-finder-seg",
    "aerial-airport",
    "bibdetection",
    "taco-trash-annotations-in-context",
    "bees",
    "recode-waste",
    "screwdetectclassification",
    "wine-labels",
    "aerial-cows",
    "into-the-vale",
    "gwhd2021",
    "lacrosse-object-detection",
    "defect-detection",
    "dataconvert",
    "x-ray-id",
    "ball",
    "tube",
    "2024-frc",
    "crystal-clean-brain-tumors-mri-dataset",
    "grapes-5",
    "human-detection-in-floods",
    "buoy-onboarding",
    "apoce-aerial-photographs-for-object-detection-of-construction-equipment",
    "l10ul502",
    "floating-waste",
    "deeppcb",
    "ism-band-packet-detection",
    "weeds4",
    "invoice-processing",
    "thermal-cheetah",
    "tomatoes-2",
    "marine-sharks",
    "peixos-fish",
    "sssod",
    "aerial-pool",
    "countingpills",
    "asphaltdistressdetection",
    "roboflow-trained-dataset",
    "everdaynew",
    "underwater-objects",
    "soda-bottles",
    "dentalai",
    "jellyfish",
    "deepfruits",
    "activity-diagrams",
    "circuit-voltages",
    "all-elements",
    "macro-segmentation",
    "exploratorium-daphnia",
    "signatures",
    "conveyor-t-shirts",
    "fruitjes",
    "grass-weeds",
    "infraredimageofpowerequipment",
    "13-lkc01",
    "wb-prova",
    "flir-camera-objects",
    "paper-parts",
    "football-player-detection",
    "trail-camera",
    "smd-components",
    "water-meter",
    "nih-xray",
    "the-dreidel-project",
    "electric-pylon-detection-in-rsi",
    "cable-damage",
)
RF100VL_SPLITS = ("train", "valid", "test")  # SAM3 reads train and test; valid is optional
RF100VL_JSON = "_annotations.coco.json"
ODINW_SEEDS = (3, 30, 300)
ODINW_JSON = "annotations_without_background.json"
VOC_CLASSES = (
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
)


@dataclass(frozen=True)
class OdinwTask:
    """One ODinW-13 task as SAM3's odinw13 configs open it."""

    name: str  # all_odinw_supercategories[].name
    base: str  # folder under the ODinW root
    eval_split: str  # folder of the evaluation json under base ("" for pistols' flat export/)
    categories: tuple[str, ...]  # GLIP's names for ids 1..K
    prompt_ids: tuple[int, ...] = ()  # odinw35_prompts ids the category ids must equal after reindexing

    @property
    def top(self) -> str:
        return self.base.split("/")[0]

    @property
    def flat(self) -> bool:
        return self.name == "pistols"

    def split_json(self, split: str) -> str:
        """The full annotation file of a split ("train", "valid", "test"), relative to the root."""
        if self.flat:
            return f"{self.base}/{ {'valid': 'val'}.get(split, split) }_{ODINW_JSON}"
        return f"{self.base}/{split}/{ODINW_JSON}"

    @property
    def eval_json(self) -> str:
        return self.split_json("test" if self.eval_split != "valid" else "valid")

    def fewshot_json(self, seed: int, shot: int = 10, split: str = "train") -> str:
        folder = self.base if self.flat else f"{self.base}/{split}"
        kind = {"valid": "val", "mini_val": "minival"}.get(split, split)
        return f"{folder}/fewshot_{kind}_shot{shot}_seed{seed}.json"


ODINW13 = (
    OdinwTask(
        "AerialMaritimeDrone_large",
        "AerialMaritimeDrone/large",
        "test",
        ("boat", "car", "dock", "jetski", "lift"),
        (1, 2, 3, 4, 5),
    ),
    OdinwTask(
        "Aquarium",
        "Aquarium/Aquarium Combined.v2-raw-1024.coco",
        "test",
        ("fish", "jellyfish", "penguin", "puffin", "shark", "starfish", "stingray"),
    ),
    OdinwTask("CottontailRabbits", "CottontailRabbits", "test", ("Cottontail-Rabbit",)),
    OdinwTask("EgoHands_generic", "EgoHands/generic", "test", ("hand",)),
    OdinwTask(
        "NorthAmericaMushrooms",
        "NorthAmericaMushrooms/North American Mushrooms.v1-416x416.coco",
        "test",
        ("CoW", "chanterelle"),
        (1, 2),
    ),
    OdinwTask("Packages", "Packages/Raw", "test", ("package",)),
    OdinwTask("PascalVOC", "PascalVOC", "valid", VOC_CLASSES),
    OdinwTask("Raccoon", "Raccoon/Raccoon.v2-raw.coco", "test", ("raccoon",)),
    OdinwTask("ShellfishOpenImages", "ShellfishOpenImages/raw", "test", ("Crab", "Lobster", "Shrimp")),
    OdinwTask(
        "VehiclesOpenImages", "VehiclesOpenImages/416x416", "test", ("Ambulance", "Bus", "Car", "Motorcycle", "Truck")
    ),
    OdinwTask("pistols", "pistols/export", "", ("pistol",)),
    OdinwTask("pothole", "pothole", "test", ("pothole",)),
    OdinwTask("thermalDogsAndPeople", "thermalDogsAndPeople", "test", ("dog", "person")),
)
ODINW_BY_NAME = {task.name: task for task in ODINW13}
# Top-level folders of the 33 GLIP zips (ODinW-35): expected at an ODinW root even though SAM3 reads 13.
ODINW_ZIPS = (
    "AerialMaritimeDrone",
    "AmericanSignLanguageLetters",
    "Aquarium",
    "BCCD",
    "ChessPieces",
    "CottontailRabbits",
    "DroneControl",
    "EgoHands",
    "HardHatWorkers",
    "MaskWearing",
    "MountainDewCommercial",
    "NorthAmericaMushrooms",
    "OxfordPets",
    "PKLot",
    "Packages",
    "PascalVOC",
    "Raccoon",
    "ShellfishOpenImages",
    "ThermalCheetah",
    "UnoCards",
    "VehiclesOpenImages",
    "WildfireSmoke",
    "boggleBoards",
    "brackishUnderwater",
    "dice",
    "openPoetryVision",
    "pistols",
    "plantdoc",
    "pothole",
    "selfdrivingCar",
    "thermalDogsAndPeople",
    "vector",
    "websiteScreenshots",
)

# code: (severity, what is wrong and what it does to SAM3, the fix)
RULES: dict[str, tuple[str, str, str]] = {
    "missing_dataset": (ERROR, "dataset folder is missing", "run `inv data.fetch` for it, or check --root"),
    "missing_file": (ERROR, "an annotation file SAM3 opens is missing", "re-fetch this dataset"),
    "missing_split": (WARNING, "optional split is missing (SAM3 does not read it)", "none needed"),
    "missing_superset": (
        WARNING,
        "the full train json is missing, so few-shot files are not checked against it",
        "re-fetch this dataset",
    ),
    "partial_download": (
        ERROR,
        "leftover download file: the download or extraction did not finish",
        "delete the dataset folder and re-run `inv data.fetch` for it",
    ),
    "leftover_zip": (WARNING, "archive left at the data root", "delete it once its dataset validates"),
    "unknown_folder": (WARNING, "folder is not a dataset SAM3 reads", "move it out of the data root, or check --root"),
    "synthetic": (WARNING, "dataset was made by data.synth (fake data)", "fetch the real data with `inv data.fetch`"),
    "invalid_json": (ERROR, "file is not valid JSON", "re-fetch this dataset"),
    "null_json": (
        ERROR,
        "file holds null (rf100vl 1.0.0 re-clean bug); SAM3 fails with KeyError",
        "re-fetch with rf100vl>=1.1.2",
    ),
    "top_level": (
        ERROR,
        "top level must be an object with 'images', 'annotations' and 'categories' lists",
        "re-fetch this dataset",
    ),
    "no_images": (
        ERROR,
        "'images' is empty: 0 datapoints, and evaluation fails with IndexError",
        "re-fetch this dataset",
    ),
    "no_categories": (
        ERROR,
        "'categories' is empty: SAM3 fails with ValueError (chunk size 0)",
        "re-fetch this dataset",
    ),
    "image_field": (
        ERROR,
        "image entry lacks a key or has a wrong type (id int, file_name str, width/height int > 0)",
        "fix the image entry; SAM3 fails with KeyError or skips every image",
    ),
    "duplicate_image_id": (
        ERROR,
        "duplicate image id: SAM3 silently keeps only one of the images",
        "give every image a unique id",
    ),
    "absolute_file_name": (WARNING, "file_name is absolute and overrides the image folder", "use a relative name"),
    "ann_field": (
        ERROR,
        "annotation lacks a key or has a wrong type (id, image_id, category_id int; iscrowd 0/1; area number >= 0)",
        "fix the annotation; SAM3 or pycocotools fail with KeyError",
    ),
    "duplicate_ann_id": (
        ERROR,
        "duplicate annotation id: pycocotools silently drops a ground truth",
        "give every annotation a unique id",
    ),
    "unknown_image": (
        ERROR,
        "annotation points at an image id not in 'images' (SAM3 silently ignores it)",
        "fix image_id or add the image",
    ),
    "unknown_category": (
        ERROR,
        "annotation points at a category id not in 'categories' (silently ignored)",
        "fix category_id or add the category",
    ),
    "bbox_format": (ERROR, "bbox is not a list of 4 finite numbers (SAM3 fails with IndexError)", "fix the bbox"),
    "bbox_size": (ERROR, "bbox width or height is <= 0: an unmatchable ground truth", "fix or drop the box"),
    "bbox_outside": (ERROR, "bbox lies entirely outside its image", "fix or drop the box"),
    "bbox_clipped": (WARNING, "bbox extends past the image border (SAM3 clamps it)", "none needed"),
    "segmentation": (
        ERROR,
        "malformed segmentation: a polygon needs >= 6 numbers in pairs, an RLE needs 'counts' "
        "and size [height, width]; crashes SAM3 even for boxes",
        "fix or empty the segmentation",
    ),
    "odd_polygon": (WARNING, "polygon has an odd number of coordinates", "fix the polygon"),
    "category_field": (
        ERROR,
        "category lacks an integer id or a non-blank name (used as the text prompt)",
        "fix the category",
    ),
    "duplicate_category_id": (ERROR, "duplicate category id", "give every category a unique id"),
    "duplicate_category_name": (
        WARNING,
        "two categories share a name: the same text prompt twice",
        "rename one of them",
    ),
    "category_mismatch": (WARNING, "this split lists other categories than the train split", "re-fetch this dataset"),
    "root_class": (
        ERROR,
        "Roboflow root class present (supercategory 'none', no boxes, parent of the others): "
        "an extra negative query in every image",
        "re-fetch with rf100vl, whose cleaner drops it",
    ),
    "empty_eval": (
        ERROR,
        "evaluation split has no annotations: AP is -1 and pollutes averages",
        "re-fetch this dataset",
    ),
    "category_missing_in_eval": (
        WARNING,
        "categories without boxes in the evaluation split get AP -1",
        "none needed; pycocotools skips them",
    ),
    "many_boxes": (
        WARNING,
        f"more than {MAX_BOXES_PER_IMAGE} boxes in one image: evaluation keeps the top {MAX_BOXES_PER_IMAGE}",
        "none needed; AP is capped for this image",
    ),
    "crowded_query": (
        WARNING,
        f"more than {MAX_BOXES_PER_QUERY} boxes of one category in one image: training drops that query",
        "none needed",
    ),
    "many_negatives": (WARNING, "more than half of the images have no annotations", "check the export"),
    "prompt_ids": (
        ERROR,
        "category ids after SAM3's reindex differ from the ids of its prompts for this dataset",
        "use GLIP's annotations_without_background.json files (ids 1..K)",
    ),
    "category_zero": (
        WARNING,
        "category id 0 in an ODinW file: SAM3's reindex shifts every category id",
        "use GLIP's files (ids 1..K)",
    ),
    "fewshot_not_subset": (
        ERROR,
        "few-shot file is not a subset of the train split (images or categories differ)",
        "re-fetch this dataset",
    ),
    "missing_image": (ERROR, "image file is missing (SAM3 silently skips it)", "re-fetch this dataset"),
    "unreadable_image": (ERROR, "image file cannot be read", "fix its permissions or re-fetch"),
    "empty_image": (ERROR, "image file is empty", "re-fetch this dataset"),
    "not_an_image": (
        ERROR,
        "file is not an image (no JPEG, PNG, GIF, BMP, WebP or TIFF signature)",
        "re-fetch this dataset",
    ),
    "truncated_image": (ERROR, "image file is truncated (SAM3 silently skips it)", "re-fetch this dataset"),
    "corrupt_image": (ERROR, "image file structure is corrupt (SAM3 silently skips it)", "re-fetch this dataset"),
    "size_mismatch": (
        ERROR,
        "json width/height differ from the image file: boxes are silently misplaced",
        "fix width/height in the json",
    ),
    "exif_rotated": (
        WARNING,
        "EXIF orientation asks for a rotation that SAM3 does not apply",
        "re-export the images upright",
    ),
    # own data (kind coco): what SAM3 needs of a dataset it has never seen
    "eval_on_valid": (
        WARNING,
        "no test/: SAM3 evaluates on valid/, run.train points the config there",
        "none needed; add a test/ split to keep valid/ apart from the final evaluation",
    ),
    "no_train_split": (
        WARNING,
        "data has no train/: it cannot be fine-tuned on; run.eval still works",
        "export a train split (train/_annotations.coco.json) to fine-tune",
    ),
    "no_eval_split": (
        ERROR,
        "no test/ or valid/: SAM3's config validates and evaluates on one, and fails at start-up without it",
        "export a test (or valid) split beside train/",
    ),
    "numeric_prompt": (
        WARNING,
        "category name is only a number: a number is a poor text prompt",
        "rename the category, or pass run.train --prompts FILE",
    ),
    "background_category": (
        WARNING,
        "Roboflow background category (supercategory 'none', no boxes): it becomes a negative prompt on every image",
        "none for run.train --data, which drops it; for other tools, delete it from the json's 'categories'",
    ),
    "split_categories": (
        WARNING,
        "the evaluation split lists other categories than train/: evaluation asks "
        "prompts training never saw, or misses some",
        "export every split with the same classes",
    ),
    "partial_masks": (
        WARNING,
        "annotations without segmentation while others have one: segm training gives "
        "them an empty mask, marked invalid",
        "add their masks, or train boxes only",
    ),
}
_IMAGE_PROBLEMS = {
    "empty": "empty_image",
    "not_an_image": "not_an_image",
    "truncated": "truncated_image",
    "corrupt": "corrupt_image",
}
_NUMBER = {int, float}
_ANN_KEYS = ("id", "image_id", "category_id", "bbox", "iscrowd", "area")
_ANN_KEY_SET = frozenset(_ANN_KEYS)


@dataclass
class Issue:
    """One kind of problem in a dataset: how often, and the first few places."""

    code: str
    severity: str
    message: str
    fix: str
    count: int = 0
    examples: list[str] = field(default_factory=list)


@dataclass
class DatasetReport:
    """The verdict on one dataset; errors block a run, warnings do not."""

    name: str
    kind: str
    path: str
    images: int = 0
    annotations: int = 0
    errors: list[Issue] = field(default_factory=list)
    warnings: list[Issue] = field(default_factory=list)
    seconds: float = 0.0
    cached: bool = False
    stats: dict[str, Any] = field(default_factory=dict)  # kind coco: splits, categories, masks (own.py)

    @property
    def status(self) -> str:
        return "fail" if self.errors else "warn" if self.warnings else "pass"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "DatasetReport":
        issues = {key: [Issue(**issue) for issue in data[key]] for key in ("errors", "warnings")}
        return cls(**{**data, **issues})


@dataclass(frozen=True)
class FileSpec:
    """One annotation file and the folder its images live in, both relative to the data root."""

    json: str
    image_dir: str
    role: str  # train, valid, test, eval, fewshot or superset
    required: bool = True
    read_by_sam3: bool = True  # problems in files SAM3 never opens are only warnings


@dataclass(frozen=True)
class DatasetSpec:
    """What to check for one dataset: its folders and files, relative to the data root."""

    name: str
    kind: str
    folder: str
    top: str
    files: tuple[FileSpec, ...]
    prompt_ids: tuple[int, ...] = ()
    watch_folder: bool = True  # own data: the cache may live in the dataset folder, so only its splits count

    @property
    def watched(self) -> list[str]:
        """Everything whose size or mtime decides whether a cached verdict still holds."""
        dirs = {f.image_dir for f in self.files} | ({self.top, self.folder} if self.watch_folder else set())
        return sorted(dirs) + [f.json for f in self.files]


class Collector:
    """Gathers issues by code, with counts and the first few examples."""

    def __init__(self) -> None:
        self.issues: dict[str, Issue] = {}

    def add(self, code: str, example: str, count: int = 1, downgrade: bool = False) -> None:
        severity, message, fix = RULES[code]
        if downgrade and severity == ERROR:
            severity, message = WARNING, f"{message} [in a file SAM3 does not open]"
        key = f"{code}:{severity}"
        issue = self.issues.get(key) or self.issues.setdefault(key, Issue(code, severity, message, fix))
        issue.count += count
        if len(issue.examples) < MAX_EXAMPLES:
            issue.examples.append(example)

    def split(self) -> tuple[list[Issue], list[Issue]]:
        ordered = sorted(self.issues.values(), key=lambda issue: -issue.count)
        return [i for i in ordered if i.severity == ERROR], [i for i in ordered if i.severity == WARNING]


# --------------------------------------------------------------------------------------------------
# What to check


def dataset_names(kind: str) -> tuple[str, ...]:
    """Every dataset of a kind, in SAM3's task_index order (none for own data: own.find lists those)."""
    if kind == OWN:
        return ()
    return RF100VL_NAMES if kind == "rf100vl" else tuple(task.name for task in ODINW13)


def pick_datasets(kind: str, names: Iterable[str] | None, known: Iterable[str] | None = None) -> list[str]:
    """The named datasets (all when None), or a ConfigError naming the unknown one and a close match.
    known: the datasets there are (kind coco: the dataset folders own.find found), else SAM3's list."""
    import difflib

    if kind not in VALIDATE_KINDS:
        raise ConfigError(f"--kind {kind!r} is not one of {', '.join(VALIDATE_KINDS)}; pick one of those")
    known = dataset_names(kind) if known is None else tuple(known)
    if names is None:
        return list(known)
    picked = []
    for name in names:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            group = "roboflow" if kind == "rf100vl" else "odinw"
            names_are = f"names are those of SAM3's all_{group}_supercategories"
            if kind == OWN:
                names_are = f"the dataset folders under --root are {', '.join(known[:5])}"
            hint = f"did you mean '{close[0]}'?" if close else names_are
            raise ConfigError(f"'{name}' is not a {kind} dataset ({hint})")
        if name not in picked:
            picked.append(name)
    return picked


def dataset_spec(kind: str, name: str) -> DatasetSpec:
    """The folders and files SAM3's configs open for one dataset."""
    if kind == "rf100vl":
        files = tuple(
            FileSpec(
                f"{name}/{split}/{RF100VL_JSON}",
                f"{name}/{split}",
                split,
                required=split != "valid",
                read_by_sam3=split != "valid",
            )
            for split in RF100VL_SPLITS
        )
        return DatasetSpec(name, kind, name, name, files)
    task = ODINW_BY_NAME[name]
    train_dir = task.base if task.flat else f"{task.base}/train"
    eval_dir = task.base if task.flat else f"{task.base}/{task.eval_split}"
    files = (
        FileSpec(task.eval_json, eval_dir, "eval"),
        *(FileSpec(task.fewshot_json(seed), train_dir, "fewshot") for seed in ODINW_SEEDS),
        FileSpec(task.split_json("train"), train_dir, "superset", required=False, read_by_sam3=False),
    )
    return DatasetSpec(name, kind, task.base, task.top, files, task.prompt_ids)


# --------------------------------------------------------------------------------------------------
# One annotation file


@dataclass
class Summary:
    """What later checks need from one parsed annotation file."""

    images: dict[int, tuple[str, Any, Any]]  # id -> (file_name, width, height)
    categories: dict[int, tuple[str, Any]]  # id -> (name, supercategory)
    annotations: int
    per_category: Counter
    masks: tuple[int, int] = (0, 0)  # annotations with a usable polygon, with a usable RLE segmentation
    pairs: tuple[tuple, tuple] = ((), ())  # (image id, category id) of every annotation that counts


def load_json(path: str) -> tuple[Any, str]:
    """The parsed file and "" or (None, why it could not be parsed)."""
    with open(path, "rb") as handle:
        raw = handle.read()
    try:
        import orjson

        return orjson.loads(raw), ""
    except (ImportError, ValueError):  # no orjson; or NaN/Infinity, which it rejects and SAM3's json accepts
        pass
    try:
        return json.loads(raw), ""
    except ValueError as error:
        return None, str(error).splitlines()[0][:120]


def check_coco(data: Any, where: str, add: Callable[..., None]) -> Summary | None:
    """Every structural rule SAM3's COCO loader needs, on one parsed file; None when it is unusable."""
    if data is None:
        add("null_json", where)
        return None
    if not isinstance(data, dict):
        add("top_level", f"{where}: top level is a {type(data).__name__}")
        return None
    bad = [key for key in ("images", "annotations", "categories") if not isinstance(data.get(key), list)]
    if bad:
        add("top_level", f"{where}: {', '.join(repr(key) for key in bad)} missing or not a list")
        return None
    categories = _check_categories(data["categories"], where, add)
    image_table = _check_images(data["images"], where, add)
    image_ids, category_ids, masks = _check_annotations(data["annotations"], image_table, categories, where, add)
    pairs = (image_ids, category_ids)
    return Summary(image_table, categories, len(data["annotations"]), Counter(category_ids), masks, pairs)


def _check_categories(categories: list, where: str, add) -> dict[int, tuple[str, Any]]:
    table: dict[int, tuple[str, Any]] = {}
    if not categories:
        add("no_categories", where)
    for index, category in enumerate(categories):
        if not isinstance(category, dict):
            add("category_field", f"{where}: categories[{index}] is not an object")
            continue
        cid, name = category.get("id"), category.get("name")
        if not isinstance(name, str) or not name.strip():
            add("category_field", f"{where}: category id {cid!r} name {name!r} is blank or missing")
        if type(cid) is not int:
            add("category_field", f"{where}: categories[{index}] id {cid!r} is not an integer")
        elif cid in table:
            add("duplicate_category_id", f"{where}: category id {cid}")
        else:
            table[cid] = (name, category.get("supercategory"))
    names = Counter(name for name, _ in table.values() if isinstance(name, str))
    for name, count in names.items():
        if count > 1:
            add("duplicate_category_name", f"{where}: {name!r} used by {count} categories")
    return table


def _check_images(entries: list, where: str, add) -> dict[int, tuple[str, Any, Any]]:
    if not entries:
        add("no_images", where)
        return {}
    columns = _image_columns(entries)
    if columns is not None:
        return {image_id: (name, w, h) for image_id, name, w, h in zip(*columns, strict=True)}
    return _image_walk(entries, where, add)


def _image_walk(entries: list, where: str, add) -> dict[int, tuple[str, Any, Any]]:
    """The slow path: every rule, one image entry at a time, with an example for each problem. An entry
    with an integer id goes into the table, its name "" and its size None when those are not sound."""
    table: dict[int, tuple[str, Any, Any]] = {}
    for index, image in enumerate(entries):
        if not isinstance(image, dict):
            add("image_field", f"{where}: images[{index}] is not an object")
            continue
        image_id, name = image.get("id"), image.get("file_name")
        label = f"{where}: image id {image_id!r}"
        _check_image_fields(image, label, add)
        width, height = image.get("width"), image.get("height")
        if type(image_id) is not int:
            continue
        if image_id in table:
            add("duplicate_image_id", f"{label} ({table[image_id][0]} and {name})")
            continue
        good = type(width) is int and type(height) is int and width > 0 and height > 0
        table[image_id] = (
            name if isinstance(name, str) and name else "",
            width if good else None,
            height if good else None,
        )
    return table


def _check_image_fields(image: dict, label: str, add) -> None:
    """Every key there, an integer id, a relative file name, width and height integers > 0."""
    image_id, name = image.get("id"), image.get("file_name")
    missing = [key for key in ("id", "file_name", "width", "height") if key not in image]
    if missing:
        add("image_field", f"{label} lacks {', '.join(missing)}")
    if "id" in image and type(image_id) is not int:
        add("image_field", f"{label}: id is not an integer")
    if "file_name" in image and (not isinstance(name, str) or not name):
        add("image_field", f"{label}: file_name {name!r} is not a file name")
    elif isinstance(name, str) and name.startswith("/"):
        add("absolute_file_name", f"{label}: {name}")
    for key in ("width", "height"):
        value = image.get(key)
        if key in image and (type(value) is not int or value <= 0):
            add("image_field", f"{label}: {key} {value!r} is not an integer > 0")


def _image_columns(entries: list) -> tuple[list, list, list, list] | None:
    """ids, file names, widths, heights when every image entry is sound, else None (then check one by one)."""
    try:
        ids = [image["id"] for image in entries]
        names = [image["file_name"] for image in entries]
        widths = [image["width"] for image in entries]
        heights = [image["height"] for image in entries]
    except (KeyError, TypeError):
        return None
    if set(map(type, ids)) != {int} or len(set(ids)) != len(ids):
        return None
    if set(map(type, names)) != {str} or min(map(len, names)) == 0 or "/" in {name[0] for name in names}:
        return None
    if set(map(type, widths)) | set(map(type, heights)) != {int} or min(widths) <= 0 or min(heights) <= 0:
        return None
    return ids, names, widths, heights


def _check_annotations(annotations: list, image_table: dict, categories: dict, where: str, add) -> tuple:
    """Check every annotation; return (image ids, category ids) of those that count, and the mask counts
    (polygons, RLEs). A vectorised pass proves clean files fast; only a file it cannot clear is walked one
    annotation at a time for counts and examples."""
    try:
        columns = _annotation_columns(annotations, image_table, categories)
    except (KeyError, TypeError, ValueError, AttributeError):  # a missing key or a value of the wrong kind
        columns = None
    if columns is None:
        image_ids, category_ids, masks = _annotation_walk(annotations, image_table, categories, where, add)
    else:
        image_ids, category_ids, masks = columns
    per_image = Counter(image_ids)
    if len(image_ids) > MAX_BOXES_PER_IMAGE:
        busy = sorted(((i, n) for i, n in per_image.items() if n > MAX_BOXES_PER_IMAGE), key=lambda b: -b[1])
        for image_id, n in busy:
            add("many_boxes", f"{where}: image id {image_id} has {n} boxes")
        if busy and busy[0][1] > MAX_BOXES_PER_QUERY:
            for (image_id, category_id), n in Counter(zip(image_ids, category_ids, strict=True)).items():
                if n > MAX_BOXES_PER_QUERY:
                    place = f"{where}: {image_table[image_id][0]} (image id {image_id})"
                    name = categories[category_id][0]
                    add("crowded_query", f"{place}, category {name!r} (id {category_id}): {n} boxes")
    negatives = len(image_table) - len(per_image)
    if image_table and negatives * 2 > len(image_table):
        add("many_negatives", f"{where}: {negatives} of {len(image_table)} images have no annotations")
    return image_ids, category_ids, masks


_ANN_COLUMNS = itemgetter("id", "image_id", "category_id", "bbox", "iscrowd", "area", "segmentation")
_ANN_COLUMNS_NO_SEGMENTATION = itemgetter(*_ANN_KEYS)


def _annotation_columns(annotations: list, image_table: dict, categories: dict) -> tuple | None:
    """(image ids, category ids, (polygons, 0)) when every annotation passes every rule, else None (or an
    exception). RLE segmentations always take the walk.

    Each pass over 10^5-10^6 dicts is bound by memory, not by Python, so all keys are read in one pass and
    every rule is a C-level pass over a column: ~0.5 us per annotation instead of ~3 us for a loop."""
    if not annotations:
        return (), (), (0, 0)
    try:
        rows = list(map(_ANN_COLUMNS, annotations))
    except KeyError:  # segmentation is optional
        rows = [(*_ANN_COLUMNS_NO_SEGMENTATION(a), a.get("segmentation")) for a in annotations]
    ids, image_ids, category_ids, boxes, crowd, area, segmentations = zip(*rows, strict=True)
    if not _fields_clean(ids, image_ids, category_ids, crowd, area, image_table, categories):
        return None
    if not _boxes_clean(boxes, image_ids, image_table):
        return None
    polygons = sum(map(bool, segmentations))
    if polygons and not _polygons_clean(segmentations):
        return None
    return image_ids, category_ids, (polygons, 0)


def _fields_clean(
    ids: tuple, image_ids: tuple, category_ids: tuple, crowd: tuple, area: tuple, image_table: dict, categories: dict
) -> bool:
    """Integer ids, unique annotation ids, known images and categories, iscrowd 0 or 1, finite areas >= 0."""
    if set(map(type, ids)) | set(map(type, image_ids)) | set(map(type, category_ids)) != {int}:
        return False
    if len(set(ids)) != len(ids) or not set(image_ids) <= image_table.keys():
        return False
    if not set(category_ids) <= categories.keys() or not set(crowd) <= {0, 1}:
        return False
    return math.isfinite(sum(area)) and min(area) >= 0  # sum() also rejects anything that is not a number


def _boxes_clean(boxes: tuple, image_ids: tuple, image_table: dict) -> bool:
    """Every bbox four finite numbers with a positive size, inside its image within EDGE_TOLERANCE."""
    if set(map(type, boxes)) != {list} or set(map(len, boxes)) != {4}:
        return False
    xs, ys, ws, hs = zip(*boxes, strict=True)
    if not math.isfinite(sum(xs) + sum(ys) + sum(ws) + sum(hs)):
        return False
    if min(ws) <= 0 or min(hs) <= 0 or min(xs) < -EDGE_TOLERANCE or min(ys) < -EDGE_TOLERANCE:
        return False
    for starts, lengths, axis in ((xs, ws, 1), (ys, hs, 2)):
        limits = {image_id: entry[axis] for image_id, entry in image_table.items()}
        if None in limits.values():
            return False
        limit = list(map(limits.__getitem__, image_ids))  # the image width (or height) of each box
        if max(map(sub, map(add, starts, lengths), limit)) > EDGE_TOLERANCE or max(map(sub, starts, limit)) >= 0:
            return False
        if min(map(add, starts, lengths)) <= 0:
            return False
    return True


def _polygons_clean(segmentations: tuple) -> bool:
    """True when every segmentation is empty or a list of polygons of >= 6 numbers in pairs."""
    if not set(map(type, segmentations)) <= {list, type(None)}:
        return False  # RLE dicts and anything odd: checked one by one
    polygons = list(chain.from_iterable(filter(None, segmentations)))
    if set(map(type, polygons)) != {list}:
        return False
    lengths = set(map(len, polygons))
    if min(lengths) < 6 or any(length % 2 for length in lengths):
        return False
    return math.isfinite(sum(map(sum, polygons)))


def _annotation_walk(annotations: list, image_table: dict, categories: dict, where: str, add) -> tuple:
    """The slow path: every rule, one annotation at a time, with an example for each problem."""
    seen: set[int] = set()
    image_ids, category_ids = [], []
    masks = Counter()
    for index, a in enumerate(annotations):
        if not isinstance(a, dict):
            add("ann_field", f"{where}: annotations[{index}] is not an object")
            continue
        label = f"{where}: annotation id {a.get('id', f'? (annotations[{index}])')!r}"
        _check_ann_fields(a, label, add)
        if type(a.get("id")) is int:
            if a["id"] in seen:
                add("duplicate_ann_id", label)
            seen.add(a["id"])
        image_id, category_id = a.get("image_id"), a.get("category_id")
        image = image_table.get(image_id) if type(image_id) is int else None
        if type(image_id) is int and image is None:
            add("unknown_image", f"{label}: image_id {image_id}")
        if type(category_id) is int and category_id not in categories:
            add("unknown_category", f"{label}: category_id {category_id}")
        elif type(category_id) is int and image is not None:
            image_ids.append(image_id)
            category_ids.append(category_id)
        if "bbox" in a:
            _check_box(a["bbox"], image, label, add)
        segmentation = a.get("segmentation")
        if segmentation and _mask_counts(segmentation, image, label, add):
            masks[type(segmentation) is dict] += 1
    return image_ids, category_ids, (masks[False], masks[True])


def _check_ann_fields(a: dict, label: str, add) -> None:
    """Every key there, integer ids, iscrowd 0 or 1, an area that is a number >= 0."""
    if not a.keys() >= _ANN_KEY_SET:  # a C-level test first: this runs once per annotation
        add("ann_field", f"{label} lacks {', '.join(key for key in _ANN_KEYS if key not in a)}")
    for key in ("id", "image_id", "category_id"):
        if key in a and type(a[key]) is not int:
            add("ann_field", f"{label}: {key} {a[key]!r} is not an integer")
    if "iscrowd" in a and a["iscrowd"] not in (0, 1):
        add("ann_field", f"{label}: iscrowd {a['iscrowd']!r} is not 0 or 1")
    if "area" in a and (type(a["area"]) not in _NUMBER or not a["area"] >= 0):
        add("ann_field", f"{label}: area {a['area']!r} is not a number >= 0")


def _mask_counts(segmentation: Any, image: tuple | None, label: str, add) -> bool:
    """Report what is wrong with a segmentation; True when it still counts as a mask (sound, or an odd polygon)."""
    problem = _segmentation_problem(segmentation, image)
    if problem is None:
        return True
    add(problem[0], f"{label}: {problem[1]}")
    return problem[0] == "odd_polygon"


def _check_box(box: Any, image: tuple | None, label: str, add) -> None:
    if not isinstance(box, list) or len(box) != 4 or not all(type(v) in _NUMBER and math.isfinite(v) for v in box):
        add("bbox_format", f"{label}: bbox {box!r}")
        return
    x, y, w, h = box
    if w <= 0 or h <= 0:
        add("bbox_size", f"{label}: bbox {box}")
        return
    if image is None or image[1] is None:
        return
    width, height = image[1], image[2]
    if x >= width or y >= height or x + w <= 0 or y + h <= 0:
        add("bbox_outside", f"{label}: bbox {box} in a {width}x{height} image")
    elif (
        x < -EDGE_TOLERANCE or y < -EDGE_TOLERANCE or x + w > width + EDGE_TOLERANCE or y + h > height + EDGE_TOLERANCE
    ):
        add("bbox_clipped", f"{label}: bbox {box} in a {width}x{height} image")


def _segmentation_problem(segmentation: Any, image: tuple | None) -> tuple[str, str] | None:
    """(code, detail) for a segmentation SAM3's ann_to_rle would choke on, else None."""
    if isinstance(segmentation, list):
        for polygon in segmentation:
            if not isinstance(polygon, list) or not all(type(v) in _NUMBER for v in polygon):
                return "segmentation", f"polygon {str(polygon)[:60]} is not a list of numbers"
            if len(polygon) < 6:
                return "segmentation", f"polygon with {len(polygon)} numbers (needs >= 6)"
            if len(polygon) % 2:
                return "odd_polygon", f"polygon with {len(polygon)} numbers"
        return None
    if isinstance(segmentation, dict):
        if "counts" not in segmentation:
            return "segmentation", "RLE without 'counts'"
        size = segmentation.get("size")
        if image is not None and image[1] is not None and size != [image[2], image[1]]:
            return "segmentation", f"RLE size {size!r} is not [height, width] = [{image[2]}, {image[1]}]"
        return None
    return "segmentation", f"segmentation of type {type(segmentation).__name__}"


def _check_root_class(categories: dict, per_category: Counter, where: str, add) -> None:
    """The raw-export root class: supercategory 'none', no boxes, and named as another category's parent."""
    parents = {supercategory for _, supercategory in categories.values()}
    for cid, (name, supercategory) in categories.items():
        if supercategory == "none" and not per_category[cid] and name in parents:
            add("root_class", f"{where}: category id {cid} {name!r}")


# --------------------------------------------------------------------------------------------------
# One dataset


def check_dataset(root: str, spec: DatasetSpec, deep: bool = False) -> DatasetReport:
    """Check one dataset's layout, annotation files and image files; runs in a worker process."""
    import gc

    started = time.perf_counter()
    collecting = gc.isenabled()
    gc.disable()  # parsed json has no reference cycles; collections while it grows cost about a third
    try:
        report = _check_dataset(root, spec, deep)
    finally:
        if collecting:
            gc.enable()
    report.seconds = round(time.perf_counter() - started, 3)
    return report


def _check_dataset(root: str, spec: DatasetSpec, deep: bool) -> DatasetReport:
    found = Collector()
    report = DatasetReport(spec.name, spec.kind, spec.folder)
    base = os.path.join(root, spec.folder)
    if not os.path.isdir(base):
        example = f"{spec.folder}/"
        if os.path.isdir(os.path.join(root, spec.top, spec.top)):
            example += f" ({spec.top}/{spec.top} exists: the zip was extracted one level too deep)"
        found.add("missing_dataset", example)
        report.errors, report.warnings = found.split()
        return report
    if os.path.exists(os.path.join(root, spec.top, SYNTH_MARKER)):
        found.add("synthetic", f"{spec.top}/{SYNTH_MARKER}")
    listings = _scan_folders(root, spec, found)
    summaries: dict[FileSpec, Summary] = {}
    headers: dict[str, images.Header | str] = {}
    for file in spec.files:
        summary = _check_file(root, file, spec, found)
        if summary is None:
            continue
        summaries[file] = summary
        _check_image_files(root, file, spec, summary, listings, headers, found, deep)
    _check_dataset_rules(spec, summaries, found)
    if spec.kind == OWN:
        from . import own

        report.stats = own.check_rules(spec, summaries, found)
    report.images = len(headers)
    report.annotations = sum(s.annotations for f, s in summaries.items() if f.role != "fewshot")
    report.errors, report.warnings = found.split()
    return report


def _scan_folders(root: str, spec: DatasetSpec, found: Collector) -> dict[str, set[str] | None]:
    """List every folder once: file names for the existence check, and leftover downloads (not in own data,
    where an export's zip beside the images is no broken download of ours)."""
    listings: dict[str, set[str] | None] = {}
    own_data = spec.kind == OWN
    for folder in sorted({f.image_dir for f in spec.files} | (set() if own_data else {spec.top, spec.folder})):
        try:
            with os.scandir(os.path.join(root, folder)) as entries:
                names = {entry.name for entry in entries}
        except OSError:
            listings[folder] = None
            continue
        listings[folder] = names
        for name in () if own_data else sorted(names):
            if name.endswith(PARTIAL_SUFFIXES) or name == "roboflow.zip":
                found.add("partial_download", f"{folder}/{name}")
    return listings


def _check_file(root: str, file: FileSpec, spec: DatasetSpec, found: Collector) -> Summary | None:
    path = os.path.join(root, file.json)
    downgrade = not file.read_by_sam3

    def add(code: str, example: str, count: int = 1) -> None:
        found.add(code, example, count, downgrade)

    if not os.path.isfile(path):
        if file.required:
            found.add("missing_file", file.json)
        else:
            found.add("missing_superset" if file.role == "superset" else "missing_split", file.json)
        return None
    data, why = load_json(path)
    where = file.json[len(spec.folder) + 1 :]
    if why:
        add("invalid_json", f"{where}: {why}")
        return None
    return check_coco(data, where, add)


def _check_image_files(
    root: str,
    file: FileSpec,
    spec: DatasetSpec,
    summary: Summary,
    listings: dict,
    headers: dict,
    found: Collector,
    deep: bool,
) -> None:
    """Every image the file lists: present, a sound JPEG/PNG whose header size equals the json's.
    An image listed by several files is read and reported once, for the first file that lists it."""
    folder = os.path.join(root, file.image_dir)
    listing = listings.get(file.image_dir) or set()
    prefix = file.image_dir[len(spec.folder) :].strip("/")
    downgrade = not file.read_by_sam3
    read_header = images.read_header
    for name, width, height in summary.images.values():
        if not name:
            continue
        path = f"{folder}/{name}" if name in listing else os.path.join(folder, name)
        if path in headers:
            continue
        if name in listing or os.path.isfile(path):
            try:
                header = headers[path] = read_header(path, deep)
            except OSError as error:
                header = headers[path] = f"unreadable: {error.strerror}"
        else:
            header = headers[path] = "missing"
        if (
            type(header) is not str
            and not header.problem
            and header.orientation <= 1
            and ((header.width, header.height) == (width, height) or header.format == "other" or width is None)
        ):
            continue  # sound: the common case, without building a name for a report
        where = f"{prefix}/{name}" if prefix else name
        _report_image(header, width, height, where, found, downgrade)


def _report_image(
    header: images.Header | str, width: int | None, height: int | None, where: str, found: Collector, downgrade: bool
) -> None:
    """The one problem of an image that is not sound: missing, unreadable, damaged, another size, rotated."""
    if isinstance(header, str):
        if header == "missing":
            found.add("missing_image", where, 1, downgrade)
        else:
            found.add("unreadable_image", f"{where}: {header}", 1, downgrade)
    elif header.problem:
        found.add(_IMAGE_PROBLEMS[header.problem], where, 1, downgrade)
    elif header.format != "other" and width is not None and (header.width, header.height) != (width, height):
        found.add("size_mismatch", f"{where}: json {width}x{height}, file {header.width}x{header.height}", 1, downgrade)
    elif header.orientation > 1:
        found.add("exif_rotated", f"{where}: orientation {header.orientation}", 1, downgrade)


def evaluation_file(spec: DatasetSpec) -> FileSpec | None:
    """The annotation file SAM3 evaluates on: RF100-VL's test, ODinW's eval, own data's test (else valid)."""
    return next((f for f in spec.files if f.read_by_sam3 and f.role in ("test", "eval", "valid", "val")), None)


def is_background(summary: Summary, category_id: int) -> bool:
    """A Roboflow background category: supercategory 'none' and no boxes in this file."""
    return summary.categories[category_id][1] == "none" and not summary.per_category[category_id]


def _check_dataset_rules(spec: DatasetSpec, summaries: dict[FileSpec, Summary], found: Collector) -> None:
    """Rules across the files of a dataset: evaluation coverage, split agreement, prompts, few-shot subsets."""
    by_role = {file.role: (file, summary) for file, summary in summaries.items() if file.role != "fewshot"}
    file = evaluation_file(spec)
    if file in summaries:
        summary, where = summaries[file], file.json[len(spec.folder) + 1 :]
        if summary.annotations == 0:
            found.add("empty_eval", where)
        else:
            own_background = spec.kind == OWN  # own.py reports a background category on its own
            absent = [
                summary.categories[cid][0]
                for cid in summary.categories
                if not summary.per_category[cid] and not (own_background and is_background(summary, cid))
            ]
            if absent:
                found.add("category_missing_in_eval", f"{where}: {', '.join(map(str, absent[:5]))}", len(absent))
    if spec.kind != OWN:  # own data: a background category is a warning of its own (own.py)
        for file, summary in summaries.items():
            add = partial(found.add, downgrade=not file.read_by_sam3)
            _check_root_class(summary.categories, summary.per_category, file.json[len(spec.folder) + 1 :], add)
    if spec.kind == "rf100vl" and "train" in by_role:
        reference = {cid: name for cid, (name, _) in by_role["train"][1].categories.items()}
        for role in ("valid", "test"):
            if role in by_role and {c: n for c, (n, _) in by_role[role][1].categories.items()} != reference:
                found.add("category_mismatch", f"{role}/{RF100VL_JSON}")
    if spec.kind == "odinw":
        _check_odinw_rules(spec, summaries, found)


def _check_odinw_rules(spec: DatasetSpec, summaries: dict[FileSpec, Summary], found: Collector) -> None:
    superset = next((s for f, s in summaries.items() if f.role == "superset"), None)
    for file, summary in summaries.items():
        where = file.json[len(spec.folder) + 1 :]
        ids = set(summary.categories)
        if 0 in ids:
            found.add("category_zero", where, 1, not file.read_by_sam3)
        if spec.prompt_ids and file.read_by_sam3:
            reindexed = {cid + 1 for cid in ids} if 0 in ids else ids
            if reindexed != set(spec.prompt_ids):
                found.add(
                    "prompt_ids",
                    f"{where}: ids {sorted(ids)} become {sorted(reindexed)}, prompts need {list(spec.prompt_ids)}",
                )
        if file.role == "fewshot" and superset is not None:
            strangers = [i for i, entry in summary.images.items() if superset.images.get(i, (None,))[0] != entry[0]]
            if strangers:
                found.add(
                    "fewshot_not_subset", f"{where}: image id {strangers[0]} is not in the train split", len(strangers)
                )
            if {c: n for c, (n, _) in summary.categories.items()} != {
                c: n for c, (n, _) in superset.categories.items()
            }:
                found.add("fewshot_not_subset", f"{where}: categories differ from the train split")


# --------------------------------------------------------------------------------------------------
# A whole root, with the cache and the worker pool


def validate_root(
    kind: str,
    root: str | os.PathLike,
    datasets: Iterable[str] | None = None,
    deep: bool = False,
    workers: int | None = None,
    use_cache: bool = True,
) -> list[DatasetReport]:
    """Check every dataset of a kind under root (or the named ones); the pre-flight entry point.

    Results are cached in <root>/.sam3-validate-cache.json, keyed on the size and mtime of each json
    file and of each folder: adding, removing or renaming an image changes its folder's mtime, but an
    image rewritten in place under the same name is only re-read with use_cache=False. As in git's
    "racily clean" rule, a dataset changed in the last SETTLE_SECONDS is checked but not cached, so a
    filesystem with coarse timestamps cannot hide a change made right after a check.
    Kind coco (own data): root is one dataset folder or a folder of them (own.validate).
    """
    if kind == OWN:
        from . import own

        return own.validate(root, datasets, deep, workers, use_cache)
    root = os.path.abspath(root)
    names = pick_datasets(kind, datasets)
    if not os.path.isdir(root):
        raise ToolError(f"{root} is not a folder; run `inv data.fetch`, or point --root at the {kind} data")
    specs = [dataset_spec(kind, name) for name in names]
    if not any(os.path.isdir(os.path.join(root, spec.folder)) for spec in specs):
        raise ToolError(f"no {kind} dataset found under {root}{_root_hint(root, specs)}")
    ordered = check_specs(kind, root, specs, deep, workers, cache_dir=root, use_cache=use_cache)
    extra = root_report(kind, root) if datasets is None else None
    return ordered + ([extra] if extra is not None else [])


def check_specs(
    kind: str,
    root: str,
    specs: list[DatasetSpec],
    deep: bool = False,
    workers: int | None = None,
    cache_dir: str | None = None,
    use_cache: bool = True,
) -> list[DatasetReport]:
    """check_dataset for each spec (paths relative to root), in spec order. Verdicts are cached in
    <cache_dir>/CACHE_NAME; with no cache_dir nothing is cached or written; use_cache=False re-reads
    everything and refreshes the cache."""
    cache = None if cache_dir is None else _Cache(cache_dir, deep, None if use_cache else {})
    settled = time.time_ns() - SETTLE_SECONDS * 10**9
    reports: dict[str, DatasetReport] = {}
    todo = []
    for spec in specs:
        key = _fingerprint(root, spec) if cache is not None else []
        hit = cache.get(kind, spec.name, key) if cache is not None else None
        if hit is not None:
            reports[spec.name] = hit
        else:
            todo.append((spec, key))
    for (spec, key), report in zip(todo, _run_all(root, [spec for spec, _ in todo], deep, workers), strict=True):
        reports[spec.name] = report
        if cache is not None and all(len(entry) == 1 or entry[2] < settled for entry in key):
            cache.put(kind, spec.name, key, report)
    if todo and cache is not None:
        cache.save()
    return [reports[spec.name] for spec in specs]


def _root_hint(root: str, specs: list[DatasetSpec]) -> str:
    """Where the datasets seem to be instead, when the root holds none of them."""
    try:
        subfolders = [entry.path for entry in os.scandir(root) if entry.is_dir()]
    except OSError:
        subfolders = []
    for folder in sorted(subfolders):
        if any(os.path.isdir(os.path.join(folder, spec.folder)) for spec in specs):
            return f"; they seem to be under {folder}: pass --root {folder}"
    return "; run `inv data.fetch`, or point --root at the folder that holds one folder per dataset"


def root_report(kind: str, root: str, expected: Iterable[str] | None = None) -> DatasetReport | None:
    """Folders that are not datasets of this kind (or not in expected), and archives, at the top of the root."""
    if expected is None:
        expected = RF100VL_NAMES if kind == "rf100vl" else ODINW_ZIPS
    expected = set(expected)
    found = Collector()
    with os.scandir(root) as entries:
        for entry in sorted(entries, key=lambda e: e.name):
            if entry.name.startswith("."):
                continue
            if entry.is_dir() and entry.name not in expected:
                found.add("unknown_folder", entry.name)
            elif not entry.is_dir() and entry.name.endswith(PARTIAL_SUFFIXES):
                found.add("leftover_zip", entry.name)
    if not found.issues:
        return None
    report = DatasetReport("(root)", kind, ".")
    report.errors, report.warnings = found.split()
    return report


def _fingerprint(root: str, spec: DatasetSpec) -> list:
    """[path, size, mtime_ns] of every watched folder and file; [path] when absent."""
    key = []
    for relative in spec.watched:
        try:
            st = os.stat(os.path.join(root, relative))
            key.append([relative, st.st_size, st.st_mtime_ns])
        except OSError:
            key.append([relative])
    return key


def available_cpus() -> int:
    """CPUs this process may run on (cgroup and affinity aware where the OS says)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _run_all(root: str, specs: list[DatasetSpec], deep: bool, workers: int | None) -> list[DatasetReport]:
    """check_dataset for each spec, largest first across a pool of processes; results in spec order."""
    count = min(workers or available_cpus(), len(specs))
    if count <= 1:
        return [check_dataset(root, spec, deep) for spec in specs]
    import multiprocessing

    weights = [sum(_size(os.path.join(root, f.json)) for f in spec.files) for spec in specs]
    order = sorted(range(len(specs)), key=lambda i: -weights[i])
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else None)
    with ProcessPoolExecutor(max_workers=count, mp_context=context) as pool:
        futures = {i: pool.submit(check_dataset, root, specs[i], deep) for i in order}
        return [futures[i].result() for i in range(len(specs))]


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _validator_version() -> str:
    """A digest of this module, own.py and images.py: a changed rule invalidates every cached verdict."""
    digest = hashlib.sha1()
    for module in (__file__, os.path.join(os.path.dirname(__file__), "own.py"), images.__file__):
        with open(module, "rb") as handle:
            digest.update(handle.read())
    return digest.hexdigest()[:16]


class _Cache:
    """Verdicts per dataset, in one JSON file at the data root, written atomically."""

    def __init__(self, root: str, deep: bool, entries: dict | None = None) -> None:
        self.path = Path(root) / CACHE_NAME
        self.mode = "deep" if deep else "headers"
        self.version = _validator_version()
        self.entries = self._load() if entries is None else entries
        self.changed = False

    def _load(self) -> dict:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict) or data.get("validator") != self.version:
            return {}
        return data.get("entries") if isinstance(data.get("entries"), dict) else {}

    def get(self, kind: str, name: str, key: list) -> DatasetReport | None:
        entry = self.entries.get(f"{kind}:{self.mode}:{name}")
        if not isinstance(entry, dict) or entry.get("key") != key:
            return None
        try:
            report = DatasetReport.from_dict(entry["report"])
        except (KeyError, TypeError):
            return None
        report.cached = True
        return report

    def put(self, kind: str, name: str, key: list, report: DatasetReport) -> None:
        self.entries[f"{kind}:{self.mode}:{name}"] = {"key": key, "report": asdict(report)}

    def save(self) -> None:
        """Write the cache; a read-only data root just goes without one."""
        with contextlib.suppress(OSError):
            atomic_write_text(self.path, json.dumps({"validator": self.version, "entries": self.entries}))


# --------------------------------------------------------------------------------------------------
# Presentation


SUMMARY_COLUMNS = ("dataset", "status", "images", "boxes", "errors", "warnings", "time", "first issue")
OWN_COLUMNS = ("eval split", "categories", "masks", "max/img")  # after "boxes", for kind coco


def summary_columns(kind: str) -> tuple[str, ...]:
    """The summary table's header: kind coco adds its splits, prompts, masks and crowding."""
    return SUMMARY_COLUMNS[:4] + OWN_COLUMNS + SUMMARY_COLUMNS[4:] if kind == OWN else SUMMARY_COLUMNS


def summary_rows(reports: list[DatasetReport], kind: str = "") -> list[tuple]:
    """One row per dataset for the summary table (columns: summary_columns(kind))."""
    rows = []
    for r in reports:
        first = (r.errors or r.warnings or [None])[0]
        note = f"{first.message} ({first.count})" if first else ""
        rows.append(
            (
                r.name,
                r.status,
                r.images,
                r.annotations,
                sum(i.count for i in r.errors),
                sum(i.count for i in r.warnings),
                "cache" if r.cached else f"{r.seconds:.2f}s",
                note,
            )
        )
        if kind == OWN:
            rows[-1] = rows[-1][:4] + _own_cells(r.stats) + rows[-1][4:]
    return rows


def _own_cells(stats: dict[str, Any]) -> tuple:
    """eval split, categories, masks (annotations with one / all), max/img (one category on one image)."""
    if not stats:
        return ("", "", "", "")
    with_mask, total = stats["mask_coverage"]
    most = stats["max_per_image"]
    crowded = f"{most} > {MAX_BOXES_PER_QUERY}" if most > MAX_BOXES_PER_QUERY else str(most)
    return (stats["eval_split"] or "none", stats["categories"], f"{with_mask}/{total}", crowded)


def issue_rows(reports: list[DatasetReport]) -> list[tuple]:
    """One row per problem kind per dataset, errors first, with the first example and the fix."""
    rows = []
    for r in reports:
        for issue in r.errors + r.warnings:
            status = "fail" if issue.severity == ERROR else "warn"
            rows.append(
                (r.name, status, issue.count, issue.message, issue.examples[0] if issue.examples else "", issue.fix)
            )
    return sorted(rows, key=lambda row: row[1] != "fail")


def as_dict(kind: str, root: str, reports: list[DatasetReport], deep: bool, seconds: float) -> dict[str, Any]:
    """The --json payload."""
    failed = [r.name for r in reports if r.errors]
    return {
        "kind": kind,
        "root": str(root),
        "deep": deep,
        "seconds": round(seconds, 3),
        "status": "fail" if failed else "warn" if any(r.warnings for r in reports) else "pass",
        "failed": failed,
        "datasets": [{**asdict(r), "status": r.status} for r in reports],
    }
