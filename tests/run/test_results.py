"""run.results on val_stats.json files in SAM3's exact key format, written by hand (several lines, -1 values,
a missing dataset, a cut last line, a dataset named -grccs, a run still running, grids with a seed axis),
beside SAM3's published figures; and the same files read the way SAM3's own extract script reads them.
What SAM3's real Trainer writes is read in tests/run/test_run.py and tests/run/test_run_cluster.py."""

import csv
import io
import json
import math
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import run_inv
from support.canaries import CANARIES, leaked
from support.sam3_configs import config_files
from support.sam3_stats import PREFIX, val_line, write_lines, write_record, write_task

from tasks.lib.core.errors import ConfigError
from tasks.lib.run import published, results, sam3_config, status

AP_KEY = PREFIX + "AP"


def summary_of(target, root=None, forced=None):
    return results.summarize(results.load(str(target), root or Path("/nonexistent"), status.task_state), forced)


# --- one stats file ---------------------------------------------------------------------------------------


def test_the_last_complete_line_is_read_and_a_cut_last_line_is_skipped_and_said(tmp_path):
    lines = [val_line(0.1, 0), val_line(0.2, 1), val_line(0.3, 2)]
    whole = results.read_stats(write_lines(tmp_path / "a.json", lines))
    assert whole.last[AP_KEY] == 0.3 and whole.lines == 3 and not whole.truncated
    cut = results.read_stats(write_lines(tmp_path / "b.json", lines, json.dumps(val_line(0.9, 3))[:120]))
    assert cut.last[AP_KEY] == 0.3 and cut.lines == 3 and cut.truncated
    assert results.read_stats(tmp_path / "none.json") == results.Stats(None, 0, False)
    (tmp_path / "empty.json").write_text("")
    assert results.read_stats(tmp_path / "empty.json") == results.Stats(None, 0, False)


def test_minus_one_values_are_left_out_and_named():
    values, excluded = results.meters(val_line(0.25, AP_large=-1.0, AR_large=-1.0))
    assert values["AP"] == 0.25 and "AP_large" not in values and sorted(excluded) == ["AP_large", "AR_large"]
    assert len(values) == 10  # the other ten of pycocotools' twelve


# --- a hand-written RF100-VL run ------------------------------------------------------------------------------

DONE = {"-grccs": [0.10, 0.20], "actions": [0.30, 0.40, 0.35], "aerial-cows": [0.50], "13-lkc01": [0.05, 0.15]}


