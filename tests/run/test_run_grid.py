"""Grids and run identity through the real `inv`, on the real test SLURM (scripts/slurm-local, with
MaxArraySize 2 and MaxJobCount 400, tests/support/slurm_fixture.py) and SAM3's real Trainer: cells
and their folders, arrays split and throttled across the grid, a cancelled task rerun with
--rerun-failed, the same settings continuing, other settings refused, and SAM3's ODinW 10-shot
protocol (13 datasets x 3 seed files) in one command."""

import json
import time
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, run_inv
from support.sam3_configs import require_configs

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (ROOT / ".venv-train" / "bin" / "python").exists(), reason="no training env (.venv-train)"),
]
DONE = ("completed", "failed", "cancelled", "finished")


@pytest.fixture
def cluster_env(clean_env, tmp_path, slurm_cluster):
    return dict(
        clean_env,
        SLURM_CONF=str(slurm_cluster.conf),
        SAM3_EXPERIMENT_ROOT=str(tmp_path / "exp"),
        INVOKE_PATHS_DEMO_DATA_ROOT=str(tmp_path / "demo-data"),
    )


def states_of(env, name):
    return json.loads(run_inv(["run.status", "--name", name, "--json"], env).stdout)["states"]


def wait_until_done(env, name, limit=600):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        states = states_of(env, name)
        if all(state.startswith(DONE) for state in states):
            return states
        time.sleep(2)
    raise AssertionError(f"run {name} did not finish in {limit} s: {states}")


def array_of(job):
    return job.split("_")[0]


