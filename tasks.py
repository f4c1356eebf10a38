"""SAM3 fine-tuning and evaluation, from a bare machine to a table of results.

This file is the root of the task collection; the task modules live in the tasks/ folder.
`__path__` makes `tasks.hw` resolve into that folder, so `inv` (which loads this file as the
module `tasks`) and `pytest` (which imports it, since tasks/ has no __init__.py) share one module.
"""

import os
import sys

__path__ = [os.path.join(os.path.dirname(os.path.abspath(__file__)), "tasks")]


def _hosts_flag(argv):
    for token in argv[1:]:
        if token == "--":
            return None
        if token in ("-H", "--hosts") or token.startswith(("--hosts=", "-H")):
            return token
    return None


# `inv -H` fails closed: invoke's own script (put back by a reinstall of invoke) has no -H and would refuse it
# in words that do not say the fix; its module invoke.main is loaded only then (ours never imports it).
if "invoke.main" in sys.modules and _hosts_flag(sys.argv):
    print(
        f"error: this inv is invoke's own script, which has no {_hosts_flag(sys.argv)} (a reinstall of invoke put it "
        "back); run scripts/bootstrap to restore ours",
        file=sys.stderr,
    )
    sys.exit(2)

from invoke import Collection  # noqa: E402

from tasks import config, data, dev, env, hw, remote, run  # noqa: E402

ns = Collection(config, data, dev, env, hw, remote, run)