@pytest.fixture
def trainer_process():
    """A live process whose command line is a SAM3 training job's (what run.status looks for in /proc)."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", "-m", "sam3.train.train"])
    while b"sam3.train.train" not in Path(f"/proc/{process.pid}/cmdline").read_bytes():
        time.sleep(0.01)  # until the child has exec'd
    yield process.pid
    process.kill()
    process.wait()


@pytest.fixture
def rf_run(tmp_path, trainer_process):
    """An evaluation run of 8 RF100-VL datasets: 4 done (one with a cut last line; their AP_large is -1), one
    whose stats never came, one failed, one still running (a live process), one whose AP is -1."""
    run = tmp_path / "exp" / "ev"
    for dataset, aps in DONE.items():
        write_task(run / dataset, dataset, aps, cut_last=dataset == "-grccs", AP_large=-1.0)
    write_task(run / "bees", "bees", [0.7])  # failed after a validation
    write_task(run / "circuit-voltages", "circuit-voltages", [0.6], max_epochs=4)  # running
    (run / "circuit-voltages" / "config_resolved.yaml").write_text(yaml.safe_dump({"trainer": {"max_epochs": 4}}))
    write_task(run / "wine-labels", "wine-labels", [-1.0])
    tasks = [{"dataset": d} for d in DONE] + [
        {"dataset": "aquarium-combined"},
        {"dataset": "bees", "state": "failed", "exit_code": 1},
        {"dataset": "circuit-voltages", "state": "running", "pid": trainer_process},
        {"dataset": "wine-labels"},
    ]
    return write_record(run, tasks, request={"evaluate": True})


def test_one_row_per_dataset_domains_and_the_mean_over_datasets_beside_sam3s_zero_shot(rf_run):
    summary = summary_of(rf_run)
    assert summary["benchmark"] == "rf100vl"
    (group,) = summary["groups"]
    assert group["setting"] == "zero-shot" and group["published"]["AP"] == 15.2 and group["published"]["over"] == 100
    last = {"-grccs": 0.20, "actions": 0.35, "aerial-cows": 0.50, "13-lkc01": 0.15}  # -grccs: the line before the cut
    assert math.isclose(group["mean"], 100 * sum(last.values()) / 4) and group["counted"] == 4
    rows = {row["dataset"]: row for row in group["datasets"]}
    assert math.isclose(rows["-grccs"]["AP"], 20.0) and rows["-grccs"]["domain"] == "industrial"
    assert rows["aquarium-combined"]["AP"] is None and rows["bees"]["AP"] is None  # never averaged in
    domains = {row["domain"]: row for row in group["domains"]}
    assert math.isclose(domains["industrial"]["AP"], 100 * (0.20 + 0.15) / 2) and domains["industrial"]["counted"] == 2
    assert domains["aerial"]["published"] == 24.0 and domains["medical"]["published"] == 2.6
    assert summary["counts"] == {"done": 5, "unfinished": 1, "failed": 1, "missing": 1}
    assert summary["missing"] == ["aquarium-combined"] and summary["failed"] == ["bees"]
    assert summary["unfinished"] == ["circuit-voltages"] and summary["no_ap"] == ["wine-labels"]
    assert summary["truncated"] == ["-grccs"]
    assert "-grccs:AP_large" in summary["excluded"] and len([e for e in summary["excluded"] if "AP_large" in e]) == 5
    text = "\n".join(results.summary_lines(summary))
    assert "SAM3 published 15.2 for zero-shot" in text and "SAM3's is over all 100, this run has 4" in text
    assert "missing (1, not averaged): aquarium-combined" in text and "truncated last line skipped" in text


def test_the_csv_has_every_coco_figure_sam3_wrote_per_task(rf_run):
    rows = list(csv.DictReader(io.StringIO(results.to_csv(summary_of(rf_run)))))
    assert [r["dataset"] for r in rows][:4] == list(DONE)
    actions = rows[1]
    assert float(actions["AP"]) == 35.0 and actions["APl"] == "" and actions["-1 left out"] == "1"
    assert {"AP50", "AP75", "APs", "APm", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"} <= set(actions)
    assert (
        rows[0]["status"] == "done, truncated last line skipped" and rows[4]["status"] == "missing (no val_stats.json)"
    )
    assert rows[6]["status"] == "unfinished (running)" and float(rows[6]["AP"]) == 60.0  # shown, not averaged


def sam3_extract_averages(experiment_dir: Path) -> tuple[float, float]:
    """SAM3's scripts/extract_roboflow_vl100_results.py (facebookresearch/sam3@99d02f28), its own steps on the
    same files: per domain of ROBOFLOW_CATEGORIES (the same membership as rf100vl's mapping), each dataset's
    logs/<dataset>/val_stats.json, its last row's BBOX_AP_METRIC (a missing file or an unparsable row: the
    dataset is skipped); the domain means; 'Weighted average' (the mean of the domain means) and 'True
    average' (the mean over datasets)."""
    categories: dict[str, list[str]] = {}
    for name, domain in published.rf100vl_domains().items():
        categories.setdefault(domain, []).append(name)
    averages, scores = {}, []
    for domain, names in categories.items():
        found = {}
        for name in names:
            path = experiment_dir / f"logs/{name}/val_stats.json"
            if not path.exists():
                continue
            last_row = None
            try:
                for line in path.read_text().splitlines(keepends=True):
                    last_row = json.loads(line.strip())
            except json.JSONDecodeError:
                continue
            if last_row is not None and last_row.get(AP_KEY) is not None:
                found[name] = last_row[AP_KEY]
        if found:
            averages[domain] = sum(found.values()) / len(found)
            scores.extend(found.values())
    return sum(averages.values()) / len(averages), sum(scores) / len(scores)


