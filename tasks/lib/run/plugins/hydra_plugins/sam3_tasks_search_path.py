"""Runs in the training venv (never in the launcher): hydra finds this plugin in the `hydra_plugins`
namespace package of the job's PYTHONPATH (tasks/lib/run/plugins) and asks it for config folders.

A run's rendered configs live in its own experiment folder, `<run>/configs/sam3_tasks/`, and the job
gets SAM3_TASKS_CONFIG_DIR=<run>/configs; this appends that folder to hydra's search path, so SAM3's
train.py (`-c sam3_tasks/NAME.yaml`, from initialize_config_module("sam3.train")), the cluster array
tasks (sam3_array.ArrayTask) and the pre-flight probe all compose the run's own file. Appended, it
comes after SAM3's package, which has no sam3_tasks/ folder: none of SAM3's configs can shadow it.
"""

import os

from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.search_path_plugin import SearchPathPlugin

CONFIG_DIR_VAR = "SAM3_TASKS_CONFIG_DIR"  # the launcher's sam3_config.CONFIG_DIR_VAR


class RunConfigs(SearchPathPlugin):
    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        folder = os.environ.get(CONFIG_DIR_VAR)
        if folder:
            search_path.append(provider="sam3-tasks", path=f"file://{folder}")
