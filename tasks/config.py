"""Configuration: what is in force, and where each value came from."""

import os

from .common import load_settings, task
from .lib.core import report, secrets
from .lib.core import settings as settings_lib


@task(default=True, help={"json": "Print JSON instead of a table."})
def show(c, json=False):
    """Print the merged configuration and each value's source, secrets masked."""
    settings = load_settings(c)
    rows = [
        (key.name, secrets.mask(settings[key.name]), settings.sources[key.name], key.help)
        for key in settings_lib.SCHEMA
    ]
    status = secrets.secret_status(os.environ)
    if json:
        print(
            report.to_json(
                {
                    "values": {name: {"value": value, "source": source} for name, value, source, _ in rows},
                    "secrets": dict(status),
                }
            )
        )
        return
    shown = [
        (name, ", ".join(value) or "(none)" if isinstance(value, list) else value, *rest) for name, value, *rest in rows
    ]
    report.print_table("configuration", ("key", "value", "source", "meaning"), shown)
    report.print_table("secrets (from the environment, never stored)", ("name", "state"), status)