def test_our_mean_over_datasets_is_sam3s_true_average_not_its_weighted_average(tmp_path):
    """A folder SAM3's train.py wrote (one experiment_log_dir, logs/<dataset>/ per array task), read by path."""
    folder = tmp_path / "sam3-exp"
    aps = {
        "-grccs": [0.1, 0.3],
        "13-lkc01": [0.2, 0.25, 0.4],
        "2024-frc": [0.6],
        "actions": [0.05, 0.5],
        "aerial-cows": [0.7, 0.72],
        "activity-diagrams": [0.33],
    }
    for dataset, values in aps.items():
        write_task(folder, dataset, values, max_epochs=len(values), AP_small=-1.0)
    listed = [*aps, "aerial-sheep"]  # the config lists one more: its array task never wrote anything
    config = {"trainer": {"mode": "val", "max_epochs": 20}, "all_roboflow_supercategories": listed}
    (folder / "config_resolved.yaml").write_text(yaml.safe_dump(config))
    weighted, true_average = sam3_extract_averages(folder)
    summary = summary_of(folder)
    (group,) = summary["groups"]
    assert math.isclose(group["mean"], 100 * true_average) and not math.isclose(group["mean"], 100 * weighted)
    assert summary["missing"] == ["aerial-sheep"] and group["setting"] == "zero-shot"


def test_a_folder_sam3_wrote_whose_training_stopped_early_is_unfinished(tmp_path):
    folder = tmp_path / "ft"
    write_task(folder, "actions", [0.1, 0.2], max_epochs=20)
    write_task(folder, "-grccs", [0.1, 0.2, 0.3], max_epochs=3)
    config = {"trainer": {"mode": "train", "max_epochs": 3}, "roboflow_train": {"num_images": None}}
    (folder / "config_resolved.yaml").write_text(yaml.safe_dump(config))
    summary = summary_of(folder)
    assert summary["unfinished"] == ["actions"] and summary["groups"][0]["counted"] == 1
    assert summary["groups"][0]["setting"] == "full-ft" and summary["groups"][0]["published"]["AP"] == 61.6
    assert next(t for t in summary["tasks"] if t["dataset"] == "actions")["state"] == "epoch 2 of 3"


# --- grids ----------------------------------------------------------------------------------------------------

ODINW = ("Aquarium", "pothole", "PascalVOC")


def odinw_grid(run: Path, lrs=("0.0001", "0.001"), seeds=("3", "30", "300"), ap=lambda lr, seed, i: 0.0):
    tasks = []
    for lr in lrs:
        for seed in seeds:
            cell = f"lr={lr},seed={seed}"
            values = {"trainer.optim.lr": lr, "odinw_train.train_file": f"fewshot_train_shot10_seed{seed}"}
            for i, dataset in enumerate(ODINW):
                write_task(run / cell / dataset, dataset, [ap(lr, seed, i)])
                tasks.append({"dataset": dataset, "cell": cell, "cell_values": values})
    grid = [
        {"key": "trainer.optim.lr", "values": list(lrs)},
        {"key": "odinw_train.train_file", "values": [f"fewshot_train_shot10_seed{s}" for s in seeds]},
    ]
    return write_record(run, tasks, grid=grid)


def test_a_grid_shows_its_cells_side_by_side_and_averages_its_seed_axis_as_mean_and_std(tmp_path):
    def ap(lr, seed, i):
        return (0.2 if lr == "0.0001" else 0.4) + int(seed) / 10000 + i / 100

    summary = summary_of(odinw_grid(tmp_path / "exp" / "g", ap=ap))
    assert summary["benchmark"] == "odinw13"
    low, high = summary["groups"]
    assert low["label"] == "lr=0.0001,train_file=shot10" and low["seeds"] == ["3", "30", "300"]
    assert low["setting"] == "10-shot" and low["published"]["AP"] == 71.8 and low["published"]["std"] == 0.4
    aquarium = low["datasets"][0]
    per_seed = [100 * (0.2 + s / 10000) for s in (3, 30, 300)]
    mean = sum(per_seed) / 3
    assert math.isclose(aquarium["AP"], mean) and aquarium["n"] == 3
    assert math.isclose(aquarium["std"], math.sqrt(sum((v - mean) ** 2 for v in per_seed) / 3))
    assert (aquarium["published"], aquarium["published_std"]) == (54.1, 0.7)  # SAM3's Aquarium 10-shot
    seed_means = [100 * (0.2 + s / 10000 + 0.01) for s in (3, 30, 300)]  # mean over the 3 datasets, per seed
    assert math.isclose(low["mean"], sum(seed_means) / 3)
    assert math.isclose(high["mean"] - low["mean"], 20.0)
    columns, rows = results.cells_table(summary)
    assert columns == ["dataset", f"{low['label']} (3 seeds)", f"{high['label']} (3 seeds)", "SAM3 published (10-shot)"]
    assert rows[0][0] == "Aquarium" and " ± " in rows[0][1] and rows[0][3] == "54.1 ± 0.7"
    assert rows[-1] == [
        "mean over datasets",
        results.fmt(low["mean"], low["mean_std"]),
        results.fmt(high["mean"], high["mean_std"]),
        "71.8 ± 0.4",
    ]


