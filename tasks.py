"""SAM3 fine-tuning and evaluation, from a bare machine to a table of results.

This file is the root of the task collection; the task modules live in the tasks/ folder.
`__path__` makes `tasks.hw` resolve into that folder, so `inv` (which loads this file as the
module `tasks`) and `pytest` (which imports it, since tasks/ has no __init__.py) share one module.
"""

import os

__path__ = [os.path.join(os.path.dirname(os.path.abspath(__file__)), "tasks")]

from invoke import Collection  # noqa: E402

from tasks import config, data, dev, env, hw, remote, run  # noqa: E402

ns = Collection(config, data, dev, env, hw, remote, run)