def test_a_2x3_grid_runs_as_split_throttled_arrays_and_rerun_failed_reruns_only_the_cancelled_task(
    cluster_env, tmp_path, slurm_cluster
):
    args = [
        "run.train",
        "--mode",
        "cluster",
        "--partition",
        "debug",
        "--num-gpus",
        "1",
        "--name",
        "g",
        "--grid",
        "scratch.lr_scale=0.1,0.2",
        "--set",
        "trainer.max_epochs=1",
        "--max-parallel",
        "2",
    ]
    dry = run_inv([*args, "--dry-run"], cluster_env)
    assert dry.returncode == 0, dry.stderr
    assert "grid: 2 cell(s) x 3 dataset(s) = 6 task(s)" in dry.stdout
    assert "cell lr_scale=0.1" in dry.stdout and "SLURM arrays: 4 (MaxArraySize 2)" in dry.stdout
    assert not (tmp_path / "exp" / "g").exists()

    done = run_inv(args, cluster_env, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    run_dir = tmp_path / "exp" / "g"
    record = json.loads((run_dir / "launch.json").read_text())
    assert record["grid"] == [{"key": "scratch.lr_scale", "values": ["0.1", "0.2"]}]
    tasks = {(t["cell"], t["dataset"]): t for t in record["tasks"]}
    assert sorted(tasks) == sorted(
        (f"lr_scale={v}", d) for v in ("0.1", "0.2") for d in ("13-lkc01", "-grccs", "actions")
    )
    arrays = list(dict.fromkeys(array_of(t["job_id"]) for t in record["tasks"]))
    assert len(arrays) == 4  # each cell's 3 datasets split by MaxArraySize 2
    scripts = {a: next(run_dir.glob(f"*/submitit_logs/{a}_submission.sh")).read_text().splitlines() for a in arrays}
    arrays_asked = [[line for line in scripts[a] if line.startswith("#SBATCH --array")] for a in arrays]
    # 2 at once across the grid: 2 lanes of arrays one task at a time (submitit queues a 1-task array as a job)
    assert arrays_asked == [["#SBATCH --array=0-1%1"], [], ["#SBATCH --array=0-1%1"], []]
    assert f"#SBATCH --dependency=afterany:{arrays[0]}" in scripts[arrays[2]]  # ... the third waits for the first
    assert f"#SBATCH --dependency=afterany:{arrays[1]}" in scripts[arrays[3]]

    victim = tasks[("lr_scale=0.2", "actions")]["job_id"]
    slurm_cluster.run("scancel", victim)
    states = wait_until_done(cluster_env, "g")
    assert sorted(states) == ["cancelled"] + ["completed"] * 5, states
    for (cell, dataset), task in tasks.items():
        if task["job_id"] == victim:
            continue
        resolved = yaml.safe_load((run_dir / cell / dataset / "config_resolved.yaml").read_text())
        assert resolved["roboflow_train"]["supercategory"] == dataset
        assert str(resolved["scratch"]["lr_scale"]) == cell.split("=")[1]
        assert (run_dir / cell / dataset / "logs" / dataset / "val_stats.json").is_file()
    one_cell = run_inv(["run.status", "--name", "g", "--cell", "lr_scale=0.1"], cluster_env)
    assert one_cell.stdout.count("lr_scale=0.1/") == 3 and "lr_scale=0.2/" not in one_cell.stdout
    logs = run_inv(["run.logs", "--name", "g", "--dataset", "lr_scale=0.1/actions"], cluster_env)
    assert "[lr_scale=0.1/actions] " in logs.stdout and "[lr_scale=0.2/" not in logs.stdout
    cancel = run_inv(["run.cancel", "--name", "g", "--cell", "lr_scale=0.1", "--dry-run"], cluster_env)
    assert cancel.stdout.strip() == "g: nothing is running"  # that cell has finished
    unknown = run_inv(["run.logs", "--name", "g", "--cell", "lr=9"], cluster_env)
    assert unknown.returncode == 2 and "--cell 'lr=9' matches no task of run g" in unknown.stderr

    rerun = run_inv(["run.train", "--rerun-failed", "g"], cluster_env, timeout=600)
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-2000:]
    assert rerun.stdout.count("finished: its final evaluation is in val_stats.json") == 5
    assert "lr_scale=0.2/actions: cancelled, no checkpoint: starts from the beginning" in rerun.stdout
    assert rerun.stdout.count(": SLURM job ") == 1
    assert wait_until_done(cluster_env, "g") == ["completed"] * 6
    record = json.loads((run_dir / "launch.json").read_text())
    assert len(record["launches"]) == 2 and record["launches"][1]["tasks"] == ["lr_scale=0.2/actions"]
    rerun_task = next(t for t in record["tasks"] if t["cell"] == "lr_scale=0.2" and t["dataset"] == "actions")
    assert rerun_task["attempts"][0]["job_id"] == victim and rerun_task["job_id"] != victim  # both kept

    again = run_inv(args, cluster_env)
    assert again.returncode == 0 and "g: nothing to launch (every task is finished or queued)" in again.stdout
    other = run_inv([*args[:-2], "--set", "trainer.max_epochs=2"], cluster_env)
    assert other.returncode == 2
    assert "run 'g' exists with other settings (trainer.max_epochs: 1 -> 2)" in other.stderr
    assert "pick a new --name, or pass --restart" in other.stderr
    assert len(json.loads((run_dir / "launch.json").read_text())["launches"]) == 2  # the refusal recorded nothing

    blocker = slurm_cluster.take_gpus()  # the restarted run's jobs stay pending
    restarted = run_inv([*args[:-2], "--set", "trainer.max_epochs=2", "--restart"], cluster_env, timeout=600)
    try:
        assert restarted.returncode == 0, restarted.stdout[-3000:] + restarted.stderr[-2000:]
        assert f"g: the earlier run and its record are kept as g.1 ({run_dir.with_name('g.1')})" in restarted.stdout
        kept = json.loads((run_dir.with_name("g.1") / "launch.json").read_text())
        assert kept["name"] == "g.1" and len(kept["launches"]) == 2
        assert all(Path(t["experiment_dir"]).parent.parent == run_dir.with_name("g.1") for t in kept["tasks"])
        assert (run_dir.with_name("g.1") / "lr_scale=0.1" / "actions" / "checkpoints" / "checkpoint.pt").is_file()
        fresh = json.loads((run_dir / "launch.json").read_text())
        assert len(fresh["launches"]) == 1 and len(fresh["tasks"]) == 6
        assert not (run_dir / "lr_scale=0.1" / "actions" / "checkpoints").exists()  # nothing of the old run to resume
    finally:
        run_inv(["run.cancel", "--name", "g"], cluster_env)
        slurm_cluster.run("scancel", blocker, check=False)