@pytest.mark.parametrize("with_values", [True, False], ids=["cell_values", "cell name only"])
def test_a_seed_key_is_a_seed_axis_and_other_keys_are_cells(tmp_path, with_values):
    run = tmp_path / "exp" / "s"
    tasks = []
    for seed in ("1", "2"):
        for scale in ("0.1", "1.0"):
            cell = f"seed={seed},lr_scale={scale}"
            write_task(run / cell / "actions", "actions", [0.1 * int(seed) * float(scale)])
            values = {"scratch.seed": seed, "scratch.lr_scale": scale} if with_values else None
            tasks.append({"dataset": "actions", "cell": cell, "cell_values": values})
    write_record(run, tasks)
    groups = summary_of(run)["groups"]
    assert [g["label"] for g in groups] == ["lr_scale=0.1", "lr_scale=1.0"] and groups[0]["seeds"] == ["1", "2"]
    assert math.isclose(groups[1]["mean"], 15.0) and math.isclose(groups[1]["mean_std"], 5.0)


# --- which published figure -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "request_", "expected"),
    [
        ({"trainer": {"mode": "val"}}, {}, "zero-shot"),
        ({"trainer": {"mode": "train"}}, {"evaluate": True}, "zero-shot"),
        ({"trainer": {"mode": "train"}, "odinw_train": {"train_file": "fewshot_train_shot5_seed30"}}, {}, "5-shot"),
        ({"trainer": {"mode": "train"}, "odinw_train": {"train_file": "fewshot_train_shot2_seed3"}}, {}, None),
        ({"trainer": {"mode": "train"}, "odinw_train": {"train_file": "train"}}, {}, "full-ft"),
        ({"trainer": {"mode": "train"}, "roboflow_train": {"num_images": None}}, {}, "full-ft"),
        ({"trainer": {"mode": "train"}, "roboflow_train": {"num_images": 100}}, {}, None),
        ({"trainer": {"mode": "val"}}, {"smoke": True}, None),
    ],
)
def test_the_setting_a_config_stands_for(config, request_, expected):
    setting = published.setting_of(config, request_)
    assert setting.name == expected and setting.note


def test_sam3s_shipped_configs_get_their_settings_and_the_100_image_fine_tune_says_it_has_none():
    files = {path.stem: path for path in config_files("roboflow_v100", "odinw13")}
    if not files:
        pytest.skip("no SAM3 configs (set SAM3_CONFIGS_DIR)")
    assert published.setting_of(sam3_config.load(files["roboflow_v100_eval"])).name == "zero-shot"
    assert published.setting_of(sam3_config.load(files["odinw_text_only"])).name == "zero-shot"
    assert published.setting_of(sam3_config.load(files["odinw_text_only_train"])).name == "10-shot"
    ft = published.setting_of(sam3_config.load(files["roboflow_v100_full_ft_100_images"]))
    assert ft.name is None and "100 sampled train images" in ft.note and ft.label == "no published counterpart"
    demo = published.setting_of(sam3_config.load(sam3_config.DEMO_CONFIG), {}, demo=True)
    assert demo.name is None and "CPU demo" in demo.note


