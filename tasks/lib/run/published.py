"""SAM3's published figures, kept as data, and which of them a run stands beside.

published_results.csv (beside this file) holds SAM3's own box AP (x100) from the SAM 3 paper,
arXiv:2511.16719: Table 2 (zero-shot and 10-shot, both benchmarks), App. F.3 Tables 36 and 37 (RF100-VL:
the mean over its 100 datasets and per domain, zero-shot / 10-shot / All) and Figure 20 (ODinW13: per
dataset and the mean of 13, zero-shot, 1/3/5/10-shot as mean and std over the three official seeds, All).
Each row names its table in the `source` column. The paper's averages are plain means over datasets (the
"True average" of SAM3's scripts/extract_roboflow_vl100_results.py, not its "Weighted average").
No per-dataset RF100-VL figure is published: RF100-VL compares per domain and overall only.

Which setting a run is: an evaluation config (trainer.mode val) is zero-shot; ODinW's few-shot train files
(fewshot_train_shot10_seed300, ...) are N-shot; a fine-tune on the full train set is "All" (full-ft). The
demo, a --smoke run and SAM3's shipped roboflow_v100_full_ft_100_images (100 sampled images, 20 epochs)
are none of these, and say so.
"""

import csv
import json
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from ..core.errors import ConfigError
from ..data.coco import ODINW_BY_NAME

CSV_PATH = Path(__file__).with_name("published_results.csv")
SETTINGS = ("zero-shot", "1-shot", "3-shot", "5-shot", "10-shot", "full-ft")
SETTING_LABELS = {"zero-shot": "zero-shot", "full-ft": "All (full train set)"}
RF100VL, ODINW13 = "rf100vl", "odinw13"
# rf100vl's own labels -> the keys of SAM3's extract script (= published_results.csv) and the paper's labels
DOMAINS = {
    "Aerial": ("aerial", "Aerial"),
    "Document": ("document", "Document"),
    "Flora/Fauna": ("flora_fauna", "Flora-Fauna"),
    "Industrial": ("industrial", "Industrial"),
    "Lab Imaging": ("medical", "Medical"),
    "Misc": ("other", "Other"),
    "Sport": ("sports", "Sports"),
}
DOMAIN_LABELS = dict(DOMAINS.values())
FEWSHOT = re.compile(r"fewshot_train_shot(\d+)_seed(\d+)$")


@dataclass(frozen=True)
class Setting:
    """What a run is, in the paper's terms: one of SETTINGS, or None with the reason it has no counterpart."""

    name: str | None
    note: str

    @property
    def label(self) -> str:
        return SETTING_LABELS.get(self.name, self.name) if self.name else "no published counterpart"


@lru_cache(maxsize=1)
def table() -> dict[tuple[str, str, str, str], tuple[float, str]]:
    """(benchmark, dataset, setting, metric) -> (value, source)."""
    with open(CSV_PATH, newline="") as handle:
        return {
            (r["benchmark"], r["dataset"], r["setting"], r["metric"]): (float(r["value"]), r["source"])
            for r in csv.DictReader(handle)
        }


def figure(benchmark: str | None, dataset: str, setting: str | None) -> dict[str, Any] | None:
    """SAM3's published AP (x100) for one dataset, domain ('domain:aerial') or mean ('mean'), with its std
    over seeds where published, and its source; None where nothing is published."""
    if not benchmark or not setting:
        return None
    if dataset == "mean":
        dataset = "_mean_100" if benchmark == RF100VL else "_mean_13"
    found = table().get((benchmark, dataset, setting, "bbox_AP"))
    if found is None:
        return None
    std = table().get((benchmark, dataset, setting, "bbox_AP_std_3seeds"))
    return {"AP": found[0], "std": std[0] if std else None, "source": found[1]}


@lru_cache(maxsize=1)
def rf100vl_domains() -> dict[str, str]:
    """Dataset -> domain key, from the installed rf100vl package's own mapping
    (rf100vl/assets/dataset_name_to_category.json; the package is found, not imported)."""
    spec = find_spec("rf100vl")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            "the rf100vl package is not installed, so RF100-VL's domains are unknown: run "
            "scripts/bootstrap (it installs requirements.txt)"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / "assets" / "dataset_name_to_category.json"
    return {name: DOMAINS[label][0] for name, label in json.loads(path.read_text()).items()}


def benchmark_of(datasets: list[str]) -> str | None:
    """rf100vl or odinw13 when every dataset belongs to it, else None."""
    if datasets and all(name in ODINW_BY_NAME for name in datasets):
        return ODINW13
    try:
        domains = rf100vl_domains()
    except ConfigError:
        return None
    return RF100VL if datasets and all(name in domains for name in datasets) else None


def lookup(config: dict, dotted: str, depth: int = 0) -> Any:
    """config['a']['b'] for 'a.b'; a value that is one `${x.y}` interpolation is followed (a config not
    yet resolved by SAM3)."""
    node: Any = config
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    match = re.fullmatch(r"\$\{([\w.]+)\}", node) if isinstance(node, str) else None
    return lookup(config, match.group(1), depth + 1) if match and depth < 5 else node


def setting_of(
    config: dict, request: dict | None = None, demo: bool = False, overrides: dict[str, str] | None = None
) -> Setting:
    """The published setting a run's config stands for (overrides: a grid cell's key -> value)."""
    request, overrides = request or {}, overrides or {}

    def value(key):
        return overrides[key] if key in overrides else lookup(config, key)

    if demo:
        return Setting(
            None,
            "the CPU demo (SAM3's model classes at a reduced size, random weights, generated "
            "data): no published counterpart",
        )
    if request.get("smoke"):
        return Setting(None, "a --smoke run (one epoch on 4 images): no published counterpart")
    if request.get("evaluate") or value("trainer.mode") == "val":
        return Setting("zero-shot", "an evaluation config (trainer.mode val): SAM3's zero-shot figures")
    train_file = value("odinw_train.train_file")
    if train_file is not None:
        match = FEWSHOT.fullmatch(str(train_file))
        if match and f"{match.group(1)}-shot" in SETTINGS:
            return Setting(
                f"{match.group(1)}-shot",
                f"ODinW few-shot train file {train_file}: SAM3's "
                f"{match.group(1)}-shot figures (mean and std over seeds 3, 30, 300)",
            )
        if match:
            return Setting(None, f"{match.group(1)}-shot ({train_file}): SAM3 published 1, 3, 5 and 10-shot only")
        return Setting("full-ft", f"ODinW fine-tune on train file {train_file}: SAM3's 'All' figures")
    if lookup(config, "roboflow_train") is not None:
        images = value("roboflow_train.num_images")
        if images in (None, "null", "None"):
            return Setting("full-ft", "RF100-VL fine-tune on the full train set: SAM3's 'All' figures")
        return Setting(
            None,
            f"RF100-VL fine-tune on {images} sampled train images per dataset (as SAM3's "
            "roboflow_v100_full_ft_100_images): the paper publishes zero-shot, 10-shot (the "
            "benchmark's FSOD splits) and All (the full train set), none of which this is",
        )
    return Setting(None, "no published counterpart known for this config")


def parse_setting(text: str) -> Setting:
    """--setting: one of SETTINGS, or 'none'."""
    if text == "none":
        return Setting(None, "--setting none: no comparison")
    if text not in SETTINGS:
        raise ConfigError(f"--setting {text!r} is not one SAM3 published; pass one of {', '.join(SETTINGS)} or none")
    return Setting(text, f"--setting {text}")
