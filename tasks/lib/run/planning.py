"""run.train / run.eval, planned: render every config a run needs and the exact commands, writing nothing.

A run lives in `<experiment_root>/<name>/`: `launch.json` records what was launched (run.record), and each
dataset gets its own SAM3 experiment folder `<name>/<dataset>/` (config.yaml, config_resolved.yaml,
checkpoints/, tensorboard/, logs/<dataset>/, submitit_logs/), so no two datasets ever share a checkpoint
that a requeue could resume by mistake.
"""

import contextlib
import copy
import json
import os
import platform
import re
import shlex
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.errors import ConfigError, ToolError
from ..core.paths import atomic_write_text
from ..env import tracking, weights
from . import cpu_reduction, job_env, sam3_config

DEMO_DATASETS = ("13-lkc01", "-grccs", "actions")


BPE_NAME = "bpe_simple_vocab_16e6.txt.gz"


# --smoke: keys shrunk when the config has them (a few iterations, a few images, validation at once).
SMOKE = {
    "trainer.max_epochs": 1,
    "trainer.val_epoch_freq": 1,
    "trainer.skip_first_val": False,
    "roboflow_train.num_images": 4,
    "odinw_train.num_images": 4,
    "scratch.max_data_epochs": 1,
    "scratch.target_epoch_size": 4,
    "scratch.num_train_workers": 0,
    "trainer.logging.log_freq": 1,  # every one of the few steps in the log
    "submitit.timeout_hour": 1,
}


@dataclass
class Request:
    """What the user asked for, flags already parsed."""

    config: str | None
    mode: str = "local"
    datasets: str | None = None
    sets: list[str] = field(default_factory=list)
    name: str | None = None
    num_gpus: int | None = None
    num_nodes: int | None = None
    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    smoke: bool = False
    evaluate: bool = False
    max_parallel: int | None = None


@dataclass
class Launch:
    """One call of SAM3's train.py: the config it composes and the exact command."""

    config_name: str
    config_path: Path
    config_text: str
    argv: list[str]
    datasets: list[str | None]


@dataclass
class Task:
    """One dataset of a run (or the run itself, for configs without a dataset list)."""

    dataset: str | None
    experiment_dir: Path
    launch: int  # index into Plan.launches


@dataclass
class Plan:
    name: str
    mode: str
    source: Path
    run_dir: Path
    launches: list[Launch]
    tasks: list[Task]
    env: dict[str, str]
    source_data: dict
    warnings: list[str] = field(default_factory=list)
    needs_weights: bool = False  # the config loads SAM3's checkpoint and no verified copy is on disk
    model_note: str = ""  # which model runs, when that is not simply the config's (the demo, --smoke)
    withheld: list[str] = field(default_factory=list)  # secret variables kept out of the job (names only)
    bpe: Path | None = None  # SAM3's BPE vocabulary, when the config names <BPE_PATH>

    def diff(self) -> str:
        """The first rendered config against its source, as data."""
        import yaml

        first = yaml.safe_load(self.launches[0].config_text)
        return sam3_config.diff(self.source_data, first, str(self.source), str(self.launches[0].config_path))

    def command_lines(self) -> list[str]:
        prefix = " ".join(f"{key}={shlex.quote(value)}" for key, value in sorted(self.env.items()))
        return [
            f"cd {shlex.quote(str(self.run_dir))} && {prefix} {shlex.join(launch.argv)}" for launch in self.launches
        ]


def find_bpe(sam3_checkout: Path, sam3_package: Path | None, environ=os.environ) -> Path | None:
    """SAM3's BPE vocabulary: $SAM3_BPE_PATH, the submodule's assets, or where SAM3 looks by default
    (`<sam3 package>/../assets`, which scripts/install-sam3-bpe fills for a PyPI install)."""
    candidates = [Path(environ["SAM3_BPE_PATH"])] if environ.get("SAM3_BPE_PATH") else []
    candidates.append(sam3_checkout / "assets" / BPE_NAME)
    if sam3_package:
        candidates += [sam3_package.parent / "assets" / BPE_NAME, sam3_package / "assets" / BPE_NAME]
    return next((path for path in candidates if path.is_file()), None)


def bpe_origin(path: Path, environ=os.environ) -> str:
    """Where the BPE file came from, for pre-flight to say."""
    if environ.get("SAM3_BPE_PATH") and Path(environ["SAM3_BPE_PATH"]) == path:
        return "SAM3_BPE_PATH"
    source = path.with_name(path.name + ".source.json")
    if source.is_file():
        return json.loads(source.read_text()).get("from", "scripts/install-sam3-bpe")
    return "the sam3 checkout's assets/"


