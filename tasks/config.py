"""Configuration: what is in force, and where each value came from."""

import os

from .common import load_settings, task
from .lib.core import report
from .lib.core import settings as settings_lib


@task(default=True, help={"json": "Print JSON instead of a table."})
def show(c, json=False):
    """Print the merged configuration and each value's source, secrets masked."""
    settings = load_settings(c)
    rows = [
        (key.name, settings_lib.mask(settings[key.name]), settings.sources[key.name], key.help)
        for key in settings_lib.SCHEMA
    ]
    secrets = settings_lib.secret_status(os.environ)
    if json:
        print(
            report.to_json(
                {
                    "values": {name: {"value": value, "source": source} for name, value, source, _ in rows},
                    "secrets": dict(secrets),
                }
            )
        )
        return
    report.print_table("configuration", ("key", "value", "source", "meaning"), rows)
    report.print_table("secrets (from the environment, never stored)", ("name", "state"), secrets)
