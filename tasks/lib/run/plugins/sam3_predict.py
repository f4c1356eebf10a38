"""Runs in the training venv (torch, torchvision, pycocotools, sam3), never in the launcher: run.predict's
drawing and model running (tasks/lib/run/predictions.py writes the spec and reads the last stdout line).

    python sam3_predict.py draw SPEC.json    contact sheets: each image's ground truth beside its predictions
                                             (boxes, labels and masks drawn by torchvision.utils, tiles laid
                                             out by make_grid), worst first; smaller JPEG copies for the page
    python sam3_predict.py infer SPEC.json   a checkpoint in SAM3's loader layout run on images with text
                                             prompts; writes SAM3's dump files (coco_predictions_bbox.json,
                                             and _segm.json with a mask head) as SAM3's PredictionDumper does

Exit 65 (EX_DATAERR) with one line on stderr ("error: ..., fix") for what the user can fix (a checkpoint
that is not the model's); any other failure is a traceback.
"""

import json
import os
import sys
from pathlib import Path

TILE = 320  # px: each image fits a TILE x TILE square
CAPTION = 20  # px: the strip above each image's pair of tiles
PER_ROW = 4  # images per row of a sheet
PER_SHEET = 16  # images per sheet
PAGE_SIDE = 1600  # px: the longest side of a copy the page embeds
MAX_DETS = 100  # per image, as SAM3's PredictionDumper keeps (maxdets)
COLORS = {"matched": (34, 170, 34), "missed": (255, 140, 0), "hit": (30, 144, 255), "invented": (224, 32, 42)}
PALETTE = [
    (30, 144, 255),
    (224, 32, 42),
    (34, 170, 34),
    (255, 140, 0),
    (155, 89, 182),
    (0, 163, 163),
    (212, 160, 0),
    (232, 67, 147),
]


USER_ERROR = 65  # not 2, which python itself exits with for a script it cannot open


def fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(USER_ERROR)