def sam3_package_dir(python: Path) -> Path:
    """Where the training env imports `sam3` from (a submodule in editable mode, or site-packages)."""
    if not python.exists():
        raise ToolError(
            f"no training environment at {python.parent.parent}; build it with inv env.venv env.torch env.sam3"
        )
    code = "import importlib.util as u; s = u.find_spec('sam3'); print(s.submodule_search_locations[0] if s else '')"
    # run from inside the venv: from the project root, `import sam3` would find the sam3/ checkout folder
    done = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=120,
                          cwd=python.parent.parent)  # fmt: skip
    location = done.stdout.strip()
    if done.returncode != 0 or not location:
        raise ToolError(f"sam3 is not installed in {python.parent.parent}; install it with inv env.sam3")
    return Path(location)


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "run"


def plan(request: Request, settings, sam3_package: Path, python: Path, environ=os.environ) -> Plan:
    """Render every config the run needs and the exact commands; write nothing."""
    checkout = settings.path("sam3.checkout")
    if request.config is None:
        source = sam3_config.DEMO_CONFIG
    else:
        source = sam3_config.find_config(request.config, sam3_config.config_roots(checkout, environ))
    original = sam3_config.load(source)
    mode_key = (original.get("trainer") or {}).get("mode", "train")
    if request.evaluate and mode_key != "val":
        raise ConfigError(f"{source.name} has trainer.mode: {mode_key}; run.eval runs evaluation configs (mode: val)")
    if not request.evaluate and mode_key == "val":
        raise ConfigError(f"{source.name} is an evaluation config (trainer.mode: val); use inv run.eval")
    if request.mode not in ("local", "cluster"):
        raise ConfigError(f"--mode {request.mode!r} is not local or cluster; pick one of those")
    if request.max_parallel is not None and request.mode != "cluster":
        raise ConfigError(
            "--max-parallel limits SLURM array tasks; use it with --mode cluster (locally they run in turn)"
        )
    for flag, value in (("--num-gpus", request.num_gpus), ("--num-nodes", request.num_nodes),
                        ("--max-parallel", request.max_parallel)):  # fmt: skip
        if value is not None and value < 1:
            raise ConfigError(f"{flag} {value} must be 1 or more; SAM3 runs one process per GPU")

    name = _safe_name(request.name or ("demo" if request.config is None else source.stem))
    run_dir = settings.path("paths.experiment_root") / name
    data_root = settings.path("paths.demo_data_root") if request.config is None else None
    bpe = find_bpe(checkout, sam3_package, environ)
    reduced, model_note = _model_choice(request, original, source, python, environ)
    rendered = sam3_config.apply_sets(cpu_reduction.reduce(original) if reduced else copy.deepcopy(original),
                                      request.sets)  # fmt: skip
    if request.smoke:
        for key, value in SMOKE.items():
            with contextlib.suppress(ConfigError):  # shrink only what the config has
                sam3_config.set_key(rendered, key, value)
    weights_warning = _use_local_weights(rendered, settings.path("paths.hf_home"))
    listing = sam3_config.dataset_list(rendered)
    datasets: list[str | None] = [None]
    if listing:
        datasets = sam3_config.select_datasets(listing[1], request.datasets)
    elif request.datasets:
        raise ConfigError(f"--datasets: {source.name} has no dataset list (all_roboflow_supercategories or "
                          "all_odinw_supercategories); drop --datasets")  # fmt: skip

    env = weights.job_environment(settings.path("paths.hf_home"))
    wandb_env = tracking.job_env(settings, environ)
    wandb_warning = _wandb_writer_problem(rendered) if wandb_env else None
    wandb_on = bool(wandb_env) and not wandb_warning
    if wandb_on:
        env.update(wandb_env)
        key, _ = tracking.find_key(environ)
        if settings["tracking.wandb_mode"] == "online" and environ.get(tracking.KEY_ENV) == key:
            env[job_env.WANDB_KEY_FILE_VAR] = str(job_env.state_dir(environ) / "wandb-api-key")  # written at launch
    if wandb_on or cpu_reduction.is_reduced(rendered):  # sam3_wandb and sam3_cpu live in one folder
        env["PYTHONPATH"] = str(tracking.PLUGIN_DIR)
    num_gpus = request.num_gpus or (1 if request.mode == "local" else settings["slurm.num_gpus"])
    num_nodes = request.num_nodes or (1 if request.mode == "local" else settings["slurm.num_nodes"])
    if request.mode == "local" and num_nodes != 1:
        raise ConfigError("--num-nodes above 1 needs --mode cluster; SAM3 runs a single node locally")
    generated = sam3_package / "train" / "configs" / sam3_config.GENERATED
    values = {
        "<YOUR_DATASET_DIR>": str(data_root or settings.path("paths.roboflow_vl_100_root")),
        "<YOUR_DATA_DIR>": str(settings.path("paths.odinw_data_root")),
    }
    if bpe:
        values["<BPE_PATH>"] = str(bpe)
    argv_tail = ["--use-cluster", "1" if request.mode == "cluster" else "0", "--num-gpus", str(num_gpus),
                 "--num-nodes", str(num_nodes)]  # fmt: skip
    for flag, value in (("--partition", request.partition), ("--account", request.account), ("--qos", request.qos)):
        if value:
            argv_tail += [flag, value]

    def launch(config: dict, file_name: str, members: list[str | None], experiment_dir: Path,
               identity: tuple[str | None, str]) -> Launch:  # fmt: skip
        """identity: the W&B run's dataset and folder (interpolations in a job array)."""
        if wandb_on:
            job_type = "eval" if request.evaluate else "train"
            for key, value in tracking.writer_overrides(name, *identity, job_type).items():
                sam3_config.set_key(config, key, value, create=True)
        config = sam3_config.fill(config, {**values, "<YOUR EXPERIMENET LOG_DIR>": str(experiment_dir)})
        sam3_config.set_key(config, "launcher.experiment_log_dir", str(experiment_dir), create=True)
        _refuse_placeholders(config)
        name_ = f"configs/{sam3_config.GENERATED}/{file_name}"
        text = sam3_config.to_text(config, source)
        return Launch(name_, generated / file_name, text, [str(python), "-m", "sam3.train.train", "-c", name_, *argv_tail],
                      members)  # fmt: skip

    launches, tasks = [], []
    if listing and request.mode == "cluster":
        # SAM3's own job-array path: one array task per dataset, each with its own folders.
        config = array_config(copy.deepcopy(rendered), listing[0], datasets)
        identity = ("${sam3_tasks.dataset}", ARRAY_TASK_DIR)
        launches.append(launch(config, f"{name}.yaml", list(datasets), run_dir, identity))
        tasks = [Task(dataset, run_dir / _safe_name(dataset), 0) for dataset in datasets]
    else:
        for dataset in datasets:
            experiment_dir = run_dir / _safe_name(dataset) if dataset is not None else run_dir
            config = copy.deepcopy(rendered)
            if dataset is not None:
                sam3_config.set_key(config, "submitit.job_array.task_index", listing[1].index(dataset), create=True)
            file_name = f"{name}--{_safe_name(dataset)}.yaml" if dataset is not None else f"{name}.yaml"
            launches.append(launch(config, file_name, [dataset], experiment_dir, (dataset, str(experiment_dir))))
            tasks.append(Task(dataset, experiment_dir, len(launches) - 1))
    result = Plan(name, request.mode, source, run_dir, launches, tasks, env, original,
                  needs_weights=bool(weights_warning), model_note=model_note, withheld=job_env.withheld(environ),
                  bpe=bpe if '<BPE_PATH>' in str(original) else None)  # fmt: skip
    result.warnings += [warning for warning in (weights_warning, wandb_warning) if warning]
    trainer = rendered.get("trainer") or {}
    if trainer.get("skip_saving_ckpts") and _number(rendered, trainer.get("max_epochs")) > 1:
        result.warnings.append("trainer.skip_saving_ckpts is true: no checkpoint is written, so a requeued or "
                               "crashed job restarts from zero (--set trainer.skip_saving_ckpts=false)")  # fmt: skip
    return result


