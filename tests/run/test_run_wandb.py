"""run.train / run.eval with W&B logging on, through the real `inv` and SAM3's real train.py (the CPU demo):
each task logs its TensorBoard scalars to its own offline W&B run (read back from the run's .wandb file), a
second run with the same name continues it, and the API key is in no output and no file. W&B off leaves
SAM3's config and the job's environment as they were."""

import importlib.util
import json
import math
import os
import re
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, closed_port, files_holding, run_inv
from support.sam3_configs import require_configs

from tasks.lib.core.errors import ConfigError
from tasks.lib.env import tracking

TRAIN_PYTHON = ROOT / ".venv-train" / "bin" / "python"
WANDB_KEY = "5ca1ab1e0canary0wandb0key0123456789abcdef"  # 41 characters: a well-formed key
DATASETS = ("13-lkc01", "-grccs", "actions")
SAM3_WRITER = "sam3.train.utils.logger.make_tensorboard_logger"
pytestmark = pytest.mark.skipif(
    not TRAIN_PYTHON.exists() or not list(ROOT.glob(".venv-train/lib/python*/site-packages/wandb")),
    reason="no training env with wandb: scripts/setup-train-env builds .venv-train",
)


def plugin():
    """sam3_wandb, the module the jobs import (plain Python; wandb and sam3 only inside its functions)."""
    spec = importlib.util.spec_from_file_location("sam3_wandb", tracking.PLUGIN_DIR / "sam3_wandb.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def wandb_records(path: Path):
    """The protobuf Records of a W&B run file: wandb's LevelDB-style log (a 7-byte ':W&B' header, then
    32 KiB blocks of chunks, each with a CRC-32, a length and a full/first/middle/last type)."""
    from wandb.proto import wandb_internal_pb2

    data, block = path.read_bytes(), 32768
    ident, magic, _ = struct.unpack("<4sHB", data[:7])
    assert (ident, magic) == (b":W&B", 0xBEE1), path
    position, pending = 7, b""
    while position + 7 <= len(data):
        if block - position % block < 7:  # the rest of a block too short for a header is padding
            position += block - position % block
            continue
        checksum, length, kind = struct.unpack("<IHB", data[position : position + 7])
        chunk = data[position + 7 : position + 7 + length]
        assert zlib.crc32(bytes([kind]) + chunk) == checksum, f"{path}: corrupt at {position}"
        position += 7 + length
        pending = chunk if kind in (1, 2) else pending + chunk
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            yield record


def read_run(path: Path) -> tuple[dict, dict[int, dict]]:
    """A run file's identity and its history rows by TensorBoard step."""
    run, history = {}, {}
    for record in wandb_records(path):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run = {
                "id": record.run.run_id,
                "name": record.run.display_name,
                "group": record.run.run_group,
                "job_type": record.run.job_type,
                "project": record.run.project,
            }
        elif kind == "history":
            row = {item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in record.history.item}
            history.setdefault(int(row["global_step"]), {}).update(row)  # rows of one step, merged
    return run, history


def offline_runs(experiment_dir: Path) -> list[Path]:
    """The offline runs under a task's folder, oldest first (their names start with the start time)."""
    return sorted((experiment_dir / "wandb").glob("offline-run-*"))


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-7)  # TensorBoard keeps float32


def job_environ(base: Path, **extra) -> dict[str, str]:
    """The test's environment: no user config, our variables or W&B settings; HOME and TMPDIR under base."""
    for folder in ("home", "tmp"):
        (base / folder).mkdir(exist_ok=True)
    drop = ("INVOKE_", "SAM3_", "HF_", "WANDB_", "ROBOFLOW", "ODINW", "FAKE_NVML")
    environ = {k: v for k, v in os.environ.items() if not k.startswith(drop) and k != "PYTHONPATH"}
    return dict(
        environ,
        HOME=str(base / "home"),
        TMPDIR=str(base / "tmp"),
        SAM3_EXPERIMENT_ROOT=str(base / "exp"),
        INVOKE_PATHS_DEMO_DATA_ROOT=str(base / "demo-data"),
        **extra,
    )


WANDB_OFFLINE = {
    "INVOKE_TRACKING_WANDB_PROJECT": "sam3-ft",
    "INVOKE_TRACKING_WANDB_MODE": "offline",
    "WANDB_API_KEY": WANDB_KEY,
}


