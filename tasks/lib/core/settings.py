"""The project's configuration: schema, layered resolution with provenance, validation.

Layers, lowest first (later wins):
  1. the project's invoke.yaml (the defaults)
  2. /etc/invoke.yaml, then ~/.invoke.yaml (per machine, per user)
  3. documented environment names (ROBOFLOW_VL_100_ROOT, ODINW_DATA_ROOT, SAM3_EXPERIMENT_ROOT, HF_HOME)
  4. INVOKE_<SECTION>_<KEY> environment variables (e.g. INVOKE_SLURM_PARTITION)
  5. a runtime file given with `inv -f FILE`
  6. task flags

invoke itself ranks the project file above the user's; we resolve our keys in the order
above so that a user's ~/.invoke.yaml can override the project defaults.
"""

import difflib
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import secrets
from .errors import ConfigError
from .paths import PROJECT_ROOT, nearest_existing, resolve_path

# Top-level keys that belong to invoke or fabric, not to us: passed through untouched.
FOREIGN_SECTIONS = frozenset(
    {
        "run",
        "runners",
        "sudo",
        "tasks",
        "timeouts",  # invoke
        "connect_kwargs",
        "forward_agent",
        "gateway",
        "inline_ssh_env",
        "load_ssh_configs",
        "port",
        "ssh_config_path",
        "user",
        "authentication",  # fabric
    }
)


@dataclass(frozen=True)
class Key:
    """One configuration key: its dotted name, kind, meaning and documented env name."""

    name: str
    kind: str  # "path", "str", "int", "float", "choice" or "names" (a list of environment variable names)
    help: str
    env: str | None = None
    choices: tuple[str, ...] = ()
    minimum: float | None = None


SCHEMA: tuple[Key, ...] = (
    Key("sam3.checkout", "path", "The sam3 submodule (facebookresearch/sam3)."),
    Key("sam3.train_venv", "path", "Virtual environment holding torch and sam3 for training."),
    Key("sam3.torch_version", "str", "torch release env.torch installs, e.g. 2.9.1 ('' for the newest)."),
    Key(
        "sam3.torch_index",
        "str",
        "Wheel index for torch: URL, cpu, cu126, cu128, cu130 or pypi ('' follows the driver).",
    ),
    Key(
        "paths.roboflow_vl_100_root",
        "path",
        "Roboflow 100-VL root (one folder per dataset).",
        env="ROBOFLOW_VL_100_ROOT",
    ),
    Key("paths.odinw_data_root", "path", "ODinW root (AerialMaritimeDrone/large/train, ...).", env="ODINW_DATA_ROOT"),
    Key("paths.experiment_root", "path", "Where experiment folders are created.", env="SAM3_EXPERIMENT_ROOT"),
    Key("paths.demo_data_root", "path", "Generated tiny RF100-VL data for the demo run (inv run.train)."),
    Key("paths.hf_home", "path", "Hugging Face home; weights go to its hub/ cache.", env="HF_HOME"),
    Key("slurm.partition", "str", "SLURM partition ('' lets SLURM choose its default)."),
    Key("slurm.account", "str", "SLURM account ('' for none)."),
    Key("slurm.qos", "str", "SLURM quality of service ('' for none)."),
    Key("slurm.num_gpus", "int", "GPUs per node for cluster jobs.", minimum=1),
    Key("slurm.num_nodes", "int", "Nodes per cluster job.", minimum=1),
    Key("hw.run_kind", "choice", "Kind of run the VRAM need is judged for.", choices=("box", "segmentation", "eval")),
    Key("hw.vram_box_gb", "float", "Free VRAM a box-only fine-tune needs per GPU (GiB).", minimum=0),
    Key("hw.vram_segmentation_gb", "float", "Free VRAM a fine-tune with masks needs per GPU (GiB).", minimum=0),
    Key("hw.vram_eval_gb", "float", "Free VRAM an evaluation needs per GPU (GiB).", minimum=0),
    Key("hw.disk_rf100vl_gb", "float", "Disk for Roboflow 100-VL, zip and extracted (GB).", minimum=0),
    Key("hw.disk_odinw_gb", "float", "Disk for ODinW (GB).", minimum=0),
    Key("hw.disk_weights_gb", "float", "Disk for the SAM3 checkpoint in the HF cache (GB).", minimum=0),
    Key("hw.disk_checkpoints_gb", "float", "Disk for one experiment's checkpoints (GB).", minimum=0),
    Key("hw.disk_train_venv_gb", "float", "Disk for the training venv (torch, sam3) (GB).", minimum=0),
    Key("hw.disk_margin", "float", "Warn when free space is within this fraction of the need.", minimum=0),
    Key("tracking.wandb_project", "str", "W&B project SAM3 runs log to ('' turns W&B logging off)."),
    Key("tracking.wandb_entity", "str", "W&B entity, a team or user ('' uses the API key's default entity)."),
    Key(
        "tracking.wandb_mode",
        "choice",
        "online (needs WANDB_API_KEY) or offline (runs log locally; upload later with wandb sync).",
        choices=("online", "offline"),
    ),
    Key("tracking.dvc_remote_url", "str", "DVC remote: s3://, gs://, azure://, ssh:// URL or a folder ('' for none)."),
    Key("tracking.dvc_remote_name", "str", "Name env.dvc gives the DVC remote."),
    Key("tracking.dvc_endpoint_url", "str", "Endpoint of an S3-compatible store (MinIO, Ceph, ...); '' for AWS S3."),
    Key(
        "jobs.env_allow",
        "names",
        "Environment variables jobs get beyond the built-in list: names or NAME_* prefixes (secrets stay out).",
    ),
    Key("remote.host", "str", "Login node for remote.run: an ~/.ssh/config alias or user@host[:port] ('' for none)."),
    Key("remote.project_dir", "str", "This project's checkout on the login node, with its .venv (~ is home there)."),
    Key(
        "remote.sync",
        "choice",
        "inv -H: report a login node checkout at another commit, or sync it to this commit (as --sync does).",
        choices=("report", "sync"),
    ),
)

