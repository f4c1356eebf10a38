"""run.train / run.eval, planned: render every config a run needs and the exact commands, writing nothing.

A run lives in `<experiment_root>/<name>/`: `launch.json` records what was launched (run.record), its rendered
configs are its own (`<name>/configs/sam3_tasks/`, composed by name through SAM3_TASKS_CONFIG_DIR), and each
dataset gets its own SAM3 experiment folder `<name>/<dataset>/` (config.yaml, config_resolved.yaml,
checkpoints/, tensorboard/, logs/<dataset>/, submitit_logs/), so no two datasets ever share a checkpoint
that a requeue could resume by mistake.
"""

import contextlib
import copy
import hashlib
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
from ..data import own
from ..env import tracking, weights
from . import cpu_reduction, grid, identity, job_env, own_data, sam3_config

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
    grid: list[str] = field(default_factory=list)
    restart: bool = False
    data: str | None = None  # the user's own COCO dataset folder (tasks/lib/run/own_data.py)
    task: str | None = None  # with data: bbox (default) or segm
    prompts: str | None = None  # with data: a file mapping category ids to phrases


@dataclass
class Launch:
    """One rendered config: locally one call of SAM3's train.py (the exact command); on a cluster one
    SLURM job array (or job) of SAM3's SubmititRunner, submitted with `job` into `folder`."""

    config_name: str
    config_path: Path
    config_text: str
    argv: list[str]
    datasets: list[str | None]
    job: dict | None = None  # submitit's parameters, as SAM3's train.py derives them from the config
    folder: Path | None = None  # submitit's folder: batch scripts and logs


@dataclass
class Task:
    """One dataset of a run or of a grid cell (or the run itself, for configs without a dataset list)."""

    dataset: str | None
    experiment_dir: Path
    launch: int | None  # index into Plan.launches; None when this launch leaves the task alone
    cell: grid.Cell | None = None
    max_epochs: int = 0  # the cell's trainer.max_epochs: its final evaluation is of the epoch before

    @property
    def key(self) -> tuple[str | None, str | None]:
        return (self.cell.name if self.cell else None, self.dataset)

    @property
    def label(self) -> str:
        return "/".join(part for part in self.key if part) or "run"


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
    withheld: list[str] = field(default_factory=list)  # variables kept out of the jobs (names only): job_env.py
    env_allow: tuple[str, ...] = ()  # jobs.env_allow: more variables jobs get (job_env.job_environment)
    bpe: Path | None = None  # SAM3's BPE vocabulary, when the config names <BPE_PATH>
    axes: list[grid.Axis] = field(default_factory=list)
    identity: dict = field(default_factory=dict)  # what decides the results (tasks/lib/run/identity.py)
    trainer_mode: str = "train"
    wandb_instance: str = ""  # after --restart: which life of the run folder this is (W&B run ids)
    own_data: Any = None  # --data: the user's dataset (tasks/lib/data/own.py OwnDataset)
    files: dict[Path, str] = field(default_factory=dict)  # written beside the configs: annotation copies
    notes: list[str] = field(default_factory=list)  # what the launch says about the data it was given

    def diff(self) -> str:
        """The first rendered config against its source, as data."""
        import yaml

        first = yaml.safe_load(self.launches[0].config_text)
        return sam3_config.diff(self.source_data, first, str(self.source), str(self.launches[0].config_path))

    @property
    def cells(self) -> list[grid.Cell]:
        return list({task.cell.name: task.cell for task in self.tasks if task.cell}.values())

    def launched(self) -> list[Task]:
        return [task for task in self.tasks if task.launch is not None]

    def command_lines(self) -> list[str]:
        prefix = " ".join(f"{key}={shlex.quote(value)}" for key, value in sorted(self.env.items()))
        lines = []
        for launch in self.launches:
            if launch.job is None:
                lines.append(f"cd {shlex.quote(str(self.run_dir))} && {prefix} {shlex.join(launch.argv)}")
            else:
                ask = ", ".join(f"{key}={value}" for key, value in launch.job.items() if value not in (None, {}, ""))
                lines.append(
                    f"{launch.config_name}: {len(launch.datasets)} SLURM task(s) of SAM3's SubmititRunner "
                    f"through submitit ({ask}); logs in {launch.folder}"
                )
        return lines


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
    done = subprocess.run(
        [str(python), "-c", code], capture_output=True, text=True, timeout=120, cwd=python.parent.parent
    )
    location = done.stdout.strip()
    if done.returncode != 0 or not location:
        raise ToolError(f"sam3 is not installed in {python.parent.parent}; install it with inv env.sam3")
    return Path(location)


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "run"