@pytest.fixture(scope="module")
def wandb_demo(tmp_path_factory):
    """The demo on its 3 datasets, 3 epochs, with W&B on (offline), stopped in `actions`' second epoch
    (after its first checkpoint and validation); then the same command again: the finished datasets are
    skipped and `actions` resumes from its checkpoint, continuing its W&B run."""
    base = tmp_path_factory.mktemp("wandb-demo")
    environ = job_environ(base, **WANDB_OFFLINE)
    args = ["run.train", "--name", "wb", "--set", "trainer.max_epochs=3"]
    inv = Path(sys.executable).with_name("inv")
    logs = base / "exp" / "wb" / "actions"
    with open(base / "first.log", "w+") as log:
        launcher = subprocess.Popen(
            [str(inv), *args], cwd=ROOT, env=environ, stdout=log, stderr=subprocess.STDOUT, text=True
        )
        deadline = time.monotonic() + 900
        while (
            launcher.poll() is None
            and time.monotonic() < deadline
            and not (
                (logs / "checkpoints" / "checkpoint.pt").is_file()
                and (logs / "logs" / "actions" / "val_stats.json").is_file()
            )
        ):
            time.sleep(0.5)
        run_inv(["run.cancel", "--name", "wb"], environ)
        launcher.wait(timeout=120)
        log.seek(0)
        first = subprocess.CompletedProcess(args, launcher.returncode, log.read(), "")
    second = run_inv(args, environ, timeout=900)
    return base, first, second


def test_each_dataset_logs_its_tensorboard_scalars_to_its_own_offline_wandb_run(wandb_demo):
    base, first, _ = wandb_demo
    assert first.returncode == 1 and "a task exited with" in first.stdout, first.stdout[-3000:]  # stopped in actions
    for dataset in DATASETS:
        folder = base / "exp" / "wb" / dataset
        expected = plugin().run_id(f"wb/{dataset}", str(folder), "train")
        run_dir = offline_runs(folder)[0]
        assert run_dir.name.endswith(f"-{expected}") and (run_dir / f"run-{expected}.wandb").is_file(), run_dir
        run, history = read_run(run_dir / f"run-{expected}.wandb")
        assert run == {
            "id": expected,
            "name": f"wb/{dataset}",
            "group": "wb",
            "job_type": "train",
            "project": "sam3-ft",
        }
        assert list((folder / "tensorboard").glob("events.out.tfevents.*"))  # TensorBoard as before
        train = [json.loads(line) for line in (folder / "logs" / dataset / "train_stats.json").read_text().splitlines()]
        val = [json.loads(line) for line in (folder / "logs" / dataset / "val_stats.json").read_text().splitlines()]
        # the epochs this first W&B run saw whole (actions' was stopped: what wandb had not flushed is lost)
        first_run = [] if dataset == "actions" else [0, 1, 2]
        assert [row["Trainer/epoch"] for row in train] == [0, 1, 2] and len(val) >= 3
        for stats in [row for row in train + val if row["Trainer/epoch"] in first_run]:
            row = history[stats["Trainer/epoch"]]  # every scalar SAM3's Trainer wrote to its stats files, at its epoch
            for key, value in stats.items():
                assert close(row[key], value), (dataset, key, row.get(key), value)


def test_the_same_command_again_resumes_the_stopped_task_into_the_same_wandb_run(wandb_demo):
    base, _, second = wandb_demo
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert "13-lkc01: finished" in second.stdout and "actions: failed: resumes from its checkpoint" in second.stdout
    folder = base / "exp" / "wb" / "actions"
    expected = plugin().run_id("wb/actions", str(folder), "train")
    runs = offline_runs(folder)
    assert len(runs) == 2 and all(run.name.endswith(f"-{expected}") for run in runs), runs
    run, history = read_run(runs[1] / f"run-{expected}.wandb")
    assert run["id"] == expected
    train = [json.loads(line) for line in (folder / "logs" / "actions" / "train_stats.json").read_text().splitlines()]
    assert [row["Trainer/epoch"] for row in train] == [0, 1, 2]  # each epoch trained once
    assert "Losses/train_all_loss" not in history.get(0, {})  # epoch 0's training is not logged again
    for stats in train[1:]:
        assert close(history[stats["Trainer/epoch"]]["Losses/train_all_loss"], stats["Losses/train_all_loss"])
    for dataset in ("13-lkc01", "-grccs"):
        assert len(offline_runs(base / "exp" / "wb" / dataset)) == 1  # not run again


