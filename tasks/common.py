"""What every task module shares: the task decorator that turns our errors into exit codes,
and the settings a task reads."""

import functools

from invoke import Exit
from invoke import task as invoke_task
from invoke.env import Environment
from invoke.exceptions import UncastableEnvVar

from .lib.core import settings as settings_lib
from .lib.core.errors import ToolError

_invoke_cast = Environment._cast


def _cast_or_keep_text(self, old, new):
    """invoke casts INVOKE_* values to the type in invoke.yaml and dies with a traceback on
    INVOKE_SLURM_NUM_GPUS=x, and on any value for a list (INVOKE_JOBS_ENV_ALLOW); keep the text instead, which
    our settings read (or refuse in one line)."""
    try:
        return _invoke_cast(self, old, new)
    except (ValueError, UncastableEnvVar):
        return new


Environment._cast = _cast_or_keep_text


def task(*args, **kwargs):
    """invoke's @task, plus: a ToolError becomes its one-line message and exit code, no traceback."""

    def decorate(body):
        @functools.wraps(body)
        def wrapper(*call_args, **call_kwargs):
            try:
                return body(*call_args, **call_kwargs)
            except ToolError as error:
                raise Exit(f"error: {error}", code=error.code) from None

        return invoke_task(wrapper, **kwargs)

    if len(args) == 1 and callable(args[0]) and not kwargs:
        return decorate(args[0])
    return decorate


def load_settings(c, **flags):
    """The merged configuration for this task. flags: dotted key -> (the task's flag as typed, its value);
    a value of None means 'not given'. Messages name the flag, so it must be the task's own."""
    return settings_lib.from_invoke(c.config, {key: settings_lib.Flag(*given) for key, given in flags.items()})