def plan(
    request: Request,
    settings,
    sam3_package: Path,
    python: Path,
    environ=os.environ,
    only: set | None = None,
    array_limit: int | None = None,
    wandb_instance: str = "",
) -> Plan:
    """Render every config the run needs and the exact commands; write nothing.

    Every task of the request is in the plan; only those whose key ((cell, dataset)) is in `only` get
    a launch (all of them when only is None). On a cluster an array holds at most array_limit tasks
    (SLURM's MaxArraySize): a larger one is split.
    """
    _refuse_bad_flags(request)
    src = _source(request, settings.path("sam3.checkout"), environ)
    source, original = src.path, src.data
    name = _safe_name(request.name or _default_name(request, source, src.own_dataset))
    run_dir = settings.path("paths.experiment_root") / name
    data_root = settings.path("paths.demo_data_root") if request.config is None else None
    rendering = _render(request, settings, src, run_dir, python, environ, data_root)
    env, wandb_on, wandb_warning = _job_environment(settings, environ, rendering.config, run_dir)
    jobs = _Jobs.of(request, settings, name, source, python, run_dir, wandb_on, wandb_instance)
    jobs.values.update(_data_roots(settings, data_root))
    bpe = find_bpe(settings.path("sam3.checkout"), sam3_package, environ)
    if bpe:
        jobs.values["<BPE_PATH>"] = str(bpe)
    launches, tasks = _cells(jobs, rendering, run_dir, only, array_limit)
    result = Plan(
        name,
        request.mode,
        source,
        run_dir,
        launches,
        tasks,
        env,
        original,
        needs_weights=bool(rendering.weights_warning),
        model_note=rendering.model_note,
        withheld=job_env.withheld(environ, settings["jobs.env_allow"]),
        env_allow=tuple(settings["jobs.env_allow"]),
        bpe=bpe if "<BPE_PATH>" in str(original) else None,
        axes=rendering.axes,
        wandb_instance=wandb_instance,
    )
    if rendering.prepared:
        result.own_data, result.files = src.own_dataset, rendering.prepared.files
        result.notes = rendering.prepared.notes
    _judge(result, rendering, jobs, python, [wandb_warning])
    return result


def _refuse_bad_flags(request: Request) -> None:
    """Flags that cannot go together, or values out of range: one line each."""
    if request.mode not in ("local", "cluster"):
        raise ConfigError(f"--mode {request.mode!r} is not local or cluster; pick one of those")
    if request.max_parallel is not None and request.mode != "cluster":
        raise ConfigError(
            "--max-parallel limits SLURM array tasks; use it with --mode cluster (locally they run in turn)"
        )
    for flag, value in (
        ("--num-gpus", request.num_gpus),
        ("--num-nodes", request.num_nodes),
        ("--max-parallel", request.max_parallel),
    ):
        if value is not None and value < 1:
            raise ConfigError(f"{flag} {value} must be 1 or more; SAM3 runs one process per GPU")
    if request.mode != "cluster" and request.num_nodes not in (None, 1):
        raise ConfigError("--num-nodes above 1 needs --mode cluster; SAM3 runs a single node locally")


@dataclass
class _Source:
    """The config a run starts from, as written, and the user's own dataset when --data names one."""

    path: Path
    data: dict
    own_dataset: Any