def test_the_api_key_is_in_no_output_and_no_file(wandb_demo):
    base, first, second = wandb_demo
    for done in (first, second):
        assert WANDB_KEY not in done.stdout + done.stderr
    assert files_holding(WANDB_KEY, base) == []  # experiments, launch.json, wandb runs, HOME, TMPDIR
    configs = sorted((base / "exp" / "wb" / "configs" / "sam3_tasks").glob("wb--*.yaml"))
    assert configs and files_holding(WANDB_KEY, *configs) == []
    record = (base / "exp" / "wb" / "launch.json").read_text()
    assert "WANDB" not in record  # no environment values in the record


def test_dry_run_shows_the_wandb_overrides_per_task_and_in_a_job_array(tmp_path):
    environ = job_environ(
        tmp_path, INVOKE_TRACKING_WANDB_PROJECT="sam3-ft", INVOKE_TRACKING_WANDB_ENTITY="team", WANDB_API_KEY=WANDB_KEY
    )
    local = run_inv(["run.train", "--datasets", "actions", "--dry-run"], environ)
    assert local.returncode == 0, local.stderr
    experiment = tmp_path / "exp" / "demo" / "actions"
    assert (
        f"-      _target_: {SAM3_WRITER}\n+      _target_: sam3_wandb.make_tensorboard_logger\n"
        "       log_dir: ${launcher.experiment_log_dir}/tensorboard\n"
        "       flush_secs: 120\n       should_log: true\n"
        f"+      wandb_name: demo/actions\n+      wandb_group: demo\n+      wandb_dir: {experiment}\n"
        "+      wandb_job_type: train\n"
    ) in local.stdout
    pythonpath = f"PYTHONPATH={tracking.PLUGIN_DIR}"
    keys = tmp_path / "home" / ".local" / "state" / "sam3-tasks" / "wandb-keys"
    key_file = f"SAM3_TASKS_WANDB_KEY_FILE={re.escape(str(keys))}/demo-[0-9a-f]{{16}}"  # this launch's own
    wandb_env = "WANDB_DISABLE_CODE=true WANDB_ENTITY=team WANDB_MODE=online WANDB_PROJECT=sam3-ft"
    config_dir = f"SAM3_TASKS_CONFIG_DIR={tmp_path / 'exp' / 'demo' / 'configs'}"
    assert re.search(f"{re.escape(f'{pythonpath} {config_dir}')} {key_file} {re.escape(wandb_env)} ", local.stdout)

    array = run_inv(["run.train", "--mode", "cluster", "--dry-run"], environ)
    assert array.returncode == 0, array.stderr
    assert (
        "+      wandb_name: demo/${sam3_tasks.dataset}\n+      wandb_group: demo\n"
        "+      wandb_dir: ${launcher.experiment_log_dir}/${sam3_tasks.dataset}\n"
    ) in array.stdout  # one config for all array tasks: each resolves its own dataset

    source = yaml.safe_load((ROOT / "demo" / "demo_rf100vl_cpu.yaml").read_text())
    source["trainer"]["mode"] = "val"
    own = tmp_path / "eval.yaml"
    own.write_text(yaml.safe_dump(source))
    evaluation = run_inv(["run.eval", "--config", str(own), "--datasets", "actions", "--dry-run"], environ)
    assert evaluation.returncode == 0 and "+      wandb_job_type: eval\n" in evaluation.stdout, evaluation.stderr
    for done in (local, array, evaluation):
        assert WANDB_KEY not in done.stdout + done.stderr
    assert not (tmp_path / "exp").exists()


def test_wandb_off_leaves_sam3s_writer_and_the_environment_alone(tmp_path):
    done = run_inv(["run.train", "--datasets", "actions", "--dry-run"], job_environ(tmp_path))
    assert done.returncode == 0, done.stderr
    source = yaml.safe_load((ROOT / "demo" / "demo_rf100vl_cpu.yaml").read_text())
    assert source["trainer"]["logging"]["tensorboard_writer"]["_target_"] == SAM3_WRITER
    for word in ("sam3_wandb", "wandb_name:", "WANDB_"):  # the writer is not in the diff: SAM3's own target stays
        assert word not in done.stdout, word
    assert f"PYTHONPATH={tracking.PLUGIN_DIR} " in done.stdout  # every run's: hydra's plugin finds its configs


