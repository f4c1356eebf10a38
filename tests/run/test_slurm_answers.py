"""What the launcher makes of SLURM's answers (tasks/lib/run/slurm.py, status.py), with a `squeue` on
PATH that stands in for a busy cluster's: one that fails, times out, or prints what is not a job list.
The real cluster's faults are in test_scheduler_faults.py."""

import stat
from pathlib import Path

import pytest
from support.sam3_stats import val_line, write_lines

from tasks.lib.run import slurm, status


def fake_squeue(folder: Path, body: str) -> str:
    """A PATH whose `squeue` is a shell script in folder; each call appends a line to folder/calls."""
    folder.mkdir(exist_ok=True)
    script = folder / "squeue"
    script.write_text(f'#!/bin/sh\necho "$*" >> {folder / "calls"}\n{body}\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return f"{folder}:/usr/bin:/bin"


@pytest.fixture
def quick_retries(monkeypatch):
    monkeypatch.setattr(slurm, "RETRY_WAITS_S", (0.01, 0.01, 0.01))


def calls(folder: Path) -> list[str]:
    return (folder / "calls").read_text().splitlines()


def test_a_failing_squeue_is_tried_again_and_then_refused_in_one_line(tmp_path, monkeypatch, quick_retries):
    shim = fake_squeue(
        tmp_path / "bin", 'echo "slurm_load_jobs error: Socket timed out on send/recv operation" >&2\nexit 1'
    )
    monkeypatch.setenv("PATH", shim)
    monkeypatch.setenv("USER", "alice")
    with pytest.raises(slurm.SchedulerSilent) as raised:
        slurm.job_states()
    message = str(raised.value)
    assert "after 4 tries (slurm_load_jobs error: Socket timed out on send/recv operation)" in message
    assert "\n" not in message and "nothing was decided or submitted" in message
    assert calls(tmp_path / "bin") == ["-h -r -t all -u alice -o %i %T"] * 4  # our user's jobs only, every time


def test_a_squeue_that_answers_on_the_second_try_is_believed(tmp_path, monkeypatch, quick_retries):
    count = tmp_path / "count"
    body = (
        f'if [ ! -e {count} ]; then touch {count}; echo "Socket timed out" >&2; exit 1; fi\n'
        'printf "12_0 RUNNING\\n12_1 PENDING\\n13 COMPLETED\\n"'
    )
    monkeypatch.setenv("PATH", fake_squeue(tmp_path / "bin", body))
    assert slurm.job_states() == {"12_0": "running", "12_1": "pending", "13": "completed"}


def test_a_squeue_that_prints_garbage_is_not_read_as_an_empty_queue(tmp_path, monkeypatch, quick_retries):
    shim = fake_squeue(tmp_path / "bin", 'echo "<html>503 Service Unavailable</html>"')
    monkeypatch.setenv("PATH", shim)
    with pytest.raises(slurm.SchedulerSilent, match="squeue printed a line that is not '<job id> <STATE>'"):
        slurm.job_states()


def test_a_squeue_that_hangs_is_given_up_on(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", fake_squeue(tmp_path / "bin", "sleep 30"))
    with pytest.raises(slurm.SchedulerSilent, match=r"after 2 tries \(no answer in 0 s\)"):
        slurm.ask_slurm(["squeue", "-h"], waits=(0.01,), timeout=0.3)


def record_of(tmp_path: Path, job_ids: list[str]) -> dict:
    tasks = [
        {
            "dataset": f"d{n}",
            "cell": None,
            "experiment_dir": str(tmp_path / f"d{n}"),
            "state": "submitted",
            "job_id": job,
            "pid": None,
            "exit_code": None,
            "mode": "cluster",
            "max_epochs": 2,
        }
        for n, job in enumerate(job_ids)
    ]
    return {"name": "r", "mode": "cluster", "trainer_mode": "train", "run_dir": str(tmp_path), "tasks": tasks}


def test_status_says_unknown_when_slurm_is_silent_and_never_finished(tmp_path, monkeypatch, quick_retries):
    monkeypatch.setenv("PATH", fake_squeue(tmp_path / "bin", "exit 1"))
    record = record_of(tmp_path, ["40_0", "40_1"])
    assert status.run_states(record) == [slurm.UNKNOWN, slurm.UNKNOWN]
    with pytest.raises(slurm.SchedulerSilent):  # before deciding anything: no guess
        status.run_states(record, strict=True)


def test_a_job_slurm_forgot_is_done_only_with_its_final_evaluation(tmp_path, monkeypatch, quick_retries):
    """Three jobs SLURM no longer lists: one evaluated at its last epoch, one that stopped after its first
    epoch's validation, one that never validated. Only the first is finished."""
    monkeypatch.setenv("PATH", fake_squeue(tmp_path / "bin", 'echo "99 RUNNING"'))
    record = record_of(tmp_path, ["40_0", "40_1", "40_2"])
    write_lines(tmp_path / "d0" / "logs" / "d0" / "val_stats.json", [val_line(0.1, 0), val_line(0.2, 1)])
    write_lines(tmp_path / "d1" / "logs" / "d1" / "val_stats.json", [val_line(0.1, 0)])
    states = status.run_states(record)
    assert states[0] == slurm.FORGOTTEN
    assert states[1] == states[2] == f"ended without its final evaluation ({slurm.FORGOTTEN})"


def test_the_failed_tasks_cause_is_the_last_exception_in_its_log(tmp_path):
    record = record_of(tmp_path, [None, None])
    record["mode"] = "local"
    for entry in record["tasks"]:
        entry.update(mode="local", state="failed", exit_code=1)
        Path(entry["experiment_dir"]).mkdir()
    log = "\n".join(
        [
            "INFO epoch 1",
            "Traceback (most recent call last):",
            '  File "x.py", line 1, in f',
            "    g()",
            "ValueError: first",
            "",
            "During handling of the above exception, another exception occurred:",
            "",
            "Traceback (most recent call last):",
            '  File "train.py", line 9, in run',
            "    loss.backward()",
            "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB",
            "",
            "INFO exiting",
        ]
    )
    (tmp_path / "d0" / "train.log").write_text(log)
    (tmp_path / "d1" / "train.log").write_text("killed by the OOM killer\n")
    lines = status.failure_causes(record, ["failed", "failed"])
    assert lines == [
        "d0: torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB",
        f"    (the last lines of {tmp_path / 'd0' / 'train.log'})",
        f"d1: failed, no exception in its log ({tmp_path / 'd1' / 'train.log'})",
    ]
