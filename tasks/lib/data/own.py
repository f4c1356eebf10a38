"""A user's own COCO dataset: where its splits are, which one SAM3 evaluates on, its prompts, and its check.

The layout is Roboflow's COCO export, the one SAM3's RF100-VL configs read:
`<name>/{train,valid,test}/_annotations.coco.json`, each image path relative to its split folder.
SAM3 trains on `train/` and evaluates on `test/`; a dataset with no `test/` evaluates on `valid/`
(run.train points the config there and says so). Explicit files (`--train FILE --val FILE`) make a
dataset too: its images are relative to each json's folder unless given.

Checking (data.validate --kind coco, run.train's pre-flight) runs coco.py's rules on every split, plus
those of check_rules here: which split evaluates, category names as text prompts, masks, crowding.
Entry points: check(folder) for one dataset, validate(root) for a folder of them, validate_files(...).
"""

import contextlib
import json
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from ..core.errors import ConfigError
from . import coco

ANNOTATIONS = "_annotations.coco.json"
SPLITS = ("train", "valid", "test")
EVAL_ORDER = ("test", "valid")  # SAM3's RF100-VL configs evaluate on test/; without one, valid/
EXPLICIT_EVAL = "val"  # the split --val FILE makes
_NUMERIC = re.compile(r"[\d\s.,:;#+\-_/]*\d[\d\s.,:;#+\-_/]*")  # "0", "12", "3.5", "#7": no words to prompt with


@dataclass(frozen=True)
class Split:
    """One annotation file and the folder its image paths are relative to."""

    name: str
    json: Path
    images: Path


@dataclass(frozen=True)
class OwnDataset:
    """A dataset folder in Roboflow's COCO layout (or the folder explicit files share): its name is the folder's."""

    folder: Path
    splits: dict[str, Split] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.folder.name

    @property
    def root(self) -> Path:
        return self.folder.parent

    @property
    def train(self) -> Split | None:
        return self.splits.get("train")

    @property
    def evaluation(self) -> Split | None:
        """The split SAM3 evaluates on: test/, else valid/ (or the --val file)."""
        order = (*EVAL_ORDER, EXPLICIT_EVAL)
        return next((self.splits[name] for name in order if name in self.splits), None)


def is_dataset(folder: Path) -> bool:
    """Whether a folder holds at least one split in Roboflow's COCO layout."""
    return any((folder / split / ANNOTATIONS).is_file() for split in SPLITS)


def layout(folder: str | os.PathLike, flag: str = "--data") -> OwnDataset:
    """The dataset in a folder, or a ConfigError saying what the folder lacks and how to fix it."""
    path = Path(os.path.expanduser(str(folder))).resolve()
    if not path.is_dir():
        raise ConfigError(f"{flag} {folder}: no such folder; give the dataset folder that holds train/ and test/")
    splits = {
        name: Split(name, path / name / ANNOTATIONS, path / name)
        for name in SPLITS
        if (path / name / ANNOTATIONS).is_file()
    }
    if not splits:
        nested = sorted(child.name for child in path.iterdir() if child.is_dir() and is_dataset(child))
        hint = (
            f"it holds datasets ({', '.join(nested[:3])}): pass {flag} {path / nested[0]}"
            if nested
            else f"put the COCO export's train/{ANNOTATIONS} and test/{ANNOTATIONS} (or valid/) in it"
        )
        raise ConfigError(f"{flag} {folder}: not a COCO dataset in Roboflow's layout; {hint}")
    return OwnDataset(path, splits)


def find(root: str | os.PathLike, flag: str = "--root") -> list[OwnDataset]:
    """The dataset root is, or the datasets directly under it (sorted by name); a ConfigError when none."""
    path = _folder(root, flag, "a dataset folder (train/, test/ or valid/ inside) or a folder of them")
    if is_dataset(path):
        return [layout(path, flag)]
    try:
        children = sorted(c for c in path.iterdir() if c.is_dir() and not c.name.startswith(".") and is_dataset(c))
    except OSError as error:
        raise ConfigError(f"{flag} {root}: cannot list it ({error.strerror}); check its permissions") from None
    if not children:
        raise ConfigError(
            f"{flag} {root}: not a COCO dataset in Roboflow's layout, nor a folder of them; {_find_hint(path, flag)}"
        )
    return [layout(child, flag) for child in children]


