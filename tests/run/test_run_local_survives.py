"""A local run outlives its launcher, through the real `inv` and SAM3's real Trainer on the CPU demo: the
terminal closed (SIGHUP to the launcher's process group), Ctrl-C (SIGINT to it), and every process of
the run killed (SIGKILL: launcher, runner, training), after which the same command launches exactly the
unfinished datasets. Each test checks that nothing was doubled, lost or wrongly counted."""

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, run_inv

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (ROOT / ".venv-train" / "bin" / "python").exists(), reason="no training env (.venv-train)"),
]
INV = Path(sys.executable).with_name("inv")
AP = "Meters_train/val_roboflow100/detection/coco_eval_bbox_AP"
STOPPED = "stopped (its runner went away)"
TRAIN_PYTHON = ROOT / ".venv-train" / "bin" / "python"


@pytest.fixture
def env(clean_env, tmp_path):
    return dict(
        clean_env, SAM3_EXPERIMENT_ROOT=str(tmp_path / "exp"), INVOKE_PATHS_DEMO_DATA_ROOT=str(tmp_path / "demo-data")
    )


def launch(args, env, output: Path) -> subprocess.Popen:
    """The launcher as a terminal starts it: in a session and process group of its own."""
    with open(output, "w") as handle:
        return subprocess.Popen(
            [str(INV), *args], cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
        )


def wait_for(what: str, check, limit: float = 300, launcher: subprocess.Popen | None = None, output: Path = None):
    """check()'s first true answer; an error when the time is up, or the launcher (given) ended first."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        if launcher is not None and launcher.poll() is not None:
            raise AssertionError(f"the launcher exited {launcher.returncode} before {what}: {text(output)[-3000:]}")
        time.sleep(0.2)
    raise AssertionError(f"not within {limit:.0f} s: {what}")


def record_of(run_dir: Path) -> dict:
    return json.loads((run_dir / "launch.json").read_text())


def text(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def ours(pid, mark: str) -> bool:
    try:
        return mark.encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def kill_everything(run_dir: Path) -> None:
    """SIGKILL the run's runners and training process groups (what a test leaves behind on failure)."""
    if not (run_dir / "launch.json").exists():
        return
    record = record_of(run_dir)
    for launch_ in record["launches"]:
        if ours(launch_.get("runner_pid"), "local_runner"):
            os.kill(launch_["runner_pid"], signal.SIGKILL)
    for entry in record["tasks"]:
        if ours(entry.get("pid"), "sam3.train.train"):
            os.killpg(entry["pid"], signal.SIGKILL)


def runner_ended(run_dir: Path):
    record = record_of(run_dir)
    return record if record["launches"][-1].get("ended") else None


def epochs(run_dir: Path, dataset: str, name: str) -> list[int]:
    lines = text(run_dir / dataset / "logs" / dataset / name).splitlines()
    return [json.loads(line)["Trainer/epoch"] for line in lines]


def assert_results_average_all(env, name: str, run_dir: Path, datasets: list[str]) -> None:
    summary = json.loads(run_inv(["run.results", "--name", name, "--json", "--no-plot"], env).stdout)
    assert summary["counts"] == {"done": len(datasets), "failed": 0, "missing": 0, "unfinished": 0}
    last = [json.loads(text(run_dir / d / "logs" / d / "val_stats.json").splitlines()[-1])[AP] for d in datasets]
    aps = [100 * ap for ap in last if ap >= 0]
    (group,) = summary["groups"]
    assert math.isclose(group["mean"], sum(aps) / len(aps))


