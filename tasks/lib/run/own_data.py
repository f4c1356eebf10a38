"""run.train --data / run.eval --data: SAM3's RF100-VL fine-tuning config pointed at a user's own COCO
dataset, every key the user does not set left as SAM3 wrote it.

What changes (checked against sam3 0.1.4's loaders and Trainer):
- the data root, a one-entry dataset list (the folder's name), every training image (num_images: null)
  and checkpoints saved (SAM3's shipped config saves none);
- the evaluation split: test/, or valid/ when there is no test/ (SAM3 reads only test/);
- prompts: SAM3 prompts with `categories[].name` verbatim. Phrases from --prompts, and the dropping of a
  Roboflow background category (a negative prompt on every image otherwise), go into copies of the
  annotation files in the run's folder, so nothing reaches the `eval()` that SAM3's COCO_FROM_JSON
  applies to its `prompts` string;
- masks (--task segm): tasks/lib/run/segmentation.py;
- --smoke: evaluation on the first SMOKE_EVAL_IMAGES images of the evaluation split (a subset file),
  as training is shrunk to a few images.
"""

import json
from dataclasses import dataclass, field
from pathlib import Path

from ..core.errors import ConfigError
from ..data import own
from . import sam3_config

SAM3_CONFIG = "roboflow_v100_full_ft_100_images"  # SAM3's RF100-VL fine-tuning config
TASKS = ("bbox", "segm")
SMOKE_EVAL_IMAGES = 4
DATA_FOLDER = "data"  # <run>/data/<split>.json: annotation copies a run needs
VAL_DATASET = "trainer.data.val.dataset"
TRAIN_DATASET = "trainer.data.train.dataset"
METERS = "trainer.meters.val.roboflow100"
SPLIT_DIR = "${paths.roboflow_vl_100_root}/${roboflow_train.supercategory}/"


