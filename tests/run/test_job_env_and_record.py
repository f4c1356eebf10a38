"""What a launch hands on, as plain functions: the job environment (tasks/lib/run/job_env.py), the launch
record's masking (launch_record.py)."""

import os
import stat

from tasks.lib.run import job_env


def test_every_secret_looking_variable_is_kept_out_of_the_job_environment():
    environ = {"HF_TOKEN": "a", "WANDB_API_KEY": "b", "AWS_SECRET_ACCESS_KEY": "c", "GITHUB_TOKEN": "d",
               "MY_DB_PASSWORD": "e", "GOOGLE_APPLICATION_CREDENTIALS": "f", "SSH_AUTH_SOCK": "g",
               "PATH": "/bin", "HOME": "/h", "CUDA_VISIBLE_DEVICES": "0", "PYTHONPATH": "/user"}  # fmt: skip
    environment = job_env.job_environment({"HF_HUB_OFFLINE": "1", "PYTHONPATH": "/plugins"}, environ)
    assert environment == {"PATH": "/bin", "HOME": "/h", "CUDA_VISIBLE_DEVICES": "0", "HF_HUB_OFFLINE": "1",
                           "PYTHONPATH": f"/plugins{os.pathsep}/user"}  # fmt: skip
    assert job_env.withheld(environ) == ["AWS_SECRET_ACCESS_KEY", "GITHUB_TOKEN", "GOOGLE_APPLICATION_CREDENTIALS",
                                         "HF_TOKEN", "MY_DB_PASSWORD", "SSH_AUTH_SOCK", "WANDB_API_KEY"]  # fmt: skip
    assert not job_env.looks_secret(job_env.WANDB_KEY_FILE_VAR)  # the path to the key file is no secret


def test_the_wandb_key_goes_to_a_file_only_its_owner_reads(tmp_path):
    environ = {"WANDB_API_KEY": "k" * 40, "XDG_STATE_HOME": str(tmp_path / "state")}
    path = job_env.state_dir(environ) / "wandb-api-key"
    job_env.write_secret_files({job_env.WANDB_KEY_FILE_VAR: str(path)}, environ)
    assert path.read_text() == "k" * 40
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert sorted(p.name for p in path.parent.iterdir()) == ["wandb-api-key"]  # no partial file left
    job_env.write_secret_files({}, environ)  # nothing asked for: nothing written


def test_the_launch_record_masks_values_of_keys_that_look_secret():
    from tasks.lib.run import launch_record

    items = ["run.train", "--set", "+trainer.logging.wandb_api_key=abc123", "--set=scratch.hf_token=xyz",
             "--set", "trainer.max_epochs=2", "--name", "x"]  # fmt: skip
    assert launch_record.mask_secret_values(items) == ["run.train", "--set", "+trainer.logging.wandb_api_key=***",
                                                       "--set=scratch.hf_token=***", "--set", "trainer.max_epochs=2",
                                                       "--name", "x"]  # fmt: skip