def _model_choice(request: Request, config: dict, source: Path, python: Path, environ) -> tuple[bool, str]:
    """Whether the run gets the CPU reduction, and what to say about the model that runs: the demo always
    does; --smoke does locally on a machine without a GPU (with one, or on a cluster, the config's own
    model runs at full size on a few images)."""
    if request.config is not None and not request.smoke:
        return False, ""
    if request.config is not None and (request.mode == "cluster" or _has_gpu()):
        return False, "smoke: the config's own model at full size, on the GPU, over a few images"
    from ..env.trainenv import training_versions

    cpu_reduction.check(config, source.name, training_versions(python).get("sam3"))
    return True, f"{'smoke' if request.smoke else 'demo'}: {cpu_reduction.SUMMARY}"


def _has_gpu() -> bool:
    from ..hw import gpu

    try:
        return bool(gpu.read_inventory().gpus)
    except ImportError:  # no nvidia-ml-py: no NVML to ask
        return False


def _use_local_weights(config: dict, hf_home: Path) -> str | None:
    """Point SAM3's model builder at the verified local checkpoint (jobs run with HF_HUB_OFFLINE=1 and
    cannot download it); a warning when there is none yet."""
    model = (config.get("trainer") or {}).get("model") or {}
    if not str(model.get("_target_", "")).endswith("build_sam3_image_model") or model.get("checkpoint_path"):
        return None
    if model.get("load_from_HF") is False:  # the user asked for no checkpoint (random weights)
        return None
    overrides = weights.job_overrides(hf_home)
    if not overrides:
        return (f"no verified SAM3 weights under {hf_home}: jobs run offline (HF_HUB_OFFLINE=1), so the launch "
                "runs env.weights first")  # fmt: skip
    for key, value in overrides.items():
        sam3_config.set_key(config, key, value, create=True)
    sam3_config.set_key(config, "trainer.model.load_from_HF", False, create=True)
    return None


