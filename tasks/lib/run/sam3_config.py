"""SAM3 training configs: find one by any name, fill its placeholders, apply --set overrides,
pick datasets by name, and name the result so that SAM3's train.py finds it.

SAM3's train.py composes `-c NAME` with hydra from the `sam3.train` package and takes no overrides.
A rendered config belongs to its run: `<run>/configs/sam3_tasks/<name>.yaml`, passed as
`-c sam3_tasks/<name>.yaml`. The job gets SAM3_TASKS_CONFIG_DIR=<run>/configs, which the hydra plugin
in tasks/lib/run/plugins/hydra_plugins appends to hydra's search path; SAM3's package has no
sam3_tasks/ folder, so none of its configs can shadow a run's. The user's own file is never modified.
"""

import difflib
import os
import re
from pathlib import Path
from typing import Any

from ..core.errors import ConfigError
from ..core.paths import PROJECT_ROOT

PLACEHOLDER = re.compile(r"<[^<>${}]+>")
HEADER = "# @package _global_\n"
CONFIG_DIR_VAR = "SAM3_TASKS_CONFIG_DIR"  # read by plugins/hydra_plugins/sam3_tasks_search_path.py
CONFIG_PREFIX = "sam3_tasks"  # a folder name no SAM3 package holds
LEGACY_GENERATED = "generated"  # where older versions rendered configs: configs/generated/ in SAM3's package
DEMO_CONFIG = PROJECT_ROOT / "demo" / "demo_rf100vl_cpu.yaml"
# Where each kind of config keeps its dataset list, and how an entry names its dataset.
DATASET_LISTS = {"all_roboflow_supercategories": None, "all_odinw_supercategories": "name"}


def config_roots(sam3_checkout: Path, environ=os.environ) -> list[Path]:
    """Folders holding SAM3's configs: the submodule's, then $SAM3_CONFIGS_DIR."""
    roots = [sam3_checkout / "sam3" / "train" / "configs"]
    if environ.get("SAM3_CONFIGS_DIR"):
        roots.append(Path(environ["SAM3_CONFIGS_DIR"]))
    return [root for root in roots if root.is_dir()]


def _known(roots: list[Path]) -> dict[str, Path]:
    """Every config by its SAM3 name ('configs/x/y.yaml'), its short name ('y') and 'x/y.yaml'."""
    names: dict[str, Path] = {}
    for root in roots:
        for path in sorted(root.rglob("*.yaml")):
            relative = path.relative_to(root).as_posix()
            if relative.startswith(LEGACY_GENERATED + "/"):  # an older version's rendered configs
                continue
            for name in (f"configs/{relative}", relative, path.stem):
                names.setdefault(name, path)
    return names


def find_config(name: str, roots: list[Path]) -> Path:
    """A config by SAM3 name, short name, or a path to the user's own YAML anywhere."""
    candidate = Path(os.path.expanduser(name))
    if candidate.is_file():
        return candidate.resolve()
    known = _known(roots)
    for key in (name, name.removesuffix(".yaml"), f"{name}.yaml"):
        if key in known:
            return known[key]
    close = difflib.get_close_matches(name, list(known), n=3, cutoff=0.5)
    if not roots:
        where = "no SAM3 configs found: check out the sam3 submodule (inv env.submodules) or set SAM3_CONFIGS_DIR"
    elif close:
        where = "close matches: " + ", ".join(close)
    else:
        where = f"see {roots[0]}"
    raise ConfigError(f"config {name!r} not found ({where}); give a SAM3 config name or a path to a YAML file")


