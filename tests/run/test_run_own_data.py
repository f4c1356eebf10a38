"""run.train / run.eval / run.results --data through the real `inv`: SAM3's real Trainer fine-tunes and
evaluates a user's own COCO folder (SAM3's model classes at a reduced size on the CPU, --smoke), and the
results put the fine-tuned run beside the model it started from."""

import json
import math

import pytest
from conftest import ROOT, run_inv
from support.own_coco import write_dataset
from support.sam3_configs import require_configs

pytestmark = pytest.mark.skipif(
    not (ROOT / ".venv-train" / "bin" / "python").exists(),
    reason="no training env: scripts/setup-tests builds .venv-train",
)


@pytest.fixture
def env(clean_env, tmp_path):
    return dict(clean_env, SAM3_EXPERIMENT_ROOT=str(tmp_path / "exp"), SAM3_CONFIGS_DIR=str(require_configs()))


def _last_val(run_dir, dataset):
    lines = (run_dir / dataset / "logs" / dataset / "val_stats.json").read_text().splitlines()
    return json.loads(lines[-1])


def test_own_folder_fine_tuned_beside_its_baseline(env, tmp_path):
    """valid/ only, a background category, prompts from a file: trained, checkpointed, evaluated, compared."""
    folder = write_dataset(tmp_path / "data" / "my-parts", {"train": 4, "valid": 20}, background=True)
    prompts = tmp_path / "prompts.json"
    prompts.write_text(json.dumps({"1": "hex bolt", "2": "nut"}))
    done = run_inv(["run.train", "--data", str(folder), "--prompts", str(prompts), "--smoke"], env, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "my-parts has no test/: SAM3 evaluates on valid/" in done.stdout
    assert "background category 0 'my-parts' dropped" in done.stdout
    run_dir = tmp_path / "exp" / "my-parts"
    assert (run_dir / "my-parts" / "checkpoints" / "checkpoint.pt").stat().st_size > 1_000_000
    resolved = (run_dir / "my-parts" / "config_resolved.yaml").read_text()
    assert str(run_dir / "data" / "valid-smoke.json") in resolved
    subset = json.loads((run_dir / "data" / "valid-smoke.json").read_text())
    assert len(subset["images"]) == 4 and [c["name"] for c in subset["categories"]] == ["hex bolt", "nut"]
    stats = _last_val(run_dir, "my-parts")
    assert 0 <= stats["Meters_train/val_roboflow100/detection/coco_eval_bbox_AP"] <= 1
    predictions = json.loads(
        (run_dir / "my-parts" / "dumps" / "roboflow" / "my-parts" / "coco_predictions_bbox.json").read_text()
    )
    assert {p["image_id"] for p in predictions} <= {i["id"] for i in subset["images"]}  # 4 images evaluated
    assert {p["category_id"] for p in predictions} <= {1, 2}  # the background was never asked for

    results = run_inv(["run.results", "--name", "my-parts", "--json", "--no-plot"], env)
    assert json.loads(results.stdout)["baseline"] is None
    assert "no baseline yet: inv run.eval --data" in results.stdout

    done = run_inv(["run.eval", "--data", str(folder), "--prompts", str(prompts), "--smoke"], env, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    baseline = _last_val(tmp_path / "exp" / "my-parts-baseline", "my-parts")
    results = json.loads(run_inv(["run.results", "--name", "my-parts", "--json", "--no-plot"], env).stdout)
    (row,) = results["baseline"]["rows"]
    assert results["baseline"]["baseline"] == "my-parts-baseline" and row["figure"] == "box AP"
    assert row["baseline"] == pytest.approx(100 * baseline["Meters_train/val_roboflow100/detection/coco_eval_bbox_AP"])
    assert row["fine-tuned"] == pytest.approx(100 * stats["Meters_train/val_roboflow100/detection/coco_eval_bbox_AP"])
    expected = "warning: fine-tuning did not beat" if row["delta"] <= 0 else "fine-tuning beat the model"
    assert [n for n in results["notes"] if "the model it started from" in n][0].startswith(expected)


def test_masks_fine_tuned_and_evaluated_beside_the_baseline_with_mask_ap(env, tmp_path):
    """--task segm: SAM3's mask loss trains, the reduced model carries a mask head, and both box and mask AP
    are put beside the baseline's."""
    folder = write_dataset(tmp_path / "data" / "my-parts", {"train": 4, "test": 4})
    for task in ("run.train", "run.eval"):
        done = run_inv([task, "--data", str(folder), "--task", "segm", "--smoke"], env, timeout=900)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    run_dir = tmp_path / "exp" / "my-parts-segm"
    stats = _last_val(run_dir, "my-parts")
    assert 0 <= stats["Meters_train/val_roboflow100/segmentation/coco_eval_segm_AP"] <= 1
    train = json.loads((run_dir / "my-parts" / "logs" / "my-parts" / "train_stats.json").read_text().splitlines()[-1])
    assert math.isfinite(train["Losses/train_all_loss_mask"]) and math.isfinite(train["Losses/train_all_loss_dice"])
    assert (run_dir / "my-parts" / "dumps" / "roboflow" / "my-parts" / "coco_predictions_segm.json").is_file()
    results = json.loads(run_inv(["run.results", "--name", "my-parts-segm", "--json", "--no-plot"], env).stdout)
    assert results["baseline"]["baseline"] == "my-parts-segm-baseline"
    assert [row["figure"] for row in results["baseline"]["rows"]] == ["box AP", "mask AP"]
    mask = results["baseline"]["rows"][1]
    assert mask["fine-tuned"] == pytest.approx(
        100 * stats["Meters_train/val_roboflow100/segmentation/coco_eval_segm_AP"]
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--data", "{tmp}/nowhere"], "--data {tmp}/nowhere: no such folder"),
        (["--data", "{tmp}/data"], "it holds datasets (boxes, no-images): pass --data {tmp}/data/boxes"),
        (["--data", "{tmp}/data/boxes", "--task", "segm"], "--task segm: boxes has boxes only"),
        (["--data", "{tmp}/data/boxes", "--task", "keypoints"], "--task 'keypoints' is not bbox or segm"),
        (["--task", "segm"], "--task and --prompts go with --data DIR"),
        (["--data", "{tmp}/data/boxes", "--prompts", "{tmp}/prompts.json"], "no category has id 9"),
        (["--data", "{tmp}/data/boxes", "--datasets", "x"], "with --data the dataset is that folder"),
        (["--data", "{tmp}/data/no-images"], "test/_annotations.coco.json lists no images"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_nothing_launched(env, tmp_path, args, message):
    write_dataset(tmp_path / "data" / "boxes", {"train": 2, "test": 2}, masks=False)
    write_dataset(tmp_path / "data" / "no-images", {"train": 2, "test": 0})
    (tmp_path / "prompts.json").write_text('{"9": "gear"}')
    args = [arg.replace("{tmp}", str(tmp_path)) for arg in args]
    done = run_inv(["run.train", *args, "--smoke"], env)
    assert done.returncode == 2, done.stdout + done.stderr
    assert message.replace("{tmp}", str(tmp_path)) in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "exp").exists() or not any((tmp_path / "exp").iterdir())


def test_own_data_on_a_cluster_and_in_a_grid_is_planned_like_any_run(env, tmp_path):
    """One SLURM array task per cell, each in its own folder, for the one dataset of the folder."""
    folder = write_dataset(tmp_path / "data" / "my-parts", {"train": 2, "test": 2})
    args = ["run.train", "--data", str(folder), "--mode", "cluster", "--grid", "scratch.lr_scale=0.1,0.2", "--dry-run"]
    done = run_inv(args, env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "grid: 2 cell(s) x 1 dataset(s) = 2 task(s)" in done.stdout
    assert "SLURM arrays: 2" in done.stdout
    assert not (tmp_path / "exp" / "my-parts").exists()  # a dry run writes nothing