def test_odinw_10_shot_protocol_is_one_command_13_datasets_x_3_seed_files(cluster_env, tmp_path, slurm_cluster):
    """SAM3's README: ODinW 10-shot results are aggregated over the seed files seed300, seed30 and seed3.
    One grid over odinw_train.train_file queues all 39 tasks (pending behind a job holding the GPUs:
    SAM3's full model does not run on this CPU), data.validate's rules run once per dataset, not once per task."""
    configs = require_configs()
    root = tmp_path / "odinw"
    made = run_inv(["data.synth", "--root", str(root), "--kind", "odinw", "--images", "6"], cluster_env, timeout=300)
    assert made.returncode == 0, made.stderr
    (tmp_path / "sam3.pt").write_bytes(b"")  # the jobs stay pending: a stand-in for SAM3's gated checkpoint
    seeds = [f"fewshot_train_shot10_seed{s}" for s in (300, 30, 3)]
    env = dict(cluster_env, SAM3_CONFIGS_DIR=str(configs), ODINW_DATA_ROOT=str(root))
    slurm_cluster.take_gpus()  # the 39 tasks stay pending (cancelled with every job of the user below)
    done = run_inv(
        [
            "run.train",
            "--config",
            "odinw_text_only_train",
            "--mode",
            "cluster",
            "--partition",
            "long",
            "--name",
            "odinw10",
            "--grid",
            f"odinw_train.train_file={','.join(seeds)}",
            "--num-gpus",
            "1",
            "--set",
            "submitit.cpus_per_task=1",  # the test node has 2 CPUs
            "--set",
            f"+trainer.model.checkpoint_path={tmp_path / 'sam3.pt'}",
        ],
        env,
        timeout=600,
    )
    try:
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
        record = json.loads((tmp_path / "exp" / "odinw10" / "launch.json").read_text())
        assert len(record["tasks"]) == 39
        assert sorted({t["cell"] for t in record["tasks"]}) == sorted(f"train_file={s}" for s in seeds)
        queued = slurm_cluster.run("squeue", "-h", "-r", "-o", "%i %j").stdout.split("\n")
        ours = {t["job_id"] for t in record["tasks"]}
        assert len([line for line in queued if line.split(" ")[0] in ours]) == 39
        for seed in seeds:
            configs_of_cell = {t["config"] for t in record["tasks"] if t["cell"] == f"train_file={seed}"}
            for path in configs_of_cell:
                assert yaml.safe_load(Path(path).read_text())["odinw_train"]["train_file"] == seed
        data_rows = [line for line in done.stdout.splitlines() if line.startswith("│ data ")]
        assert len(data_rows) == 13  # once per dataset
    finally:
        slurm_cluster.run("scancel", "-u", "root", check=False)


@pytest.mark.parametrize(
    ("grid", "message"),
    [
        ("trainer.nosuch=1,2", "--grid trainer.nosuch: unknown key"),
        ("scratch.lr_scale=", "--grid scratch.lr_scale= has no values"),
        ("trainer.max_epochs=2,two", "'two' is not a whole number"),
        (
            "scratch.lr_scale=" + ",".join(str(v / 1000) for v in range(1, 151)),
            "450 tasks do not fit: SLURM holds at most 400 jobs (MaxJobCount)",
        ),
    ],
)
def test_a_bad_grid_is_one_line_exit_2_and_nothing_is_queued(cluster_env, tmp_path, slurm_cluster, grid, message):
    before = set(slurm_cluster.run("squeue", "-h", "-r", "-t", "all", "-o", "%i").stdout.split())
    done = run_inv(
        ["run.train", "--mode", "cluster", "--partition", "debug", "--name", "bad", "--grid", grid], cluster_env
    )
    assert done.returncode == 2, done.stdout[-2000:] + done.stderr
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert set(slurm_cluster.run("squeue", "-h", "-r", "-t", "all", "-o", "%i").stdout.split()) <= before
    assert not (tmp_path / "exp" / "bad").exists()


def test_jobs_queued_by_a_launch_cut_off_during_submission_are_found_not_submitted_again(
    tmp_path, slurm_cluster, monkeypatch
):
    """The record says submission started and holds no job ids (the launcher was gone before it heard
    back): the next launch finds the jobs in squeue by their names and records them; not another
    experiment root's run of the same name."""
    from tasks.lib.run import launch_record, slurm

    monkeypatch.setenv("SLURM_CONF", str(slurm_cluster.conf))
    name = f"sam3_tasks/cut-{tmp_path.name}.yaml"
    # first, the same run name under another experiment root (its jobs have the same names, a lower id)
    other_root = slurm_cluster.sbatch(
        "--hold", "--job-name", name, "--array=0-1", "--output", "/dev/null", "--chdir", "/tmp", "--wrap", "true"
    )
    array = slurm_cluster.sbatch(
        "--hold", "--job-name", name, "--array=0-1", "--output", "/dev/null", "--chdir", str(tmp_path), "--wrap", "true"
    )
    try:
        record = {
            "name": "cut",
            "mode": "cluster",
            "run_dir": str(tmp_path),
            "launches": [{"submission": "started"}],
            "tasks": [
                {"dataset": d, "cell": None, "state": "submitting", "job_id": None, "job_name": name}
                for d in ("a", "b")
            ],
        }
        found = slurm.adopt_lost_jobs(record)
        assert found == [
            f"a: SLURM job {array}_0, queued by the interrupted launch",
            f"b: SLURM job {array}_1, queued by the interrupted launch",
        ]
        saved = launch_record.existing(tmp_path)
        assert [t["job_id"] for t in saved["tasks"]] == [f"{array}_0", f"{array}_1"]
        assert saved["launches"][-1]["submission"] == "done (found in squeue)"
        assert slurm.adopt_lost_jobs(saved) == []  # once recorded, nothing more to find
    finally:
        slurm_cluster.run("scancel", array, other_root, check=False)
