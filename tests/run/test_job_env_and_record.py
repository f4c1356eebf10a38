"""What a launch hands on, as plain functions: the job environment (tasks/lib/run/job_env.py), the launch
record's masking (launch_record.py), the identity (identity.py)."""

import os
import stat
from pathlib import Path

from tasks.lib.run import identity, job_env, launch_record

PAT = "ghp_" + "0123456789abcdefghij" + "ABCDEFGHIJKLMNOP"


def test_only_allowed_names_reach_the_job_and_of_those_only_what_is_no_secret():
    environ = {
        "HF_TOKEN": "a",
        "WANDB_API_KEY": "b",
        "AWS_SECRET_ACCESS_KEY": "c",
        "GITHUB_TOKEN": "d",
        "MY_DB_PASSWORD": "e",
        "GOOGLE_APPLICATION_CREDENTIALS": "f",
        "SSH_AUTH_SOCK": "g",
        "DATABASE_URL": "postgres://u:pw@db/x",
        "MY_ORG_PAT": PAT,
        "X_NOTE": "harmless",
        "DISPLAY": ":0",
        "HTTPS_PROXY": "http://user:pw@proxy:3128",
        "HTTP_PROXY": "http://proxy:3128",
        "HF_HUB_CACHE": "/hf",
        "HF_X": PAT,
        "WANDB_BASE_URL": "http://wandb.local",
        "SLURM_CONF": "/etc/slurm.conf",
        "LC_ALL": "C",
        "PATH": "/bin",
        "HOME": "/h",
        "CUDA_VISIBLE_DEVICES": "0",
        "PYTHONPATH": "/user",
    }
    environment = job_env.job_environment({"HF_HUB_OFFLINE": "1", "PYTHONPATH": "/plugins"}, environ)
    assert environment == {
        "PATH": "/bin",
        "HOME": "/h",
        "CUDA_VISIBLE_DEVICES": "0",
        "HF_HUB_OFFLINE": "1",
        "HTTP_PROXY": "http://proxy:3128",
        "HF_HUB_CACHE": "/hf",
        "LC_ALL": "C",
        "WANDB_BASE_URL": "http://wandb.local",
        "SLURM_CONF": "/etc/slurm.conf",
        "PYTHONPATH": f"/plugins{os.pathsep}/user",
    }
    assert job_env.withheld(environ) == [
        "AWS_SECRET_ACCESS_KEY",
        "DATABASE_URL",
        "DISPLAY",
        "GITHUB_TOKEN",
        "GOOGLE_APPLICATION_CREDENTIALS",
        "HF_TOKEN",
        "HF_X",
        "HTTPS_PROXY",
        "MY_DB_PASSWORD",
        "MY_ORG_PAT",
        "SSH_AUTH_SOCK",
        "WANDB_API_KEY",
        "X_NOTE",
    ]
    line = job_env.describe_withheld(job_env.withheld(environ), environ)
    assert line.startswith("job environment: kept out 11 secret(s) (AWS_SECRET_ACCESS_KEY, DATABASE_URL, ")
    assert "and 2 variable(s) not in jobs.env_allow (DISPLAY, X_NOTE)" in line and "pw" not in line


def test_jobs_env_allow_adds_names_and_prefixes_but_never_a_secret_value():
    environ = {"MYLAB_ROOT": "/lab", "MYLAB_X": "1", "MYLAB_DSN": "mysql://u:pw@db/x", "OTHER": "o"}
    environment = job_env.job_environment({}, environ, extra=("MYLAB_*",))
    assert environment == {"MYLAB_ROOT": "/lab", "MYLAB_X": "1"}
    assert job_env.job_environment({}, environ, extra=("OTHER",)) == {"OTHER": "o"}
    assert job_env.withheld(environ, ["MYLAB_*"]) == ["MYLAB_DSN", "OTHER"]


def test_each_launch_writes_its_own_wandb_key_file_only_its_owner_reads(tmp_path):
    state = tmp_path / "state"
    environ = {"WANDB_API_KEY": "k" * 40, "XDG_STATE_HOME": str(state)}
    first = job_env.wandb_key_file(tmp_path / "exp" / "run", environ, launch="1")
    second = job_env.wandb_key_file(tmp_path / "exp" / "run", environ, launch="2")
    other_run = job_env.wandb_key_file(tmp_path / "exp" / "other", environ, launch="1")
    assert len({first, second, other_run}) == 3 and first.name.startswith("run-")
    assert first.parent == state / "sam3-tasks" / "wandb-keys"  # per user, never in the experiment folder
    job_env.write_secret_files({job_env.WANDB_KEY_FILE_VAR: str(first)}, environ)
    job_env.write_secret_files({job_env.WANDB_KEY_FILE_VAR: str(second)}, dict(environ, WANDB_API_KEY="j" * 40))
    assert first.read_text() == "k" * 40 and second.read_text() == "j" * 40  # the later launch changed nothing
    assert stat.S_IMODE(first.stat().st_mode) == 0o600 and stat.S_IMODE(first.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE((state / "sam3-tasks").stat().st_mode) == 0o700
    assert sorted(p.name for p in first.parent.iterdir()) == sorted([first.name, second.name])  # no partial file
    old = job_env.KEY_FILE_DAYS * 86400 + 60
    os.utime(first, (first.stat().st_atime - old, first.stat().st_mtime - old))
    job_env.write_secret_files({job_env.WANDB_KEY_FILE_VAR: str(other_run)}, environ)
    assert not first.exists() and second.exists() and other_run.exists()  # old launches' keys go
    job_env.write_secret_files({}, environ)  # nothing asked for: nothing written


def test_the_launch_record_masks_secret_values_never_a_key_by_its_name():
    items = [
        "run.train",
        "--set",
        "+trainer.logging.wandb_api_key=" + "0123456789abcdef" * 2 + "01234567",
        "--set=scratch.db=postgres://u:pw@db/x",
        "--set",
        "trainer.model.presence_token=false",
        "--set",
        "scratch.hf_token_count=2",
        "--name",
        "x",
        "--grid",
        "scratch.lr=0.1,0.2",
        PAT,
    ]
    assert launch_record.mask_secret_values(items) == [
        "run.train",
        "--set",
        "+trainer.logging.wandb_api_key=***",
        "--set=scratch.db=***",
        "--set",
        "trainer.model.presence_token=false",
        "--set",
        "scratch.hf_token_count=2",
        "--name",
        "x",
        "--grid",
        "scratch.lr=0.1,0.2",
        "***",
    ]


def test_config_keys_that_look_secret_stay_in_the_identity_and_a_change_to_them_counts():
    config = {"trainer": {"model": {"presence_token": True, "api": "https://u:pw@host/x"}}}
    before = identity.of_run(config, 1, 1, [], {})
    assert before["config"]["trainer"]["model"] == {"presence_token": True, "api": "https://***@host/x"}
    after = identity.of_run(
        {"trainer": {"model": {"presence_token": False, "api": "https://u:pw@host/x"}}}, 1, 1, [], {}
    )
    assert identity.differences(before, after) == ["trainer.model.presence_token: True -> False"]


def test_the_wandb_key_file_is_not_a_secret_and_reaches_the_job(tmp_path):
    path = job_env.wandb_key_file(Path("/exp/run"), {"HOME": str(tmp_path)})
    environment = job_env.job_environment({}, {job_env.WANDB_KEY_FILE_VAR: str(path)})  # passed on where it is set
    assert environment == {job_env.WANDB_KEY_FILE_VAR: str(path)}