def test_the_terminal_closing_leaves_a_local_run_going_to_its_end(env, tmp_path):
    """SIGHUP to the launcher's process group (a closed terminal, a dropped SSH session) once the first
    dataset trains: the launcher goes, the run trains every dataset, each exactly once."""
    datasets = ["13-lkc01", "actions"]
    args = ["run.train", "--datasets", ",".join(datasets), "--name", "hup", "--set", "trainer.max_epochs=1"]
    run_dir = tmp_path / "exp" / "hup"
    launcher = launch(args, env, tmp_path / "launcher.out")
    try:
        wait_for(
            "the first dataset trains",
            lambda: "Train Epoch" in text(run_dir / datasets[0] / "train.log"),
            launcher=launcher,
            output=tmp_path / "launcher.out",
        )
        os.killpg(launcher.pid, signal.SIGHUP)
        assert launcher.wait(timeout=30) == -signal.SIGHUP
        assert "[13-lkc01] " in text(tmp_path / "launcher.out")  # it was following the task's log
        status = json.loads(run_inv(["run.status", "--name", "hup", "--json"], env).stdout)
        assert not any(state.startswith("stopped") for state in status["states"]), status["states"]
        record = wait_for("the runner records the run's end", lambda: runner_ended(run_dir), limit=600)
    finally:
        launcher.kill()
        kill_everything(run_dir)
    assert [(t["dataset"], t["state"], t["exit_code"], t["attempts"]) for t in record["tasks"]] == [
        (dataset, "done", 0, []) for dataset in datasets
    ]
    assert len(record["launches"]) == 1
    runner = record["launches"][0]["runner_pid"]  # it exits once it has recorded the end
    wait_for("the runner exits after recording the end", lambda: not ours(runner, "local_runner"), limit=30)
    for dataset in datasets:
        assert epochs(run_dir, dataset, "val_stats.json") == [0]  # its final evaluation, once
        assert epochs(run_dir, dataset, "train_stats.json") == [0]
    runner_log = text(run_dir / "runner.log")
    assert [runner_log.count(f"== {d}: {TRAIN_PYTHON} ") for d in datasets] == [1, 1]  # each started once
    assert [runner_log.count(f"== {d}: exited 0") for d in datasets] == [1, 1]
    assert json.loads(run_inv(["run.status", "--name", "hup", "--json"], env).stdout)["states"] == ["done", "done"]
    assert_results_average_all(env, "hup", run_dir, datasets)


def test_ctrl_c_stops_following_only_and_another_terminal_follows_the_run_to_its_end(env, tmp_path):
    """SIGINT to the launcher's process group: exit 130 and one line (runner pid, how to follow, how to
    stop); the run goes on, and run.logs --follow from a new terminal prints it to its end."""
    args = ["run.train", "--datasets", "actions", "--name", "int", "--set", "trainer.max_epochs=1"]
    run_dir = tmp_path / "exp" / "int"
    launcher = launch(args, env, tmp_path / "launcher.out")
    try:
        wait_for(
            "the task runs",
            lambda: (run_dir / "launch.json").exists() and record_of(run_dir)["tasks"][0]["pid"],
            launcher=launcher,
            output=tmp_path / "launcher.out",
        )
        os.killpg(launcher.pid, signal.SIGINT)
        assert launcher.wait(timeout=30) == 130
        runner = record_of(run_dir)["launches"][0]["runner_pid"]
        said = text(tmp_path / "launcher.out").strip().splitlines()[-1]
        assert said == (
            f"int: the run goes on in the background (runner pid {runner}); follow it with inv run.logs "
            "--name int --follow, stop it with inv run.cancel --name int"
        )
        assert ours(runner, "local_runner")
        follow = run_inv(["run.logs", "--name", "int", "--follow"], env, timeout=600)
        assert follow.returncode == 0, follow.stderr
        record = wait_for("the runner records the run's end", lambda: runner_ended(run_dir), limit=120)
    finally:
        launcher.kill()
        kill_everything(run_dir)
    assert [(t["state"], t["exit_code"]) for t in record["tasks"]] == [("done", 0)]
    last = text(run_dir / "actions" / "train.log").splitlines()[-1]
    assert "Meters:" in last and follow.stdout.splitlines()[-1] == f"[actions] {last}"  # followed to the end
    assert epochs(run_dir, "actions", "val_stats.json") == [0]
    assert_results_average_all(env, "int", run_dir, ["actions"])