def test_the_published_figures_are_sam3s_with_their_source():
    assert published.figure("rf100vl", "mean", "10-shot")["AP"] == 36.5
    assert published.figure("rf100vl", "domain:sports", "full-ft")["AP"] == 61.5
    assert published.figure("odinw13", "pothole", "3-shot") == {
        "AP": 40.5,
        "std": 0.9,
        "source": published.figure("odinw13", "pothole", "3-shot")["source"],
    }
    assert "arXiv:2511.16719" in published.figure("odinw13", "mean", "zero-shot")["source"]
    assert published.figure("rf100vl", "actions", "zero-shot") is None  # no per-dataset RF100-VL figure exists
    domain_sizes = {}
    for domain in published.rf100vl_domains().values():
        domain_sizes[domain] = domain_sizes.get(domain, 0) + 1
    weighted = sum(published.figure("rf100vl", f"domain:{d}", "zero-shot")["AP"] * n for d, n in domain_sizes.items())
    assert round(weighted / 100, 1) == 15.2  # the paper's Average is over the 100 datasets


# --- compare ----------------------------------------------------------------------------------------------------


def test_compare_gives_deltas_largest_first_and_counts_better_and_worse(tmp_path):
    before = tmp_path / "exp" / "before"
    after = tmp_path / "exp" / "after"
    for run, aps in (
        (before, {"-grccs": 0.1, "actions": 0.5, "aerial-cows": 0.3}),
        (after, {"-grccs": 0.4, "actions": 0.45, "aerial-cows": 0.3, "13-lkc01": 0.2}),
    ):
        for dataset, ap in aps.items():
            write_task(run / dataset, dataset, [ap])
        write_record(run, [{"dataset": d} for d in aps])
    comparison = results.compare(summary_of(after), summary_of(before))
    (group,) = comparison["groups"]
    assert [r["dataset"] for r in group["datasets"]] == ["-grccs", "actions", "aerial-cows", "13-lkc01"]
    assert math.isclose(group["datasets"][0]["delta"], 30.0) and math.isclose(group["datasets"][1]["delta"], -5.0)
    assert (group["improved"], group["worse"], group["unchanged"], group["not_in_both"]) == (1, 1, 1, ["13-lkc01"])
    industrial = next(r for r in group["domains"] if r["domain"] == "industrial")
    assert math.isclose(industrial["delta"], 100 * ((0.4 + 0.2) / 2 - 0.1))
    other_grid = odinw_grid(tmp_path / "exp" / "g")
    with pytest.raises(ConfigError, match="share no grid cell"):
        results.compare(summary_of(after), summary_of(other_grid))


# --- through inv ----------------------------------------------------------------------------------------------


@pytest.fixture
def env(clean_env, rf_run):
    return dict(clean_env, SAM3_EXPERIMENT_ROOT=str(rf_run.parent), **CANARIES)