KEYS: dict[str, Key] = {key.name: key for key in SCHEMA}
OUR_SECTIONS = frozenset(name.split(".")[0] for name in KEYS)


@dataclass(frozen=True)
class Layer:
    """One source of values: a label for provenance and the nested mapping it gave."""

    label: str
    data: Mapping[str, Any]
    strict_sections: bool = False  # unknown top-level sections are errors (the project file)
    above_environment: bool = False  # a runtime file (inv -f) overrides environment variables


@dataclass
class Settings:
    """Resolved values with the source each came from."""

    values: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Any:
        return self.values[name]

    def path(self, name: str) -> Path:
        return self.values[name]


def env_name(key: str) -> str:
    """INVOKE_<SECTION>_<KEY>, as invoke spells it."""
    return "INVOKE_" + key.replace(".", "_").upper()


def _flatten(data: Mapping[str, Any], prefix: str = "") -> Iterable[tuple[str, Any]]:
    for name, value in data.items():
        dotted = f"{prefix}{name}"
        if isinstance(value, Mapping):
            yield from _flatten(value, dotted + ".")
        else:
            yield dotted, value


def _unknown_key_error(dotted: str, label: str) -> ConfigError:
    close = difflib.get_close_matches(dotted, list(KEYS), n=1)
    hint = f"did you mean '{close[0]}'?" if close else f"known sections: {', '.join(sorted(OUR_SECTIONS))}"
    return ConfigError(f"{label}: unknown key '{dotted}' ({hint}); fix the spelling or remove it")


def _layer_values(layer: Layer) -> Iterable[tuple[str, Any]]:
    for section, content in layer.data.items():
        if section in FOREIGN_SECTIONS:
            continue
        if section not in OUR_SECTIONS:
            if layer.strict_sections:
                raise _unknown_key_error(str(section), layer.label)
            continue  # a user-wide file may hold other projects' sections
        if not isinstance(content, Mapping):
            raise ConfigError(f"{layer.label}: '{section}' must be a mapping of keys; see invoke.yaml")
        for dotted, value in _flatten(content, f"{section}."):
            if dotted not in KEYS:
                raise _unknown_key_error(dotted, layer.label)
            yield dotted, value


def coerce(key: Key, raw: Any, source: str) -> Any:
    """Turn a raw value (YAML scalar, env string or flag) into the key's type, or fail in one line."""
    where = f"{key.name} = {raw!r} (from {source})"
    if key.kind == "path":
        if raw is None or str(raw).strip() == "":
            raise ConfigError(f"{where} is empty; set it to a folder path")
        return resolve_path(str(raw))
    if key.kind == "str":
        return "" if raw is None else str(raw)
    if key.kind == "names":
        return _names(where, raw)
    if key.kind == "choice":
        if str(raw) not in key.choices:
            raise ConfigError(f"{where} is not one of {', '.join(key.choices)}; pick one of those")
        return str(raw)
    return _number(key, raw, where)


def _number(key: Key, raw: Any, where: str) -> int | float:
    """An int or float key's value: a whole number for int (no bools), at or above the key's minimum."""
    try:
        if isinstance(raw, bool):
            raise ValueError
        number = int(raw) if key.kind == "int" else float(raw)
        if key.kind == "int" and isinstance(raw, float) and raw != int(raw):
            raise ValueError
    except (TypeError, ValueError):
        kind = "a whole number" if key.kind == "int" else "a number"
        raise ConfigError(f"{where} is not {kind}; set it to {kind}") from None
    if key.minimum is not None and number < key.minimum:
        raise ConfigError(f"{where} is below {key.minimum:g}; set it to {key.minimum:g} or more")
    return number


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\*?")


