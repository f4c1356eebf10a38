"""Runs in the training venv (never in the launcher): one SAM3 trainer checkpoint written in the layout
SAM3's own loader reads, and proven, for `inv run.export` (tasks/lib/run/export.py).

SAM3's Trainer saves `{"model": state_dict, "optimizer": ..., "epoch": ...}` with keys such as
`backbone.…`; SAM3's loader (sam3.model_builder._load_checkpoint) keeps only keys containing "detector"
and loads them with strict=False, so a trainer checkpoint loads nothing and the model goes on with its
random weights (sam3 0.1.4). The export is `{"model": {"detector." + k: v}}`,
the model's tensors only. Before the launcher renames it into place, this script proves it:

(a) the model built as the run trained it loads it through SAM3's own loader with no missing and no
    unexpected keys: a full-size config (trainer.model: build_sam3_image_model) through
    build_sam3_image_model(checkpoint_path=<export>, load_from_HF=False, enable_segmentation=<as trained>);
    the reduced CPU model (trainer.model: Sam3Image) instantiated from the task's resolved config with
    hydra, as SAM3's Trainer does, then sam3.model_builder._load_checkpoint;
(b) every tensor of that model equals the trainer's, bit for bit;
(c) one image and one text prompt give the same pred_boxes, pred_logits and presence_logit_dec (and
    pred_masks with a mask head) through the trainer's weights (a strict load) and through the export.

Usage, with this folder on PYTHONPATH:
    python sam3_export.py --checkpoint CKPT --config config_resolved.yaml --output TMP [--device auto]
The last line on stdout is "sam3_export: " and a JSON object: {"ok": true, ...}; {"ok": false, "code": 2,
"error": ...} for input that is not what it should be (nothing written); {"ok": false, "code": 1, ...} when
the proof fails (TMP removed). The exit status is the same code.
"""

import argparse
import contextlib
import io
import json
import os
import sys
import time
import warnings

RESULT = "sam3_export: "
FULL = "sam3.model_builder.build_sam3_image_model"
REDUCED = "sam3.model.sam3_image.Sam3Image"
FULL_RESOLUTION = 1008  # build_sam3_image_model's ViT (its RoPE) takes this size only
PROMPT = "object"
OUTPUTS = ("pred_boxes", "pred_logits", "presence_logit_dec", "pred_masks")
PREFIX = "detector."


class Refused(Exception):
    """Input that is not what it should be: one line with the fix; nothing written."""

    code = 2


class ProofFailed(Exception):
    """The export does not give back the trainer's model: the file is removed."""

    code = 1


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Export a SAM3 trainer checkpoint for SAM3's loader, proven.")
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--config", required=True, help="the task's config_resolved.yaml")
    parser.add_argument("--output", required=True, help="the file to write (the launcher's temporary name)")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    args = parser.parse_args(argv)
    try:
        result = {"ok": True, **export(args)}
    except (Refused, ProofFailed) as error:
        result = {"ok": False, "code": error.code, "error": str(error)}
        with contextlib.suppress(FileNotFoundError):
            os.unlink(args.output)
    print(RESULT + json.dumps(result), flush=True)
    return 0 if result["ok"] else result["code"]


def export(args) -> dict:
    """Write args.output and prove it; the figures of the proof and the seconds each step took."""
    clock = _Clock()
    torch = _import_torch()
    spec = model_spec(args.config)
    device = _device(torch, args.device)
    if spec["kind"] == "reduced" and device == "cpu":
        torch.set_num_threads(1)  # a 224 px forward gains nothing from threads, and loses much on a busy core
    clock.lap("import")
    trained, epoch = load_trainer_checkpoint(torch, args.checkpoint)
    clock.lap("read")
    reference, _ = build(spec, device, None)
    refuse_misfit(reference, trained, args.checkpoint, spec)
    reference.load_state_dict(trained, strict=True)  # the trainer's own weights, as it would resume them
    expected = outputs(torch, reference, spec["resolution"], device)
    if spec["kind"] == "full":
        reference = None  # its memory back before SAM3's builder makes the next one
    clock.lap("proof")
    write(torch, {"model": {PREFIX + key: value for key, value in trained.items()}}, args.output)
    clock.lap("write")
    loaded, report = load_export(torch, spec, device, args.output, reference)
    state = _cpu_state(loaded)
    equal = sum(_same(torch, state[key], value) for key, value in trained.items() if key in state)
    got = outputs(torch, loaded, spec["resolution"], device)
    diffs = {key: _max_abs_diff(torch, expected[key], got[key]) for key in expected}
    clock.lap("proof")
    proof = {
        **report,
        "tensors_equal": equal,
        "tensors": len(trained),
        "outputs": diffs,
        "prompt": PROMPT,
        "resolution": spec["resolution"],
        "device": device,
    }
    failed = problems(proof)
    if failed:
        raise ProofFailed(f"the export does not give back the trainer's model: {'; '.join(failed)}")
    return {
        "epoch": epoch,
        "bytes": os.path.getsize(args.output),
        "model": _public(spec),
        "parameters": sum(value.numel() for value in trained.values()),
        "proof": proof,
        "seconds": clock.laps,
    }


