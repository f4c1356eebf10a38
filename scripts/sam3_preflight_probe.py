"""Runs inside the training env (never in the launcher): compose each rendered config the way
SAM3's train.py does, resolve it with SAM3's resolvers, import every `_target_`, and list every
path the run will open. Prints one JSON object: {config name: {"errors": [...], ...}}.

Usage: SAM3_TASKS_CONFIG_DIR=<run>/configs PYTHONPATH=tasks/lib/run/plugins \
    python scripts/sam3_preflight_probe.py sam3_tasks/a.yaml [...]
"""

import json
import os
import sys

PATH_KEYS = ("ann_file", "img_folder", "gt_path", "bpe_path", "ann_path", "img_path", "checkpoint_path")


def walk(node, prefix=""):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from walk(value, f"{prefix}{key}.")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from walk(value, f"{prefix}{index}.")
    else:
        yield prefix.rstrip("."), node


def probe(name):
    from hydra import compose
    from hydra._internal.utils import _locate
    from omegaconf import OmegaConf

    report = {"errors": [], "targets": 0, "paths": 0}
    try:
        cfg = compose(config_name=name)
        resolved = OmegaConf.to_container(cfg, resolve=True)
    except Exception as error:  # the config itself is broken: say where, in one line
        report["errors"].append(f"does not compose or resolve: {type(error).__name__}: {str(error).splitlines()[0]}")
        return report
    for key, value in walk(resolved):
        leaf = key.rsplit(".", 1)[-1]
        if not key.startswith("trainer."):
            continue  # what the trainer builds and opens; scratch: and dataset catalogues only feed it
        if leaf == "_target_" and isinstance(value, str):
            report["targets"] += 1
            try:
                _locate(value)
            except Exception as error:
                cause = error.__cause__ or error  # hydra wraps the ImportError that says why
                report["errors"].append(
                    f"{key}: {value} does not import ({type(cause).__name__}: {(str(cause).splitlines() or [''])[0]})"
                )
        elif leaf in PATH_KEYS and isinstance(value, str) and value:
            report["paths"] += 1
            if not os.path.exists(value):
                report["errors"].append(f"{key}: {value} does not exist")
    trainer = resolved.get("trainer") or {}
    report["trainer"] = {k: trainer.get(k) for k in ("mode", "max_epochs", "skip_saving_ckpts")}
    report["timeout_hour"] = (resolved.get("submitit") or {}).get("timeout_hour")
    return report


def main():
    from hydra import initialize_config_module
    from sam3.train.utils.train_utils import register_omegaconf_resolvers

    register_omegaconf_resolvers()
    with initialize_config_module("sam3.train", version_base="1.2"):
        print(json.dumps({name: probe(name) for name in sys.argv[1:]}))


if __name__ == "__main__":
    main()