def test_online_without_a_key_is_one_line_exit_2(tmp_path):
    done = run_inv(["run.train", "--dry-run"], job_environ(tmp_path, INVOKE_TRACKING_WANDB_PROJECT="sam3-ft"))
    assert done.returncode == 2 and done.stderr.strip().count("\n") == 0, done.stderr
    assert "WANDB_API_KEY is not set, so every job would stop at wandb.init" in done.stderr


def test_a_writer_wandb_cannot_mirror_is_a_warning_and_no_override(tmp_path):
    source = yaml.safe_load((ROOT / "demo" / "demo_rf100vl_cpu.yaml").read_text())
    source["trainer"]["logging"]["tensorboard_writer"]["should_log"] = False
    own = tmp_path / "quiet.yaml"
    own.write_text(yaml.safe_dump(source))
    done = run_inv(
        ["run.train", "--config", str(own), "--datasets", "actions", "--dry-run"],
        job_environ(tmp_path, **WANDB_OFFLINE),
    )
    assert done.returncode == 0, done.stderr
    assert "warning: W&B logging is on (tracking.wandb_project), but trainer.logging.tensorboard_writer" in done.stdout
    assert "sam3_wandb" not in done.stdout and "WANDB_PROJECT" not in done.stdout


def test_a_real_sam3_config_with_wandb_passes_preflight(tmp_path):
    """SAM3's own RF100-VL config: pre-flight composes it in the training env and imports the plugin target."""
    environ = job_environ(
        tmp_path, SAM3_CONFIGS_DIR=str(require_configs()), ROBOFLOW_VL_100_ROOT=str(tmp_path / "rf"), **WANDB_OFFLINE
    )
    assert run_inv(["data.synth", "--root", str(tmp_path / "rf"), "--datasets", "actions"], environ).returncode == 0
    args = ["run.train", "--config", "roboflow_v100_full_ft_100_images", "--datasets", "actions", "--name", "real"]
    dry = run_inv([*args, "--dry-run"], environ)
    assert dry.returncode == 0, dry.stderr
    assert f"-      _target_: {SAM3_WRITER}\n+      _target_: sam3_wandb.make_tensorboard_logger\n" in dry.stdout
    assert "+      wandb_name: real/actions\n" in dry.stdout
    checked = run_inv([*args, "--check-only"], environ, timeout=600)
    assert checked.returncode == 0, checked.stdout[-3000:] + checked.stderr[-1000:]
    assert "pre-flight passed; nothing launched (--check-only)" in checked.stdout


def test_run_ids_are_stable_short_and_safe():
    run_id = plugin().run_id
    here = run_id("demo/actions", "/exp/demo/actions", "train")
    assert here == run_id("demo/actions", "/exp/demo/actions", "train") and here.startswith("demo-actions-")
    assert here != run_id("demo/actions", "/other/demo/actions", "train")  # another experiment folder
    assert here != run_id("demo/actions", "/exp/demo/actions", "eval")
    assert run_id("my run:1/a?b", "/x", "train").startswith("my-run-1-a-b-")
    long = run_id("r" * 80 + "/d", "/x", "train")
    assert len(long) == 64 and re.fullmatch(r"[A-Za-z0-9_-]+", long)


def test_job_env_holds_no_secret_and_is_empty_when_off():
    settings = {"tracking.wandb_project": "", "tracking.wandb_entity": "", "tracking.wandb_mode": "online"}
    assert tracking.wandb_job_env(settings, {}) == {}
    settings.update({"tracking.wandb_project": "sam3-ft", "tracking.wandb_entity": "team"})
    env = tracking.wandb_job_env(settings, {"WANDB_API_KEY": WANDB_KEY, "HOME": "/nonexistent"})
    assert env == dict(WANDB_PROJECT="sam3-ft", WANDB_ENTITY="team", WANDB_MODE="online", WANDB_DISABLE_CODE="true")
    with pytest.raises(ConfigError, match="WANDB_API_KEY is not set"):
        tracking.wandb_job_env(settings, {"HOME": "/nonexistent"})
    assert tracking.wandb_job_env(dict(settings, **{"tracking.wandb_mode": "offline"}), {"HOME": "/nonexistent"})


