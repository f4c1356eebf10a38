"""run.train --mode cluster on a real single-node SLURM cluster (scripts/slurm-local): SAM3's own
job-array path through submitit, one array task per dataset running SAM3's Trainer (the demo's reduced
model on the CPU), then status, logs, requeue and cancel."""

import json
import time
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, run_inv
from support.canaries import CANARIES, leaked

DATASETS = ("13-lkc01", "-grccs", "actions")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (ROOT / ".venv-train" / "bin" / "python").exists(), reason="no training env (.venv-train)"),
]


@pytest.fixture
def cluster_env(clean_env, tmp_path, slurm_cluster):
    return dict(
        clean_env,
        SLURM_CONF=str(slurm_cluster.conf),
        SAM3_EXPERIMENT_ROOT=str(tmp_path / "exp"),
        INVOKE_PATHS_DEMO_DATA_ROOT=str(tmp_path / "demo-data"),
    )


def wait_for(env, name, done_states=("completed", "failed", "cancelled", "finished"), limit=240):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        status = json.loads(run_inv(["run.status", "--name", name, "--json"], env).stdout)
        if all(state.startswith(done_states) for state in status["states"]):
            return status
        time.sleep(2)
    raise AssertionError(f"run {name} did not finish in {limit} s: {status['states']}")


def saved_job_environments(slurm_cluster) -> list[Path]:
    return sorted((slurm_cluster.root / "state").glob("hash.*/job.*/environment"))