class _Clock:
    """Seconds per step, summed by name."""

    def __init__(self):
        self.laps, self.last = {}, time.monotonic()

    def lap(self, name: str) -> None:
        now = time.monotonic()
        self.laps[name] = round(self.laps.get(name, 0.0) + now - self.last, 3)
        self.last = now


def _import_torch():
    """torch and sam3, their import-time warnings silenced (autocast without CUDA, jit deprecations)."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # deterministic cuBLAS: outputs compared exactly
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import sam3.model_builder  # noqa: F401
        import torch
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    return torch


def model_spec(config_path: str) -> dict:
    """What the task trained, from its resolved config: SAM3's builder at full size, or the reduced Sam3Image."""
    from omegaconf import OmegaConf

    try:
        config = OmegaConf.load(config_path)
        node = OmegaConf.select(config, "trainer.model")
    except Exception as error:  # omegaconf's and yaml's errors share no base class
        raise Refused(f"{config_path}: cannot read the task's config ({_first_line(error)}); restore it") from None
    target = node.get("_target_") if node is not None else None
    spec = {"config": config_path, "target": target, "node": node}
    if target == FULL:
        return {
            **spec,
            "kind": "full",
            "resolution": FULL_RESOLUTION,
            "bpe_path": node.get("bpe_path"),
            "enable_segmentation": bool(node.get("enable_segmentation", True)),  # the builder's default
            "enable_inst_interactivity": bool(node.get("enable_inst_interactivity", False)),
        }
    if target == REDUCED:
        size = OmegaConf.select(node, "backbone.visual.trunk.img_size") or OmegaConf.select(
            config, "scratch.resolution"
        )
        return {
            **spec,
            "kind": "reduced",
            "resolution": int(size),
            "enable_segmentation": node.get("segmentation_head") is not None,
            "enable_inst_interactivity": node.get("inst_interactive_predictor") is not None,
        }
    raise Refused(
        f"{config_path}: trainer.model is {target or 'missing'}; run.export knows {FULL} (SAM3's "
        f"configs) and {REDUCED} (the CPU reduction): export a run of one of those"
    )


def _public(spec: dict) -> dict:
    return {key: spec[key] for key in ("kind", "target", "enable_segmentation", "enable_inst_interactivity")}


def _device(torch, asked: str) -> str:
    device = ("cuda" if torch.cuda.is_available() else "cpu") if asked == "auto" else asked
    if device == "cuda" and not torch.cuda.is_available():
        raise Refused("--device cuda: torch sees no CUDA device here; use --device cpu")
    if device == "cpu":
        import sam3_cpu

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                sam3_cpu.apply_cpu_patches(
                    training=False
                )  # guarded: only without CUDA, for the sam3 it was checked against
        except RuntimeError as error:
            raise Refused(str(error)) from None
    return device


def load_trainer_checkpoint(torch, path: str) -> tuple[dict, int | None]:
    """The trainer's model tensors (memory-mapped: the optimizer state is never read) and its epoch."""
    checkpoint = _torch_load(torch, path)
    model = checkpoint.get("model") if isinstance(checkpoint, dict) else None
    if not isinstance(model, dict) or not model or not all(isinstance(v, torch.Tensor) for v in model.values()):
        held = f"the keys {', '.join(map(str, list(checkpoint)[:6]))}" if isinstance(checkpoint, dict) else None
        raise Refused(
            f"{path} is not a SAM3 trainer checkpoint (it holds {held or type(checkpoint).__name__}, not a model "
            "state dict; SAM3's Trainer saves model, optimizer, epoch, ...): restore the task's own checkpoint"
        )
    if all(key.startswith(PREFIX) for key in model):
        raise Refused(
            f"{path} is already in the layout SAM3's loader reads (every key starts with {PREFIX}): load it as it is"
        )
    return model, checkpoint.get("epoch")


ZIP, PICKLE = b"PK\x03\x04", b"\x80"  # how torch.save's files start: its zip format, its legacy pickle