@dataclass
class Prepared:
    """The config for the dataset, the annotation copies to write beside it, and what to tell the user."""

    config: dict
    files: dict[Path, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


@dataclass
class Annotations:
    """One split's annotation file, parsed once."""

    split: own.Split
    data: dict

    @classmethod
    def read(cls, split: own.Split) -> "Annotations":
        try:
            data = json.loads(split.json.read_bytes())
        except (OSError, ValueError) as error:
            raise ConfigError(
                f"{split.json}: not a readable COCO json ({error}); run inv data.validate --kind coco "
                f"--root {split.images.parent}"
            ) from None
        if not isinstance(data, dict) or not all(isinstance(data.get(k), list) for k in ("images", "categories")):
            raise ConfigError(
                f"{split.json}: not a COCO json (no images/categories lists); export the dataset in COCO format"
            )
        return cls(split, data)

    def category_ids_with_boxes(self) -> set:
        return {ann.get("category_id") for ann in self.data.get("annotations") or []}

    def masks(self) -> int:
        """Annotations with a polygon or RLE segmentation."""
        return sum(1 for ann in self.data.get("annotations") or [] if own.usable_segmentation(ann.get("segmentation")))


def read_prompts(path: str | None, categories: list[tuple[int, str]]) -> dict[int, str]:
    """--prompts FILE: a JSON or YAML mapping of category id to phrase; every id must be a category's."""
    if not path:
        return {}
    import yaml

    file = Path(path).expanduser()
    try:
        data = yaml.safe_load(file.read_text())
    except OSError as error:
        raise ConfigError(f"--prompts {path}: cannot read it ({error.strerror}); give a JSON or YAML file") from None
    except yaml.YAMLError:
        raise ConfigError(f'--prompts {path}: not JSON or YAML; write e.g. {{"1": "forklift"}}') from None
    if not isinstance(data, dict) or not data:
        raise ConfigError(f'--prompts {path}: not a mapping of category id to phrase; write e.g. {{"1": "forklift"}}')
    known = {cid for cid, _ in categories}
    prompts, unknown = {}, []
    for key, phrase in data.items():
        cid = int(key) if str(key).lstrip("-").isdigit() else key
        if cid not in known:
            unknown.append(str(key))
        elif not isinstance(phrase, str) or not phrase.strip() or "${" in phrase:
            raise ConfigError(f"--prompts {path}: id {key} has {phrase!r}, which cannot be a prompt; give a phrase")
        else:
            prompts[cid] = phrase.strip()
    if unknown:
        raise ConfigError(
            f"--prompts {path}: no category has id {', '.join(unknown)} (ids: "
            f"{', '.join(map(str, sorted(known)))}); use the ids of the dataset's categories"
        )
    return prompts


def background_ids(categories: list[dict], used: set) -> list[int]:
    """Roboflow's background category: supercategory 'none' and no annotation in any split."""
    return [c["id"] for c in categories if c.get("supercategory") == "none" and c["id"] not in used]


def prepare(config: dict, dataset: own.OwnDataset, request, run_dir: Path) -> Prepared:
    """SAM3's config for this dataset (see the module's docstring); a ConfigError for what cannot run."""
    task = request.task or "bbox"
    if task not in TASKS:
        raise ConfigError(f"--task {task!r} is not bbox or segm; pick one of those")
    evaluation = dataset.evaluation
    if evaluation is None:
        raise ConfigError(
            f"--data {dataset.folder}: no test/ or valid/ split to evaluate on; add one "
            f"(test/{own.ANNOTATIONS} with its images)"
        )
    if not request.evaluate and dataset.train is None:
        raise ConfigError(
            f"--data {dataset.folder}: no train/ split to fine-tune on; add train/{own.ANNOTATIONS}, "
            "or evaluate it with inv run.eval --data"
        )
    splits = [s for s in (dataset.train, evaluation) if s is not None and not (request.evaluate and s.name == "train")]
    files = {split.name: Annotations.read(split) for split in splits}
    for name, annotations in files.items():
        if not annotations.data["images"]:
            raise ConfigError(
                f"--data {dataset.folder}: {name}/{own.ANNOTATIONS} lists no images; export the "
                f"split with its images, or remove {name}/"
            )
    reference = files.get("train") or files[evaluation.name]
    used = set().union(*(f.category_ids_with_boxes() for f in files.values()))
    dropped = background_ids(reference.data["categories"], used)
    categories = [(c["id"], c["name"]) for c in reference.data["categories"] if c["id"] not in dropped]
    prompts = {cid: name for cid, name in categories} | read_prompts(request.prompts, categories)
    _refuse_bad_prompts(prompts, request.prompts)
    if task == "segm":
        _refuse_missing_masks(dataset, files, evaluation.name)
    prepared = Prepared(_pointed(config, dataset, request, task))
    for name, annotations in files.items():
        smoke = request.smoke and name == evaluation.name
        _use_split(prepared, annotations, name == evaluation.name, run_dir, prompts, dropped, smoke)
    prepared.notes += _notes(dataset, evaluation, dropped, reference, request)
    sam3_config.set_key(
        prepared.config,
        "sam3_tasks.own_data",
        {
            "folder": str(dataset.folder),
            "task": task,
            "eval_split": evaluation.name,
            "prompts": {str(k): v for k, v in prompts.items()},
            "dropped_categories": dropped,
        },
        create=True,
    )
    return prepared


def _refuse_missing_masks(dataset: own.OwnDataset, files: dict, evaluation: str) -> None:
    """--task segm needs polygons or RLE: some in training, and on every object of the evaluation split
    (pycocotools' mask evaluation fails on an object without one)."""
    if not any(f.masks() for f in files.values()):
        raise ConfigError(
            f"--task segm: {dataset.name} has boxes only (no polygon or RLE segmentation); train "
            "boxes with --task bbox, or export the dataset with masks"
        )
    annotations = files[evaluation].data.get("annotations") or []
    without = len(annotations) - files[evaluation].masks()
    if without:
        raise ConfigError(
            f"--task segm: {without} of {len(annotations)} objects in {evaluation}/ have no polygon or RLE, which "
            "SAM3's mask evaluation cannot score; add them, or train boxes with --task bbox"
        )


def _refuse_bad_prompts(prompts: dict, prompts_file: str | None) -> None:
    for cid, phrase in prompts.items():
        if not isinstance(phrase, str) or not phrase.strip():
            raise ConfigError(
                f"category id {cid} has the name {phrase!r}, which SAM3 would use as its text prompt; "
                "name it in the json, or give it a phrase in --prompts FILE"
            )
        if "${" in phrase:
            raise ConfigError(
                f"category id {cid}: {phrase!r} holds '${{', which SAM3's config would read as an "
                f"interpolation; rename it, or give it a phrase in --prompts FILE"
            )


def _pointed(config: dict, dataset: own.OwnDataset, request, task: str) -> dict:
    """The keys that point SAM3's RF100-VL config at one dataset of the user's."""
    import copy

    config = copy.deepcopy(config)
    for key in ("paths.roboflow_vl_100_root", "roboflow_train.supercategory", f"{VAL_DATASET}.ann_file", METERS):
        if not _has_key(config, key):
            raise ConfigError(
                f"--data needs a config shaped as SAM3's RF100-VL one ({SAM3_CONFIG}); this one has "
                f"no {key}: drop --config, or give a config with that key"
            )
    sam3_config.set_key(config, "paths.roboflow_vl_100_root", str(dataset.root))
    config["all_roboflow_supercategories"] = [dataset.name]
    sam3_config.set_key(config, "submitit.job_array.num_tasks", 1, create=True)
    sam3_config.set_key(config, "trainer.skip_saving_ckpts", False, create=True)
    if request.evaluate:
        sam3_config.set_key(config, "trainer.mode", "val")
        if "eval_mode" in config["trainer"].get("model", {}):
            sam3_config.set_key(config, "trainer.model.eval_mode", True)
    else:
        sam3_config.set_key(config, "roboflow_train.num_images", None, create=True)  # every training image
    if task == "segm":
        from . import segmentation

        config = segmentation.enable(config)
    return config


def _has_key(config: dict, dotted: str) -> bool:
    node = config
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def _use_split(
    prepared: Prepared,
    annotations: Annotations,
    evaluates: bool,
    run_dir: Path,
    prompts: dict,
    dropped: list,
    smoke: bool,
) -> None:
    """Point the train or the val dataset (and, for the evaluation split, every evaluator) at this split:
    the user's own file, or a copy in the run's folder when prompts, categories or a smoke subset differ."""
    split = annotations.split
    data = annotations.data
    renamed = any(c["name"] != prompts.get(c["id"], c["name"]) for c in data["categories"])
    ann_file = str(split.json)
    if renamed or dropped or smoke:
        data = _copy(data, prompts, dropped, SMOKE_EVAL_IMAGES if smoke else None)
        path = run_dir / DATA_FOLDER / f"{split.name}{'-smoke' if smoke else ''}.json"
        prepared.files[path] = json.dumps(data)
        ann_file = str(path)
    key = VAL_DATASET if evaluates else TRAIN_DATASET
    sam3_config.set_key(prepared.config, f"{key}.img_folder", f"{SPLIT_DIR}{split.name}/")
    sam3_config.set_key(prepared.config, f"{key}.ann_file", ann_file)
    if evaluates:
        for meter in (sam3_config.get_key(prepared.config, METERS) or {}).values():
            for evaluator in meter.get("pred_file_evaluators") or []:
                evaluator["gt_path"] = ann_file


def _copy(data: dict, prompts: dict, dropped: list, images: int | None) -> dict:
    """The annotation file with categories renamed to their prompts, background ones dropped, and (smoke) only
    the first `images` images and their annotations."""
    out = dict(data)
    out["categories"] = [
        {**c, "name": prompts.get(c["id"], c["name"])} for c in data["categories"] if c["id"] not in dropped
    ]
    if images is not None:
        out["images"] = data["images"][:images]
        kept = {image["id"] for image in out["images"]}
        out["annotations"] = [a for a in data.get("annotations") or [] if a.get("image_id") in kept]
    return out


def _notes(dataset: own.OwnDataset, evaluation: own.Split, dropped: list, reference: Annotations, request) -> list:
    notes = []
    if evaluation.name != "test":
        notes.append(f"{dataset.name} has no test/: SAM3 evaluates on valid/ (the config points there)")
    if dropped:
        names = {c["id"]: c["name"] for c in reference.data["categories"]}
        shown = ", ".join(f"{cid} {names[cid]!r}" for cid in dropped)
        notes.append(
            f"{dataset.name}: background category {shown} dropped (no annotations; SAM3 would ask for it "
            "as a negative prompt on every image)"
        )
    if request.smoke:
        notes.append(f"smoke: evaluation on the first {SMOKE_EVAL_IMAGES} images of {evaluation.name}/")
    return notes


RF100VL_TEST = "${paths.roboflow_vl_100_root}/${roboflow_train.supercategory}/test/_annotations.coco.json"


def shrink_rf100vl_evaluation(config: dict, root: str, datasets: list, run_dir: Path) -> Prepared:
    """--smoke on an RF100-VL config: each dataset evaluated on the first SMOKE_EVAL_IMAGES images of its
    test/ (a subset file per dataset in the run's folder), as training is shrunk to a few images. Left as
    it is, with a note, when the config reads another file or a dataset's test json is not there yet."""
    prepared = Prepared(config)
    if not _has_key(config, f"{VAL_DATASET}.ann_file") or not _has_key(config, METERS):
        return prepared
    if sam3_config.get_key(config, f"{VAL_DATASET}.ann_file") != RF100VL_TEST:
        return prepared
    for dataset in datasets:
        source = Path(root) / str(dataset) / "test" / own.ANNOTATIONS
        try:
            data = json.loads(source.read_bytes())
        except (OSError, ValueError):
            prepared.notes.append(f"smoke: {source} is not there yet (or not json), so evaluation is not shrunk")
            return Prepared(config)
        subset = _copy(data, {}, [], SMOKE_EVAL_IMAGES)
        prepared.files[run_dir / DATA_FOLDER / str(dataset) / "test-smoke.json"] = json.dumps(subset)
    ann_file = f"{run_dir / DATA_FOLDER}/${{roboflow_train.supercategory}}/test-smoke.json"
    sam3_config.set_key(config, f"{VAL_DATASET}.ann_file", ann_file)
    for meter in (sam3_config.get_key(config, METERS) or {}).values():
        for evaluator in meter.get("pred_file_evaluators") or []:
            evaluator["gt_path"] = ann_file
    prepared.notes.append(f"smoke: evaluation on the first {SMOKE_EVAL_IMAGES} images of each dataset's test/")
    return prepared
