"""A busy cluster's faults against the real test SLURM (scripts/slurm-local) and SAM3's real Trainer: a
squeue that fails or prints garbage, slurmctld restarted in the middle of a launch, two launches of one
run at once, a task cancelled after its first epoch and then forgotten by SLURM. Each test asserts that
nothing was submitted twice, lost, or counted as finished without its final evaluation."""

import json
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, run_inv
from support.slurm_fixture import _script

from tasks.lib.run.slurm import UNKNOWN

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (ROOT / ".venv-train" / "bin" / "python").exists(), reason="no training env (.venv-train)"),
]
TWO = ["--mode", "cluster", "--partition", "debug", "--num-gpus", "2", "--datasets", "actions,-grccs"]


@pytest.fixture
def cluster_env(clean_env, tmp_path, slurm_cluster):
    return dict(
        clean_env,
        SLURM_CONF=str(slurm_cluster.conf),
        SAM3_EXPERIMENT_ROOT=str(tmp_path / "exp"),
        INVOKE_PATHS_DEMO_DATA_ROOT=str(tmp_path / "demo-data"),
    )


@pytest.fixture
def gpus_taken(slurm_cluster, tmp_path):
    """A job holding all 4 fake GPUs: the run's tasks stay pending while the test works on them."""
    hold = slurm_cluster.sbatch(
        "--partition", "debug", "--gres", "gpu:4", "--output", str(tmp_path / "hold.out"), "--wrap", "sleep 600"
    )
    yield hold
    slurm_cluster.run("scancel", hold, check=False)


def shim(folder: Path, name: str, body: str, env: dict) -> dict:
    """env with a shell script `name` first on PATH (the real command is still reachable by its path)."""
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(f"#!/bin/sh\n{body}\n")
    (folder / name).chmod(0o755)
    return dict(env, PATH=f"{folder}:{env['PATH']}")


def our_jobs(slurm_cluster, run_dir: Path) -> list[str]:
    """Every job SLURM knows whose submitit folder is under this run (array tasks one by one)."""
    listed = slurm_cluster.run("squeue", "-h", "-r", "-t", "all", "-o", "%i %o").stdout.splitlines()
    return sorted(line.split()[0] for line in listed if str(run_dir) in line)


def test_a_silent_or_garbled_squeue_decides_nothing_and_submits_nothing(
    cluster_env, slurm_cluster, tmp_path, gpus_taken
):
    """The same launch again while its 2 tasks are queued, with a squeue that times out on every call, on
    the first call only, and one that prints an error page: never a second set of jobs."""
    first = run_inv(["run.train", *TWO, "--name", "busy"], cluster_env, timeout=300)
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
    run_dir = tmp_path / "exp" / "busy"
    jobs, record = our_jobs(slurm_cluster, run_dir), (run_dir / "launch.json").read_text()
    assert len(jobs) == 2
    timeout_error = 'echo "slurm_load_jobs error: Socket timed out on send/recv operation" >&2; exit 1'
    silent = shim(tmp_path / "silent", "squeue", timeout_error, cluster_env)
    again = run_inv(["run.train", *TWO, "--name", "busy"], silent, timeout=300)
    assert again.returncode == 1, again.stdout[-2000:] + again.stderr
    *notes, line = again.stderr.strip().splitlines()
    assert "SLURM did not answer `squeue -h ...` after 4 tries (slurm_load_jobs error: Socket timed out" in line
    assert [note.rsplit(" ", 2)[-2] for note in notes] == ["1", "2", "4"]  # "... trying again in N s"
    assert (run_dir / "launch.json").read_text() == record and our_jobs(slurm_cluster, run_dir) == jobs
    shown = run_inv(["run.status", "--name", "busy", "--json"], silent, timeout=120)
    assert json.loads(shown.stdout)["states"] == [UNKNOWN, UNKNOWN]
    table = run_inv(["run.status", "--name", "busy"], silent, timeout=120)
    assert table.returncode == 0 and f"note: 2 task(s) {UNKNOWN}: their state is not known" in table.stdout
    marker = tmp_path / "answered-once"
    flaky = shim(
        tmp_path / "flaky",
        "squeue",
        f'[ -e {marker} ] || {{ touch {marker}; {timeout_error}; }}\nexec {shutil.which("squeue")} "$@"',
        cluster_env,
    )
    once = run_inv(["run.train", *TWO, "--name", "busy"], flaky, timeout=300)
    assert once.returncode == 0, once.stdout[-2000:] + once.stderr
    assert once.stdout.count("pending (job ") == 2 and "nothing to launch" in once.stdout
    garbled = shim(tmp_path / "garbled", "squeue", 'echo "<html>503 Service Unavailable</html>"', cluster_env)
    bad = run_inv(["run.train", *TWO, "--name", "busy"], garbled, timeout=300)
    assert bad.returncode == 1 and "squeue printed a line that is not '<job id> <STATE>'" in bad.stderr
    assert (run_dir / "launch.json").read_text() == record and our_jobs(slurm_cluster, run_dir) == jobs


