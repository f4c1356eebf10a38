"""`--grid KEY=v1,v2,...`: axes over config keys, crossed into cells, each cell a readable folder
`<run>/<cell>/` holding one experiment folder per dataset."""

import itertools
import re
from dataclasses import dataclass
from typing import Any

from ..core.errors import ConfigError
from . import sam3_config

GRID_EXAMPLE = "--grid trainer.optim.lr=1e-4,5e-5"


@dataclass(frozen=True)
class Axis:
    key: str
    texts: tuple[str, ...]  # as the user wrote them (folder names, tables)
    values: tuple[Any, ...]  # as they go into the config


@dataclass(frozen=True)
class Cell:
    name: str  # the folder under the run, e.g. lr=0.0001,seed=3
    values: dict[str, Any]  # config key -> value
    texts: dict[str, str]  # config key -> the value as written


def parse_axes(specs: list[str], config: dict) -> list[Axis]:
    """Each --grid spec as an axis, its values checked against the type of the key they replace."""
    axes: list[Axis] = []
    for spec in specs:
        key, sep, raw = spec.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--grid {spec!r} is not KEY=v1,v2,...; write e.g. {GRID_EXAMPLE}")
        texts = [text.strip() for text in raw.split(",")]
        if not any(texts):
            raise ConfigError(f"--grid {key}= has no values; give them separated by commas, e.g. {GRID_EXAMPLE}")
        if "" in texts:
            raise ConfigError(f"--grid {key}={raw}: an empty value between commas; remove the extra comma")
        if len(set(texts)) < len(texts):
            raise ConfigError(f"--grid {key}={raw}: a value is given twice; list each value once")
        if any(axis.key == key for axis in axes):
            raise ConfigError(f"--grid {key} is given twice; put all its values in one --grid {key}=v1,v2")
        current = sam3_config.get_key(config, key, flag="--grid")
        axes.append(Axis(key, tuple(texts), tuple(_typed(key, text, current) for text in texts)))
    return axes


def _typed(key: str, text: str, current: Any) -> Any:
    """The value as the config's current value's type takes it; a value that type refuses is an error."""
    value = sam3_config.parse_value(text)
    if current is None or (isinstance(current, str) and "${" in current):
        return value  # an interpolation or an empty key: its type is not known here
    taken, expected = _as_type_of(current, value, text)
    if expected:
        raise ConfigError(
            f"--grid {key}: {text!r} is not {expected} (the config has {key}: {current!r}); fix the value"
        )
    return taken


def _as_type_of(current: Any, value: Any, text: str) -> tuple[Any, str]:
    """(the value as current's type takes it, ""), or (None, what that type expects) when it refuses it."""
    if isinstance(current, bool):
        return (value, "") if isinstance(value, bool) else (None, "true or false")
    if isinstance(current, int):
        whole = isinstance(value, int) and not isinstance(value, bool)
        return (value, "") if whole else (None, "a whole number")
    if isinstance(current, float):
        number = _float(value)
        return (number, "") if number is not None else (None, "a number")
    if isinstance(current, str):
        return text, ""
    if isinstance(current, (list, dict)):
        if isinstance(value, type(current)):
            return value, ""
        return None, "a list, e.g. [1, 2]" if isinstance(current, list) else "a mapping, e.g. {a: 1}"
    return value, ""


def _float(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(str(value))  # YAML reads 1e-4 as a string
    except ValueError:
        return None


def cells(axes: list[Axis]) -> list[Cell]:
    """Every combination of the axes' values, in the order given; [] without a grid."""
    if not axes:
        return []
    leaves = [axis.key.rsplit(".", 1)[-1] for axis in axes]
    labels = [axis.key if leaves.count(leaf) > 1 else leaf for axis, leaf in zip(axes, leaves, strict=True)]
    result = []
    for combination in itertools.product(*(range(len(axis.values)) for axis in axes)):
        parts = [
            f"{label}={_folder_safe(axis.texts[i])}" for label, axis, i in zip(labels, axes, combination, strict=True)
        ]
        result.append(
            Cell(
                ",".join(parts),
                {axis.key: axis.values[i] for axis, i in zip(axes, combination, strict=True)},
                {axis.key: axis.texts[i] for axis, i in zip(axes, combination, strict=True)},
            )
        )
    names = [cell.name for cell in result]
    if len(set(names)) < len(names):
        raise ConfigError(
            "--grid: two cells would share a folder (values differing only in / or spaces); "
            "pick values that differ in letters or digits"
        )
    return result


def _folder_safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]+", "_", text).strip("_") or "_"


def describe(axes: list[Axis]) -> list[dict[str, Any]]:
    """The grid as data, for the run record."""
    return [{"key": axis.key, "values": list(axis.texts)} for axis in axes]