def _wandb_writer_problem(config: dict) -> str | None:
    """Why W&B cannot mirror this config's TensorBoard scalars, or None."""
    writer = ((config.get("trainer") or {}).get("logging") or {}).get("tensorboard_writer") or {}
    ours = writer.get("_target_") in (tracking.SAM3_WRITER_TARGET, tracking.PLUGIN_TARGET)
    if ours and writer.get("should_log") is not False:
        return None
    return (f"W&B logging is on (tracking.wandb_project), but {tracking.WRITER_KEY} is not SAM3's "
            "make_tensorboard_logger with should_log on, whose scalars W&B mirrors: this run logs nothing to W&B")  # fmt: skip


def _number(config: dict, value: Any) -> float:
    """A number, following one plain `${a.b}` reference (SAM3 writes max_epochs: ${scratch.max_data_epochs})."""
    reference = re.fullmatch(r"\$\{([\w.]+)\}", str(value))
    if reference:
        node: Any = config
        for part in reference.group(1).split("."):
            node = node.get(part) if isinstance(node, dict) else None
        value = node
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def _refuse_placeholders(config: dict) -> None:
    left = sam3_config.placeholders(config)
    if left:
        key, placeholder = left[0]
        fix = (
            "run scripts/install-sam3-bpe with the training venv's python, or set SAM3_BPE_PATH"
            if placeholder == "<BPE_PATH>"
            else f"--set {key}=VALUE"
        )
        raise ConfigError(f"{key} still holds the placeholder {placeholder}; {fix}")


# Per-array-task folders: SAM3's configs share checkpoints and TensorBoard across all array tasks.
ARRAY_TASK_DIR = "${launcher.experiment_log_dir}/${sam3_tasks.dataset}"


PER_DATASET_DIRS = {
    "trainer.checkpoint.save_dir": "checkpoints",
    "trainer.logging.tensorboard_writer.log_dir": "tensorboard",
    "trainer.logging.log_dir": "logs/${sam3_tasks.dataset}",
}


def array_config(config: dict, list_key: str, datasets: list[str]) -> dict:
    """A config for SAM3's job-array path over exactly these datasets, in this order, each array task
    writing checkpoints, TensorBoard and logs under <run>/<dataset>/."""
    field_ = sam3_config.DATASET_LISTS[list_key]
    entries = config[list_key]
    by_name = {str(entry[field_] if field_ else entry): entry for entry in entries}
    config[list_key] = [by_name[name] for name in datasets]
    sam3_config.set_key(config, "submitit.job_array.num_tasks", len(datasets), create=True)
    sam3_config.set_key(config, "submitit.job_array.task_index", 0, create=True)
    suffix = f".{field_}" if field_ else ""
    index = "${string:${submitit.job_array.task_index}}"
    config.setdefault("sam3_tasks", {})["dataset"] = "${" + f"{list_key}.{index}{suffix}" + "}"
    for key, leaf in PER_DATASET_DIRS.items():
        with contextlib.suppress(ConfigError):  # a config without this key writes no such folder
            sam3_config.set_key(config, key, f"{ARRAY_TASK_DIR}/{leaf}")
    return config


def write_configs(plan_: Plan) -> None:
    """Write each rendered config where SAM3's train.py looks for it (temporary name, then rename)."""
    for launch in plan_.launches:
        launch.config_path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(launch.config_path, launch.config_text)


def remove_configs(plan_: Plan) -> None:
    for launch in plan_.launches:
        launch.config_path.unlink(missing_ok=True)


def tensorboard_hint(run_dir: Path, environ=os.environ) -> list[str]:
    lines = [f"tensorboard --logdir {shlex.quote(str(run_dir))}"]
    if environ.get("SSH_CONNECTION"):
        host = platform.node()
        lines.append(f"from your laptop: ssh -N -L 6006:localhost:6006 {host}   then open http://localhost:6006")
    return lines