def write_atomic(data: bytes, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


# --- draw -------------------------------------------------------------------------------------------------


def draw(spec: dict) -> dict:
    import torch

    torch.set_num_threads(1)  # small tensors: a thread pool costs more than it gives
    from torchvision.io import encode_png
    from torchvision.utils import make_grid

    out, font = Path(spec["out"]), _font()
    names, tiles, sizes = [], [], []
    for entry in spec["images"]:
        image = _load(entry["path"])
        sizes.append(None if image is None else [image.shape[2], image.shape[1]])
        if entry["copy"] and image is not None:
            _write_copy(image, Path(entry["copy"]))
        tiles.append(_pair(image, entry, spec, font))
    for n, start in enumerate(range(0, len(tiles), PER_SHEET), 1):
        grid = make_grid(tiles[start : start + PER_SHEET], nrow=PER_ROW, padding=6, pad_value=255)
        names.append(f"sheet-{n:02d}.png")
        write_atomic(bytes(encode_png(grid.to(torch.uint8), compression_level=1).numpy()), out / names[-1])
    return {"sheets": names, "sizes": sizes}


def _font() -> str | None:
    from PIL import ImageFont

    try:
        ImageFont.truetype("DejaVuSans.ttf", 11)
    except OSError:
        return None  # torchvision then uses PIL's default font
    return "DejaVuSans.ttf"


def _load(path: str | None):
    """The image as a 3xHxW uint8 tensor (torchvision's decoders, PIL for the formats they lack); None if
    absent or unreadable (drawn as a grey tile)."""
    if path is None:
        return None
    import numpy as np
    import torch
    from PIL import Image
    from torchvision.io import ImageReadMode, decode_image, read_file

    try:
        return decode_image(read_file(path), mode=ImageReadMode.RGB)
    except RuntimeError:
        pass
    try:
        with Image.open(path) as image:
            return torch.from_numpy(np.asarray(image.convert("RGB")).copy()).permute(2, 0, 1)
    except (OSError, ValueError):
        return None


def _write_copy(image, path: Path) -> None:
    from torchvision.io import encode_jpeg
    from torchvision.transforms.functional import resize

    scale = min(1.0, PAGE_SIDE / max(image.shape[1:]))
    if scale < 1:
        image = resize(image, [max(1, round(image.shape[1] * scale)), max(1, round(image.shape[2] * scale))])
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(bytes(encode_jpeg(image.contiguous(), quality=85).numpy()), path)


def _pair(image, entry: dict, spec: dict, font: str | None):
    """A caption strip over the ground-truth tile and the predictions tile (the predictions tile alone
    without ground truth)."""
    import torch
    from torchvision.transforms.functional import resize

    if image is None:  # the file is missing: a grey tile of the size the annotations give
        image = torch.full((3, max(1, entry["h"]), max(1, entry["w"])), 200, dtype=torch.uint8)
    height, width = image.shape[1:]
    scale = TILE / max(height, width)
    small = resize(image, [max(1, round(height * scale)), max(1, round(width * scale))], antialias=True)
    names = {int(k): v for k, v in spec["categories"].items()}
    tiles = []
    if spec["has_gt"]:
        colors = [COLORS["matched"] if g[5] else COLORS["missed"] for g in entry["gt"]]
        labels = [names.get(g[0], str(g[0])) for g in entry["gt"]]
        masks = _polygon_masks(entry, height, width)
        tiles.append(_tile(small, scale, [g[1:5] for g in entry["gt"]], labels, colors, masks, font))
        tiles.append(torch.full((3, TILE, 6), 255, dtype=torch.uint8))
    palette = {int(k): v % len(PALETTE) for k, v in spec["colors"].items()}
    preds = entry["pred"]
    colors = [
        (COLORS["hit"] if p[6] else COLORS["invented"]) if spec["has_gt"] else PALETTE[palette.get(p[0], 0)]
        for p in preds
    ]
    labels = [f"{names.get(p[0], str(p[0]))} {p[1]:.2f}" for p in preds]
    masks = _rle_masks(entry["rle"]) if entry["rle"] else None
    tiles.append(_tile(small, scale, [p[2:6] for p in preds], labels, colors, masks, font))
    row = torch.cat(tiles, dim=2)
    return torch.cat([_caption(entry["caption"], row.shape[2], font), row], dim=1)


def _tile(small, scale: float, boxes: list, labels: list, colors: list, masks, font: str | None):
    """One tile: masks (N x H x W at the image's size, scaled to the tile's) and labelled [x, y, w, h] boxes
    drawn by torchvision over the scaled image, padded to TILE x TILE."""
    import torch
    from torchvision.transforms.functional import InterpolationMode, resize
    from torchvision.utils import draw_bounding_boxes, draw_segmentation_masks

    if masks is not None and len(masks):
        masks = resize(masks.to(torch.uint8), list(small.shape[1:]), interpolation=InterpolationMode.NEAREST)
        small = draw_segmentation_masks(small, masks.bool(), alpha=0.4, colors=colors)
    if boxes:
        xyxy = torch.tensor([[b[0], b[1], b[0] + b[2], b[1] + b[3]] for b in boxes], dtype=torch.float32) * scale
        xyxy[:, 0::2] = xyxy[:, 0::2].clamp(0, small.shape[2] - 1)
        xyxy[:, 1::2] = xyxy[:, 1::2].clamp(0, small.shape[1] - 1)
        small = draw_bounding_boxes(
            small,
            xyxy,
            labels=labels,
            colors=colors,
            width=2,
            font=font,
            font_size=11 if font else None,
            fill_labels=True,
            label_colors="white",
        )
    canvas = torch.full((3, TILE, TILE), 235, dtype=torch.uint8)
    canvas[:, : small.shape[1], : small.shape[2]] = small
    return canvas


def _rle_masks(rles: list):
    import numpy as np
    import torch
    from pycocotools import mask as mask_utils

    decoded = [mask_utils.decode(rle) for rle in rles if rle]
    return torch.from_numpy(np.stack(decoded)).bool() if decoded else None


def _polygon_masks(entry: dict, height: int, width: int):
    """The ground truth's polygons as masks (pycocotools), where a segm page has them."""
    if not entry.get("poly") or not entry["gt"]:
        return None
    import numpy as np
    import torch
    from pycocotools import mask as mask_utils

    masks = []
    for polygon in entry["poly"]:
        if polygon:
            masks.append(mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(polygon, height, width))))
        else:
            masks.append(np.zeros((height, width), dtype=np.uint8))
    return torch.from_numpy(np.stack(masks)).bool()


