"""run.export through the real `inv`, on a real checkpoint of SAM3's Trainer: the CPU demo (SAM3's model
classes at a reduced size) trained one epoch on one dataset, exported, proven, and loaded back through
SAM3's own loader (sam3 0.1.4 from PyPI, in .venv-train)."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, run_inv

from tasks.lib.core.errors import ConfigError, ToolError
from tasks.lib.run import export as export_lib

TRAIN_PYTHON = ROOT / ".venv-train" / "bin" / "python"
PLUGINS = ROOT / "tasks" / "lib" / "run" / "plugins"
needs_training_env = pytest.mark.skipif(
    not TRAIN_PYTHON.exists(), reason="no training env: scripts/setup-tests builds .venv-train"
)
REDUCED_TENSORS = 230  # SAM3's Sam3Image at the CPU reduction's size, box-only


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One real demo run, one dataset, one epoch: (its folder, the environment to run inv in)."""
    base = tmp_path_factory.mktemp("export")
    (base / "home").mkdir()
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("INVOKE_", "SAM3_", "HF_"))}
    environ.update(
        HOME=str(base / "home"), SAM3_EXPERIMENT_ROOT=str(base / "exp"), INVOKE_PATHS_DEMO_DATA_ROOT=str(base / "data")
    )
    args = ["run.train", "--name", "ex", "--datasets", "actions", "--set", "trainer.max_epochs=1"]
    done = run_inv(args, environ, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return base / "exp" / "ex", environ


def in_training_env(code: str, *args: str) -> dict:
    """Run Python in the training venv (torch, sam3); its last stdout line, as JSON."""
    done = subprocess.run(
        [str(TRAIN_PYTHON), "-c", code, *args],
        env={**os.environ, "PYTHONPATH": str(PLUGINS)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


INSPECT = """
import contextlib, io, json, sys, torch, hydra
from omegaconf import OmegaConf
from sam3.model_builder import _load_checkpoint
import sam3_cpu
sam3_cpu.apply_cpu_patches()
export, trainer, config = sys.argv[1:]
data = torch.load(export, weights_only=True)
model = hydra.utils.instantiate(OmegaConf.load(config).trainer.model, _convert_="all")
said = {}
for name, path in (("export", export), ("trainer", trainer)):
    with contextlib.redirect_stdout(io.StringIO()) as out:
        _load_checkpoint(model, path)  # SAM3's own loader: it prints the keys it found missing
    said[name] = out.getvalue()
print(json.dumps({"top": sorted(data), "keys": sorted(data["model"]),
                  "tensors": all(isinstance(v, torch.Tensor) for v in data["model"].values()),
                  "missing_export": said["export"].count("'") // 2, "missing_trainer": said["trainer"].count("'") // 2}))
"""


@needs_training_env
def test_export_is_proven_and_loads_through_sam3s_own_loader(trained):
    run_dir, environ = trained
    done = run_inv(["run.export", "--name", "ex", "--json"], environ, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(done.stdout)
    target = run_dir / "actions" / "export" / "ex-actions.pt"
    proof = result["proof"]
    assert result["export"] == str(target) and target.stat().st_size == result["bytes"]
    assert proof["tensors_equal"] == proof["tensors"] == REDUCED_TENSORS
    assert proof["loaded"] and proof["missing"] == [] and proof["unexpected"] == [] and proof["printed"] == ""
    assert proof["outputs"] == {"pred_boxes": 0.0, "pred_logits": 0.0, "presence_logit_dec": 0.0}
    assert result["bytes"] < result["checkpoint_bytes"] / 2  # the optimizer state stays behind
    assert sorted(os.listdir(target.parent)) == ["ex-actions.pt"]  # no temporary file left
    assert result["model"]["kind"] == "reduced" and result["model"]["enable_segmentation"] is False
    trainer = run_dir / "actions" / "checkpoints" / "checkpoint.pt"
    seen = in_training_env(INSPECT, str(target), str(trainer), str(run_dir / "actions" / "config_resolved.yaml"))
    assert seen["top"] == ["model"] and seen["tensors"] and len(seen["keys"]) == REDUCED_TENSORS
    assert all(key.startswith("detector.") for key in seen["keys"])
    assert seen["missing_export"] == 0  # SAM3's loader says nothing is missing
    assert seen["missing_trainer"] == REDUCED_TENSORS  # the bug: the trainer's own file loads nothing


@needs_training_env
def test_the_lines_it_prints_load_the_export(trained, tmp_path):
    run_dir, environ = trained
    target = tmp_path / "mine" / "model.pt"
    done = run_inv(["run.export", "--output", str(target)], environ, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    assert f"actions of run ex (after epoch 1 of 1) exported: {target}" in out
    assert f"{target.stat().st_size / 1e6:.1f} MB: the model's 230 tensors" in out
    assert "0 missing, 0 unexpected keys; 230/230 tensors equal to the trainer's, bit for bit" in out
    assert "pred_boxes, pred_logits, presence_logit_dec identical (max abs diff 0.0)" in out
    code = [line[4:] for line in out.split("  load it:\n", 1)[1].splitlines() if line.startswith("    ")]
    code.insert(0, "import sam3_cpu; sam3_cpu.apply_cpu_patches()")  # the printed comment, for this CPU
    code.append("import json; print(json.dumps({'tensors': len(model.state_dict()), 'training': model.training}))")
    done = subprocess.run(
        [str(TRAIN_PYTHON), "-c", "\n".join(code)],
        env={**os.environ, "PYTHONPATH": str(PLUGINS)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout == '{"tensors": 230, "training": false}\n'  # SAM3's loader printed no missing keys


@needs_training_env
def test_an_existing_export_is_refused_and_force_replaces_it(trained, tmp_path):
    _, environ = trained
    target = tmp_path / "model.pt"
    target.write_bytes(b"mine")
    refused = run_inv(["run.export", "--output", str(target)], environ)
    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.stderr.strip() == (
        f"error: {target} exists; pass --force to replace it, or name another file with --output"
    )
    assert target.read_bytes() == b"mine"
    forced = run_inv(["run.export", "--output", str(target), "--force", "--json"], environ, timeout=300)
    assert forced.returncode == 0, forced.stderr[-3000:]
    assert json.loads(forced.stdout)["proof"]["tensors_equal"] == REDUCED_TENSORS
    assert target.stat().st_size > 1_000_000 and sorted(os.listdir(tmp_path)) == ["model.pt"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--name", "nope"], "error: no run named 'nope' under"),
        (["--dataset", "nope"], "error: --dataset 'nope' matches no task of run ex (its tasks: actions)"),
        (["--cell", "nope"], "error: --cell 'nope' matches no task of run ex"),
        (["--output", "{run}/actions/checkpoints/checkpoint.pt", "--force"], "is the trainer checkpoint itself"),
    ],
)
@needs_training_env
def test_bad_input_is_one_line_exit_2_and_writes_nothing(trained, args, message):
    run_dir, environ = trained
    before = sorted(run_dir.rglob("*"))
    done = run_inv(["run.export", *(arg.replace("{run}", str(run_dir)) for arg in args)], environ)
    assert done.returncode == 2 and message in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert sorted(run_dir.rglob("*")) == before


def clone(run_dir: Path, name: str) -> Path:
    """The run copied under another name without its checkpoint and exports, its record pointing at the copy."""
    copy = run_dir.with_name(name)
    shutil.copytree(run_dir, copy, ignore=shutil.ignore_patterns("checkpoint.pt", "export"))
    record = (copy / "launch.json").read_text().replace(json.dumps(str(run_dir))[1:-1], json.dumps(str(copy))[1:-1])
    (copy / "launch.json").write_text(json.dumps({**json.loads(record), "name": name}))
    return copy


@needs_training_env
def test_a_run_that_saved_no_checkpoint_says_how_to_get_one(trained):
    run_dir, environ = trained
    copy = clone(run_dir, "nockpt")
    config = copy / "actions" / "config_resolved.yaml"
    config.write_text(config.read_text().replace("skip_saving_ckpts: false", "skip_saving_ckpts: true"))
    done = run_inv(["run.export", "--name", "nockpt"], environ)
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "error: actions of run nockpt saved no checkpoint: its config has trainer.skip_saving_ckpts: true (as "
        "SAM3's RF100-VL and ODinW configs ship); train it again with --set trainer.skip_saving_ckpts=false (a new "
        "--name, or --restart)"
    )
    assert not (copy / "actions" / "export").exists()


OTHER_SIZE = """
import sys, torch
trainer = torch.load(sys.argv[1], weights_only=True)["model"]
model = {k: (torch.zeros(v.shape[0], v.shape[1], 2 * v.shape[2]) if k.endswith("trunk.pos_embed") else v)
         for k, v in trainer.items() if not k.endswith("trunk.blocks.1.mlp.fc2.bias")}
torch.save({"model": model, "epoch": 1}, sys.argv[2])
print("{}")
"""


@pytest.mark.parametrize("kind", ["not a checkpoint", "another model size"])
@needs_training_env
def test_a_checkpoint_that_is_not_one_or_of_another_size_is_refused(trained, kind):
    run_dir, environ = trained
    name = kind.replace(" ", "-")
    copy = clone(run_dir, name)
    checkpoint = copy / "actions" / "checkpoints" / "checkpoint.pt"
    if kind == "not a checkpoint":
        checkpoint.write_text("a text file\n")
        expected = f"{checkpoint} is not a PyTorch checkpoint (it starts with b'a te', not as torch.save writes)"
    else:
        in_training_env(OTHER_SIZE, str(run_dir / "actions" / "checkpoints" / "checkpoint.pt"), str(checkpoint))
        expected = (
            f"{checkpoint} does not fit the model this task's config builds (reduced sam3.model.sam3_image.Sam3Image, "
            "masks off): 1 tensor(s) of another shape, 1 missing, 0 unexpected (backbone.vision_backbone.trunk."
            "pos_embed is [1, 577, 256] there, [1, 577, 128] in the model); it is a checkpoint of another model size"
        )
    done = run_inv(["run.export", "--name", name], environ, timeout=300)
    assert done.returncode == 2 and expected in done.stderr and done.stderr.strip().endswith("nothing was written")
    assert not (copy / "actions" / "export").exists()


FAKE_SCRIPT = """
import sys
output = sys.argv[sys.argv.index("--output") + 1]
open(output, "wb").write(b"half a proof")
if sys.argv[-1] == "crash":
    raise RuntimeError("the script broke")
print('sam3_export: {"ok": false, "code": 1, "error": "the export does not give back the trainer\\'s model: x"}')
sys.exit(1)
"""


@pytest.mark.parametrize("how", ["proof", "crash"])
def test_a_failed_proof_or_a_crash_leaves_nothing_behind(tmp_path, monkeypatch, how):
    """The launcher's side, with a stand-in for the script: whatever it wrote under the temporary name is
    removed, and so is the folder made for the export."""
    script = tmp_path / "fake.py"
    script.write_text(FAKE_SCRIPT)
    monkeypatch.setattr(export_lib, "SCRIPT", script)
    folder = tmp_path / "task"
    source = export_lib.Source("r", "d", "d", None, folder, folder / "ckpt.pt", folder / "config.yaml")
    folder.mkdir()
    (folder / "ckpt.pt").write_bytes(b"x")
    output = folder / "export" / "r-d.pt"
    with pytest.raises(ToolError) as raised:
        export_lib.export(
            Path(sys.executable), source, output, force=False, device="crash" if how == "crash" else "cpu"
        )
    assert not isinstance(raised.value, ConfigError) and raised.value.code == 1
    expected = "RuntimeError: the script broke" if how == "crash" else "does not give back the trainer's model"
    assert expected in str(raised.value) and str(raised.value).endswith("nothing was written")
    assert sorted(os.listdir(folder)) == ["ckpt.pt"]
