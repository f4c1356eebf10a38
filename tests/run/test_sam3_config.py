"""Finding, rendering and overriding SAM3 configs (tasks/lib/run/sam3_config.py), and contract tests on
SAM3's real configs (the sam3 submodule, or $SAM3_CONFIGS_DIR, which .ci/run sets)."""

from pathlib import Path

import pytest
from support.sam3_configs import require_configs

from tasks.lib.core.errors import ConfigError
from tasks.lib.run import sam3_config as C

ROOT = Path(__file__).resolve().parents[2]
REAL = C.config_roots(ROOT / "sam3")


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def roots(tmp_path):
    write(tmp_path / "configs" / "roboflow_v100" / "roboflow_v100_full_ft_100_images.yaml", "a: 1\n")
    write(tmp_path / "configs" / "odinw13" / "odinw_text_only_train.yaml", "b: 2\n")
    write(tmp_path / "configs" / "generated" / "old-run.yaml", "c: 3\n")
    return [tmp_path / "configs"]


@pytest.mark.parametrize(
    "name",
    [
        "configs/roboflow_v100/roboflow_v100_full_ft_100_images.yaml",
        "roboflow_v100/roboflow_v100_full_ft_100_images",
        "roboflow_v100_full_ft_100_images",
        "roboflow_v100_full_ft_100_images.yaml",
    ],
)
def test_a_config_is_found_by_any_of_its_names(roots, name):
    assert C.find_config(name, roots).name == "roboflow_v100_full_ft_100_images.yaml"


def test_a_users_own_yaml_anywhere_with_spaces_and_metacharacters(tmp_path, roots):
    own = write(tmp_path / "my configs" / "ft $(touch pwned); x.yaml", "a: 1\n")
    assert C.find_config(str(own), roots) == own
    assert not (Path.cwd() / "pwned").exists()


def test_not_found_lists_close_matches_and_never_offers_generated_files(roots):
    with pytest.raises(ConfigError) as error:
        C.find_config("roboflow_v100_full_ft_100_image", roots)
    assert "close matches: roboflow_v100_full_ft_100_images" in str(error.value)
    with pytest.raises(ConfigError):
        C.find_config("old-run", roots)


def test_malformed_yaml_is_one_line_with_the_position(tmp_path):
    bad = write(tmp_path / "bad.yaml", "trainer:\n  max_epochs: [1, 2\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: .* at line \d+, column \d+; fix the YAML"):
        C.load(bad)


def test_fill_replaces_placeholders_even_embedded_and_reports_the_rest():
    data = {"paths": {"root": "<YOUR_DATASET_DIR>", "json": "<YOUR_GT_PATH>/saco_val.json", "n": 3}}
    filled = C.fill(data, {"<YOUR_DATASET_DIR>": "/data"})
    assert filled["paths"]["root"] == "/data" and filled["paths"]["n"] == 3
    assert C.placeholders(filled) == [("paths.json", "<YOUR_GT_PATH>")]
    assert C.placeholders(data)[0] == ("paths.root", "<YOUR_DATASET_DIR>")


def test_set_overrides_are_typed_and_strict():
    data = {"scratch": {"train_batch_size": 1, "resolution": 1008}, "trainer": {"skip_saving_ckpts": True}}
    C.apply_sets(data, ["scratch.train_batch_size=4", "trainer.skip_saving_ckpts=false", "+trainer.extra.x=a b"])
    assert data["scratch"]["train_batch_size"] == 4 and data["trainer"]["skip_saving_ckpts"] is False
    assert data["trainer"]["extra"] == {"x": "a b"}
    with pytest.raises(ConfigError, match=r"unknown key \(did you mean 'scratch.resolution'\?\)"):
        C.apply_sets(data, ["scratch.resolutoin=512"])
    with pytest.raises(ConfigError, match="is not key=value"):
        C.apply_sets(data, ["scratch.resolution"])


def test_datasets_are_picked_by_name_never_by_index(tmp_path):
    available = ["13-lkc01", "-grccs", "actions", "train"]
    assert C.select_datasets(available, "all") == available
    assert C.select_datasets(available, "actions,-grccs") == ["actions", "-grccs"]
    listing = write(tmp_path / "names.txt", "# mine\ntrain\n13-lkc01\n")
    assert C.select_datasets(available, f"@{listing}") == ["train", "13-lkc01"]
    with pytest.raises(ConfigError, match="no dataset named 'acions' in this config \\(close matches: actions"):
        C.select_datasets(available, "acions")


def test_rendered_text_keeps_the_hydra_header_and_says_where_it_came_from(tmp_path):
    text = C.to_text({"a": "${b}"}, tmp_path / "src.yaml")
    assert text.startswith("# @package _global_\n") and "src.yaml" in text and "a: ${b}" in text


def test_every_real_rf100vl_and_odinw_config_fills_completely():
    require_configs()
    values = {
        "<YOUR_DATASET_DIR>": "/d",
        "<YOUR_DATA_DIR>": "/o",
        "<YOUR EXPERIMENET LOG_DIR>": "/e",
        "<BPE_PATH>": "/b",
    }
    names = [p for p in C._known(REAL).values() if p.parent.name in ("roboflow_v100", "odinw13")]
    assert len(set(names)) == 7
    for path in set(names):
        data = C.load(path)
        assert C.placeholders(data), path  # the shipped configs do need filling
        assert C.placeholders(C.fill(data, values)) == [], path
        kind, datasets = C.dataset_list(data)
        assert len(datasets) == (100 if kind == "all_roboflow_supercategories" else 13), path


def test_config_roots_follow_the_environment(tmp_path):
    (tmp_path / "cfgs").mkdir()
    assert C.config_roots(tmp_path / "no-submodule", {"SAM3_CONFIGS_DIR": str(tmp_path / "cfgs")}) == [
        tmp_path / "cfgs"
    ]
    assert C.config_roots(tmp_path / "no-submodule", {}) == []
