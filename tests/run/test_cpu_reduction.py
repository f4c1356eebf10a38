"""The CPU reduction of a SAM3 config (tasks/lib/run/cpu_reduction.py), as plain functions; the real
runs are in test_run.py."""

import ast

import pytest
import yaml
from conftest import ROOT

from tasks.lib.core.errors import ConfigError
from tasks.lib.run import cpu_reduction

DEMO = yaml.safe_load((ROOT / "demo" / "demo_rf100vl_cpu.yaml").read_text())


def test_the_reduction_keeps_sam3s_training_parts_and_replaces_the_model_whole():
    reduced = cpu_reduction.reduce(DEMO)
    trainer = reduced["trainer"]
    assert trainer["_target_"] == cpu_reduction.TRAINER_TARGET
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
        ({"scratch": {"enable_segmentation": True}}, "enable_segmentation is true but not the rest of what masks need"),
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
