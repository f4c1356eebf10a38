"""The CPU reduction of a SAM3 config (tasks/lib/run/cpu_reduction.py) and the job environment
(tasks/lib/run/job_env.py), as plain functions; the real runs are in test_run.py."""

import ast
import os
import stat

import pytest
import yaml
from conftest import ROOT

from tasks.lib.core.errors import ConfigError
from tasks.lib.run import cpu_reduction, job_env

DEMO = yaml.safe_load((ROOT / "demo" / "demo_rf100vl_cpu.yaml").read_text())


def test_the_reduction_keeps_sam3s_training_parts_and_replaces_the_model_whole():
    reduced = cpu_reduction.reduce(DEMO)
    trainer = reduced["trainer"]
    assert trainer["_target_"] == cpu_reduction.TRAINER_TARGET and cpu_reduction.is_reduced(reduced)
    assert trainer["model"]["_target_"] == "sam3.model.sam3_image.Sam3Image"
    assert "bpe_path" not in trainer["model"] and "eval_mode" not in trainer["model"]  # nothing of the builder's left
    assert trainer["model"]["backbone"]["text"]["tokenizer"]["bpe_path"] == "${paths.bpe_path}"  # the config's own
    assert trainer["loss"] == {
        **DEMO["trainer"]["loss"],
        "default": {**DEMO["trainer"]["loss"]["default"], "device": "cpu"},
    }
    assert (
        trainer["meters"] == DEMO["trainer"]["meters"] and reduced["scratch"]["matcher"] == DEMO["scratch"]["matcher"]
    )
    assert (trainer["accelerator"], trainer["distributed"]["backend"]) == ("cpu", "gloo")
    assert DEMO["trainer"]["model"]["_target_"] == "sam3.model_builder.build_sam3_image_model"  # input untouched


def test_the_hard_coded_resize_floor_follows_the_reduced_resolution():
    reduced = cpu_reduction.reduce(DEMO)
    text = yaml.safe_dump(reduced)
    assert "min_size: 480" not in text and "min_size: ${scratch.train_min_resolution}" in text
    assert reduced["scratch"]["resolution"] == 224 and reduced["scratch"]["train_min_resolution"] == 192


@pytest.mark.parametrize(
    "change,message",
    [
        ({"trainer": {"model": {"_target_": "my_models.build"}}}, "trainer.model is my_models.build, which the CPU"),
        ({"scratch": {"enable_segmentation": True}}, "scratch.enable_segmentation is true, a GPU-only setting"),
        ({"trainer": {"model": {**DEMO["trainer"]["model"], "compile": True}}}, "trainer.model.compile is true"),
    ],
)
def test_what_the_reduction_cannot_stand_for_is_refused_in_one_line(change, message):
    config = cpu_reduction.merge(DEMO, change)
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        cpu_reduction.check(config, "mine.yaml", "0.1.4")


def test_a_sam3_version_the_patches_were_not_checked_against_is_refused():
    with pytest.raises(ConfigError, match=r"sam3 0\.2\.0; the CPU patches were checked against sam3 0\.1\.4: inv env"):
        cpu_reduction.check(DEMO, "demo", "0.2.0")
    cpu_reduction.check(DEMO, "demo", "0.1.4")


def test_the_plugin_knows_the_same_checked_versions():
    plugin = ast.parse((ROOT / "tasks" / "lib" / "run" / "plugins" / "sam3_cpu.py").read_text())
    assigned = {node.targets[0].id: node.value for node in plugin.body if isinstance(node, ast.Assign)}
    assert ast.literal_eval(assigned["CHECKED_SAM3_VERSIONS"]) == cpu_reduction.CHECKED_SAM3_VERSIONS


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


def test_a_throttle_scontrol_refuses_is_one_line_with_the_fix(tmp_path, monkeypatch):
    """scontrol answering an error (here a script in its place on PATH): one line, no traceback."""
    from tasks.lib.run import slurm

    fake = tmp_path / "scontrol"
    fake.write_text("#!/bin/sh\necho 'slurm_update error: Access/permission denied' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    problem = slurm.throttle(["41_0", "41_1"], 2)
    assert problem == ("job array 41 is queued but not throttled to 2 at a time (scontrol: slurm_update error: "
                       "Access/permission denied); run: scontrol update JobId=41 ArrayTaskThrottle=2, or scancel it "
                       "(inv run.cancel)")  # fmt: skip
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    assert "not throttled" in slurm.throttle(["41_0"], 2)  # no scontrol at all: the same one line


def test_the_launch_record_masks_values_of_keys_that_look_secret():
    from tasks.lib.run import launch_record

    items = ["run.train", "--set", "+trainer.logging.wandb_api_key=abc123", "--set=scratch.hf_token=xyz",
             "--set", "trainer.max_epochs=2", "--name", "x"]  # fmt: skip
    assert launch_record.mask_secret_values(items) == ["run.train", "--set", "+trainer.logging.wandb_api_key=***",
                                                       "--set=scratch.hf_token=***", "--set", "trainer.max_epochs=2",
                                                       "--name", "x"]  # fmt: skip
