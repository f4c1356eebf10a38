"""run.train / run.eval as plain functions: plan (render configs, build commands), check, launch, record.

A run lives in `<experiment_root>/<name>/`: `launch.json` records what was launched, and each
dataset gets its own SAM3 experiment folder `<name>/<dataset>/` (config.yaml,
config_resolved.yaml, checkpoints/, tensorboard/, logs/<dataset>/, submitit_logs/), so no two
datasets ever share a checkpoint that a requeue could resume by mistake.
"""

import contextlib
import copy
import json
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from . import sam3_config, tracking, weights
from .errors import ConfigError, ToolError
from .paths import PROJECT_ROOT, atomic_write_text

RECORD = "launch.json"
DEMO_PYTHONPATH = PROJECT_ROOT / "demo"
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
    """SAM3's BPE vocabulary: $SAM3_BPE_PATH, the submodule's assets, or the installed package's."""
    candidates = [Path(environ["SAM3_BPE_PATH"])] if environ.get("SAM3_BPE_PATH") else []
    candidates.append(sam3_checkout / "sam3" / "assets" / BPE_NAME)
    if sam3_package:
        candidates.append(sam3_package / "assets" / BPE_NAME)
    return next((path for path in candidates if path.is_file()), None)


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
    rendered = sam3_config.apply_sets(copy.deepcopy(original), request.sets)
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
    pythonpath = [str(DEMO_PYTHONPATH)] if _names_demo_trainer(rendered) else []
    wandb_env = tracking.job_env(settings, environ)
    wandb_warning = _wandb_writer_problem(rendered) if wandb_env else None
    wandb_on = bool(wandb_env) and not wandb_warning
    if wandb_on:
        env.update(wandb_env)
        pythonpath.append(str(tracking.PLUGIN_DIR))
    if pythonpath:
        env["PYTHONPATH"] = os.pathsep.join(pythonpath)
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
    result = Plan(
        name, request.mode, source, run_dir, launches, tasks, env, original, needs_weights=bool(weights_warning)
    )
    result.warnings += [warning for warning in (weights_warning, wandb_warning) if warning]
    trainer = rendered.get("trainer") or {}
    if trainer.get("skip_saving_ckpts") and _number(rendered, trainer.get("max_epochs")) > 1:
        result.warnings.append("trainer.skip_saving_ckpts is true: no checkpoint is written, so a requeued or "
                               "crashed job restarts from zero (--set trainer.skip_saving_ckpts=false)")  # fmt: skip
    return result


def _use_local_weights(config: dict, hf_home: Path) -> str | None:
    """Point SAM3's model builder at the verified local checkpoint (jobs run with HF_HUB_OFFLINE=1 and
    cannot download it); a warning when there is none yet."""
    model = (config.get("trainer") or {}).get("model") or {}
    if not str(model.get("_target_", "")).endswith("build_sam3_image_model") or model.get("checkpoint_path"):
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
            "set SAM3_BPE_PATH or check out the sam3 submodule" if placeholder == "<BPE_PATH>" else f"--set {key}=VALUE"
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


def _names_demo_trainer(config: dict) -> bool:
    return str((config.get("trainer") or {}).get("_target_", "")).startswith("sam3_demo.")


def write_configs(plan_: Plan) -> None:
    """Write each rendered config where SAM3's train.py looks for it (temporary name, then rename)."""
    for launch in plan_.launches:
        launch.config_path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(launch.config_path, launch.config_text)


def remove_configs(plan_: Plan) -> None:
    for launch in plan_.launches:
        launch.config_path.unlink(missing_ok=True)


