"""What run.predict shows: SAM3's predictions of one set of images matched to its ground truth, the images
worst first, per-category counts, and the self-contained HTML page (prediction_page.html) that draws them.

Matching, at a score threshold: per image and category, the predictions at or above it, highest score
first, each take the unmatched ground-truth box of their category with the highest box IoU, when that IoU
is at least 0.5 (pycocotools' greedy rule at its loosest IoU). A ground-truth box left unmatched is
missed; a prediction left unmatched is invented. Worst first: most missed + invented, then most missed,
then file name. The page's script runs the same rule (the same arithmetic, in the same order) when its
slider moves, so its counts at the threshold given are these.
"""

import base64
import html
import json
from pathlib import Path
from typing import Any

IOU = 0.5
FLOOR = 0.05  # predictions scored under this are left out of the page (SAM3 dumps up to 100 per image)
TEMPLATE = Path(__file__).with_name("prediction_page.html")
MIME = {b"\xff\xd8\xff": "image/jpeg", b"\x89PNG": "image/png", b"GIF8": "image/gif", b"BM": "image/bmp"}
EMBED_AS_IS = 600_000  # bytes: larger files (and formats browsers do not show) go in as a smaller JPEG


def iou(a: list[float], b: list[float]) -> float:
    """IoU of two [x, y, w, h] boxes (the page's script computes it the same way)."""
    iw = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    ih = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def match(image: dict[str, Any], threshold: float) -> tuple[list[bool], list[bool | None]]:
    """(each ground-truth box matched?, each prediction matched (True), invented (False) or under the
    threshold (None)); image["pred"] is sorted by score, highest first."""
    gt_hit = [False] * len(image["gt"])
    states: list[bool | None] = []
    for cat, score, *box in image["pred"]:
        if score < threshold:
            states.append(None)
            continue
        best, best_iou = -1, IOU
        for j, (gcat, *gbox) in enumerate(image["gt"]):
            if gcat == cat and not gt_hit[j]:
                overlap = iou(box, gbox)
                if overlap >= best_iou and (best < 0 or overlap > best_iou):
                    best, best_iou = j, overlap
        if best >= 0:
            gt_hit[best] = True
        states.append(best >= 0)
    return gt_hit, states


def tally(images: list[dict[str, Any]], categories: dict[int, str], threshold: float) -> dict[str, Any]:
    """Per image (missed, invented, matched) and per category (GT, predicted, matched, missed, invented)."""
    rows = {cid: dict.fromkeys(("gt", "predicted", "matched", "missed", "invented"), 0) for cid in categories}
    per_image = []
    for image in images:
        gt_hit, states = match(image, threshold)
        for (cat, *_), hit in zip(image["gt"], gt_hit, strict=True):
            row = rows.setdefault(cat, dict.fromkeys(("gt", "predicted", "matched", "missed", "invented"), 0))
            row["gt"] += 1
            row["matched" if hit else "missed"] += 1
        for (cat, *_), state in zip(image["pred"], states, strict=True):
            if state is not None:
                row = rows.setdefault(cat, dict.fromkeys(("gt", "predicted", "matched", "missed", "invented"), 0))
                row["predicted"] += 1
                row["invented"] += state is False
        per_image.append(
            {"missed": gt_hit.count(False), "invented": states.count(False), "matched": gt_hit.count(True)}
        )
    return {"images": per_image, "categories": rows}


def worst_first(images: list[dict[str, Any]], per_image: list[dict[str, int]]) -> list[int]:
    """Indexes of images: most missed + invented first, then most missed, then by file name."""
    return sorted(
        range(len(images)),
        key=lambda i: (
            -(per_image[i]["missed"] + per_image[i]["invented"]),
            -per_image[i]["missed"],
            images[i]["file"],
        ),
    )


def category_rows(categories: dict[int, str], counts: dict[int, dict[str, int]], with_gt: bool) -> list[list]:
    """The per-category table: category, GT, predicted, matched, missed, invented ('-' without ground truth)."""
    rows = []
    for cid, row in counts.items():
        name = categories.get(cid, f"category {cid}")
        figures = [row[k] for k in ("gt", "predicted", "matched", "missed", "invented")]
        rows.append([name, *(figures if with_gt else ["-", figures[1], "-", "-", "-"])])
    return rows


# --- the page -------------------------------------------------------------------------------------------


def image_source(path: Path | None, copy: Path | None) -> str:
    """A data: URI of the image as it is (small files in a format browsers show) or of its smaller JPEG copy."""
    if path is None or (copy is not None and not copy.is_file()):  # absent, or unreadable (no copy made)
        return ""
    data = (copy or path).read_bytes()
    mime = embeddable(data) or "image/jpeg"
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def embeddable(data: bytes) -> str | None:
    """The MIME type of an image a browser shows, when the bytes are one and small enough to embed as they are."""
    if len(data) > EMBED_AS_IS:
        return None
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return next((mime for magic, mime in MIME.items() if data.startswith(magic)), None)


def page_data(
    job: dict[str, Any], images: list[dict[str, Any]], order: list[int], sources: list[str], threshold: float
) -> dict[str, Any]:
    """What the page's script reads: the images in order, each with its ground truth and the predictions
    scored at least FLOOR (or the threshold, when lower), numbers as read (so its script's matching is this
    module's)."""
    floor = min(FLOOR, threshold)
    by_name = {i: rank for rank, i in enumerate(sorted(range(len(images)), key=lambda i: images[i]["file"]))}
    shown = []
    for i in order:
        image = images[i]
        keep = [k for k, p in enumerate(image["pred"]) if p[1] >= floor]
        shown.append(
            {
                "file": image["file"],
                "w": image["width"],
                "h": image["height"],
                "src": sources[i],
                "rank": by_name[i],
                "gt": image["gt"],
                "poly": image.get("poly") or None,
                "pred": [image["pred"][k] for k in keep],
                "rle": [image["rle"][k] for k in keep] if image.get("rle") else None,
            }
        )
    return {
        "title": job["title"],
        "threshold": threshold,
        "floor": floor,
        "iou": IOU,
        "has_gt": job["has_gt"],
        "categories": {str(k): v for k, v in job["categories"].items()},
        "source": job["source"],
        "colors": {str(k): n for n, k in enumerate(job["categories"])},
        "images": shown,
    }


def render(data: dict[str, Any]) -> str:
    """The HTML page: the template with the data embedded as JSON (closing tags escaped)."""
    payload = json.dumps(data, separators=(",", ":")).replace("</", "<\\/")
    text = TEMPLATE.read_text()
    return text.replace("__TITLE__", html.escape(data["title"])).replace("__DATA__", payload)