def _names(where: str, raw: Any) -> list[str]:
    """Environment variable names or NAME_* prefixes: a YAML list, or one string split at commas and spaces
    (INVOKE_JOBS_ENV_ALLOW="MYLAB_ROOT,MYLAB_*"). A name that looks secret is refused: it never reaches a job."""
    items = re.split(r"[,\s]+", raw.strip()) if isinstance(raw, str) else raw
    if not isinstance(items, list | tuple | None) or not all(isinstance(item, str) for item in items or ()):
        raise ConfigError(f"{where} is not a list of names; write e.g. [MYLAB_ROOT, MYLAB_*]")
    names = [item for item in items or () if item]
    for name in names:
        if not _NAME.fullmatch(name):
            raise ConfigError(f"{where}: {name!r} is not a variable name or a NAME_* prefix; write e.g. MYLAB_*")
        if secrets.name_looks_secret(name.rstrip("*")):
            raise ConfigError(
                f"{where}: {name} names a secret, and no secret reaches a job (SAM3's Trainer logs "
                "its environment); remove it (online W&B gets its key through a file)"
            )
    return names


def check_location(name: str, path: Path, source: str) -> None:
    """A configured folder must be a directory, or creatable in a writable existing parent."""
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{name} = {path} (from {source}) is a file, not a folder; point it at a folder")
    anchor = nearest_existing(path)
    if not anchor.is_dir():
        raise ConfigError(f"{name} = {path} (from {source}): {anchor} is not a folder; fix the path")
    if not os.access(anchor, os.W_OK | os.X_OK):
        raise ConfigError(f"{name} = {path} (from {source}): {anchor} is not writable; choose a writable location")


@dataclass(frozen=True)
class Flag:
    """A task flag's value for a setting, and the flag as the user types it (for messages)."""

    name: str
    value: Any


def resolve(layers: Iterable[Layer], environ: Mapping[str, str], flags: Mapping[str, Flag] | None = None) -> Settings:
    """Merge layers, then env names, INVOKE_* variables and flags; validate every value."""
    layers = list(layers)
    raw: dict[str, tuple[Any, str]] = {}  # key -> (raw value, where it came from); later sources win
    raw.update(_from_layers(layer for layer in layers if not layer.above_environment))
    raw.update(_from_environment(environ))
    raw.update(_from_layers(layer for layer in layers if layer.above_environment))
    raw.update(_from_flags(flags or {}))
    return _validated(raw)


def _from_layers(layers: Iterable[Layer]) -> dict[str, tuple[Any, str]]:
    raw = {}
    for layer in layers:
        for dotted, value in _layer_values(layer):
            raw[dotted] = (value, layer.label)
    return raw


def _from_environment(environ: Mapping[str, str]) -> dict[str, tuple[Any, str]]:
    """A key's own variable (HF_HOME, ...) when set and not empty, then its INVOKE_* variable."""
    raw = {}
    for key in SCHEMA:
        if key.env and environ.get(key.env):
            raw[key.name] = (environ[key.env], f"env {key.env}")
        if env_name(key.name) in environ:
            raw[key.name] = (environ[env_name(key.name)], f"env {env_name(key.name)}")
    return raw


def _from_flags(flags: Mapping[str, Flag]) -> dict[str, tuple[Any, str]]:
    raw = {}
    for dotted, given in flags.items():
        if dotted not in KEYS:
            raise _unknown_key_error(dotted, "flag")
        if given.value is not None:
            raw[dotted] = (given.value, f"flag {given.name}")
    return raw


def _validated(raw: Mapping[str, tuple[Any, str]]) -> Settings:
    """Every key has a value of its type; configured folders are usable."""
    settings = Settings()
    for key in SCHEMA:
        if key.name not in raw:
            raise ConfigError(f"{key.name} has no value; add it to invoke.yaml (see README, Configuration)")
        value, source = raw[key.name]
        settings.values[key.name] = coerce(key, value, source)
        settings.sources[key.name] = source
        if key.kind == "path":
            check_location(key.name, settings.values[key.name], source)
    return settings


def layers_from_invoke(config: Any) -> list[Layer]:
    """The file layers invoke loaded, in our order (project defaults below user files)."""
    layers = [Layer(_label(config._project_path, "invoke.yaml"), config._project or {}, strict_sections=True)]
    layers.append(Layer(_label(config._system_path, "/etc/invoke.yaml"), config._system or {}))
    layers.append(Layer(_label(config._user_path, "~/.invoke.yaml"), config._user or {}))
    if config._runtime_path:
        layers.append(Layer(f"-f {config._runtime_path}", config._runtime or {}, True, above_environment=True))
    return layers


def _label(path: str | None, fallback: str) -> str:
    """A short name for a config file: relative to the project, ~ for home, else absolute."""
    if not path:
        return fallback
    resolved = Path(path).resolve()
    if resolved.is_relative_to(PROJECT_ROOT):
        return str(resolved.relative_to(PROJECT_ROOT))
    home = Path.home().resolve()
    return f"~/{resolved.relative_to(home)}" if resolved.is_relative_to(home) else str(resolved)


def from_invoke(config: Any, flags: Mapping[str, Flag] | None = None) -> Settings:
    """Settings for a task: invoke's loaded files, this process's environment, the task's flags."""
    return resolve(layers_from_invoke(config), os.environ, flags)
