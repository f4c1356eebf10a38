"""run.predict: where the predictions, the ground truth and the images of a page come from, and the page
made from them (prediction_page.py) with its PNG contact sheets (drawn by plugins/sam3_predict.py with
torchvision in the training venv), written together into one folder by a rename.

Two sources of predictions:
- a run's evaluation, read without running a model: SAM3's PredictionDumper writes
  `<task experiment_dir>/dumps/**/coco_predictions_{bbox,segm}.json` (a COCO results list; ids those of the
  ground-truth json its evaluator read, which the task's config_resolved.yaml names, with the images'
  folder); the page goes in `<task experiment_dir>/predictions/`;
- a checkpoint in SAM3's loader layout (`{"model": {"detector.…": tensor}}`, run.export's) run on a folder
  of images (--images, with --prompts) or on a COCO dataset's evaluation split (--data, with its ground
  truth); the plugin writes the same dump files beside the page.
"""

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.errors import ConfigError, ToolError
from ..core.paths import atomic_write_text
from . import prediction_page as page

PLUGIN = Path(__file__).with_name("plugins") / "sam3_predict.py"
PLUGIN_USER_ERROR = 65  # sam3_predict.USER_ERROR: a one-line message with the fix
FOLDER = "predictions"
PAGE = "predictions.html"
SUMMARY = "summary.json"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")
DUMP_FIX = "run an evaluation (inv run.eval) or a training with validation (inv run.train) first"


@dataclass
class Request:
    name: str | None = None
    checkpoint: str | None = None
    images: str | None = None
    data: str | None = None
    prompts: str | None = None
    dataset: str | None = None
    cell: str | None = None
    threshold: float = 0.5
    max_images: int = 200
    out: str | None = None


@dataclass
class Job:
    """One page to make: where its predictions, ground truth and images are, and where it goes."""

    label: str
    out_dir: Path
    image_root: Path
    gt: dict[str, Any]  # COCO: images, categories, annotations ([] without ground truth)
    dumps: dict[str, Path] = field(default_factory=dict)  # iou type -> SAM3's dump file
    has_gt: bool = True
    run: str | None = None
    run_dir: Path | None = None
    infer: dict[str, Any] | None = None  # --checkpoint: what the plugin needs to run the model


def parse_threshold(value: Any) -> float:
    try:
        threshold = float(0.5 if value is None else value)
    except (TypeError, ValueError):
        threshold = -1.0
    if not 0.0 <= threshold <= 1.0:
        raise ConfigError(f"--threshold {value} is not a score from 0 to 1; pass e.g. --threshold 0.5")
    return threshold


def parse_max_images(value: Any) -> int:
    try:
        count = int(200 if value is None else value)
    except (TypeError, ValueError):
        count = 0
    if count < 1:
        raise ConfigError(f"--max-images {value} is not a positive whole number; pass e.g. --max-images 200")
    return count


def _read_json(path: Path, what: str, fix: str) -> Any:
    try:
        return json.loads(path.read_bytes())
    except FileNotFoundError:
        raise ConfigError(f"{what} {path} does not exist; {fix}") from None
    except (OSError, ValueError) as error:
        raise ConfigError(
            f"{what} {path} cannot be read ({getattr(error, 'strerror', None) or error}); {fix}"
        ) from None