def _find_hint(path: Path, flag: str) -> str:
    """Where a dataset seems to be instead (one level further down), else what a dataset folder holds."""
    for child in sorted(c for c in path.iterdir() if c.is_dir()):
        with contextlib.suppress(OSError):  # a folder we may not list holds nothing we can check
            if any(grandchild.is_dir() and is_dataset(grandchild) for grandchild in child.iterdir()):
                return f"datasets are one level down: pass {flag} {child}"
    return f"a dataset folder holds train/{ANNOTATIONS} and test/ (or valid/) with the images beside each json"


def from_files(
    train: str | None, val: str | None, train_images: str | None = None, val_images: str | None = None
) -> OwnDataset:
    """A dataset from explicit annotation files (--train, --val), each with its image folder (default: the
    json's own folder). Its folder, and name, is the deepest folder that holds all of them."""
    given = (_explicit("train", train, train_images), _explicit(EXPLICIT_EVAL, val, val_images))
    splits = {split.name: split for split in given if split is not None}
    if not splits:
        raise ConfigError("pass --train FILE and/or --val FILE (COCO annotation json), or --root DIR")
    base = Path(os.path.commonpath([str(p) for s in splits.values() for p in (s.json.parent, s.images)]))
    if base.parent == base:
        raise ConfigError(
            f"the annotation files and image folders share no folder but {base}; put them under one dataset folder"
        )
    return OwnDataset(base, splits)


def _explicit(name: str, file: str | None, image_dir: str | None) -> Split | None:
    """One --train/--val file and its images (default: the json's folder); None when not given."""
    flag = "--train" if name == "train" else "--val"
    if not file:
        if image_dir:
            raise ConfigError(f"{flag}-images {image_dir} needs {flag} FILE, the annotation json of those images")
        return None
    path = _file(file, flag)
    images = _folder(image_dir, f"{flag}-images", "the folder file_name is relative to") if image_dir else path.parent
    return Split(name, path, images)


def _folder(path: str | os.PathLike, flag: str, what: str) -> Path:
    resolved = Path(os.path.expanduser(str(path))).resolve()
    if not resolved.is_dir():
        raise ConfigError(f"{flag} {path}: no such folder; give {what}")
    return resolved


def _file(path: str | os.PathLike, flag: str) -> Path:
    resolved = Path(os.path.expanduser(str(path))).resolve()
    if resolved.is_dir():
        raise ConfigError(
            f"{flag} {path} is a folder; give its annotation json, or pass --root {path} for a dataset folder"
        )
    if not resolved.is_file():
        raise ConfigError(f"{flag} {path}: no such file; give the COCO annotation json (e.g. train/{ANNOTATIONS})")
    return resolved


def mask_coverage(split: Split) -> tuple[int, int]:
    """(annotations with a usable polygon or RLE segmentation, all annotations) of one split."""
    data = json.loads(split.json.read_bytes())
    annotations = data.get("annotations") or []
    usable = sum(1 for a in annotations if isinstance(a, dict) and usable_segmentation(a.get("segmentation")))
    return usable, len(annotations)


def has_masks(dataset: OwnDataset) -> bool:
    """Whether --task segm has masks to learn and score: the train and evaluation splits each have some."""
    splits = [split for split in (dataset.train, dataset.evaluation) if split is not None]
    return bool(splits) and all(mask_coverage(split)[0] > 0 for split in splits)


def usable_segmentation(segmentation: Any) -> bool:
    """A polygon or RLE that data.validate finds sound (what SAM3 can turn into a mask)."""
    if not segmentation:
        return False
    problem = coco._segmentation_problem(segmentation, None)
    return problem is None or problem[0] == "odd_polygon"


# --------------------------------------------------------------------------------------------------
# Checking: coco.py's machinery on own data


