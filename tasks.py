"""SAM3 fine-tuning and evaluation, from a bare machine to a table of results.

This file is the root of the task collection; the task modules live in the tasks/ folder.
`__path__` makes `tasks.hw` resolve into that folder, so `inv` (which loads this file as the
module `tasks`) and `pytest` (which imports it, since tasks/ has no __init__.py) share one module.
"""

import os

__path__ = [os.path.join(os.path.dirname(os.path.abspath(__file__)), "tasks")]

from invoke import Collection  # noqa: E402

from tasks import config, data, dev, env, env_tracking, hw, remote, run  # noqa: E402

env_ns = Collection.from_module(env)
for tracking_task in (env_tracking.weights, env_tracking.wandb, env_tracking.dvc):
    env_ns.add_task(tracking_task)
ns = Collection(config, data, dev, env_ns, hw, remote, run)