@pytest.mark.slow
def test_array_tasks_on_slurm_each_log_to_their_own_offline_wandb_run(tmp_path, slurm_cluster):
    environ = job_environ(tmp_path, SLURM_CONF=str(slurm_cluster.conf), **WANDB_OFFLINE)
    done = run_inv(
        ["run.train", "--mode", "cluster", "--partition", "debug", "--num-gpus", "1", "--name", "wbarr"],
        environ,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    run_dir = tmp_path / "exp" / "wbarr"
    jobs = [task["job_id"] for task in json.loads((run_dir / "launch.json").read_text())["tasks"]]
    for array in dict.fromkeys(job.split("_")[0] for job in jobs):  # two arrays: the test cluster's MaxArraySize is 2
        assert set(slurm_cluster.wait(array, timeout=240).values()) == {"COMPLETED"}
    for dataset in DATASETS:
        folder = run_dir / dataset
        expected = plugin().run_id(f"wbarr/{dataset}", str(folder), "train")
        runs = offline_runs(folder)
        assert len(runs) == 1 and runs[0].name.endswith(f"-{expected}"), (dataset, runs)
        run, history = read_run(runs[0] / f"run-{expected}.wandb")
        assert run["name"] == f"wbarr/{dataset}" and run["group"] == "wbarr"
        val = json.loads((folder / "logs" / dataset / "val_stats.json").read_text().splitlines()[-1])
        key = "Meters_train/val_roboflow100/detection/coco_eval_bbox_AP"
        assert close(history[val["Trainer/epoch"]][key], val[key])
    assert WANDB_KEY not in done.stdout + done.stderr and files_holding(WANDB_KEY, tmp_path) == []


def test_online_logging_hands_the_job_a_key_file_never_the_key(tmp_path):
    environ = job_environ(tmp_path, INVOKE_TRACKING_WANDB_PROJECT="sam3-ft", WANDB_API_KEY=WANDB_KEY)
    done = run_inv(["run.train", "--datasets", "actions", "--dry-run"], environ)
    assert done.returncode == 0, done.stderr
    keys = tmp_path / "home" / ".local" / "state" / "sam3-tasks" / "wandb-keys"
    assert re.search(f"SAM3_TASKS_WANDB_KEY_FILE={re.escape(str(keys))}/demo-[0-9a-f]{{16}} ", done.stdout)
    assert WANDB_KEY not in done.stdout + done.stderr
    kept_out = next(line for line in done.stdout.splitlines() if line.startswith("job environment: kept out"))
    assert "WANDB_API_KEY" in kept_out and not keys.exists()  # a dry run writes nothing


def test_the_plugin_reads_the_key_file_only_after_sam3_logged_the_environment(tmp_path):
    """In the training env: the key enters the process's environment when the W&B run starts, which SAM3's
    Trainer does after it has logged the environment."""
    key_file = tmp_path / "key"
    key_file.write_text(WANDB_KEY + "\n")
    code = (
        "import os, sys; sys.path.insert(0, sys.argv[1]); import sam3_wandb\n"
        "before = os.environ.get('WANDB_API_KEY')\n"
        "sam3_wandb.start_run('t/actions', 't', sys.argv[2], 'train')\n"
        "print(before, os.environ['WANDB_API_KEY'] == sys.argv[3])"
    )
    environ = dict(job_environ(tmp_path), WANDB_MODE="offline", SAM3_TASKS_WANDB_KEY_FILE=str(key_file))
    done = subprocess.run(
        [str(TRAIN_PYTHON), "-c", code, str(tracking.PLUGIN_DIR), str(tmp_path / "w"), WANDB_KEY],
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "None True" in done.stdout.splitlines(), done.stdout + done.stderr


def test_wandb_failing_at_start_or_while_mirroring_never_stops_training(tmp_path):
    """The plugin as a job runs it, in the training env: W&B unreachable at wandb.init is one line in the
    task's log and an offline run; a TensorBoard hook that fails later (wandb's service gone) is one line,
    and SAM3's writer writes as without W&B."""
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import sam3_wandb\n"
        "run = sam3_wandb.start_or_go_on('t/actions', 't', sys.argv[2], 'train', sys.argv[2] + '/tb')\n"
        "print('MODE', run.settings.mode, flush=True)\n"
        "def gone(*args, **kwargs):\n    raise BrokenPipeError('wandb-core is gone')\n"
        "run._tensorboard_callback = gone\n"
        "from torch.utils.tensorboard import SummaryWriter\n"
        "writer = SummaryWriter(log_dir=sys.argv[2] + '/tb')\n"
        "writer.add_scalar('x', 1.0, 0)\nwriter.close()\nprint('TRAINED ON', flush=True)"
    )
    environ = dict(
        job_environ(tmp_path),
        WANDB_MODE="online",
        WANDB_PROJECT="sam3-ft",
        WANDB_API_KEY=WANDB_KEY,
        WANDB_BASE_URL=f"http://127.0.0.1:{closed_port()}",
        WANDB_INIT_TIMEOUT="3",
    )
    done = subprocess.run(
        [str(TRAIN_PYTHON), "-c", code, str(tracking.PLUGIN_DIR), str(tmp_path / "w")],
        env=environ,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0 and "MODE offline" in done.stdout and "TRAINED ON" in done.stdout, done.stderr[-3000:]
    said = [line for line in done.stderr.splitlines() if line.startswith("sam3_wandb: ")]
    where = tmp_path / "w" / "wandb"
    assert len(said) == 2 and said[0].startswith("sam3_wandb: W&B failed (CommError: "), said
    assert said[0].endswith(
        f"training goes on and logs to W&B offline under {where}: upload it later with "
        f"`wandb sync {where}/offline-run-*`"
    )
    assert said[1] == (
        "sam3_wandb: W&B could not follow a TensorBoard writer (BrokenPipeError: wandb-core is gone); training goes on"
    )
    assert list((tmp_path / "w" / "tb").glob("events.out.tfevents.*")) and offline_runs(tmp_path / "w")
    assert WANDB_KEY not in done.stdout + done.stderr


@pytest.mark.slow
def test_each_job_reads_its_own_launchs_key_and_a_wrong_key_still_trains_to_the_end(tmp_path, slurm_cluster):
    """Two online launches with different keys against a loopback W&B that accepts neither, while a job
    holds the whole node: the first launch's job waits until the second launch has written its key file.
    Then (the second one cancelled) it runs, presents its own launch's key, says in its log that W&B
    failed, and trains to the end, logging offline."""
    from support.wandb_server import WandbServer

    key_a, key_b = "a1" * 20 + "a", "b2" * 20 + "b"
    keys = tmp_path / "home" / ".local" / "state" / "sam3-tasks" / "wandb-keys"
    args = ["run.train", "--mode", "cluster", "--partition", "debug", "--num-gpus", "1", "--datasets", "actions"]
    blocker = slurm_cluster.sbatch("--partition", "debug", "--exclusive", "--wrap", "sleep 600")
    with WandbServer("c" * 40) as server:
        environ = job_environ(
            tmp_path,
            SLURM_CONF=str(slurm_cluster.conf),
            WANDB_BASE_URL=server.url,
            INVOKE_TRACKING_WANDB_PROJECT="sam3-ft",
            WANDB_INIT_TIMEOUT="5",
        )
        try:
            for name, key in (("ka", key_a), ("kb", key_b)):
                done = run_inv(
                    [*args, "--set", "trainer.max_epochs=1", "--name", name],
                    dict(environ, WANDB_API_KEY=key),
                    timeout=300,
                )
                assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
            assert sorted(path.read_text() for path in keys.iterdir()) == [key_a, key_b]
            assert run_inv(["run.cancel", "--name", "kb"], environ).returncode == 0
            slurm_cluster.run("scancel", blocker)
            (task,) = json.loads((tmp_path / "exp" / "ka" / "launch.json").read_text())["tasks"]
            assert set(slurm_cluster.wait(task["job_id"], timeout=400).values()) == {"COMPLETED"}
            assert server.keys == {key_a}  # its own launch's key, not the later launch's
        finally:
            slurm_cluster.run("scancel", blocker, check=False)
            run_inv(["run.cancel", "--name", "kb"], environ)
    folder = tmp_path / "exp" / "ka" / "actions"
    val = json.loads((folder / "logs" / "actions" / "val_stats.json").read_text().splitlines()[-1])
    assert val["Trainer/epoch"] == 0  # the last of 1 epoch: trained to the end
    logs = [path.read_text(errors="replace") for path in (tmp_path / "exp" / "ka").rglob("*.err")]
    assert any("sam3_wandb: W&B failed (" in text and "logs to W&B offline" in text for text in logs), logs
    expected = plugin().run_id("ka/actions", str(folder), "train")
    (offline,) = offline_runs(folder)
    _, history = read_run(offline / f"run-{expected}.wandb")
    key = "Meters_train/val_roboflow100/detection/coco_eval_bbox_AP"
    assert close(history[val["Trainer/epoch"]][key], val[key])
    allow = set(keys.iterdir())
    assert files_holding(key_a, tmp_path, allow=allow) == [] and files_holding(key_b, tmp_path, allow=allow) == []
