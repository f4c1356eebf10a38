"""run.export: one task's SAM3 trainer checkpoint as one file SAM3's own loader reads, proven before it
is announced.

SAM3's loader keeps only keys containing "detector" and loads with strict=False, so the checkpoint its
Trainer saves (`<task>/checkpoints/checkpoint.pt`, keys like `backbone.…`, plus the optimizer) loads
nothing (sam3 0.1.4, model_builder._load_checkpoint). The export is `{"model": {"detector." + k: v}}`, the
model's tensors only, written under a temporary name beside its target and renamed into place only once
plugins/sam3_export.py (the training venv's python: torch never enters the launcher) has proven it.
"""

import contextlib
import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.errors import ConfigError, ToolError
from . import status
from .published import lookup

PLUGIN_DIR = Path(__file__).resolve().parent / "plugins"
SCRIPT = PLUGIN_DIR / "sam3_export.py"
RESULT = "sam3_export: "  # the script's last line on stdout: this, then a JSON object
CHECKPOINT = Path("checkpoints") / "checkpoint.pt"
RESOLVED = "config_resolved.yaml"
FOLDER = "export"
FULL = "sam3.model_builder.build_sam3_image_model"


@dataclass
class Source:
    """The task whose checkpoint is exported."""

    run: str
    label: str
    dataset: str | None
    cell: str | None
    experiment_dir: Path
    checkpoint: Path
    config: Path
    max_epochs: int | None = None


def choose(record: dict[str, Any], dataset: str | None, cell: str | None) -> Source:
    """The one task of the run named by --dataset and --cell, its checkpoint and config there (else one line
    with the fix)."""
    entries = status.select(record, dataset, cell)
    if len(entries) > 1:
        labels = ", ".join(status.label(record, entry) for entry in entries)
        raise ConfigError(
            f"run {record['name']} has {len(entries)} tasks ({labels}); pick one with --dataset "
            "(cell/dataset in a grid)"
        )
    entry = entries[0]
    folder = Path(entry["experiment_dir"])
    source = Source(
        record["name"],
        status.label(record, entry),
        entry["dataset"],
        entry.get("cell"),
        folder,
        folder / CHECKPOINT,
        folder / RESOLVED,
        entry.get("max_epochs"),
    )
    if not source.checkpoint.is_file():
        raise ConfigError(why_no_checkpoint(record, entry, source))
    if not source.config.is_file():
        raise ConfigError(
            f"{source.config} is missing (SAM3's train.py writes it when the task starts), so the "
            "model the task trained is not known: restore it from a backup"
        )
    return source


def why_no_checkpoint(record: dict[str, Any], entry: dict[str, Any], source: Source) -> str:
    task = f"{source.label} of run {source.run}"
    if record.get("trainer_mode") == "val":
        return f"{task} is an evaluation (run.eval): SAM3 saves no checkpoint then; export the run that trained"
    config = _read_config(source.config) or _read_config(Path(entry.get("config") or "")) or {}
    if lookup(config, "trainer.skip_saving_ckpts") is True:
        return (
            f"{task} saved no checkpoint: its config has trainer.skip_saving_ckpts: true (as SAM3's RF100-VL "
            "and ODinW configs ship); train it again with --set trainer.skip_saving_ckpts=false (a new --name, "
            "or --restart)"
        )
    if not source.config.is_file():
        return (
            f"{task} has not started yet (no {RESOLVED} in {source.experiment_dir}); inv run.status --name {source.run}"
        )
    return (
        f"{task} has no checkpoint yet ({source.checkpoint}): SAM3's Trainer writes it at the end of each epoch; "
        f"wait for the first (inv run.status --name {source.run})"
    )


def _read_config(path: Path) -> dict | None:
    import yaml

    try:
        data = yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


def default_output(source: Source) -> Path:
    """<task folder>/export/<run>[-<cell>]-<dataset>.pt, beside the task's checkpoints/ and logs/."""
    stem = "-".join(part for part in (source.run, source.cell, source.dataset) if part)
    return source.experiment_dir / FOLDER / f"{stem.replace(os.sep, '_')}.pt"


def check_output(output: Path, source: Source, force: bool) -> Path:
    """The target as an absolute path; refused (one line with the fix) when it cannot or must not be written."""
    output = Path(os.path.abspath(os.path.expanduser(output)))
    if output.is_dir():
        raise ConfigError(f"--output {output} is a folder; name a file in it, e.g. --output {output / 'model.pt'}")
    if output.exists() and output.samefile(source.checkpoint):
        raise ConfigError(f"--output {output} is the trainer checkpoint itself; name another file")
    if output.exists() and not force:
        raise ConfigError(f"{output} exists; pass --force to replace it, or name another file with --output")
    folder = next((parent for parent in output.parents if parent.exists()), None)
    if folder is None or not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(
            f"cannot write in {folder or output.parent}; name a file in a folder you can write with --output"
        )
    return output