def test_three_dataset_array_runs_each_dataset_in_its_own_folder(cluster_env, tmp_path, slurm_cluster):
    """With a canary in every secret: none reaches SLURM's saved job environment, the job logs (where
    SAM3's Trainer prints its environment) or any file of the run. The test cluster's MaxArraySize of 2
    splits the 3 datasets into two arrays; --max-parallel 1 holds across both (the second waits)."""
    cluster_env = dict(cluster_env, **CANARIES)
    done = run_inv(
        [
            "run.train",
            "--mode",
            "cluster",
            "--partition",
            "debug",
            "--num-gpus",
            "2",
            "--name",
            "arr",
            "--max-parallel",
            "1",
        ],
        cluster_env,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    saved = [path.read_text(errors="replace") for path in saved_job_environments(slurm_cluster)]
    assert any(f"SAM3_EXPERIMENT_ROOT={tmp_path / 'exp'}" in text for text in saved)  # SLURM did keep one
    assert leaked(saved) == []
    assert "sbatch --test-only" in done.stdout
    run_dir = tmp_path / "exp" / "arr"
    record = json.loads((run_dir / "launch.json").read_text())
    jobs = [task["job_id"] for task in record["tasks"]]
    first, second = jobs[0].split("_")[0], jobs[2]
    assert jobs == [f"{first}_0", f"{first}_1", second]  # split: MaxArraySize 2 (submitit queues 1 task as a job)
    assert "ArrayTaskThrottle=1" in slurm_cluster.run("scontrol", "show", "job", first).stdout
    assert f"Dependency=afterany:{first}" in slurm_cluster.run("scontrol", "show", "job", second).stdout
    status = wait_for(cluster_env, "arr")
    assert status["states"] == ["completed"] * 3, status["states"]
    for dataset in DATASETS:
        folder = run_dir / dataset
        assert (
            yaml.safe_load((folder / "config_resolved.yaml").read_text())["roboflow_train"]["supercategory"] == dataset
        )
        assert (folder / "checkpoints" / "checkpoint.pt").is_file()
        assert list((folder / "tensorboard").glob("events.out.tfevents.*"))
        val = (folder / "logs" / dataset / "val_stats.json").read_text().splitlines()
        assert len(val) == 2 and "Meters_train/val_roboflow100/detection/coco_eval_bbox_AP" in val[-1]
        assert "Losses/train_all_loss_giou" in (folder / "logs" / dataset / "train_stats.json").read_text()
    assert status["progress"] == ["epoch 2/2"] * 3
    results = json.loads(run_inv(["run.results", "--name", "arr", "--json"], cluster_env).stdout)
    assert results["counts"]["done"] == 3 and [t["state"] for t in results["tasks"]] == ["completed"] * 3
    aps = [json.loads((run_dir / d / "logs" / d / "val_stats.json").read_text().splitlines()[-1]) for d in DATASETS]
    aps = [100 * line["Meters_train/val_roboflow100/detection/coco_eval_bbox_AP"] for line in aps]
    assert abs(results["groups"][0]["mean"] - sum(a for a in aps if a >= 0) / len([a for a in aps if a >= 0])) < 1e-9
    assert (run_dir / "results.png").is_file() and results["plot"] == str(run_dir / "results.png")
    logs = run_inv(["run.logs", "--name", "arr", "--dataset", "actions"], cluster_env)
    assert "CUDA_VISIBLE_DEVICES=0,1" in logs.stdout  # two fake GPUs allocated as GRES, as SAM3 logs them
    assert "sam3_cpu: no CUDA, sam3 0.1.4: CPU patches applied" in logs.stdout
    assert leaked([done.stdout, done.stderr, logs.stdout], run_dir, slurm_cluster.root) == []


def test_partition_slurm_rejects_is_reported_in_slurms_words(cluster_env, tmp_path):
    done = run_inv(
        ["run.train", "--mode", "cluster", "--partition", "nosuch", "--datasets", "actions", "--name", "p"], cluster_env
    )
    assert done.returncode == 1
    assert "fail: slurm partition nosuch: SLURM has no such partition; fix: pick one of: debug, long" in done.stdout
    assert "fail: slurm sbatch --test-only: SLURM says:" in done.stdout
    assert not (tmp_path / "exp" / "p" / "launch.json").exists()


def test_timeout_longer_than_the_partition_allows_fails_preflight(cluster_env):
    done = run_inv(
        [
            "run.train",
            "--mode",
            "cluster",
            "--partition",
            "debug",
            "--datasets",
            "actions",
            "--name",
            "t",
            "--set",
            "submitit.timeout_hour=5",
        ],
        cluster_env,
    )
    assert done.returncode == 1
    assert "submitit.timeout_hour 5 h exceeds the partition's 1 h" in done.stdout


def test_cancel_stops_queued_array_tasks(cluster_env, slurm_cluster, tmp_path):
    """A job holding all 4 fake GPUs keeps the run queued, so cancel meets it pending."""
    hold = slurm_cluster.sbatch(
        "--partition", "debug", "--gres", "gpu:4", "--output", str(tmp_path / "hold.out"), "--wrap", "sleep 60"
    )
    try:
        done = run_inv(
            [
                "run.train",
                "--mode",
                "cluster",
                "--partition",
                "debug",
                "--num-gpus",
                "2",
                "--datasets",
                "actions",
                "--name",
                "c",
            ],
            cluster_env,
            timeout=300,
        )
        assert done.returncode == 0, done.stdout[-2000:]
        status = json.loads(run_inv(["run.status", "--name", "c", "--json"], cluster_env).stdout)
        assert status["states"] == ["pending"]
        cancelled = run_inv(["run.cancel", "--name", "c"], cluster_env)
        assert cancelled.returncode == 0 and "ran scancel" in cancelled.stdout
        assert wait_for(cluster_env, "c", limit=60)["states"][0].startswith(("cancelled", "finished"))
    finally:
        slurm_cluster.run("scancel", hold, check=False)


def test_a_requeued_array_task_resumes_from_its_own_checkpoint(cluster_env, tmp_path, slurm_cluster):
    """`scontrol requeue` of the second array task in the middle of its training: it starts again and
    SAM3's Trainer resumes it from that dataset's checkpoint; the first task never resumes anything."""
    done = run_inv(
        [
            "run.train",
            "--mode",
            "cluster",
            "--partition",
            "debug",
            "--num-gpus",
            "1",
            "--name",
            "rq",
            "--datasets",
            "-grccs,actions",
            "--max-parallel",
            "1",
            "--set",
            "trainer.max_epochs=4",
        ],
        cluster_env,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    run_dir = tmp_path / "exp" / "rq"
    second = json.loads((run_dir / "launch.json").read_text())["tasks"][1]["job_id"]
    stats = run_dir / "actions" / "logs" / "actions" / "train_stats.json"
    deadline = time.monotonic() + 300
    while not (
        stats.exists() and stats.read_text().count("\n") >= 1 and (run_dir / "actions" / "checkpoints").exists()
    ):
        assert time.monotonic() < deadline, "the second task never finished an epoch"
        time.sleep(0.5)
    slurm_cluster.run("scontrol", "requeue", second)
    assert wait_for(cluster_env, "rq", limit=600)["states"] == ["completed"] * 2
    log = (run_dir / "actions" / "logs" / "actions" / "log.txt").read_text()
    assert f"Resuming training from {run_dir / 'actions' / 'checkpoints' / 'checkpoint.pt'}" in log
    train = [json.loads(line)["Trainer/epoch"] for line in stats.read_text().splitlines()]
    assert train[-1] == 3 and train.count(0) == 1  # epoch 0 trained once, the rest after the resume
    assert "Resuming training" not in (run_dir / "-grccs" / "logs" / "-grccs" / "log.txt").read_text()


def test_account_qos_and_nodes_reach_sbatch(cluster_env, slurm_cluster, tmp_path):
    """What the test SLURM can check: the batch script submitit handed sbatch names --account, --qos and
    --nodes, and SLURM records the account (without accounting it drops the QOS); --num-nodes 2 on a
    one-node cluster is refused in SLURM's own words by pre-flight's sbatch --test-only."""
    done = run_inv(
        [
            "run.train",
            "--mode",
            "cluster",
            "--partition",
            "debug",
            "--num-gpus",
            "1",
            "--datasets",
            "actions",
            "--name",
            "aq",
            "--account",
            "acme",
            "--qos",
            "normal",
        ],
        cluster_env,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    job = json.loads((tmp_path / "exp" / "aq" / "launch.json").read_text())["tasks"][0]["job_id"]
    try:
        shown = slurm_cluster.run("scontrol", "show", "job", job).stdout
    finally:
        slurm_cluster.run("scancel", job.split("_")[0], check=False)
    assert "Account=acme" in shown, shown
    (script,) = (tmp_path / "exp" / "aq" / "submitit_logs").glob("*_submission.sh")
    lines = script.read_text().splitlines()
    assert {"#SBATCH --account=acme", "#SBATCH --qos=normal", "#SBATCH --nodes=1"} <= set(lines)
    nodes = run_inv(
        [
            "run.train",
            "--mode",
            "cluster",
            "--partition",
            "debug",
            "--datasets",
            "actions",
            "--name",
            "nn",
            "--num-nodes",
            "2",
            "--check-only",
        ],
        cluster_env,
        timeout=300,
    )
    assert nodes.returncode == 1
    assert "fail: slurm sbatch --test-only: SLURM says:" in nodes.stdout and "node" in nodes.stdout.lower()


def test_each_run_composes_its_own_config_through_dev_clean_and_another_root_with_its_name(
    cluster_env, tmp_path, slurm_cluster
):
    """A run's rendered config lives in its own folder (<run>/configs/sam3_tasks/), where a queued job reads
    it when it starts: two experiment roots launch a run of one name with other settings, one after the
    other, kept pending by a job that holds all 4 GPUs; inv dev.clean runs meanwhile; once the GPUs are
    free, each task composes its own run's config (hydra, through our plugin) and runs to its final
    evaluation."""
    scales = {tmp_path / "a": 0.1, tmp_path / "b": 0.2}
    args = ["run.train", "--mode", "cluster", "--partition", "debug", "--num-gpus", "1", "--name", "same"]
    jobs = []
    hold = slurm_cluster.sbatch(
        "--partition", "debug", "--gres", "gpu:4", "--output", str(tmp_path / "hold.out"), "--wrap", "sleep 600"
    )
    try:
        for root, scale in scales.items():
            env = dict(cluster_env, SAM3_EXPERIMENT_ROOT=str(root))
            sets = ["--set", "trainer.max_epochs=1", "--set", f"scratch.lr_scale={scale}"]
            done = run_inv([*args, "--datasets", "actions", *sets], env, timeout=300)
            assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
            jobs += [task["job_id"] for task in json.loads((root / "same" / "launch.json").read_text())["tasks"]]
        assert [slurm_cluster.states(job).get(job) for job in jobs] == ["PENDING", "PENDING"]
        cleaned = run_inv(["dev.clean"], cluster_env)
        assert cleaned.returncode == 0, cleaned.stdout + cleaned.stderr
        slurm_cluster.run("scancel", hold)
        for root, scale in scales.items():
            status = wait_for(dict(cluster_env, SAM3_EXPERIMENT_ROOT=str(root)), "same", limit=600)
            assert status["states"] == ["completed"]  # its final evaluation is in val_stats.json
            (config,) = (root / "same" / "configs" / "sam3_tasks").glob("same--*.yaml")
            assert yaml.safe_load(config.read_text())["scratch"]["lr_scale"] == scale
            resolved = yaml.safe_load((root / "same" / "actions" / "config_resolved.yaml").read_text())
            assert resolved["scratch"]["lr_scale"] == scale
            assert resolved["launcher"]["experiment_log_dir"] == str(root / "same")
    finally:
        for job in [hold, *jobs]:
            slurm_cluster.run("scancel", job.split("_")[0], check=False)
