"""CpuTrainer: stands in for SAM3's model (which allocates on "cuda" while it is built) and
nothing else. SAM3's real train.py composes the config, writes config.yaml and
config_resolved.yaml, and instantiates this class from `trainer._target_`; this class then
writes what SAM3's Trainer writes, where SAM3 writes it:

  <checkpoint.save_dir>/checkpoint.pt             model + optimizer + epoch (resumed when present)
  <logging.tensorboard_writer.log_dir>/events.*   TensorBoard scalars, through SAM3's own Logger (which
                                                  instantiates logging.tensorboard_writer, so W&B logging
                                                  wraps it as it wraps SAM3's Trainer)
  <logging.log_dir>/train_stats.json              one JSON line per epoch
  <logging.log_dir>/val_stats.json                one JSON line per validation, SAM3's metric keys
  <meters.val.*.detection.dump_dir>/coco_predictions_bbox.json

The model is tiny but real: a linear head on 16x16 grey thumbnails that regresses one box and
classifies its category, scored on the test split with pycocotools' COCOeval.
"""

import json
import logging
import os
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

THUMB = 16
METRICS = ("AP", "AP_50", "AP_75", "AP_small", "AP_medium", "AP_large",
           "AR_maxDets@1", "AR_maxDets@10", "AR_maxDets@100", "AR_small", "AR_medium", "AR_large")  # fmt: skip


def _load_split(ann_file: str, img_folder: str):
    """Thumbnails, first-box targets (normalised xywh) and category indices of a COCO split."""
    coco = json.loads(Path(ann_file).read_text())
    categories = sorted(c["id"] for c in coco["categories"])
    first_box = {}
    for ann in sorted(coco["annotations"], key=lambda a: a["id"]):
        first_box.setdefault(ann["image_id"], ann)
    images, boxes, labels, infos = [], [], [], []
    for info in coco["images"]:
        with Image.open(os.path.join(img_folder, info["file_name"])) as img:
            thumb = img.convert("L").resize((THUMB, THUMB))
        images.append(np.asarray(thumb, dtype=np.float32).reshape(-1) / 255.0)
        ann = first_box.get(info["id"])
        w, h = info["width"], info["height"]
        x, y, bw, bh = ann["bbox"] if ann else (0.0, 0.0, w, h)
        boxes.append([x / w, y / h, bw / w, bh / h])
        labels.append(categories.index(ann["category_id"]) if ann else 0)
        infos.append(info)
    return coco, categories, torch.tensor(np.stack(images)), torch.tensor(boxes), torch.tensor(labels), infos


class TinyDetector(torch.nn.Module):
    def __init__(self, num_classes: int):
        super().__init__()
        self.box = torch.nn.Linear(THUMB * THUMB, 4)
        self.cls = torch.nn.Linear(THUMB * THUMB, num_classes)

    def forward(self, x):
        return torch.sigmoid(self.box(x)), self.cls(x)


