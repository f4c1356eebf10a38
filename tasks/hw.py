"""Hardware checks: GPUs (NVML), CUDA/driver/PyTorch fit, VRAM and its health, disk space."""

from invoke import Exit

from .common import load_settings, task
from .lib.core import report as report_lib

KIND_HELP = "Kind of run the VRAM need is judged for: box, segmentation or eval (default: hw.run_kind)."
JSON_HELP = "Print JSON instead of a table."
NO_GPU_HELP = "Pass (with a warning) on a machine without NVIDIA GPU, for CPU-only flows."


def _run(c, sections, title, kind=None, allow_no_gpu=False, as_json=False):
    from .lib.hw import check as hardware

    settings = load_settings(c, **{"hw.run_kind": ("--kind", kind)})
    result = hardware.run_checks(settings, sections, settings["hw.run_kind"], allow_no_gpu)
    if as_json:
        print(report_lib.to_json(result.as_dict()))
    else:
        if "gpu" in sections and result.inventory.gpus:
            print_inventory(result.inventory)
        report_lib.print_checks(title, result.checks)
    if result.exit_code:
        if result.no_gpu and not allow_no_gpu:
            raise Exit(f"error: {hardware.no_gpu_message(result.inventory)}", code=result.exit_code)
        failed = sum(check.status == report_lib.FAIL for check in result.checks)
        raise Exit(f"error: {failed} check(s) failed; see the fix column above", code=result.exit_code)


def print_inventory(inventory):
    rows = []
    for g in inventory.gpus:
        cap = "-" if not g.compute_capability else "{}.{}".format(*g.compute_capability)
        procs = ", ".join(f"{p.pid}:{p.name}" for p in g.processes) or "-"
        rows.append(
            (g.index, g.name, f"{g.memory_total_mib / 1024:.1f}", f"{g.memory_free_mib / 1024:.1f}", cap, procs)
        )
    title = f"GPUs (driver {inventory.driver_version}, read by {inventory.source})"
    report_lib.print_table(title, ("index", "model", "total GiB", "free GiB", "compute cap", "processes"), rows)


@task(help={"json": JSON_HELP, "allow_no_gpu": NO_GPU_HELP})
def gpu(c, json=False, allow_no_gpu=False):
    """List NVIDIA GPUs: model, memory, driver, compute capability, processes."""
    _run(c, ("gpu",), "hw.gpu", allow_no_gpu=allow_no_gpu, as_json=json)


@task(help={"json": JSON_HELP})
def cuda(c, json=False):
    """Check that driver CUDA, nvcc and the training env's torch fit together."""
    _run(c, ("cuda",), "hw.cuda", as_json=json)


@task(help={"kind": KIND_HELP, "json": JSON_HELP, "allow_no_gpu": NO_GPU_HELP})
def vram(c, kind=None, json=False, allow_no_gpu=False):
    """Check free VRAM per GPU against the run's need, and memory health."""
    _run(c, ("vram",), "hw.vram", kind, allow_no_gpu, json)


@task(help={"json": JSON_HELP})
def disk(c, json=False):
    """Check free disk at every configured location against what goes there."""
    _run(c, ("disk",), "hw.disk", as_json=json)


@task(default=True, help={"kind": KIND_HELP, "json": JSON_HELP, "allow_no_gpu": NO_GPU_HELP})
def check(c, kind=None, json=False, allow_no_gpu=False):
    """Run gpu, cuda, vram and disk checks; exit 0 only when nothing fails."""
    _run(c, ("gpu", "cuda", "vram", "disk"), "hw.check", kind, allow_no_gpu, json)