def _source(request: Request, checkout: Path, environ) -> _Source:
    """The source config (the demo's, or found by name), loaded, and the --data folder's layout."""
    if request.config is None:
        source = sam3_config.DEMO_CONFIG
    else:
        source = sam3_config.find_config(request.config, sam3_config.config_roots(checkout, environ))
    original = sam3_config.load(source)
    own_dataset = own.layout(request.data) if request.data else None
    if own_dataset is None:
        _refuse_wrong_mode(request, source, original)
    elif request.datasets:
        raise ConfigError("--datasets picks RF100-VL/ODinW datasets; with --data the dataset is that folder: drop it")
    return _Source(source, original, own_dataset)


@dataclass
class _Rendering:
    """The run's config before its grid cells and datasets, and what was decided on the way there."""

    config: dict
    model_note: str
    weights_warning: str | None
    axes: list
    listing: tuple[str, list[str]] | None
    datasets: list
    prepared: Any = None  # own_data.Prepared: annotation copies to write, notes to print


def _render(request, settings, source: _Source, run_dir: Path, python: Path, environ, data_root) -> _Rendering:
    """Own data pointed at, the CPU reduction merged, --set applied, --smoke shrunk, the local weights named,
    the grid's axes and the datasets picked."""
    prepared = own_data.prepare(source.data, source.own_dataset, request, run_dir) if source.own_dataset else None
    base = prepared.config if prepared else source.data
    reduced, model_note = _model_choice(request, base, source.path, python, environ)
    rendered = sam3_config.apply_sets(cpu_reduction.reduce(base) if reduced else copy.deepcopy(base), request.sets)
    if request.smoke:
        for key, value in SMOKE.items():
            with contextlib.suppress(ConfigError):  # shrink only what the config has
                sam3_config.set_key(rendered, key, value)
    weights_warning = _use_local_weights(rendered, settings.path("paths.hf_home"))
    axes = grid.parse_axes(request.grid, rendered)
    listing = sam3_config.dataset_list(rendered)
    datasets: list[str | None] = [None]
    if listing:
        datasets = sam3_config.select_datasets(listing[1], request.datasets)
    elif request.datasets:
        raise ConfigError(
            f"--datasets: {source.path.name} has no dataset list (all_roboflow_supercategories or "
            "all_odinw_supercategories); drop --datasets"
        )
    if request.smoke and not prepared:
        root_key = str((rendered.get("paths") or {}).get("roboflow_vl_100_root"))
        root = sam3_config.fill(root_key, _data_roots(settings, data_root))
        prepared = own_data.shrink_rf100vl_evaluation(rendered, root, datasets, run_dir)
    return _Rendering(rendered, model_note, weights_warning, axes, listing, datasets, prepared)


def _job_environment(settings, environ, rendered: dict, run_dir: Path) -> tuple[dict, bool, str | None]:
    """What every job of the run gets in its environment, whether W&B mirrors it, and why not when it cannot."""
    env = weights.offline_hub_environment(settings.path("paths.hf_home"))
    wandb_env = tracking.wandb_job_env(settings, environ)
    wandb_warning = _wandb_writer_problem(rendered) if wandb_env else None
    wandb_on = bool(wandb_env) and not wandb_warning
    if wandb_on:
        env.update(wandb_env)
        key, _ = tracking.find_key(environ)
        if settings["tracking.wandb_mode"] == "online" and environ.get(tracking.KEY_ENV) == key:
            env[job_env.WANDB_KEY_FILE_VAR] = str(job_env.wandb_key_file(run_dir, environ))  # written at launch
    # our plugins live in one folder: every job needs its hydra plugin, which finds the run's own configs
    env["PYTHONPATH"] = str(tracking.PLUGIN_DIR)
    env[sam3_config.CONFIG_DIR_VAR] = str(run_dir / "configs")  # <run>/configs/sam3_tasks/<file>.yaml
    return env, wandb_on, wandb_warning