def spec(dataset: OwnDataset) -> coco.DatasetSpec:
    """What coco.check_dataset reads, relative to dataset.root. Only train and the evaluation split are read
    by SAM3; problems elsewhere (valid/ beside test/) are warnings, as for RF100-VL."""
    evaluation = dataset.evaluation
    files = tuple(
        coco.FileSpec(
            os.path.relpath(split.json, dataset.root),
            os.path.relpath(split.images, dataset.root),
            name,
            read_by_sam3=name == "train" or split is evaluation,
        )
        for name, split in dataset.splits.items()
    )
    return coco.DatasetSpec(dataset.name, coco.OWN, dataset.name, dataset.name, files, watch_folder=False)


def check(folder: str | os.PathLike, deep: bool = False, use_cache: bool = True) -> coco.DatasetReport:
    """The verdict on one dataset folder (run.train's pre-flight): report.errors block a run; report.stats
    says which split evaluates, the categories, mask coverage and crowding. Cached in the folder."""
    dataset = layout(folder)
    (report,) = coco.check_specs(coco.OWN, str(dataset.root), [spec(dataset)], deep, 1, str(dataset.folder), use_cache)
    return report


def validate(
    root: str | os.PathLike,
    datasets: list[str] | None = None,
    deep: bool = False,
    workers: int | None = None,
    use_cache: bool = True,
) -> list[coco.DatasetReport]:
    """Every dataset root is or holds (or those named), cached in <root>/.sam3-validate-cache.json; a root
    holding datasets also gets a (root) report on the folders in it that are not datasets."""
    base = _folder(root, "--root", "a dataset folder (train/, test/ or valid/ inside) or a folder of them")
    found = {dataset.name: dataset for dataset in find(base)}
    picked = [found[name] for name in coco.pick_datasets(coco.OWN, datasets, found)]
    parent = str(next(iter(found.values())).root)
    reports = coco.check_specs(coco.OWN, parent, [spec(d) for d in picked], deep, workers, str(base), use_cache)
    holds_datasets = str(base) == parent
    extra = coco.root_report(coco.OWN, str(base), found) if holds_datasets and datasets is None else None
    return reports + ([extra] if extra is not None else [])


def validate_files(
    train: str | None,
    val: str | None,
    train_images: str | None = None,
    val_images: str | None = None,
    deep: bool = False,
) -> list[coco.DatasetReport]:
    """Explicit annotation files as one dataset. Nothing is cached: no file goes into the user's folders."""
    dataset = from_files(train, val, train_images, val_images)
    return coco.check_specs(coco.OWN, str(dataset.root), [spec(dataset)], deep, 1, cache_dir=None)


def pick_kind(kind: str | None, train: str | None, val: str | None) -> str:
    """data.validate's --kind: coco when only --train/--val say what to check, else rf100vl by default."""
    explicit = bool(train or val)
    kind = kind or (coco.OWN if explicit else "rf100vl")
    if kind not in coco.VALIDATE_KINDS:
        raise ConfigError(f"--kind {kind!r} is not one of {', '.join(coco.VALIDATE_KINDS)}; pick one of those")
    if explicit and kind != coco.OWN:
        raise ConfigError(f"--train/--val name your own COCO files: use them with --kind coco, not --kind {kind}")
    return kind


@dataclass(frozen=True)
class Request:
    """data.validate --kind coco's flags."""

    root: str | None = None
    datasets: list[str] | None = None
    train: str | None = None
    val: str | None = None
    train_images: str | None = None
    val_images: str | None = None


def validate_request(request: Request, deep: bool, workers: int | None, use_cache: bool) -> tuple:
    """data.validate --kind coco: (the folder checked, reports), or a one-line ConfigError for bad flags."""
    files = (request.train, request.val, request.train_images, request.val_images)
    if request.train or request.val:
        if request.root or request.datasets:
            raise ConfigError("--train/--val check explicit files; drop --root/--datasets (or drop --train/--val)")
        return str(from_files(*files).folder), validate_files(*files, deep=deep)
    if request.train_images or request.val_images:
        raise ConfigError("--train-images/--val-images go with --train FILE/--val FILE; pass those too")
    if not request.root:
        raise ConfigError(
            "--kind coco has no configured data root: pass --root DIR (a dataset folder in Roboflow's COCO layout, "
            "or a folder of them), or --train FILE --val FILE"
        )
    reports = validate(request.root, request.datasets, deep, workers, use_cache)
    return str(_folder(request.root, "--root", "a dataset folder")), reports