def _torch_load(torch, path: str):
    fix = "restore the task's own checkpoints/checkpoint.pt, or train it again"
    with open(path, "rb") as handle:
        head = handle.read(4)
    if not head.startswith((ZIP, PICKLE)):
        raise Refused(f"{path} is not a PyTorch checkpoint (it starts with {head!r}, not as torch.save writes): {fix}")
    try:
        try:
            return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as error:
            if "mmap" not in str(error):
                raise
            return torch.load(path, map_location="cpu", weights_only=True)  # the legacy format
    except Exception as error:  # torch.load raises many kinds on a damaged file
        cause = _first_line(error).split(". ")[0]
        raise Refused(
            f"{path} cannot be read as SAM3's loader reads it, torch.load(weights_only=True) ({cause}): {fix}"
        ) from None


def refuse_misfit(model, trained: dict, path: str, spec: dict) -> None:
    """A checkpoint of another model size or config: refused before anything is written."""
    shapes = {key: tuple(value.shape) for key, value in model.state_dict().items()}
    missing = [key for key in shapes if key not in trained]
    unexpected = [key for key in trained if key not in shapes]
    other = [key for key in shapes if key in trained and tuple(trained[key].shape) != shapes[key]]
    if not (missing or unexpected or other):
        return
    if other:
        example = f"{other[0]} is {list(trained[other[0]].shape)} there, {list(shapes[other[0]])} in the model"
    else:
        example = f"e.g. {(missing or unexpected)[0]}"
    raise Refused(
        f"{path} does not fit the model this task's config builds ({spec['kind']} {spec['target']}, "
        f"masks {'on' if spec['enable_segmentation'] else 'off'}): {len(other)} tensor(s) of another "
        f"shape, {len(missing)} missing, {len(unexpected)} unexpected ({example}); it is a checkpoint "
        "of another model size or config: restore the task's own checkpoint, or export the run that "
        "trained it"
    )


def write(torch, export: dict, path: str) -> None:
    try:
        torch.save(export, path)
    except (OSError, RuntimeError) as error:  # torch reports a failed open or a full disk as RuntimeError
        raise Refused(
            f"cannot write in {os.path.dirname(path)} ({_first_line(error)}); pick another --output"
        ) from None


def build(spec: dict, device: str, checkpoint: str | None = None):
    """The model as the task trained it, on device, in eval mode: (model, what SAM3's loader did). Full size:
    SAM3's builder, as a user calls it (with checkpoint, through its loader); reduced: trainer.model
    instantiated from the task's config as SAM3's Trainer does (_convert_ all)."""
    with _loader_report() as report:
        if spec["kind"] == "full":
            from sam3.model_builder import build_sam3_image_model

            with _built_without_cuda(device):
                model = build_sam3_image_model(
                    bpe_path=spec["bpe_path"],
                    device=device,
                    eval_mode=True,
                    checkpoint_path=checkpoint,
                    load_from_HF=False,
                    enable_segmentation=spec["enable_segmentation"],
                    enable_inst_interactivity=spec["enable_inst_interactivity"],
                )
        else:
            import hydra

            model = hydra.utils.instantiate(spec["node"], _convert_="all")
    return model.to(device).eval(), {**report, "loader": f"{FULL}(checkpoint_path=...)" if checkpoint else None}


def load_export(torch, spec: dict, device: str, path: str, model=None):
    """The export through SAM3's own loader: (model, what the loader did). Full size: SAM3's builder with
    checkpoint_path. Reduced: the model already built from the task's config, every tensor of its state first
    overwritten (NaN, bits flipped) so that whatever the loader does not restore shows, then
    sam3.model_builder._load_checkpoint."""
    if spec["kind"] == "full":
        return build(spec, device, path)
    from sam3.model_builder import _load_checkpoint

    with torch.no_grad():
        for tensor in model.state_dict().values():
            if tensor.is_floating_point() or tensor.is_complex():
                tensor.fill_(float("nan"))
            else:
                tensor.bitwise_not_()
    with _loader_report() as report:
        _load_checkpoint(model, path)
    return model.eval(), {**report, "loader": "sam3.model_builder._load_checkpoint"}


@contextlib.contextmanager
def _loader_report():
    """What SAM3's loader did: the keys missing and unexpected in its load_state_dict on the whole model
    (it prints only the missing ones and drops the rest), and what it printed."""
    import torch
    from sam3.model.sam3_image import Sam3Image

    original = torch.nn.Module.load_state_dict
    report = {"loaded": False, "missing": [], "unexpected": [], "printed": ""}

    def load_state_dict(self, *args, **kwargs):
        result = original(self, *args, **kwargs)
        if isinstance(self, Sam3Image):
            report.update(loaded=True, missing=list(result.missing_keys), unexpected=list(result.unexpected_keys))
        return result

    printed = io.StringIO()
    torch.nn.Module.load_state_dict = load_state_dict
    try:
        with contextlib.redirect_stdout(printed):
            yield report
    finally:
        torch.nn.Module.load_state_dict = original
        report["printed"] = printed.getvalue().strip()