def test_inv_run_results_prints_the_tables_and_saves_the_plot(env, rf_run):
    done = run_inv(["run.results"], env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ev: box AP x100 per task" in done.stdout and "RF100-VL by domain" in done.stdout
    assert f"plot: {rf_run / 'results.png'}" in done.stdout
    assert (rf_run / "results.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"table: {rf_run / 'results.csv'}" in done.stdout
    saved = list(csv.DictReader(io.StringIO((rf_run / "results.csv").read_text())))
    assert [r["dataset"] for r in saved][:4] == list(DONE) and float(saved[1]["AP"]) == 35.0  # actions' 0.35
    assert not list(rf_run.glob(".results*"))  # written under a temporary name, then renamed
    payload = json.loads(run_inv(["run.results", "--name", "ev", "--json", "--no-plot"], env).stdout)
    assert payload["counts"]["missing"] == 1 and payload["groups"][0]["published"]["AP"] == 15.2
    table = run_inv(["run.results", "--csv", "--no-plot"], env)
    assert table.stdout.startswith("dataset,domain,status,AP,") and len(table.stdout.splitlines()) == 9
    assert leaked([done.stdout, done.stderr, table.stdout], rf_run) == []


def test_inv_run_results_compare_and_a_folder_by_path(env, rf_run, tmp_path):
    other = rf_run.parent / "older"
    for dataset in DONE:
        write_task(other / dataset, dataset, [0.25])
    write_record(other, [{"dataset": d} for d in DONE], request={"evaluate": True})
    done = run_inv(["run.results", "--name", "ev", "--compare", "older", "--no-plot"], env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ev vs older: AP per dataset" in done.stdout and "ev vs older: domain means" in done.stdout
    assert "improved 2, worse 2, unchanged 0" in done.stdout
    by_path = run_inv(["run.results", "--name", str(rf_run / "actions"), "--json", "--no-plot"], env)
    assert json.loads(by_path.stdout)["tasks"][0]["dataset"] == "actions"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--name", "nope"], "no run named 'nope'"),
        (["--name", "/nonexistent/x"], "is not a folder"),
        (["--setting", "7-shot"], "--setting '7-shot' is not one SAM3 published"),
        (["--json", "--csv"], "pass one of them"),
    ],
)
def test_bad_input_is_one_line_exit_2(env, args, message):
    done = run_inv(["run.results", *args], env)
    assert done.returncode == 2 and message in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_run_status_shows_how_far_a_running_task_is(env):
    shown = json.loads(run_inv(["run.status", "--json"], env).stdout)
    progress = dict(zip([t["dataset"] for t in shown["run"]["tasks"]], shown["progress"], strict=True))
    assert progress["circuit-voltages"] == "epoch 1/4 (19%)"  # Trainer/epoch 0, Trainer/where 0.1875
    assert progress["actions"] == "epoch 3"  # done; no config_resolved.yaml to say of how many
    table = run_inv(["run.status"], env).stdout
    assert "progress" in table and "epoch 1/4 (19%)" in table


def test_with_wandb_on_the_table_and_the_plot_go_to_the_runs_group(env, rf_run):
    """W&B offline (tracking.wandb_project set): a W&B run <run>/results in the run's group holds the table and
    the plot (read back from its .wandb file); the key canary is in no output and no file."""
    from test_run_wandb import wandb_records

    environ = dict(env, INVOKE_TRACKING_WANDB_PROJECT="sam3-ft", INVOKE_TRACKING_WANDB_MODE="offline")
    done = run_inv(["run.results"], environ)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "W&B: table and plot logged to ev/results in group ev (offline:" in done.stdout
    (run_file,) = (rf_run / "wandb").glob("offline-run-*/run-*.wandb")
    identity, row = {}, {}
    for record in wandb_records(run_file):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            identity = {"name": record.run.display_name, "group": record.run.run_group, "job_type": record.run.job_type}
        elif kind == "history":
            row.update(
                {item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in record.history.item}
            )
    assert identity == {"name": "ev/results", "group": "ev", "job_type": "results"}
    assert row["results/table/_type"] == "table-file" and row["results/table/nrows"] == 8
    assert row["results/plot/_type"] == "image-file" and row["results/plot/format"] == "png"
    assert math.isclose(row["results/all/mean_AP"], 100 * (0.20 + 0.35 + 0.50 + 0.15) / 4)
    assert leaked([done.stdout, done.stderr], rf_run) == []
    skipped = run_inv(["run.results", "--no-wandb", "--no-plot"], environ)
    assert skipped.returncode == 0 and "W&B" not in skipped.stdout


def test_a_config_without_datasets_is_one_task_named_after_its_run(tmp_path):
    """A config with no dataset list (the record's dataset is null): SAM3 writes logs/val_stats.json."""
    run = tmp_path / "exp" / "single"
    write_record(run, [{"dataset": "single"}])
    record = json.loads((run / "launch.json").read_text())
    record["tasks"][0].update(dataset=None, experiment_dir=str(run))
    (run / "launch.json").write_text(json.dumps(record))
    write_lines(run / "logs" / "val_stats.json", [val_line(0.4), val_line(0.5, 1)])
    summary = summary_of(run)
    assert summary["benchmark"] is None and summary["tasks"][0]["dataset"] == "single"
    assert math.isclose(summary["groups"][0]["mean"], 50.0) and summary["groups"][0]["published"] is None


def test_setting_names_the_published_figures_when_the_config_cannot(rf_run):
    """An RF100-VL 10-shot run (the benchmark's FSOD splits) looks like any fine-tune to its config."""
    (group,) = summary_of(rf_run, forced=published.parse_setting("10-shot"))["groups"]
    assert group["setting"] == "10-shot" and group["published"]["AP"] == 36.5
    assert {d["domain"]: d["published"] for d in group["domains"]}["industrial"] == 40.4
    (none,) = summary_of(rf_run, forced=published.parse_setting("none"))["groups"]
    assert none["published"] is None and none["mean"] == group["mean"]