def _caption(text: str, width: int, font: str | None):
    import numpy as np
    import torch
    from PIL import Image, ImageDraw, ImageFont

    strip = Image.new("RGB", (width, CAPTION), "white")
    face = ImageFont.truetype(font, 12) if font else ImageFont.load_default()
    ImageDraw.Draw(strip).text((2, 3), text, fill="black", font=face)
    return torch.from_numpy(np.asarray(strip).copy()).permute(2, 0, 1)


# --- infer ------------------------------------------------------------------------------------------------


def infer(spec: dict) -> dict:
    """SAM3's dump files for the images: every prompt on every image, the MAX_DETS best per image kept."""
    import torch
    from PIL import Image
    from sam3.model.sam3_image_processor import Sam3Processor

    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        sys.path.insert(0, str(Path(__file__).parent))
        import sam3_cpu  # noqa: PLC0415 - the CPU patches SAM3's Trainer gets, for geometry_encoders' pin_memory

        sam3_cpu.apply_cpu_patches(training=False)
    model, masks = build(spec, device)
    processor = Sam3Processor(model, resolution=spec["resolution"], device=device, confidence_threshold=0.0)
    boxes, segms, images, notes = [], [], [], []
    for item in spec["images"]:
        try:
            with Image.open(item["path"]) as opened:
                picture = opened.convert("RGB")
        except OSError as error:
            notes.append(f"skipped {item['path']}: not an image PIL reads ({error})")
            continue
        images.append(
            {"id": item["id"], "file_name": Path(item["path"]).name, "width": picture.width, "height": picture.height}
        )
        found = detect(model, processor, picture, spec["prompts"], masks)
        boxes += [
            {k: v for k, v in r.items() if k not in ("segmentation", "area")} | {"image_id": item["id"]} for r in found
        ]
        segms += [r | {"image_id": item["id"]} for r in found] if masks else []
    out = Path(spec["out"])
    dumps = {"bbox": "coco_predictions_bbox.json"} | ({"segm": "coco_predictions_segm.json"} if masks else {})
    write_atomic(json.dumps(boxes).encode(), out / dumps["bbox"])
    if masks:
        write_atomic(json.dumps(segms).encode(), out / dumps["segm"])
    return {"dumps": dumps, "images": images, "notes": notes}


def build(spec: dict, device: str):
    """The model with the checkpoint's weights, the way SAM3's loader reads the file (keys containing
    'detector', that prefix removed); (model, has a mask head). Exit 65 when the file does not fit it."""
    import torch

    checkpoint = spec["checkpoint"]
    try:  # mmap: a 3.4 GB file is not read twice; torch's legacy (non-zip) format cannot be mapped
        with open(checkpoint, "rb") as handle:
            zipped = handle.read(4) == b"PK\x03\x04"
        state = torch.load(checkpoint, map_location="cpu", weights_only=True, mmap=zipped)
    except Exception as error:  # noqa: BLE001 - torch raises many kinds for a file that is not a checkpoint
        fail(
            f"--checkpoint {checkpoint}: not a torch checkpoint ({type(error).__name__}); give the file inv "
            "run.export wrote"
        )
    weights = state.get("model", state) if isinstance(state, dict) else None
    if not isinstance(weights, dict) or not weights:
        fail(f"--checkpoint {checkpoint}: holds no model weights; give the file inv run.export wrote")
    detector = {k.replace("detector.", ""): v for k, v in weights.items() if "detector" in k}
    if not detector and spec["model"] is None:
        fail(
            f"--checkpoint {checkpoint}: no detector.* weights (a trainer checkpoint?); export it with inv "
            "run.export, or add --name RUN to run it as that run's model"
        )
    detector = detector or weights
    masks = any(k.startswith("segmentation_head.") for k in detector)
    model = _model(spec, device, masks)
    try:
        missing, _ = model.load_state_dict(detector, strict=False)
    except RuntimeError as error:
        fail(
            f"--checkpoint {checkpoint} does not fit the model ({str(error).splitlines()[1].strip()}); "
            + _fit_hint(spec)
        )
    if missing:
        fail(
            f"--checkpoint {checkpoint} lacks {len(missing)} of the model's tensors (e.g. {missing[0]}); "
            + _fit_hint(spec)
        )
    return model.to(device).eval(), masks