@dataclass
class _Jobs:
    """How one rendered config becomes a Launch: its file name, W&B identity, paths, and command."""

    request: Request
    name: str
    source: Path
    python: Path
    config_dir: Path
    num_gpus: int
    num_nodes: int
    wandb_on: bool
    wandb_instance: str
    values: dict[str, str] = field(default_factory=dict)  # placeholders and what they become

    @classmethod
    def of(cls, request, settings, name, source, python, run_dir, wandb_on, wandb_instance) -> "_Jobs":
        cluster = request.mode == "cluster"
        num_gpus = request.num_gpus or (settings["slurm.num_gpus"] if cluster else 1)
        num_nodes = request.num_nodes or (settings["slurm.num_nodes"] if cluster else 1)
        config_dir = run_dir / "configs"
        return cls(request, name, source, python, config_dir, num_gpus, num_nodes, wandb_on, wandb_instance)

    @property
    def cluster(self) -> bool:
        return self.request.mode == "cluster"

    def launch(
        self,
        config: dict,
        file_name: str,
        members: list,
        experiment_dir: Path,
        run_name: str,
        identity_: tuple[str | None, str],
        cell_dir: Path,
    ) -> Launch:
        """identity_: the W&B run's dataset and folder (interpolations in a job array)."""
        if self.wandb_on:
            job_type = "eval" if self.request.evaluate else "train"
            overrides = tracking.writer_overrides(
                run_name, *identity_, job_type, group=self.name, instance=self.wandb_instance
            )
            for key, value in overrides.items():
                sam3_config.set_key(config, key, value, create=True)
        config = sam3_config.fill(config, {**self.values, "<YOUR EXPERIMENET LOG_DIR>": str(experiment_dir)})
        sam3_config.set_key(config, "launcher.experiment_log_dir", str(experiment_dir), create=True)
        name_ = f"{sam3_config.CONFIG_PREFIX}/{file_name}"
        path = self.config_dir / name_
        if not self.cluster:
            argv = [str(self.python), "-m", "sam3.train.train", "-c", name_, "--use-cluster", "0"]
            argv += ["--num-gpus", str(self.num_gpus), "--num-nodes", "1"]
            _refuse_placeholders(config)
            return Launch(name_, path, sam3_config.to_text(config, self.source), argv, members)
        sam3_config.set_key(config, "launcher.gpus_per_node", self.num_gpus, create=True)
        sam3_config.set_key(config, "launcher.num_nodes", self.num_nodes, create=True)
        _refuse_placeholders(config)
        r = self.request
        job = job_parameters(config, name_, self.num_gpus, self.num_nodes, r.partition, r.account, r.qos)
        text = sam3_config.to_text(config, self.source)
        return Launch(name_, path, text, submit_argv(self.python), members, job, cell_dir / "submitit_logs")


def _cells(jobs: _Jobs, rendering: _Rendering, run_dir: Path, only, array_limit) -> tuple[list[Launch], list[Task]]:
    """Every task of every grid cell; a launch for each chosen one (a job array per cell on a cluster)."""
    launches: list[Launch] = []
    tasks: list[Task] = []
    for number, cell in enumerate(grid.cells(rendering.axes) or [None], 1):
        cell_config = copy.deepcopy(rendering.config)
        for key, value in (cell.values if cell else {}).items():
            sam3_config.set_key(cell_config, key, value)
        cell_dir = run_dir / cell.name if cell else run_dir
        epochs = int(_number(cell_config, (cell_config.get("trainer") or {}).get("max_epochs")))
        cell_tasks = [
            Task(dataset, cell_dir / _safe_name(dataset) if dataset is not None else cell_dir, None, cell, epochs)
            for dataset in rendering.datasets
        ]
        tasks += cell_tasks
        chosen = [task for task in cell_tasks if only is None or task.key in only]
        stem = f"{jobs.name}--c{number:02d}" if cell else jobs.name
        run_name = f"{jobs.name}/{cell.name}" if cell else jobs.name
        if rendering.listing and jobs.cluster:
            _array_launches(
                jobs, launches, chosen, cell_config, rendering.listing[0], (stem, run_name, cell_dir), array_limit
            )
        else:
            _task_launches(jobs, launches, chosen, cell_config, rendering.listing, (stem, run_name, cell_dir))
    return launches, tasks