@contextlib.contextmanager
def _built_without_cuda(device: str):
    """build_sam3_image_model precomputes two caches with device="cuda" (the position encoding at 1008 px,
    the decoder's coordinates: PositionEmbeddingSine and TransformerDecoder in sam3 0.1.4). On a CPU they are
    computed at first use instead, as in the CPU reduction: caches, not weights, the same for both models."""
    if device != "cpu":
        yield
        return
    from sam3 import model_builder

    position, decoder = model_builder.PositionEmbeddingSine, model_builder.TransformerDecoder

    def position_without_cuda(*args, **kwargs):
        return position(*args, **{**kwargs, "precompute_resolution": None})

    def decoder_without_cuda(*args, **kwargs):
        return decoder(*args, **{**kwargs, "resolution": None, "stride": None})

    model_builder.PositionEmbeddingSine, model_builder.TransformerDecoder = position_without_cuda, decoder_without_cuda
    try:
        yield
    finally:
        model_builder.PositionEmbeddingSine, model_builder.TransformerDecoder = position, decoder


def outputs(torch, model, resolution: int, device: str) -> dict:
    """One seeded image (normalized as Sam3Processor does) and one text prompt through forward_grounding, as
    Sam3Processor.set_text_prompt runs it; also for a model without a mask head, which Sam3Processor refuses."""
    from sam3.model.data_misc import FindStage

    generator = torch.Generator().manual_seed(0)
    image = (torch.rand(1, 3, resolution, resolution, generator=generator) * 2 - 1).to(device)
    ids = torch.tensor([0], device=device, dtype=torch.long)
    find = FindStage(
        img_ids=ids,
        text_ids=ids,
        input_boxes=None,
        input_boxes_mask=None,
        input_boxes_label=None,
        input_points=None,
        input_points_mask=None,
    )
    with torch.inference_mode():
        backbone_out = model.backbone.forward_image(image)
        backbone_out.update(model.backbone.forward_text([PROMPT], device=device))
        out = model.forward_grounding(
            backbone_out=backbone_out, find_input=find, find_target=None, geometric_prompt=model._get_dummy_prompt()
        )
    return {key: out[key].detach().cpu() for key in OUTPUTS if key in out}


def _cpu_state(model) -> dict:
    return {key: value.detach().cpu() for key, value in model.state_dict().items()}


def _bits(torch, tensor):
    """A float tensor's bit pattern (NaN equals NaN, -0.0 differs from 0.0): equal bits, equal tensors."""
    if tensor.is_complex():
        tensor = torch.view_as_real(tensor)
    if not tensor.is_floating_point():
        return tensor
    return tensor.view({1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}[tensor.element_size()])


def _same(torch, a, b) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype and torch.equal(_bits(torch, a), _bits(torch, b))


def _max_abs_diff(torch, a, b) -> float:
    """0.0 for the same bits; the largest difference otherwise (inf where only one side is NaN or shapes differ)."""
    if _same(torch, a, b):
        return 0.0
    if a.shape != b.shape:
        return float("inf")
    a, b = a.double(), b.double()
    diff = (a - b).abs()
    diff[(a == b) | (a.isnan() & b.isnan())] = 0.0
    return float(diff.nan_to_num(nan=float("inf")).max())


def problems(proof: dict) -> list[str]:
    """What the proof found wrong, a phrase each; [] when it holds."""
    found = []
    if not proof["loaded"]:
        found.append("SAM3's loader loaded nothing")
    for kind in ("missing", "unexpected"):
        if proof[kind]:
            found.append(f"SAM3's loader reports {len(proof[kind])} {kind} key(s) (e.g. {proof[kind][0]})")
    if proof["tensors_equal"] != proof["tensors"]:
        found.append(f"{proof['tensors_equal']}/{proof['tensors']} tensors equal the trainer's")
    found += [f"{key} differs by up to {diff}" for key, diff in proof["outputs"].items() if diff != 0.0]
    return found


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:200]


if __name__ == "__main__":
    status = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # the file is closed and the result printed: skip tearing down torch, torchvision, scipy and sam3, which
    # takes over a second on two busy cores
    os._exit(status)