def _fit_hint(spec: dict) -> str:
    if spec["model"] is None:
        return "it is not SAM3's full-size model: add --name RUN, the run it was trained in"
    return "pass the --name of the run it was trained in"


def _model(spec: dict, device: str, masks: bool):
    """SAM3's full-size image model (sam3.build_sam3_image_model), or the run's own trainer.model config."""
    if spec["model"] is None:
        from sam3 import build_sam3_image_model

        return build_sam3_image_model(
            bpe_path=spec["bpe"], device=device, checkpoint_path=None, load_from_HF=False, enable_segmentation=masks
        )
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    config = dict(spec["model"])
    if str(config["_target_"]).endswith("build_sam3_image_model"):  # SAM3's configs: no base checkpoint loaded first
        config.update(checkpoint_path=None, load_from_HF=False, device=device, enable_segmentation=masks)
    return instantiate(OmegaConf.create(config))


def detect(model, processor, picture, prompts: list, masks: bool) -> list[dict]:
    """One image, every prompt: score = sigmoid(class) x sigmoid(presence), boxes xywh in the image's pixels,
    masks (RLE at the image's size) as Sam3Processor makes them; the MAX_DETS best."""
    import torch
    from sam3.model import box_ops

    found = []
    with torch.inference_mode():
        image_out = processor.set_image(picture)["backbone_out"]
        for category, phrase in prompts:  # a copy each time: a box-only model pops backbone_fpn from it
            backbone_out = {**image_out, **model.backbone.forward_text([phrase], device=processor.device)}
            out = model.forward_grounding(
                backbone_out=backbone_out,
                find_input=processor.find_stage,
                geometric_prompt=model._get_dummy_prompt(),
                find_target=None,
            )
            scores = (out["pred_logits"].sigmoid() * out["presence_logit_dec"].sigmoid().unsqueeze(1)).squeeze(-1)[0]
            top = scores.argsort(descending=True)[:MAX_DETS]
            xyxy = box_ops.box_cxcywh_to_xyxy(out["pred_boxes"][0][top]).cpu()
            xyxy = xyxy * torch.tensor([picture.width, picture.height, picture.width, picture.height])
            rles = _encode(out["pred_masks"][0][top], picture) if masks else [None] * len(top)
            for score, box, rle in zip(scores[top].tolist(), xyxy.tolist(), rles, strict=True):
                found.append(_result(category, score, box, rle, picture))
    return sorted(found, key=lambda r: -r["score"])[:MAX_DETS]


def _encode(low_res, picture) -> list[dict]:
    import numpy as np
    from pycocotools import mask as mask_utils
    from sam3.model.data_misc import interpolate

    full = interpolate(low_res.unsqueeze(1), (picture.height, picture.width), mode="bilinear", align_corners=False)
    binary = (full.sigmoid() > 0.5)[:, 0].cpu().numpy().astype(np.uint8)
    rles = mask_utils.encode(np.asfortranarray(binary.transpose(1, 2, 0)))
    return [{"size": r["size"], "counts": r["counts"].decode()} for r in rles]


def _result(category: int, score: float, box: list, rle: dict | None, picture) -> dict:
    result = {
        "category_id": category,
        "bbox": [round(box[0], 5), round(box[1], 5), round(box[2] - box[0], 5), round(box[3] - box[1], 5)],
        "score": round(score, 5),
    }
    if rle is not None:
        from pycocotools import mask as mask_utils

        result |= {"segmentation": rle, "area": float(mask_utils.area(rle)) / (picture.width * picture.height)}
    return result


def main(argv: list[str]) -> int:
    command, spec_file = argv[1], argv[2]
    spec = json.loads(Path(spec_file).read_text())
    answer = {"draw": draw, "infer": infer}[command](spec)
    print(json.dumps(answer))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
