"""Runs inside SAM3's training process (the training venv), never in the launcher.

SAM3's own Trainer on a machine without CUDA. run.* names this module in a CPU-reduced config
(tasks/lib/run/cpu_reduction.py) and puts this folder on the job's PYTHONPATH:

    trainer:
      _target_: sam3_cpu.trainer_on_this_machine          # patches (below), then sam3.train.trainer.Trainer(**kwargs)
      checkpoint:
        model_weight_initializer: {_target_: sam3_cpu.init_text_encoder, _partial_: true}

On the box-only image-training path, sam3 0.1.4 reaches CUDA-only code in three places that no config
switch guards. trainer_on_this_machine replaces them only when CUDA is absent and only for the sam3 version they
were checked against; with CUDA present nothing of SAM3 is patched and its Trainer runs as shipped:

1. model/geometry_encoders.py calls `scale.pin_memory()` on every forward: Tensor.pin_memory returns
   the tensor itself (pinning means nothing without a GPU).
2. train/utils/train_utils.py MemMeter.update calls torch.cuda.reset_peak_memory_stats() unguarded in
   the train loop: a no-op.
3. train/loss/loss_fns.py calls sigmoid_focal_loss(..., triton=True), a Triton GPU kernel: the same
   function's pure-torch branch (triton=False) for tensors that are not on CUDA.

With masks on (tasks/lib/run/segmentation.py) the path adds SAM3's mask head, the Masks and
SemanticSegCriterion losses (their focal losses go through 3.) and a segm postprocessor, which asserts
CUDA unless always_interpolate_masks_on_gpu is false: the CPU reduction sets that in the config, so no
further patch is needed here.
"""

import functools
import importlib.metadata
import logging
import sys

CHECKED_SAM3_VERSIONS = ("0.1.4",)
_patched: set[str] = set()  # which patches are in place: tensors, losses


def sam3_version() -> str:
    try:
        return importlib.metadata.version("sam3")
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def apply_cpu_patches(training: bool = True) -> bool:
    """Patch SAM3's CUDA-only calls when CUDA is absent; True when the patches are in place. training=False
    (inference: run.export's proof, run.predict) leaves SAM3's loss module alone, and unimported."""
    import torch

    if torch.cuda.is_available():
        return False
    version = sam3_version()
    if version not in CHECKED_SAM3_VERSIONS:
        raise RuntimeError(
            f"sam3_cpu: the CPU patches were checked against sam3 {', '.join(CHECKED_SAM3_VERSIONS)}, not "
            f"{version}; install sam3=={CHECKED_SAM3_VERSIONS[-1]} in the training venv (inv env.sam3 --source pypi)"
        )
    if "tensors" not in _patched:
        torch.Tensor.pin_memory = lambda self, *args, **kwargs: self
        torch.cuda.reset_peak_memory_stats = lambda device=None: None
        _patched.add("tensors")
    if training and "losses" not in _patched:
        _patch_focal_loss()
        _patched.add("losses")
        print(
            f"sam3_cpu: no CUDA, sam3 {version}: CPU patches applied (Tensor.pin_memory, "
            "torch.cuda.reset_peak_memory_stats, loss_fns.sigmoid_focal_loss triton=False)",
            file=sys.stderr,
            flush=True,
        )
    return True


def _patch_focal_loss() -> None:
    """SAM3's focal loss asks for its Triton kernel; on a CPU tensor, the plain one."""
    from sam3.train.loss import loss_fns

    original = loss_fns.sigmoid_focal_loss

    @functools.wraps(original)
    def sigmoid_focal_loss(inputs, *args, **kwargs):
        if not inputs.is_cuda:
            kwargs["triton"] = False
        return original(inputs, *args, **kwargs)

    loss_fns.sigmoid_focal_loss = sigmoid_focal_loss  # callers look it up in the module at call time


def trainer_on_this_machine(**kwargs):
    """trainer._target_: the CPU patches when CUDA is absent, then SAM3's own Trainer. Where CUDA is there
    (the demo on a GPU machine or node), nothing is patched: the reduced model runs on the GPU as SAM3's
    configs run theirs (accelerator cuda, nccl, the fallback loss on cuda)."""
    if not apply_cpu_patches():
        kwargs["accelerator"] = "cuda"
        kwargs["distributed"]["backend"] = "nccl"
        kwargs["loss"]["default"]["device"] = "cuda"
        print("sam3_cpu: CUDA present: SAM3 unpatched, the reduced model on the GPU", file=sys.stderr, flush=True)
    from sam3.train.trainer import Trainer

    return Trainer(**kwargs)


def init_text_encoder(model, std: float = 0.01):
    """trainer.checkpoint.model_weight_initializer for random weights: SAM3's TextTransformer allocates
    positional_embedding and text_projection with torch.empty and leaves them to a checkpoint, so
    without one they hold garbage and the matcher fails on NaN costs. Filled as CLIP initialises them.
    SAM3's Trainer calls this only when it starts without a checkpoint to resume from."""
    import torch
    from sam3.model.text_encoder_ve import TextTransformer

    found = 0
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, TextTransformer):
                torch.nn.init.normal_(module.positional_embedding, std=std)
                if isinstance(module.text_projection, torch.nn.Parameter):
                    torch.nn.init.normal_(module.text_projection, std=module.width**-0.5)
                found += 1
    if not found:
        raise ValueError("sam3_cpu.init_text_encoder: the model has no SAM3 TextTransformer to initialise")
    logging.info("sam3_cpu: initialised %d text encoder(s) with random weights (no checkpoint)", found)
    return model