# --------------------------------------------------------------------------------------------------
# Own data's rules, run by coco.check_dataset in its worker


def check_rules(spec: coco.DatasetSpec, summaries: dict, found: coco.Collector) -> dict[str, Any]:
    """Which split evaluates, category names as prompts, masks; returns the report's stats."""
    train = next((file for file in spec.files if file.role == "train"), None)
    evaluation = coco.evaluation_file(spec)
    if evaluation is None:
        found.add("no_eval_split", f"{spec.folder}: only {', '.join(f.role for f in spec.files)} (or pass --val FILE)")
    elif evaluation.role == "valid":
        found.add("eval_on_valid", _where(spec, evaluation))
    if train is None:
        found.add("no_train_split", f"{spec.folder}: only {', '.join(f.role for f in spec.files)}")
    read = {file: summary for file, summary in summaries.items() if file.read_by_sam3}
    any_masks = any(sum(summary.masks) for summary in read.values())
    for file, summary in summaries.items():
        add = partial(found.add, downgrade=not file.read_by_sam3)
        _check_prompts(summary, _where(spec, file), add)
        missing = summary.annotations - sum(summary.masks)
        if missing > 0 and (any_masks or sum(summary.masks)):
            add("partial_masks", f"{_where(spec, file)}: {missing} of {summary.annotations} have none", missing)
    if train in summaries and evaluation in summaries and _names(summaries[train]) != _names(summaries[evaluation]):
        found.add("split_categories", f"{_where(spec, evaluation)} vs {_where(spec, train)}")
    return _stats(spec, train, evaluation, read)


def _where(spec: coco.DatasetSpec, file: coco.FileSpec) -> str:
    return file.json[len(spec.folder) + 1 :]


def _names(summary: coco.Summary) -> dict[int, str]:
    return {cid: name for cid, (name, _) in summary.categories.items()}


def _check_prompts(summary: coco.Summary, where: str, add) -> None:
    """A category's name is its text prompt, verbatim: numbers say nothing, a background class is asked everywhere.
    Blank names (category_field) and duplicates (duplicate_category_name) are coco.py's rules."""
    for cid, (name, _) in summary.categories.items():
        if isinstance(name, str) and _NUMERIC.fullmatch(name):
            add("numeric_prompt", f"{where}: category id {cid} {name!r}")
        if coco.is_background(summary, cid):
            add("background_category", f"{where}: category id {cid} {name!r}")


def _stats(spec: coco.DatasetSpec, train, evaluation, read: dict) -> dict[str, Any]:
    polygons = sum(summary.masks[0] for summary in read.values())
    rle = sum(summary.masks[1] for summary in read.values())
    most, where = _densest(spec, read)
    return {
        "train_split": train.role if train else None,
        "eval_split": evaluation.role if evaluation else None,
        "categories": len({cid for summary in read.values() for cid in summary.categories}),
        "polygons": polygons,
        "rle": rle,
        "mask_coverage": [polygons + rle, sum(summary.annotations for summary in read.values())],
        "max_per_image": most,
        "max_at": where,
        "max_per_image_limit": coco.MAX_BOXES_PER_QUERY,
    }


def _densest(spec: coco.DatasetSpec, read: dict) -> tuple[int, str]:
    """The most boxes of one category on one image, and where: SAM3 drops a query above MAX_BOXES_PER_QUERY."""
    most, where = 0, ""
    for file, summary in read.items():
        if not summary.pairs[0]:
            continue
        (image_id, cid), count = Counter(zip(*summary.pairs, strict=True)).most_common(1)[0]
        if count > most:
            name = summary.categories[cid][0]
            most, where = count, f"{_where(spec, file)}: {summary.images[image_id][0]}, category {name!r}"
    return most, where