def load(path: Path) -> dict[str, Any]:
    """The config as data; malformed YAML is one line with the position."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or "invalid YAML"
        raise ConfigError(f"{path}: {problem}{where}; fix the YAML") from None
    except OSError as error:
        raise ConfigError(f"{path}: cannot read it ({error.strerror}); check the path") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a SAM3 config must be a mapping of keys; this is not one")
    return data


def walk(data: Any, prefix: str = ""):
    if isinstance(data, dict):
        for key, value in data.items():
            yield from walk(value, f"{prefix}{key}.")
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from walk(value, f"{prefix}{index}.")
    else:
        yield prefix.rstrip("."), data


def placeholders(data: dict) -> list[tuple[str, str]]:
    """(dotted key, placeholder) for every `<...>` still in the config."""
    return [(key, match) for key, value in walk(data) if isinstance(value, str) for match in PLACEHOLDER.findall(value)]


def fill(data: Any, values: dict[str, str]) -> Any:
    """Replace placeholders inside strings (embedded ones too); other values stay as they are."""
    if isinstance(data, dict):
        return {key: fill(value, values) for key, value in data.items()}
    if isinstance(data, list):
        return [fill(value, values) for value in data]
    if isinstance(data, str):
        return PLACEHOLDER.sub(lambda m: values.get(m.group(0), m.group(0)), data)
    return data


def parse_value(text: str) -> Any:
    """A value as written on the command line, typed as YAML reads it."""
    import yaml

    try:
        return yaml.safe_load(text) if text.strip() else ""
    except yaml.YAMLError:
        return text


def _step(node: Any, part: str, parts: list[str], depth: int, create: bool, flag: str) -> Any:
    """The index of `part` in node; an unknown key is one line with the likely spelling."""
    if isinstance(node, list) and part.isdigit() and int(part) < len(node):
        return int(part)
    if isinstance(node, dict) and (part in node or create):
        return part
    dotted = ".".join(parts)
    here = ".".join(parts[:depth]) or "the top level"
    options = list(node) if isinstance(node, dict) else []
    close = difflib.get_close_matches(part, options, n=1)
    hint = f"did you mean '{'.'.join([*parts[:depth], close[0]])}'?" if close else f"no '{part}' under {here}"
    fix = (
        f"fix it, or write --set +{dotted}=... to add it"
        if flag == "--set"
        else "fix it; --grid takes keys the config has"
    )
    raise ConfigError(f"{flag} {dotted}: unknown key ({hint}); {fix}")


def get_key(data: dict, dotted: str, flag: str = "--set") -> Any:
    """The value at a dotted key that must exist."""
    parts = dotted.split(".")
    node: Any = data
    for depth, part in enumerate(parts):
        node = node[_step(node, part, parts, depth, False, flag)]
    return node


def set_key(data: dict, dotted: str, value: Any, create: bool = False) -> None:
    """Set a dotted key; without create, the key must exist (so a typo cannot pass silently)."""
    parts = dotted.split(".")
    node: Any = data
    for depth, part in enumerate(parts):
        index = _step(node, part, parts, depth, create, "--set")
        if depth == len(parts) - 1:
            node[index] = value
        else:
            if create and isinstance(node, dict) and index not in node:
                node[index] = {}
            node = node[index]


def apply_sets(data: dict, sets: list[str]) -> dict:
    """Apply `key=value` overrides (YAML-typed values); `+key=value` adds a key that is not there."""
    for item in sets:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip("+ "):
            raise ConfigError(f"--set {item!r} is not key=value; write e.g. --set scratch.train_batch_size=2")
        set_key(data, key.strip().lstrip("+"), parse_value(raw), create=key.startswith("+"))
    return data


def dataset_list(data: dict) -> tuple[str, list[str]] | None:
    """(key, names) of the config's dataset list, for RF100-VL and ODinW configs; None otherwise."""
    for key, field in DATASET_LISTS.items():
        entries = data.get(key)
        if isinstance(entries, list) and entries:
            return key, [str(entry[field] if field else entry) for entry in entries]
    return None


def select_datasets(available: list[str], spec: str | None) -> list[str]:
    """Datasets by name, never by index: 'all', 'a,b,c' or '@file' (one name a line)."""
    if spec in (None, "", "all"):
        return list(available)
    if spec.startswith("@"):
        path = Path(spec[1:]).expanduser()
        if not path.is_file():
            raise ConfigError(f"--datasets {spec}: {path} does not exist; give a file with one dataset name a line")
        names = [line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]
    else:
        names = [name.strip() for name in spec.split(",") if name.strip()]
    unknown = [name for name in names if name not in available]
    if unknown:
        close = difflib.get_close_matches(unknown[0], available, n=3)
        hint = f"close matches: {', '.join(close)}" if close else "see the config's dataset list"
        raise ConfigError(f"--datasets: no dataset named {unknown[0]!r} in this config ({hint})")
    if not names:
        raise ConfigError(f"--datasets {spec!r} names no dataset; give names separated by commas, or 'all'")
    return list(dict.fromkeys(names))


def to_text(data: dict, source: Path) -> str:
    """YAML that SAM3's train.py composes, with the header Hydra needs and where it came from."""
    import yaml

    body = yaml.safe_dump(data, sort_keys=False, default_flow_style=False, allow_unicode=True, width=120)
    return f"{HEADER}# Rendered by `inv run.train` from {source}; edit the source and re-run, not this file.\n{body}"


def diff(source: dict, rendered: dict, source_name: str, rendered_name: str) -> str:
    """A unified diff of the two configs as data (comments and key order of the source ignored)."""
    import yaml

    def lines(data):
        return yaml.safe_dump(data, sort_keys=False, default_flow_style=False, width=120).splitlines(keepends=True)

    return "".join(difflib.unified_diff(lines(source), lines(rendered), source_name, rendered_name))