def _read_yaml(path: Path) -> dict[str, Any]:
    import yaml

    try:
        loaded = yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except (OSError, yaml.YAMLError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def lookup(config: Any, dotted: str) -> Any:
    for key in dotted.split("."):
        config = config.get(key) if isinstance(config, dict) else None
    return config


# --- a run's evaluation ---------------------------------------------------------------------------------


def run_jobs(record: dict[str, Any], request: Request) -> tuple[list[Job], list[str]]:
    """A page per task of the run (of --dataset, --cell) that has SAM3's dumps; notes on those without."""
    from .status import label, select

    jobs, notes = [], []
    for entry in select(record, request.dataset, request.cell):
        found = dumps_of(Path(entry["experiment_dir"]), entry["dataset"])
        where = label(record, entry)
        if not found:
            notes.append(f"{where}: no prediction dumps under {Path(entry['experiment_dir']) / 'dumps'}")
            continue
        jobs.append(task_job(record, entry, where, found, request.images))
    if not jobs:
        raise ConfigError(f"run {record['name']}: {'; '.join(notes)}; {DUMP_FIX}")
    return jobs, notes


def dumps_of(experiment_dir: Path, dataset: str | None) -> dict[str, Path]:
    """SAM3's dump files of one task by iou type (segm holds boxes and masks); of the folder named after the
    dataset when several folders hold some."""
    files = sorted((experiment_dir / "dumps").glob("**/coco_predictions_*.json"))
    kinds = {"bbox", "segm"}
    files = [f for f in files if f.stem.rsplit("_", 1)[-1] in kinds]
    folders = list(dict.fromkeys(f.parent for f in files))
    if len(folders) > 1:
        folders = [f for f in folders if f.name == dataset] or folders[:1]
    return {f.stem.rsplit("_", 1)[-1]: f for f in files if folders and f.parent == folders[0]}


def task_job(
    record: dict[str, Any], entry: dict[str, Any], where: str, dumps: dict[str, Path], images: str | None
) -> Job:
    """The ground truth and images folder the task's evaluator read (its config_resolved.yaml)."""
    folder = Path(entry["experiment_dir"])
    config = _read_yaml(folder / "config_resolved.yaml")
    if not config:
        raise ConfigError(
            f"{where}: {folder / 'config_resolved.yaml'} is missing or unreadable, so the ground truth "
            "its dumps refer to is unknown; run the evaluation again (inv run.eval)"
        )
    meter = meter_of(config, next(iter(dumps.values())))
    gt = read_gt(lookup(meter, "pred_file_evaluators") or [], where)
    root = images_folder(images) if images else Path(str(lookup(config, "trainer.data.val.dataset.img_folder")))
    if not root.is_dir():
        raise ConfigError(f"{where}: the images folder {root} does not exist here; pass --images DIR where they are")
    return Job(where, folder / FOLDER, root, gt, dumps, run=record["name"], run_dir=Path(record["run_dir"]))


def meter_of(config: dict[str, Any], dump: Path) -> dict[str, Any]:
    """The PredictionDumper meter that wrote a dump file: same iou type, and its dump_dir's path below dumps/."""
    meters = [
        m
        for group in (lookup(config, "trainer.meters.val") or {}).values()
        if isinstance(group, dict)
        for m in group.values()
        if isinstance(m, dict) and m.get("dump_dir")
    ]
    tail = dump.parent.parts[dump.parent.parts.index("dumps") :] if "dumps" in dump.parent.parts else ()
    for meter in meters:
        parts = Path(str(meter["dump_dir"])).parts
        if tail and parts[-len(tail) :] == tail:
            return meter
    if not meters:
        raise ConfigError(
            f"{dump}: the task's config_resolved.yaml has no PredictionDumper meter naming its ground "
            "truth; run the evaluation again with SAM3's RF100-VL or ODinW config"
        )
    return meters[0]


def read_gt(evaluators: list, where: str) -> dict[str, Any]:
    """The ground-truth json the evaluator read: gt_path, or (ODinW) SAM3's reindex_coco_to_temp of a file."""
    node = evaluators[0].get("gt_path") if evaluators and isinstance(evaluators[0], dict) else None
    reindex = isinstance(node, dict)
    path = node.get("input_json_path") if reindex else node
    if not path:
        raise ConfigError(f"{where}: its config names no gt_path for the dumps; run the evaluation again")
    gt = _read_json(Path(str(path)), "the ground truth", "restore it, or run the evaluation again")
    if not isinstance(gt, dict) or not isinstance(gt.get("images"), list):
        raise ConfigError(f"{where}: {path} is not a COCO json (no images list); restore the dataset's annotations")
    return reindex_like_sam3(gt) if reindex else gt


def reindex_like_sam3(gt: dict[str, Any]) -> dict[str, Any]:
    """sam3.eval.coco_reindex.reindex_coco_to_temp's ids: images, categories and annotations numbered from 0
    shifted by 1."""
    shift_images = any(i.get("id") == 0 for i in gt["images"])
    shift_cats = any(c.get("id") == 0 for c in gt.get("categories") or [])
    shift_anns = any(a.get("id") == 0 for a in gt.get("annotations") or [])
    images = [_shifted(i, id=shift_images) for i in gt["images"]]
    categories = [_shifted(c, id=shift_cats) for c in gt.get("categories") or []]
    annotations = [
        _shifted(a, id=shift_anns, image_id=shift_images, category_id=shift_cats) for a in gt.get("annotations") or []
    ]
    return dict(gt, images=images, categories=categories, annotations=annotations)


def _shifted(entry: dict[str, Any], **shifts: bool) -> dict[str, Any]:
    return dict(entry, **{key: entry[key] + 1 for key, shift in shifts.items() if shift and key in entry})


# --- a checkpoint run on images -------------------------------------------------------------------------


def checkpoint_job(request: Request, model: dict[str, Any]) -> Job:
    """--checkpoint FILE with --images DIR and --prompts, or with --data DIR (its evaluation split's ground
    truth; prompts its category names, or --prompts FILE as run.train reads it)."""
    checkpoint = Path(request.checkpoint).expanduser().resolve()
    if not checkpoint.is_file():
        raise ConfigError(f"--checkpoint {request.checkpoint}: no such file; give the file inv run.export wrote")
    if bool(request.images) == bool(request.data):
        raise ConfigError("--checkpoint needs the images to run on: --images DIR (with --prompts) or --data DIR")
    if request.images:
        root, has_gt = images_folder(request.images), False
        prompts = [[i, phrase] for i, phrase in enumerate(parse_prompts(request.prompts), 1)]
        gt = {"images": [], "categories": [{"id": i, "name": phrase} for i, phrase in prompts], "annotations": []}
    else:
        root, gt = dataset_split(request.data)
        has_gt = True
        prompts = dataset_prompts(gt, request.prompts)
    out = Path(request.out).expanduser() if request.out else checkpoint.parent / f"{FOLDER}-{root.name}"
    listing = sorted(p.name for p in root.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES) if not has_gt else None
    infer = {"checkpoint": str(checkpoint), "prompts": prompts, "listing": listing, **model}
    return Job(root.name, out.resolve(), root, gt, has_gt=has_gt, infer=infer)


def images_folder(value: str) -> Path:
    root = Path(value).expanduser().resolve()
    if not root.is_dir():
        raise ConfigError(f"--images {value}: no such folder; give the folder that holds the images")
    if not any(p.suffix.lower() in IMAGE_SUFFIXES for p in root.iterdir()):
        raise ConfigError(
            f"--images {value}: no images in it ({', '.join(IMAGE_SUFFIXES)}); give the folder that holds them"
        )
    return root


def parse_prompts(value: str | None) -> list[str]:
    phrases = [p.strip() for p in (value or "").split(",")]
    if not value or not all(phrases):
        raise ConfigError('--images needs --prompts, the phrases to detect, comma-separated: --prompts "bolt,nut"')
    return phrases


def dataset_split(value: str) -> tuple[Path, dict[str, Any]]:
    """The evaluation split of a dataset in Roboflow's COCO layout: its folder and annotations."""
    from ..data import own

    split = own.layout(value).evaluation
    if split is None:
        raise ConfigError(f"--data {value}: no test/ or valid/ split to predict on; add one")
    gt = _read_json(split.json, "the annotations", "export the dataset in COCO format")
    if not isinstance(gt, dict) or not isinstance(gt.get("images"), list) or not gt["images"]:
        raise ConfigError(f"--data {value}: {split.json} lists no images; export the dataset in COCO format")
    return split.images, gt


def dataset_prompts(gt: dict[str, Any], prompts_file: str | None) -> list[list]:
    """[category id, phrase] per category SAM3 would prompt (a Roboflow background category left out)."""
    from .own_data import background_ids, read_prompts

    categories = gt.get("categories") or []
    used = {a.get("category_id") for a in gt.get("annotations") or []}
    dropped = set(background_ids(categories, used))
    phrases = read_prompts(prompts_file, [(c["id"], c["name"]) for c in categories])
    return [[c["id"], phrases.get(c["id"], c["name"])] for c in categories if c["id"] not in dropped]


def model_spec(record: dict[str, Any] | None, request: Request, bpe: Path | None) -> dict[str, Any]:
    """How the plugin builds the model: with --name, the run's own model (its task's resolved trainer.model,
    e.g. the CPU demo's reduced one) at its resolution; else SAM3's full-size builder, at 1008 px."""
    if record is None:
        if bpe is None:
            raise ToolError("SAM3's BPE vocabulary is not in the training env; run inv env.sam3")
        return {"model": None, "bpe": str(bpe), "resolution": 1008}
    from .status import select

    entry = select(record, request.dataset, request.cell)[0]
    config = _read_yaml(Path(entry["experiment_dir"]) / "config_resolved.yaml")
    model = lookup(config, "trainer.model")
    if not isinstance(model, dict) or "_target_" not in model:
        raise ConfigError(
            f"run {record['name']}: {entry['experiment_dir']}/config_resolved.yaml has no trainer.model "
            "to build; leave --name out to run SAM3's full-size model"
        )
    return {"model": model, "bpe": None, "resolution": int(lookup(config, "scratch.resolution") or 1008)}


# --- the page, the sheets and the summary of one job ----------------------------------------------------


def assemble(job: Job) -> tuple[list[dict[str, Any]], list[str]]:
    """Every image of the ground truth with its boxes (and polygons) and its predictions, highest score
    first (segm dumps: boxes and masks); notes on what was left out."""
    kind = "segm" if "segm" in job.dumps else "bbox"
    dump = _read_json(dump_read(job), "SAM3's prediction dump", DUMP_FIX)
    if not isinstance(dump, list):
        raise ConfigError(f"{dump_read(job)} is not a COCO results list (SAM3's dump); {DUMP_FIX}")
    images, by_id = [], {}
    for entry in job.gt["images"]:
        image = {
            "id": entry["id"],
            "file": str(entry["file_name"]),
            "width": entry.get("width") or 0,
            "height": entry.get("height") or 0,
            "gt": [],
            "poly": [],
            "pred": [],
            "rle": [],
        }
        images.append(by_id.setdefault(entry["id"], image))
    for ann in job.gt.get("annotations") or []:
        if ann.get("image_id") in by_id and _box(ann.get("bbox")):
            by_id[ann["image_id"]]["gt"].append([ann["category_id"], *ann["bbox"]])
            segmentation = ann.get("segmentation")
            by_id[ann["image_id"]]["poly"].append(segmentation if isinstance(segmentation, list) else None)
    skipped = 0
    for pred in dump:
        image = by_id.get(pred.get("image_id")) if isinstance(pred, dict) else None
        if image is None or not _box(pred.get("bbox")) or not isinstance(pred.get("score"), int | float):
            skipped += 1
            continue
        image["pred"].append([pred.get("category_id"), pred["score"], *pred["bbox"]])
        image["rle"].append(pred.get("segmentation") if kind == "segm" else None)
    for image in images:
        _sort_predictions(image, kind)
    notes = (
        [
            f"{skipped} prediction(s) of {dump_read(job).name} left out: no image of that id in the ground truth, "
            "or no box or score"
        ]
        if skipped
        else []
    )
    return images, notes


def dump_read(job: Job) -> Path:
    """The dump a page is drawn from: the segm one (boxes and masks) when there is one."""
    return job.dumps.get("segm") or job.dumps["bbox"]


def _box(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 4 and all(isinstance(v, int | float) for v in value)


def _sort_predictions(image: dict[str, Any], kind: str) -> None:
    order = sorted(range(len(image["pred"])), key=lambda k: -image["pred"][k][1])
    image["pred"] = [image["pred"][k] for k in order]
    image["rle"] = [image["rle"][k] for k in order] if kind == "segm" else None
    if not any(image["poly"] or []) or kind != "segm":
        image["poly"] = None


def make(job: Job, threshold: float, max_images: int, python: Path) -> dict[str, Any]:
    """Write the job's folder: the page, the sheets, summary.json (and, for a checkpoint, its dumps), built
    under a temporary name beside it and renamed into place; the summary."""
    job.out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = job.out_dir.with_name(f".{job.out_dir.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        skipped = infer(job, tmp, python) if job.infer else []
        images, notes = assemble(job)
        summary = _write(job, images, threshold, max_images, tmp, python)
        summary["notes"] = skipped + notes
        atomic_write_text(tmp / SUMMARY, json.dumps(summary, indent=1) + "\n")
        shutil.rmtree(tmp / ".copies", ignore_errors=True)  # embedded in the page
        _swap(tmp, job.out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return summary


def _write(
    job: Job, images: list[dict[str, Any]], threshold: float, max_images: int, tmp: Path, python: Path
) -> dict[str, Any]:
    """The sheets (the plugin) and the page of the max_images worst images; what summary.json holds."""
    categories = {c["id"]: c["name"] for c in job.gt.get("categories") or []}
    counts = page.tally(images, categories, threshold)
    order = (
        page.worst_first(images, counts["images"])
        if job.has_gt
        else sorted(range(len(images)), key=lambda i: images[i]["file"])
    )
    shown = order[:max_images]
    paths = {i: _image_path(job.image_root, images[i]["file"]) for i in shown}
    if shown and not any(paths.values()):
        raise ConfigError(
            f"{job.label}: none of the images its ground truth lists is in {job.image_root}; pass --images DIR where "
            "they are"
        )
    copies = {i: tmp / ".copies" / f"{n}.jpg" for n, i in enumerate(shown) if paths[i] and not _embeddable(paths[i])}
    sheets = draw(job, images, shown, paths, copies, categories, threshold, counts, tmp, python)
    sources = {i: page.image_source(paths[i], copies.get(i)) for i in shown}
    how = f"{len(shown)} of {len(images)} images, {'worst first' if job.has_gt else 'by file name'}"
    title = f"{job.label}: predictions" + (f" of run {job.run}" if job.run else "")
    meta = {
        "title": title,
        "has_gt": job.has_gt,
        "categories": categories,
        "source": f"{how}; predictions from {dump_read(job)}",
    }
    atomic_write_text(tmp / PAGE, page.render(page.page_data(meta, images, shown, sources, threshold)))
    return {
        "label": job.label,
        "run": job.run,
        "page": str(job.out_dir / PAGE),
        "threshold": threshold,
        "sheets": [str(job.out_dir / name) for name in sheets],
        "images": len(images),
        "shown": len(shown),
        "has_gt": job.has_gt,
        "masks": "segm" in job.dumps,
        "order": [images[i]["file"] for i in shown],
        "per_image": [dict(counts["images"][i], file=images[i]["file"]) for i in shown],
        "categories": [
            {"id": cid, "name": categories.get(cid, f"category {cid}"), **row}
            for cid, row in counts["categories"].items()
        ],
        "missing_images": [images[i]["file"] for i in shown if paths[i] is None],
    }


def _image_path(root: Path, file: str) -> Path | None:
    path = root / file
    return path if path.is_file() else None


def _embeddable(path: Path) -> bool:
    if path.stat().st_size > page.EMBED_AS_IS:
        return False
    with path.open("rb") as handle:
        return page.embeddable(handle.read(12)) is not None


def _swap(tmp: Path, final: Path) -> None:
    """Put the finished folder in place of the old one (kept aside until the rename is done)."""
    old = final.with_name(f".{final.name}.old-{os.getpid()}")
    if final.exists():
        os.rename(final, old)
    os.rename(tmp, final)
    shutil.rmtree(old, ignore_errors=True)


# --- the plugin: drawing (torchvision) and running a checkpoint ----------------------------------------


def draw(
    job: Job,
    images: list[dict[str, Any]],
    shown: list[int],
    paths: dict,
    copies: dict,
    categories: dict[int, str],
    threshold: float,
    counts: dict,
    tmp: Path,
    python: Path,
) -> list[str]:
    """The contact sheets (and the smaller JPEG copies the page embeds), drawn by the plugin; their names."""
    entries = []
    for i in shown:
        image = images[i]
        gt_hit, states = page.match(image, threshold)
        c = counts["images"][i]
        caption = f"{image['file']}: missed {c['missed']}, invented {c['invented']}" if job.has_gt else image["file"]
        keep = [k for k, state in enumerate(states) if state is not None]
        entries.append(
            {
                "path": str(paths[i]) if paths[i] else None,
                "copy": str(copies[i]) if i in copies else None,
                "w": image["width"],
                "h": image["height"],
                "caption": caption,
                "gt": [[*g, hit] for g, hit in zip(image["gt"], gt_hit, strict=True)] if job.has_gt else None,
                "poly": image["poly"],
                "pred": [[*image["pred"][k], states[k]] for k in keep],
                "rle": [image["rle"][k] for k in keep] if image["rle"] else None,
            }
        )
    spec = {
        "out": str(tmp),
        "categories": {str(k): v for k, v in categories.items()},
        "has_gt": job.has_gt,
        "colors": {str(k): n for n, k in enumerate(categories)},
        "images": entries,
    }
    done = _plugin(python, "draw", spec, tmp, 600)
    for i, size in zip(shown, done["sizes"], strict=True):
        if size and not (images[i]["width"] and images[i]["height"]):  # a ground truth without sizes
            images[i]["width"], images[i]["height"] = size
        if size is None and paths[i]:
            paths[i] = None  # a file no decoder reads: shown as missing
    return done["sheets"]


def infer(job: Job, tmp: Path, python: Path) -> list[str]:
    """Run the checkpoint on the images (the plugin): SAM3's dump files, written in tmp, become the job's;
    notes on images it could not read."""
    files = [e["file_name"] for e in job.gt["images"]] if job.has_gt else job.infer["listing"]
    ids = [e["id"] for e in job.gt["images"]] if job.has_gt else list(range(1, len(files) + 1))
    spec = {
        **job.infer,
        "out": str(tmp),
        "images": [{"id": i, "path": str(job.image_root / f)} for i, f in zip(ids, files, strict=True)],
    }
    done = _plugin(python, "infer", spec, tmp, 24 * 3600)
    job.dumps = {kind: tmp / name for kind, name in done["dumps"].items()}
    if not job.has_gt:
        job.gt["images"] = done["images"]
    return done.get("notes", [])


def _plugin(python: Path, command: str, spec: dict[str, Any], tmp: Path, timeout: int) -> dict[str, Any]:
    """Run plugins/sam3_predict.py in the training venv; its last stdout line is its JSON answer. Its exit 65 is
    a one-line ConfigError (e.g. a checkpoint that is not the model's), anything else a ToolError."""
    if not python.exists():
        raise ToolError(f"no training env at {python.parent.parent}: run inv env.setup")
    spec_file = tmp / f".{command}.json"
    spec_file.write_text(json.dumps(spec))
    try:
        done = subprocess.run(
            [str(python), str(PLUGIN), command, str(spec_file)],
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        raise ToolError(f"sam3_predict {command} did not finish within {timeout} s") from None
    finally:
        spec_file.unlink(missing_ok=True)
    lines = done.stdout.strip().splitlines()
    if done.returncode == 0 and lines:
        return json.loads(lines[-1])
    tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
    if done.returncode == PLUGIN_USER_ERROR:
        raise ConfigError(tail.removeprefix("error: "))
    raise ToolError(f"sam3_predict {command} failed (exit {done.returncode}): {tail}")


# --- the whole command ------------------------------------------------------------------------------------


def plan(request: Request, settings, python: Path) -> tuple[list[Job], list[str]]:
    """The pages to make, every input checked (a ConfigError before anything is written)."""
    from .launch_record import load_record

    root = settings.path("paths.experiment_root")
    if not request.checkpoint:
        if request.data or request.prompts:
            raise ConfigError(
                "--data and --prompts go with --checkpoint FILE (a model to run); a run's predictions "
                "are read from its dumps: inv run.predict --name RUN"
            )
        return run_jobs(load_record(root, request.name), request)
    if (request.dataset or request.cell) and not request.name:
        raise ConfigError("--dataset and --cell pick a task of a run; add --name RUN (its model is then built)")
    record = load_record(root, request.name) if request.name else None
    bpe = None
    if record is None:
        from .planning import find_bpe, sam3_package_dir

        bpe = find_bpe(settings.path("sam3.checkout"), sam3_package_dir(python))
    return [checkpoint_job(request, model_spec(record, request, bpe))], []


def table(summary: dict[str, Any]) -> tuple[str, list[str], list[list]]:
    """(title, columns, rows) of one page's per-category counts at its threshold, over all its images."""
    categories = {row["id"]: row["name"] for row in summary["categories"]}
    counts = {row["id"]: row for row in summary["categories"]}
    rows = page.category_rows(categories, counts, summary["has_gt"])
    title = f"{summary['label']}: {summary['images']} images, predictions scored {summary['threshold']:g} or more"
    return title, ["category", "GT", "predicted", "matched", "missed", "invented"], rows


def open_page(path: Path, environ) -> str:
    """Open the page in a browser, in the background, where there is a display; else say where it is."""
    if not (sys.platform == "darwin" or environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY")):
        return (
            f"no display here: open {path.as_uri()} in a browser (self-contained: copy the file to a machine with one)"
        )
    subprocess.Popen(
        [sys.executable, "-m", "webbrowser", "-t", path.as_uri()],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    return f"opening {path.as_uri()} in a browser"


_WANDB_LOG = r"""
import json, sys
import wandb
data = json.load(open(sys.argv[1]))
run = wandb.init(name=data["name"], group=data["group"], job_type="predictions", dir=data["dir"], id=data["id"],
                 resume="allow", settings=wandb.Settings(save_code=False))
payload = {}
for page in data["pages"]:
    if page["sheet"]:
        payload[f"predictions/{page['key']}/sheet"] = wandb.Image(page["sheet"], caption=page["caption"])
    payload.update({f"predictions/{page['key']}/{k}": v for k, v in page["scalars"].items()})
run.log(payload)
run.finish()
print("WANDB_RUN", run.id)
"""


def log_to_wandb(
    summaries: list[dict[str, Any]], run_dir: Path, wandb_env: dict[str, str], environ, python: str
) -> str:
    """Each page's first contact sheet (its worst images) and its missed/invented totals to the W&B run
    `<run>/predictions` in the run's group, in a subprocess as run.results logs its plot."""
    import hashlib
    import re
    import tempfile

    from ..env.tracking import scrub

    name = summaries[0]["run"]
    pages = [
        {
            "key": s["label"],
            "sheet": s["sheets"][0] if s["sheets"] else None,
            "caption": f"{s['label']}: worst images first, scores {s['threshold']:g} or more",
            "scalars": {k: sum(row[k] for row in s["categories"]) for k in ("missed", "invented", "matched")},
        }
        for s in summaries
    ]
    digest = hashlib.sha256(str(run_dir).encode()).hexdigest()[:8]
    data = {
        "name": f"{name}/predictions",
        "group": name,
        "dir": str(run_dir),
        "pages": pages,
        "id": f"{re.sub(r'[^A-Za-z0-9_-]+', '-', name)[:40]}-predictions-{digest}",
    }
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(data, handle)
    try:
        done = subprocess.run(
            [python, "-c", _WANDB_LOG, handle.name],
            env={**environ, **wandb_env, "WANDB_SILENT": "true"},
            capture_output=True,
            text=True,
            timeout=300,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        return "warning: W&B: logging the contact sheets did not finish within 300 s"
    finally:
        os.unlink(handle.name)
    if done.returncode != 0 or "WANDB_RUN" not in done.stdout:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return f"warning: W&B: the contact sheets were not logged ({scrub(tail, environ.get('WANDB_API_KEY'))})"
    offline = wandb_env.get("WANDB_MODE") == "offline"
    where = f" (offline: {run_dir / 'wandb'}; upload with wandb sync)" if offline else ""
    return f"W&B: contact sheets logged to {data['name']} in group {name}{where}"