def test_every_process_of_a_run_killed_the_same_command_launches_exactly_the_unfinished_datasets(env, tmp_path):
    """The demo's 3 datasets; once the first is done and the second is starting, SIGKILL to the launcher, the
    runner and the training: the record reads the second and third as stopped (neither pending nor running),
    and the same command again trains exactly those two, once each, not the first."""
    datasets = ["13-lkc01", "-grccs", "actions"]
    args = ["run.train", "--name", "kill", "--set", "trainer.max_epochs=1"]
    run_dir = tmp_path / "exp" / "kill"
    launcher = launch(args, env, tmp_path / "launcher.out")

    def second_started():
        record = record_of(run_dir) if (run_dir / "launch.json").exists() else {"tasks": []}
        states = [t["state"] for t in record["tasks"]]
        return (
            record if states == ["done", "running", "pending"] and text(run_dir / datasets[1] / "train.log") else None
        )

    try:
        record = wait_for(
            "the first dataset done, the second started",
            second_started,
            limit=600,
            launcher=launcher,
            output=tmp_path / "launcher.out",
        )
        runner, training = record["launches"][0]["runner_pid"], record["tasks"][1]["pid"]
        assert ours(runner, "local_runner") and ours(training, "sam3.train.train")
        launcher.kill()
        os.kill(runner, signal.SIGKILL)
        os.killpg(training, signal.SIGKILL)
        launcher.wait(timeout=30)
        wait_for("the processes gone", lambda: not ours(runner, "local_runner") and not ours(training, "sam3.train"))
    finally:
        launcher.kill()
        kill_everything(run_dir)
    states = json.loads(run_inv(["run.status", "--name", "kill", "--json"], env).stdout)["states"]
    assert states == ["done", STOPPED, STOPPED]
    first_log = text(run_dir / datasets[0] / "train.log")
    again = run_inv(args, env, timeout=600)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-2000:]
    assert "13-lkc01: finished: its final evaluation is in val_stats.json" in again.stdout
    assert f"-grccs: {STOPPED}, no checkpoint: starts from the beginning" in again.stdout
    assert f"actions: {STOPPED}, no checkpoint: starts from the beginning" in again.stdout
    record = record_of(run_dir)
    assert [launch_["tasks"] for launch_ in record["launches"]] == [datasets, datasets[1:]]
    assert [(t["state"], t["exit_code"], t["launch"]) for t in record["tasks"]] == [
        ("done", 0, 0),
        ("done", 0, 1),
        ("done", 0, 1),
    ]
    assert [[a["state"] for a in t["attempts"]] for t in record["tasks"]] == [[], ["running"], ["pending"]]
    assert text(run_dir / datasets[0] / "train.log") == first_log  # the finished dataset was left alone
    runner_log = text(run_dir / "runner.log")
    assert [runner_log.count(f"== {d}: {TRAIN_PYTHON} ") for d in datasets] == [1, 2, 1]  # -grccs: killed, again
    assert [runner_log.count(f"== {d}: exited 0") for d in datasets] == [1, 1, 1]
    for dataset in datasets:
        assert epochs(run_dir, dataset, "val_stats.json") == [0]
        assert epochs(run_dir, dataset, "train_stats.json") == [0]
    assert_results_average_all(env, "kill", run_dir, datasets)


def test_cancel_stops_the_training_and_the_runner_starts_no_further_dataset(env, tmp_path):
    """run.cancel while the first of two datasets starts: its process group is stopped, the second is
    cancelled before it started; the runner records both and ends, and so does the launcher (exit 1)."""
    args = ["run.train", "--datasets", "actions,-grccs", "--name", "stop", "--set", "trainer.max_epochs=1"]
    run_dir = tmp_path / "exp" / "stop"
    launcher = launch(args, env, tmp_path / "launcher.out")

    def first_runs():
        pid = record_of(run_dir)["tasks"][0]["pid"] if (run_dir / "launch.json").exists() else None
        return pid if ours(pid, "sam3.train.train") else None

    try:
        pid = wait_for("the first task runs", first_runs, launcher=launcher, output=tmp_path / "launcher.out")
        cancelled = run_inv(["run.cancel", "--name", "stop"], env)
        assert cancelled.returncode == 0, cancelled.stderr
        assert cancelled.stdout.splitlines() == [
            f"actions: stopped process group of pid {pid}",
            "-grccs: cancelled before it started",
        ]
        assert launcher.wait(timeout=120) == 1
        record = runner_ended(run_dir)
    finally:
        launcher.kill()
        kill_everything(run_dir)
    assert "error: a task exited with -15" in text(tmp_path / "launcher.out")
    assert [(t["state"], t["exit_code"]) for t in record["tasks"]] == [("failed", -signal.SIGTERM), ("cancelled", None)]
    assert "== -grccs:" not in text(run_dir / "runner.log") and not (run_dir / "-grccs" / "train.log").exists()
    assert json.loads(run_inv(["run.status", "--name", "stop", "--json"], env).stdout)["states"] == [
        "failed",
        "cancelled",
    ]
    assert run_inv(["run.cancel", "--name", "stop"], env).stdout.strip() == "stop: nothing is running"