class CpuTrainer:
    """Accepts the keys of SAM3's `trainer:` config; ignores those that only matter on a GPU."""

    def __init__(self, data, checkpoint, logging, model=None, max_epochs=2, mode="train", val_epoch_freq=1,
                 seed_value=123, meters=None, skip_saving_ckpts=False, lr=0.05, **_gpu_only):  # fmt: skip
        self.data, self.checkpoint_conf, self.logging_conf, self.model_conf = data, checkpoint, logging, model
        self.max_epochs, self.mode, self.val_epoch_freq = int(max_epochs), mode, int(val_epoch_freq)
        self.skip_saving_ckpts, self.lr = bool(skip_saving_ckpts), float(lr)
        self.dump_dir = _dump_dir(meters)
        torch.manual_seed(int(seed_value))
        self.rank = int(os.environ.get("RANK", "0"))

    def run(self):
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", force=True)
        devices = os.environ.get("CUDA_VISIBLE_DEVICES", "unset")
        print(f"rank {self.rank} of {os.environ.get('WORLD_SIZE', '1')}, CUDA_VISIBLE_DEVICES={devices}", flush=True)
        if self.rank != 0:
            return  # the model is tiny: rank 0 trains, the other ranks only show what they were given
        self._check_sam3_model()
        log_dir = Path(self.logging_conf.log_dir)
        log_dir.mkdir(parents=True, exist_ok=True)
        from sam3.train.utils.logger import Logger

        logger = Logger(self.logging_conf)
        val = _load_split(self.data.val.dataset.ann_file, self.data.val.dataset.img_folder)
        model = TinyDetector(len(val[1]))
        optimizer = torch.optim.SGD(model.parameters(), lr=self.lr, momentum=0.9)
        start_epoch = self._resume(model, optimizer)
        if self.mode == "val":
            self._validate(model, val, logger, start_epoch)
            _close(logger)
            return
        train = _load_split(self.data.train.dataset.ann_file, self.data.train.dataset.img_folder)
        for epoch in range(start_epoch, self.max_epochs):
            started = time.time()
            model.train()
            for _ in range(20):
                pred_box, logits = model(train[2])
                loss_bbox = torch.nn.functional.l1_loss(pred_box, train[3])
                loss_ce = torch.nn.functional.cross_entropy(logits, train[4])
                loss = 5.0 * loss_bbox + loss_ce
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            stats = {"Losses/train_all_loss": loss.item(), "Losses/train_all_loss_bbox": loss_bbox.item(),
                     "Losses/train_all_loss_ce": loss_ce.item(), "Trainer/epoch": epoch,
                     "Trainer/where": (epoch + 1) / self.max_epochs, "Trainer/steps_train": 20 * (epoch + 1),
                     "Time/train_epoch_seconds": time.time() - started}  # fmt: skip
            logger.log_dict(stats, epoch)
            _append_json(log_dir / "train_stats.json", stats)
            logging.info("epoch %d train loss %.4f", epoch, loss.item())
            self._save(model, optimizer, epoch + 1)
            if (epoch + 1) % self.val_epoch_freq == 0 or epoch + 1 == self.max_epochs:
                self._validate(model, val, logger, epoch)
        _close(logger)

    def _check_sam3_model(self):
        """A config with SAM3's `trainer.model` node: its checkpoint must be on disk, as SAM3's builder
        needs it offline; the CPU demo then trains its tiny detector instead of building SAM3."""
        if not self.model_conf:
            return
        path = self.model_conf.get("checkpoint_path")
        if path and not Path(path).is_file():
            raise FileNotFoundError(f"trainer.model.checkpoint_path {path} does not exist")
        source = path or "from the Hugging Face Hub"
        print(f"SAM3 model {self.model_conf.get('_target_')} would load {source}", flush=True)

    def _resume(self, model, optimizer) -> int:
        path = Path(self.checkpoint_conf.save_dir) / "checkpoint.pt"
        if not path.exists():
            return 0
        state = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        logging.info("resumed from %s at epoch %d", path, state["epoch"])
        return int(state["epoch"])

    def _save(self, model, optimizer, epoch):
        if self.skip_saving_ckpts or self.rank != 0:
            return
        save_dir = Path(self.checkpoint_conf.save_dir)
        save_dir.mkdir(parents=True, exist_ok=True)
        tmp = save_dir / f".checkpoint.pt.tmp-{os.getpid()}"
        torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch}, tmp)
        os.replace(tmp, save_dir / "checkpoint.pt")

    def _validate(self, model, val, logger, epoch):
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval

        coco_json, categories, images, boxes, labels, infos = val
        model.eval()
        with torch.no_grad():
            pred_box, logits = model(images)
            scores = torch.softmax(logits, dim=1)
            loss = torch.nn.functional.l1_loss(pred_box, boxes).item()
        detections = []
        for i, info in enumerate(infos):
            x, y, w, h = pred_box[i].tolist()
            for k, category in enumerate(categories):
                bbox = [
                    x * info["width"],
                    y * info["height"],
                    max(w * info["width"], 1.0),
                    max(h * info["height"], 1.0),
                ]
                detections.append({"image_id": info["id"], "category_id": category, "bbox": bbox,
                                   "score": float(scores[i, k])})  # fmt: skip
        values = [-1.0] * len(METRICS)
        if detections and coco_json["annotations"]:
            gt = COCO()
            gt.dataset = coco_json
            gt.createIndex()
            evaluator = COCOeval(gt, gt.loadRes(detections), "bbox")
            evaluator.evaluate()
            evaluator.accumulate()
            evaluator.summarize()
            values = [float(v) for v in evaluator.stats]
        prefix = "Meters_train/val_roboflow100/detection/coco_eval_bbox_"
        stats = {prefix + name: value for name, value in zip(METRICS, values, strict=True)}
        stats.update({"Losses/val_all_loss": loss, "Trainer/epoch": epoch, "Trainer/where": (epoch + 1) / self.max_epochs,
                      "Trainer/steps_val": len(infos)})  # fmt: skip
        logger.log_dict(stats, epoch)
        if self.dump_dir:
            self.dump_dir.mkdir(parents=True, exist_ok=True)
            (self.dump_dir / "coco_predictions_bbox.json").write_text(json.dumps(detections))
        _append_json(Path(self.logging_conf.log_dir) / "val_stats.json", stats)
        logging.info("epoch %d val AP %.4f", epoch, stats[prefix + "AP"])


def _close(logger) -> None:
    """Flush the TensorBoard events now (SAM3's Logger leaves closing to atexit)."""
    if logger.tb_logger:
        logger.tb_logger.close()


def _dump_dir(meters) -> Path | None:
    try:
        return Path(meters.val.roboflow100.detection.dump_dir)
    except (AttributeError, KeyError, TypeError):
        return None


def _append_json(path: Path, stats: dict) -> None:
    with open(path, "a") as handle:
        handle.write(json.dumps(stats) + "\n")
