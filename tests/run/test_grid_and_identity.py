"""Grids, run identity and array throttles as plain functions (tasks/lib/run/grid.py, identity.py,
slurm.py); the same through the real `inv` and the real test SLURM are in test_run_grid.py."""

import json

import pytest

from tasks.lib.core.errors import ConfigError
from tasks.lib.run import grid, identity, slurm

CONFIG = {
    "trainer": {"max_epochs": 20, "optim": {"lr": 0.0001}, "amp": True, "mode": "train", "logging": {"log_freq": 10}},
    "scratch": {"resolution": "${x}", "train_file": "fewshot_train_shot10_seed300", "sizes": [1, 2]},
    "submitit": {"partition": "a"},
}


def test_axes_take_the_type_of_the_key_they_replace():
    axes = grid.parse_axes(["trainer.optim.lr=1e-4,5e-5", "trainer.max_epochs=2,4", "trainer.amp=false"], CONFIG)
    assert [axis.values for axis in axes] == [(0.0001, 0.00005), (2, 4), (False,)]
    assert grid.parse_axes(["scratch.resolution=224"], CONFIG)[0].values == (224,)  # an interpolation: any value
    assert grid.parse_axes(["scratch.sizes=[3]"], CONFIG)[0].values == ([3],)


def test_cells_cross_the_axes_in_order_with_readable_folder_names():
    axes = grid.parse_axes(
        ["trainer.optim.lr=1e-4,5e-5", "scratch.train_file=fewshot_train_shot10_seed300,fewshot_train_shot10_seed3"],
        CONFIG,
    )
    cells = grid.cells(axes)
    assert [cell.name for cell in cells] == [
        "lr=1e-4,train_file=fewshot_train_shot10_seed300",
        "lr=1e-4,train_file=fewshot_train_shot10_seed3",
        "lr=5e-5,train_file=fewshot_train_shot10_seed300",
        "lr=5e-5,train_file=fewshot_train_shot10_seed3",
    ]
    assert cells[1].values == {"trainer.optim.lr": 0.0001, "scratch.train_file": "fewshot_train_shot10_seed3"}
    assert grid.cells([]) == []


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("trainer.nosuch=1,2", "--grid trainer.nosuch: unknown key (no 'nosuch' under trainer)"),
        ("trainer.max_epoch=1,2", "did you mean 'trainer.max_epochs'?"),
        ("trainer.max_epochs=", "--grid trainer.max_epochs= has no values"),
        ("trainer.max_epochs=1,,2", "an empty value between commas"),
        ("trainer.max_epochs=1,1", "a value is given twice"),
        ("trainer.max_epochs", "is not KEY=v1,v2,..."),
        ("trainer.max_epochs=2,x", "'x' is not a whole number (the config has trainer.max_epochs: 20)"),
        ("trainer.max_epochs=2.5", "'2.5' is not a whole number"),
        ("trainer.optim.lr=fast", "'fast' is not a number"),
        ("trainer.amp=maybe", "'maybe' is not true or false"),
        ("scratch.sizes=3", "'3' is not a list"),
    ],
)
def test_a_bad_grid_is_one_line_naming_the_fix(spec, message):
    with pytest.raises(ConfigError, match=None) as caught:
        grid.parse_axes([spec], CONFIG)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_the_same_key_twice_is_refused():
    with pytest.raises(ConfigError, match="given twice; put all its values in one --grid"):
        grid.parse_axes(["trainer.max_epochs=1", "trainer.max_epochs=2"], CONFIG)