def _array_launches(
    jobs: _Jobs,
    launches: list,
    chosen: list[Task],
    cell_config: dict,
    list_key: str,
    cell: tuple[str, str, Path],
    array_limit: int | None,
) -> None:
    """SAM3's job-array layout: one array task per dataset, each with its own folders; arrays of at most
    array_limit tasks."""
    stem, run_name, cell_dir = cell
    size = array_limit or len(chosen) or 1
    for chunk in (chosen[i : i + size] for i in range(0, len(chosen), size)):
        config = array_config(copy.deepcopy(cell_config), list_key, [t.dataset for t in chunk])
        # named by its datasets: tasks still queued from an earlier launch compose their own file
        members = hashlib.sha256("\0".join(t.dataset for t in chunk).encode()).hexdigest()[:8]
        identity_ = ("${sam3_tasks.dataset}", ARRAY_TASK_DIR)
        datasets = [t.dataset for t in chunk]
        launches.append(
            jobs.launch(config, f"{stem}--{members}.yaml", datasets, cell_dir, run_name, identity_, cell_dir)
        )
        for task in chunk:
            task.launch = len(launches) - 1


def _task_launches(
    jobs: _Jobs, launches: list, chosen: list[Task], cell_config: dict, listing, cell: tuple[str, str, Path]
) -> None:
    """One launch per task: locally one train.py call per dataset, in turn."""
    stem, run_name, cell_dir = cell
    for task in chosen:
        config = copy.deepcopy(cell_config)
        if task.dataset is not None:
            index = listing[1].index(task.dataset)
            sam3_config.set_key(config, "submitit.job_array.task_index", index, create=True)
        file_name = f"{stem}--{_safe_name(task.dataset)}.yaml" if task.dataset is not None else f"{stem}.yaml"
        identity_ = (task.dataset, str(task.experiment_dir))
        launches.append(
            jobs.launch(config, file_name, [task.dataset], task.experiment_dir, run_name, identity_, cell_dir)
        )
        task.launch = len(launches) - 1


def _judge(result: Plan, rendering: _Rendering, jobs: _Jobs, python: Path, warnings: list) -> None:
    """The run's identity (what decides its results), its trainer mode, and the warnings it prints."""
    from ..env.trainenv import training_versions

    result.identity = identity.of_run(
        sam3_config.fill(rendering.config, jobs.values),
        jobs.num_gpus,
        jobs.num_nodes,
        rendering.axes,
        training_versions(python),
    )
    trainer = rendering.config.get("trainer") or {}
    result.trainer_mode = str(trainer.get("mode", "train"))
    result.warnings += [w for w in (rendering.weights_warning, *warnings) if w]
    if trainer.get("skip_saving_ckpts") and max(task.max_epochs for task in result.tasks) > 1:
        result.warnings.append(
            "trainer.skip_saving_ckpts is true: no checkpoint is written, so a requeued or "
            "crashed job restarts from zero (--set trainer.skip_saving_ckpts=false)"
        )


def _data_roots(settings, demo_root: Path | None = None) -> dict[str, str]:
    """What SAM3's data placeholders become: the demo's data, or the configured RF100-VL and ODinW roots."""
    return {
        "<YOUR_DATASET_DIR>": str(demo_root or settings.path("paths.roboflow_vl_100_root")),
        "<YOUR_DATA_DIR>": str(settings.path("paths.odinw_data_root")),
    }


def _refuse_wrong_mode(request: Request, source: Path, config: dict) -> None:
    """run.eval takes evaluation configs (trainer.mode: val), run.train the others."""
    mode_key = (config.get("trainer") or {}).get("mode", "train")
    if request.evaluate and mode_key != "val":
        raise ConfigError(f"{source.name} has trainer.mode: {mode_key}; run.eval runs evaluation configs (mode: val)")
    if not request.evaluate and mode_key == "val":
        raise ConfigError(f"{source.name} is an evaluation config (trainer.mode: val); use inv run.eval")


def _default_name(request: Request, source: Path, dataset) -> str:
    """The demo's, the config's short name, or for --data the dataset's (-segm for masks, -baseline for run.eval)."""
    if dataset is not None:
        return f"{dataset.name}{'-segm' if request.task == 'segm' else ''}{'-baseline' if request.evaluate else ''}"
    return "demo" if request.config is None else source.stem