def export(python: Path, source: Source, output: Path, force: bool, device: str = "auto") -> dict[str, Any]:
    """Write and prove the export under a temporary name beside output, then rename it into place: the
    script's result with where things are. Nothing is left behind when anything fails."""
    if not python.is_file():
        raise ConfigError(
            f"no training env at {python.parent.parent} (the export runs SAM3 there); build it with inv env.sam3"
        )
    made = [folder for folder in reversed(output.parents) if not folder.exists()]
    output.parent.mkdir(parents=True, exist_ok=True)
    temporary = output.with_name(f".{output.name}.tmp-{os.getpid()}")
    try:
        result = run_script(python, SCRIPT, source, temporary, device)
        if output.exists() and not force:  # written meanwhile by someone else
            raise ConfigError(f"{output} exists; pass --force to replace it, or name another file with --output")
        os.replace(temporary, output)
    finally:
        temporary.unlink(missing_ok=True)
        if not output.exists():  # the folders made for it go too
            for folder in reversed(made):
                _remove_empty(folder)
    return {
        "export": str(output),
        "checkpoint": str(source.checkpoint),
        "checkpoint_bytes": source.checkpoint.stat().st_size,
        "run": source.run,
        "dataset": source.dataset,
        "cell": source.cell,
        "experiment_dir": str(source.experiment_dir),
        "config": str(source.config),
        "max_epochs": source.max_epochs,
        **result,
        "load": load_lines(source, output, result["model"]),
    }


def _remove_empty(folder: Path) -> None:
    with contextlib.suppress(OSError):
        folder.rmdir()


def run_script(python: Path, script: Path, source: Source, temporary: Path, device: str) -> dict[str, Any]:
    """The script's result: its JSON line; its refusal as ConfigError (exit 2), a failed proof or a crash as
    ToolError (exit 1)."""
    argv = [
        str(python),
        str(script),
        "--checkpoint",
        str(source.checkpoint),
        "--config",
        str(source.config),
        "--output",
        str(temporary),
        "--device",
        device,
    ]
    environ = {**os.environ, "PYTHONPATH": str(PLUGIN_DIR)}  # sam3_cpu, and whatever the config's targets name
    done = subprocess.run(argv, env=environ, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    lines = [line for line in done.stdout.splitlines() if line.startswith(RESULT)]
    result = json.loads(lines[-1][len(RESULT) :]) if lines else None
    if result is None:
        cause = status.exception_lines(done.stderr) or done.stderr.strip().splitlines()[-1:] or ["no output"]
        raise ToolError(
            f"the export of {source.label} stopped (exit {done.returncode}): {' '.join(cause)}; nothing was written"
        )
    if not result.pop("ok"):
        error = ConfigError if result.get("code") == ConfigError.code else ToolError
        raise error(f"{result['error']}; nothing was written")
    return result


def load_lines(source: Source, output: Path, model: dict[str, Any]) -> list[str]:
    """The Python that loads the export as SAM3's loader does, for the model the task trained."""
    if model["target"] == FULL:
        bpe = lookup(_read_config(source.config) or {}, "trainer.model.bpe_path")
        flags = ", enable_inst_interactivity=True" if model["enable_inst_interactivity"] else ""
        lines = [
            "from sam3 import build_sam3_image_model",
            f"model = build_sam3_image_model(bpe_path={str(bpe) if bpe else None!r}, checkpoint_path={str(output)!r}, "
            f"load_from_HF=False, enable_segmentation={model['enable_segmentation']}{flags})",
        ]
        if not model["enable_segmentation"]:
            lines.append(
                "# box-only: Sam3Processor needs a mask head; call model.forward_grounding as "
                "Sam3Processor.set_text_prompt does"
            )
        return lines
    return [
        "# the reduced model (SAM3's classes at a reduced size) is not what build_sam3_image_model builds:",
        "# build it from the task's config as SAM3's Trainer did, then load with SAM3's own loader",
        "import hydra",
        "from omegaconf import OmegaConf",
        "from sam3.model_builder import _load_checkpoint",
        f"model = hydra.utils.instantiate(OmegaConf.load({str(source.config)!r}).trainer.model, _convert_='all').eval()",
        f"_load_checkpoint(model, {str(output)!r})",
        f"# without CUDA, first: import sam3_cpu; sam3_cpu.apply_cpu_patches()  (PYTHONPATH={PLUGIN_DIR})",
    ]


def summary_lines(result: dict[str, Any]) -> list[str]:
    """What run.export prints: where, how big, what was proven, how to load it."""
    proof, model, seconds = result["proof"], result["model"], result["seconds"]
    task = "/".join(part for part in (result["cell"], result["dataset"]) if part) or result["run"]
    masks = "with its mask head" if model["enable_segmentation"] else "box-only"
    built = "SAM3's builder at full size" if model["target"] == FULL else "the reduced Sam3Image from the task's config"
    same = ", ".join(proof["outputs"])
    of = f" of {result['max_epochs']}" if result.get("max_epochs") else ""
    when = f" (after epoch {result['epoch']}{of})" if result.get("epoch") is not None else ""
    return [
        f"{task} of run {result['run']}{when} exported: {result['export']}",
        f"  {_mb(result['bytes'])} MB: the model's {proof['tensors']} tensors ({result['parameters'] / 1e6:.1f} M "
        f"parameters) only; the trainer checkpoint is {_mb(result['checkpoint_bytes'])} MB ({result['checkpoint']})",
        f"  proven on the {proof['device'].upper()} in {seconds['proof']:.1f} s (read {seconds['read']:.1f} s, "
        f"written {seconds['write']:.1f} s, torch and SAM3 imported {seconds['import']:.1f} s): SAM3's loader ({proof['loader']}) on "
        f"{built} ({masks}): {len(proof['missing'])} missing, {len(proof['unexpected'])} unexpected keys; "
        f"{proof['tensors_equal']}/{proof['tensors']} tensors equal to the trainer's, bit for bit; one "
        f"{proof['resolution']} px image and the prompt {proof['prompt']!r}: {same} identical (max abs diff 0.0) "
        "through the trainer's weights and through the export",
        "  load it:",
        *(f"    {line}" for line in result["load"]),
    ]


def _mb(size: int) -> str:
    return f"{size / 1e6:.1f}"