def test_identity_leaves_out_where_and_how_a_run_runs_and_names_what_differs():
    versions = {"sam3": "0.1.4", "torch": "2.14.1", "hydra-core": "1.3"}
    base = identity.of_run(CONFIG, 1, 1, [], versions)
    elsewhere = json.loads(json.dumps(CONFIG))
    elsewhere["submitit"]["partition"] = "b"  # where it runs
    elsewhere["trainer"]["logging"]["log_freq"] = 1  # how it logs
    assert identity.differences(base, identity.of_run(elsewhere, 1, 1, [], versions)) == []
    other = json.loads(json.dumps(CONFIG))
    other["trainer"]["max_epochs"] = 3
    changed = identity.differences(base, identity.of_run(other, 2, 1, [], versions))
    assert changed == ["gpus_per_node: 1 -> 2", "trainer.max_epochs: 20 -> 3"]
    axes = grid.parse_axes(["trainer.max_epochs=1,2"], CONFIG)
    assert identity.differences(base, identity.of_run(CONFIG, 1, 1, axes, versions)) == [
        'grid: [] -> [{"key": "trainer.max_epochs", "values": ["1", "2"]}]'
    ]


def test_identity_keeps_no_secret_value_and_judges_no_key_by_its_name():
    token = "hf_" + "canary0123456789" * 2
    config = {"trainer": {"hub_token": token, "presence_token": True, "max_epochs": 1}}
    kept = identity.of_run(config, 1, 1, [], {})
    assert token not in json.dumps(kept) and kept["config"]["trainer"]["presence_token"] is True


def test_a_final_evaluation_is_the_last_complete_line_of_the_last_epoch(tmp_path):
    stats = tmp_path / "logs" / "actions" / "val_stats.json"
    stats.parent.mkdir(parents=True)
    stats.write_text('{"Trainer/epoch": 0}\n{"Trainer/epoch": 1}\n{"Trainer/ep')
    assert identity.final_evaluation_done(tmp_path, "actions", "train", 2)
    assert not identity.final_evaluation_done(tmp_path, "actions", "train", 3)
    assert identity.final_evaluation_done(tmp_path, "actions", "val", 0)
    assert not identity.final_evaluation_done(tmp_path, "-grccs", "train", 2)


@pytest.mark.parametrize(
    ("sizes", "limit", "expected"),
    [
        ([3, 3], None, [(3, None), (3, None)]),
        ([2, 1], 1, [(1, None), (1, 0)]),  # more arrays than the limit: lanes, one task at a time
        ([2, 2, 2], 2, [(1, None), (1, None), (1, 0)]),
        ([100, 100], 10, [(5, None), (5, None)]),  # the limit shared out
        ([100, 2], 10, [(8, None), (2, None)]),  # a small array takes no more than it has
        ([3], 5, [(3, None)]),
    ],
)
def test_max_parallel_holds_across_all_arrays_of_a_run(sizes, limit, expected):
    throttles = slurm.array_throttles(sizes, limit)
    assert throttles == expected
    if limit:
        lanes = [i for i, (_, after) in enumerate(throttles) if after is None]
        assert sum(throttles[i][0] for i in lanes) <= limit  # what can run at once


def test_a_launch_slurm_cannot_hold_is_refused_whole():
    with pytest.raises(ConfigError, match=r"450 tasks do not fit: SLURM holds at most 400 jobs \(MaxJobCount\)"):
        slurm.refuse_too_many(450, {"MaxJobCount": 400, "MaxArraySize": 2}, {"1_0": "pending"})
    slurm.refuse_too_many(399, {"MaxJobCount": 400, "MaxArraySize": 2}, {"1_0": "pending"})


def test_a_launch_cut_off_after_every_job_id_was_recorded_is_marked_done(tmp_path, monkeypatch):
    """Only the closing "done" was lost (the session died after the last array reported): nothing to look
    up in squeue, and the launch reads as done, not interrupted."""
    monkeypatch.setenv("PATH", str(tmp_path))  # no squeue here: it must not be needed
    record = {
        "name": "cut",
        "mode": "cluster",
        "run_dir": str(tmp_path),
        "launches": [{"submission": "started"}],
        "tasks": [
            {"dataset": d, "cell": None, "state": "submitted", "job_id": f"7_{i}", "job_name": "n"}
            for i, d in enumerate(("a", "b"))
        ],
    }
    assert slurm.adopt_lost_jobs(record) == []
    saved = json.loads((tmp_path / "launch.json").read_text())
    assert saved["launches"][-1]["submission"] == "done"
    assert [task["job_id"] for task in saved["tasks"]] == ["7_0", "7_1"]