# The submission, in the training env: tasks/lib/run/plugins/sam3_array.py reads the arrays on stdin.
def submit_argv(python: Path) -> list[str]:
    return [str(python), "-c", "import sys, sam3_array; sys.exit(sam3_array.submit_main())"]


def job_parameters(
    config: dict,
    config_name: str,
    num_gpus: int,
    num_nodes: int,
    partition: str | None,
    account: str | None,
    qos: str | None,
) -> dict:
    """submitit's parameters for one job array, derived from the config as SAM3's train.py derives them
    (sam3/train/train.py main: one task per GPU, the config's CPUs, time, memory, nodes to include or
    exclude, constraints, comment, cpu binding); --partition/--account/--qos win over the config's."""
    submitit = config.get("submitit") or {}
    partition = partition or submitit.get("partition")
    account = account or submitit.get("account")
    qos = qos or submitit.get("qos")
    extra = {"exclude": " ".join(submitit.get("exclude_nodes") or [])}
    if submitit.get("include_nodes"):
        extra["nodelist"] = " ".join(submitit["include_nodes"])
    if account:
        extra["account"] = account
    if qos:
        extra["qos"] = qos
    job = {
        "timeout_min": int(60 * _number(config, submitit.get("timeout_hour", 72))),
        "name": str(submitit.get("name") or config_name),
        "slurm_partition": partition,
        "gpus_per_node": num_gpus,
        "tasks_per_node": num_gpus,
        "cpus_per_task": submitit.get("cpus_per_task"),
        "nodes": num_nodes,
        "slurm_additional_parameters": extra,
    }
    if submitit.get("mem_gb") is not None:
        job["mem_gb"] = submitit["mem_gb"]
    elif submitit.get("mem") is not None:
        job["slurm_mem"] = submitit["mem"]
    if submitit.get("constraints") is not None:
        job["slurm_constraint"] = submitit["constraints"]
    if submitit.get("comment") is not None:
        job["slurm_comment"] = submitit["comment"]
    cpu_bind = (submitit.get("srun_args") or {}).get("cpu_bind")
    if cpu_bind is not None:
        job["slurm_srun_args"] = ["--cpu-bind", cpu_bind]
    return job


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
        return (
            f"no verified SAM3 weights under {hf_home}: jobs run offline (HF_HUB_OFFLINE=1), so the launch "
            "runs env.weights first"
        )
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
    return (
        f"W&B logging is on (tracking.wandb_project), but {tracking.WRITER_KEY} is not SAM3's "
        "make_tensorboard_logger with should_log on, whose scalars W&B mirrors: this run logs nothing to W&B"
    )


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
    """Write each rendered config into the run's own folder, <run>/configs/sam3_tasks/, where its jobs
    compose it (temporary name, then rename: a job starting meanwhile reads a whole file)."""
    for launch in plan_.launches:
        launch.config_path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(launch.config_path, launch.config_text)
    for path, text in plan_.files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, text)


def remove_configs(plan_: Plan) -> None:
    """Take back what write_configs wrote: the files, and the folders up to the run's that are left empty."""
    for path in [launch.config_path for launch in plan_.launches] + list(plan_.files):
        path.unlink(missing_ok=True)
    config_dir = Path(plan_.env[sam3_config.CONFIG_DIR_VAR])
    data_dirs = sorted({path.parent for path in plan_.files})
    for folder in (config_dir / sam3_config.CONFIG_PREFIX, config_dir, *data_dirs, plan_.run_dir):
        with contextlib.suppress(OSError):  # not empty: it holds the run's other files
            folder.rmdir()


def tensorboard_hint(run_dir: Path, environ=os.environ) -> list[str]:
    lines = [f"tensorboard --logdir {shlex.quote(str(run_dir))}"]
    if environ.get("SSH_CONNECTION"):
        host = platform.node()
        lines.append(f"from your laptop: ssh -N -L 6006:localhost:6006 {host}   then open http://localhost:6006")
    return lines