def test_slurmctld_restarted_in_the_middle_of_a_launch(cluster_env, slurm_cluster, tmp_path, gpus_taken):
    """slurmctld is down when the launch first asks SLURM, and is started again once the launch has said
    it will try again: the launch waits it out (back-off) and queues each task once; the same command
    again queues nothing."""
    pid_file = slurm_cluster.root / "run" / "slurmctld.pid"
    subprocess.run(["kill", pid_file.read_text().strip()], check=True)
    inv = Path(sys.executable).with_name("inv")
    launch = subprocess.Popen(
        [str(inv), "run.train", *TWO, "--name", "restart"],
        cwd=ROOT,
        env=cluster_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    seen = []
    while not any("trying again in" in line for line in seen):
        seen.append(launch.stdout.readline())
        assert seen[-1] or launch.poll() is None, "".join(seen)[-3000:]
    restarted = _script("start", slurm_cluster.root)
    assert restarted.returncode == 0, restarted.stdout + restarted.stderr
    output = "".join(seen) + launch.communicate(timeout=300)[0]
    assert launch.returncode == 0, output[-3000:]
    assert "note: scontrol did not answer (" in output  # it was down when first asked
    run_dir = tmp_path / "exp" / "restart"
    jobs = our_jobs(slurm_cluster, run_dir)
    assert len(jobs) == 2 and output.count("SLURM job ") == 2
    again = run_inv(["run.train", *TWO, "--name", "restart"], cluster_env, timeout=300)
    assert again.returncode == 0 and "nothing to launch" in again.stdout
    assert our_jobs(slurm_cluster, run_dir) == jobs


def test_two_launches_of_one_run_at_once_queue_each_task_once(cluster_env, slurm_cluster, tmp_path, gpus_taken):
    """Started together, with an sbatch that answers 12 s late (a busy slurmctld): one launch holds the
    run while it submits; the other waits 10 s, then refuses in one line naming it (exit 4)."""
    late = shim(
        tmp_path / "late", "sbatch", f'{shutil.which("sbatch")} "$@"; code=$?; sleep 12; exit $code', cluster_env
    )
    inv = Path(sys.executable).with_name("inv")
    launches = [
        subprocess.Popen(
            [str(inv), "run.train", *TWO, "--name", "twice"],
            cwd=ROOT,
            env=late,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(2)
    ]
    outputs = [launch.communicate(timeout=300) for launch in launches]
    codes = sorted(launch.returncode for launch in launches)
    assert codes == [0, 4], outputs
    winner, loser = (0, 1) if launches[0].returncode == 0 else (1, 0)
    (line,) = outputs[loser][1].strip().splitlines()
    assert f"run 'twice' is being launched by pid {launches[winner].pid} on {platform.node()} since " in line
    record = json.loads((tmp_path / "exp" / "twice" / "launch.json").read_text())
    assert len(record["launches"]) == 1 and len(our_jobs(slurm_cluster, tmp_path / "exp" / "twice")) == 2
    assert sorted(task["job_id"] for task in record["tasks"]) == our_jobs(slurm_cluster, tmp_path / "exp" / "twice")


def test_a_task_cancelled_after_its_first_epoch_and_forgotten_by_slurm_is_unfinished(
    cluster_env, slurm_cluster, tmp_path
):
    """Cancelled once its first epoch's checkpoint is written, then purged by SLURM (MinJobAge lowered to
    2 s for this test): run.status and run.results call it unfinished, never finished, and nothing is
    averaged; the same command again resumes it from its checkpoint, and it ends with one final evaluation."""
    args = [
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
        "forgot",
        "--set",
        "trainer.max_epochs=2",
    ]
    done = run_inv(args, cluster_env, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    run_dir = tmp_path / "exp" / "forgot"
    (job,) = our_jobs(slurm_cluster, run_dir)
    checkpoint = run_dir / "actions" / "checkpoints" / "checkpoint.pt"
    deadline = time.monotonic() + 300
    while not checkpoint.is_file():
        assert time.monotonic() < deadline, "no checkpoint after the first epoch"
        time.sleep(1)
    slurm_cluster.run("scancel", job)
    with min_job_age(slurm_cluster, 2):
        deadline = time.monotonic() + 120
        while our_jobs(slurm_cluster, run_dir):
            assert time.monotonic() < deadline, "SLURM never forgot the cancelled job"
            time.sleep(2)
    state = json.loads(run_inv(["run.status", "--name", "forgot", "--json"], cluster_env).stdout)["states"][0]
    assert state == "ended without its final evaluation (finished (no longer known to SLURM))"
    results = json.loads(run_inv(["run.results", "--name", "forgot", "--json", "--no-plot"], cluster_env).stdout)
    assert results["counts"]["done"] == 0 and results["groups"][0]["mean"] is None
    resumed = run_inv(args, cluster_env, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "actions: ended without its final evaluation" in resumed.stdout
    assert "resumes from its checkpoint" in resumed.stdout
    deadline = time.monotonic() + 400
    while json.loads(run_inv(["run.status", "--name", "forgot", "--json"], cluster_env).stdout)["states"][0] not in (
        "completed",
        "finished (no longer known to SLURM)",
    ):
        assert time.monotonic() < deadline, "the resumed task did not finish"
        time.sleep(3)
    stats = run_dir / "actions" / "logs" / "actions" / "train_stats.json"
    epochs = [json.loads(line)["Trainer/epoch"] for line in stats.read_text().splitlines()]
    assert epochs.count(1) == 1 and epochs[-1] == 1  # the second epoch trained once, after the resume
    results = json.loads(run_inv(["run.results", "--name", "forgot", "--json", "--no-plot"], cluster_env).stdout)
    assert results["counts"]["done"] == 1 and results["groups"][0]["mean"] is not None


class min_job_age:
    """The test cluster's MinJobAge set for a block (slurm.conf edited, scontrol reconfigure), then put back."""

    def __init__(self, cluster, seconds: int):
        self.cluster, self.seconds = cluster, seconds

    def __enter__(self):
        self.before = self.cluster.conf.read_text()
        self.cluster.conf.write_text(self.before.replace("MinJobAge=300", f"MinJobAge={self.seconds}"))
        self.cluster.run("scontrol", "reconfigure")

    def __exit__(self, *exc):
        self.cluster.conf.write_text(self.before)
        self.cluster.run("scontrol", "reconfigure")