def _git_commit(path: Path) -> str | None:
    """The checked-out commit of a repository or submodule; None for an empty submodule folder."""
    if not (path / ".git").exists():
        return None
    done = subprocess.run(["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True, text=True)
    return done.stdout.strip() or None if done.returncode == 0 else None


def training_versions(python: Path) -> dict[str, str]:
    code = ("import importlib.metadata as m, json\nout = {}\nfor name in ('torch', 'sam3', 'hydra-core', 'submitit'):\n"
            "    try: out[name] = m.version(name)\n    except m.PackageNotFoundError: pass\nprint(json.dumps(out))")  # fmt: skip
    done = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=120)
    return json.loads(done.stdout) if done.returncode == 0 else {}


def new_record(plan_: Plan, request: Request, python: Path, command: list[str]) -> dict[str, Any]:
    """What was launched, from where and with what: no environment values, so no secrets."""
    return {
        "name": plan_.name,
        "mode": plan_.mode,
        "command": command,
        "request": asdict(request),
        "source_config": str(plan_.source),
        "run_dir": str(plan_.run_dir),
        "host": platform.node(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "commits": {
            name: _git_commit(path)
            for name, path in (
                ("project", PROJECT_ROOT),
                ("sam3", PROJECT_ROOT / "sam3"),
                ("GLIP", PROJECT_ROOT / "GLIP"),
                ("rf100-vl", PROJECT_ROOT / "rf100-vl"),
            )
            if path.exists()
        },  # fmt: skip
        "versions": {"python": sys.version.split()[0], **training_versions(python)},
        "tasks": [
            {
                "dataset": t.dataset,
                "experiment_dir": str(t.experiment_dir),
                "config": str(plan_.launches[t.launch].config_path),
                "argv": plan_.launches[t.launch].argv,
                "state": "pending",
                "pid": None,
                "job_id": None,
                "exit_code": None,
            }
            for t in plan_.tasks
        ],  # fmt: skip
    }


def save_record(run_dir: Path, record: dict[str, Any]) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / RECORD, json.dumps(record, indent=2) + "\n")


def run_local(plan_: Plan, record: dict[str, Any], stream=sys.stdout) -> int:
    """Run each dataset's train.py in turn, streaming its output and teeing it to <task>/train.log."""
    environment = job_environment(plan_)
    worst = 0
    for task, entry in zip(plan_.tasks, record["tasks"], strict=True):
        task.experiment_dir.mkdir(parents=True, exist_ok=True)
        label = task.dataset or plan_.name
        argv = plan_.launches[task.launch].argv
        print(f"== {label}: {shlex.join(argv)}", file=stream, flush=True)
        with open(task.experiment_dir / "train.log", "a") as log:
            process = subprocess.Popen(argv, cwd=plan_.run_dir, env=environment, stdout=subprocess.PIPE,
                                       stderr=subprocess.STDOUT, text=True, bufsize=1, start_new_session=True)  # fmt: skip
            entry.update(state="running", pid=process.pid)
            save_record(plan_.run_dir, record)
            for line in process.stdout:
                log.write(line)
                stream.write(f"[{label}] {line}")
            code = process.wait()
        entry.update(state="done" if code == 0 else "failed", exit_code=code)
        save_record(plan_.run_dir, record)
        worst = worst or code
    record["ended"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    save_record(plan_.run_dir, record)
    return worst


def job_environment(plan_: Plan) -> dict[str, str]:
    """This process's environment with the plan's on top (PYTHONPATH joined, not replaced)."""
    environment = dict(os.environ)
    for key, value in plan_.env.items():
        joined = key == "PYTHONPATH" and environment.get(key)
        environment[key] = f"{value}{os.pathsep}{environment[key]}" if joined else value
    return environment


JOB_ID = re.compile(r"Submitit Job ID:\s*(\S+)")


def throttle(job_ids: list[str], max_parallel: int) -> None:
    """At most max_parallel tasks of the array run at once (SLURM's ArrayTaskThrottle, the %N of
    --array=0-99%N); SAM3's train.py does not pass submitit's array parallelism through."""
    arrays = sorted({job.split("_")[0] for job in job_ids if job})
    for array in arrays:
        subprocess.run(["scontrol", "update", f"JobId={array}", f"ArrayTaskThrottle={max_parallel}"],
                       check=True, capture_output=True, text=True, timeout=60)  # fmt: skip


def submit(plan_: Plan, record: dict[str, Any], stream=sys.stdout) -> int:
    """Cluster mode: SAM3's train.py submits through submitit (an array for many datasets) and
    returns; each dataset's task records its own SLURM job id."""
    worst = 0
    plan_.run_dir.mkdir(parents=True, exist_ok=True)
    for index, launch in enumerate(plan_.launches):
        staging = plan_.run_dir / f".task-configs-{os.getpid()}"
        writer = start_task_configs(plan_, launch, staging) if len(launch.datasets) > 1 else None
        done = subprocess.run(
            launch.argv, cwd=plan_.run_dir, env=job_environment(plan_), capture_output=True, text=True
        )
        with open(plan_.run_dir / "submit.log", "a") as log:
            log.write(done.stdout + done.stderr)
        ids = JOB_ID.findall(done.stdout)
        members = [
            (task, entry) for task, entry in zip(plan_.tasks, record["tasks"], strict=True) if task.launch == index
        ]
        ok = done.returncode == 0 and len(ids) == len(members)
        for (task, entry), job in zip(members, ids + [None] * len(members), strict=False):
            task.experiment_dir.mkdir(parents=True, exist_ok=True)
            entry.update(state="submitted" if ok else "failed", job_id=job,
                         exit_code=None if done.returncode == 0 else done.returncode)  # fmt: skip
            print(f"{task.dataset or plan_.name}: SLURM job {job or '(none)'}", file=stream)
        if ok and len(members) > 1 and record["request"].get("max_parallel"):
            throttle(ids, record["request"]["max_parallel"])
        if writer:
            finish_task_configs(writer, staging, plan_.run_dir, keep=ok)
        if not ok:
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            print("\n".join(tail), file=stream)
            worst = worst or done.returncode or 1
        save_record(plan_.run_dir, record)
    return worst


def start_task_configs(plan_: Plan, launch: Launch, staging: Path) -> subprocess.Popen:
    """Begin writing each array task's config_resolved.yaml, resolved with its own index, into
    staging/<dataset>/ (in the training env, beside the submission, which it does not depend on)."""
    probe = PROJECT_ROOT / "scripts" / "sam3_preflight_probe.py"
    argv = [launch.argv[0], str(probe), "--task-configs", str(staging), launch.config_name]
    return subprocess.Popen(
        argv, env=job_environment(plan_), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )


def finish_task_configs(writer: subprocess.Popen, staging: Path, run_dir: Path, keep: bool) -> None:
    """Move the staged task configs into each dataset's folder, or drop them when submission failed."""
    if not keep:
        writer.kill()
    _, errors = writer.communicate(timeout=600)
    try:
        if keep and writer.returncode != 0:
            raise ToolError(f"writing the per-dataset configs failed: {(errors.strip().splitlines() or ['?'])[-1]}")
        for folder in sorted(staging.iterdir()) if keep else []:
            (run_dir / folder.name).mkdir(parents=True, exist_ok=True)
            for file in folder.iterdir():
                os.replace(file, run_dir / folder.name / file.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"sam3.train.train" in cmdline


def _slurm_state(job_id: str) -> str:
    done = subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%T"], capture_output=True, text=True, timeout=60)
    states = sorted(set(done.stdout.split()))
    if states:
        return "/".join(s.lower() for s in states)
    done = subprocess.run(["scontrol", "show", "job", job_id], capture_output=True, text=True, timeout=60)
    match = re.search(r"JobState=(\S+)", done.stdout)
    return match.group(1).lower() if match else "finished (no longer known to SLURM)"


def task_state(record: dict[str, Any], entry: dict[str, Any]) -> str:
    """The state now: from the process table for local runs, from squeue/scontrol for cluster runs."""
    if record["mode"] == "cluster" and entry.get("job_id"):
        return _slurm_state(entry["job_id"])
    if entry["state"] == "running" and not _pid_alive(entry["pid"]):
        return "stopped (the launcher went away)"
    return entry["state"]


def _log_files(record: dict[str, Any], entry: dict[str, Any]) -> list[Path]:
    if record["mode"] == "cluster":
        job = entry.get("job_id")
        return sorted((Path(record["run_dir"]) / "submitit_logs").glob(f"{job}_*_log.*")) if job else []
    return [Path(entry["experiment_dir"]) / "train.log"]


def print_logs(record: dict[str, Any], dataset: str | None, follow: bool, stream=sys.stdout, poll: float = 1.0) -> None:
    """Print each task's log; with follow, keep printing new lines until no task is running."""
    entries = [e for e in record["tasks"] if dataset in (None, e["dataset"])]
    if not entries:
        names = ", ".join(str(e["dataset"]) for e in record["tasks"])
        raise ConfigError(f"--dataset {dataset!r} is not in run {record['name']} (its datasets: {names})")
    offsets: dict[Path, int] = {}
    while True:
        for entry in entries:
            for path in _log_files(record, entry):
                if not path.exists():
                    continue
                with open(path, errors="replace") as handle:
                    handle.seek(offsets.get(path, 0))
                    text = handle.read()
                    offsets[path] = handle.tell()
                label = entry["dataset"] or record["name"]
                for line in text.splitlines():
                    stream.write(f"[{label}] {line}\n")
        stream.flush()
        running = any(task_state(record, e).startswith(("running", "pending", "submitted")) for e in entries)
        if not follow or not running:
            return
        time.sleep(poll)
        record = json.loads((Path(record["run_dir"]) / RECORD).read_text())
        entries = [e for e in record["tasks"] if dataset in (None, e["dataset"])]


def cancel(record: dict[str, Any], dry_run: bool, kill, sig) -> list[str]:
    """scancel the run's SLURM jobs, or signal its local process groups; what was done, a line each."""
    done = []
    for entry in record["tasks"]:
        label = entry["dataset"] or record["name"]
        if record["mode"] == "cluster" and entry.get("job_id"):
            argv = ["scancel", entry["job_id"]]
            if not dry_run:
                subprocess.run(argv, check=True, capture_output=True, text=True, timeout=60)
            done.append(f"{label}: {'would run' if dry_run else 'ran'} {shlex.join(argv)}")
        elif _pid_alive(entry["pid"]):
            if not dry_run:
                kill(-os.getpgid(entry["pid"]), sig)
            done.append(f"{label}: {'would stop' if dry_run else 'stopped'} process group of pid {entry['pid']}")
    return done or [f"{record['name']}: nothing is running"]


AP_KEY = re.compile(r"coco_eval_bbox_(AP|AP_50)$")


def val_results(experiment_dir: Path, dataset: str | None) -> dict[str, float]:
    """AP and AP_50 from the last line of SAM3's val_stats.json (JSONL) for one task; {} if none yet."""
    logs = experiment_dir / "logs"
    paths = [logs / dataset / "val_stats.json"] if dataset else sorted(logs.glob("*/val_stats.json"))
    for path in paths:
        lines = path.read_text().splitlines() if path.exists() else []
        if lines:
            stats = json.loads(lines[-1])
            return {m.group(1): value for key, value in stats.items() if (m := AP_KEY.search(key))}
    return {}


def where_things_go(plan_: Plan) -> list[tuple[str, str]]:
    """The rows of the after-launch table: what is written where."""
    rows = [("experiment", str(plan_.run_dir)), ("launch record", str(plan_.run_dir / RECORD))]
    for task in plan_.tasks:
        label = task.dataset or "run"
        rows += [
            (f"{label}: configs", str(task.experiment_dir / "config_resolved.yaml")),
            (f"{label}: checkpoints", str(task.experiment_dir / "checkpoints")),
            (f"{label}: tensorboard", str(task.experiment_dir / "tensorboard")),
            (f"{label}: logs", str(task.experiment_dir / "logs")),
        ]
    if plan_.mode == "cluster":
        rows.append(("submitit logs", str(plan_.run_dir / "submitit_logs")))
    return rows


def tensorboard_hint(run_dir: Path, environ=os.environ) -> list[str]:
    lines = [f"tensorboard --logdir {shlex.quote(str(run_dir))}"]
    if environ.get("SSH_CONNECTION"):
        host = platform.node()
        lines.append(f"from your laptop: ssh -N -L 6006:localhost:6006 {host}   then open http://localhost:6006")
    return lines


def load_record(experiment_root: Path, name: str | None) -> dict[str, Any]:
    """A run's record by name, or the most recent one."""
    if name:
        path = experiment_root / name / RECORD
        if not path.is_file():
            known = ", ".join(sorted(p.parent.name for p in experiment_root.glob(f"*/{RECORD}"))[:8]) or "none yet"
            raise ConfigError(f"no run named {name!r} under {experiment_root} (runs: {known}); see inv run.list")
        return json.loads(path.read_text())
    records = list_records(experiment_root)
    if not records:
        raise ConfigError(f"no runs under {experiment_root} yet; start one with inv run.train")
    return records[-1]


def list_records(experiment_root: Path) -> list[dict[str, Any]]:
    """Every run's record, oldest first."""
    paths = sorted(experiment_root.glob(f"*/{RECORD}"), key=lambda p: p.stat().st_mtime)
    return [json.loads(path.read_text()) for path in paths]
