"""The environment a training or evaluation job runs in: the launcher's, less every secret.

SAM3's Trainer logs its whole environment, KEY=value, to the console and to log.txt
(sam3/train/utils/train_utils.py log_env_variables, called in Trainer.__init__), and sbatch exports
the submitting environment, which slurmctld keeps in its state folder (and accounting may store). So
no variable whose name looks like a secret reaches a job: jobs run offline with the verified
checkpoint and need no Hub, Roboflow or cloud credentials. The one secret a job may need, W&B's API
key for online logging, goes in a file only its owner can read, whose path the job gets
(SAM3_TASKS_WANDB_KEY_FILE); the W&B plugin reads it after SAM3 has logged the environment.
"""

import os
from collections.abc import Mapping
from pathlib import Path

from ..core.settings import SECRET_ENV_VARS

SECRET_WORDS = ("TOKEN", "SECRET", "PASSWORD", "PASSWD", "PASSPHRASE", "API_KEY", "APIKEY", "CREDENTIAL",
                "PRIVATE_KEY", "ACCESS_KEY", "SSH_AUTH_SOCK", "CONNECTION_STRING")  # fmt: skip
WANDB_KEY_FILE_VAR = "SAM3_TASKS_WANDB_KEY_FILE"


def looks_secret(name: str) -> bool:
    upper = name.upper()
    return name in SECRET_ENV_VARS or any(word in upper for word in SECRET_WORDS)


def withheld(environ: Mapping[str, str] = os.environ) -> list[str]:
    """The names (never the values) of the variables kept out of every job."""
    return sorted(name for name in environ if looks_secret(name))


def job_environment(plan_env: Mapping[str, str], environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """environ without its secrets, with the plan's variables on top (PYTHONPATH joined, not replaced)."""
    environment = {key: value for key, value in environ.items() if not looks_secret(key)}
    for key, value in plan_env.items():
        joined = key == "PYTHONPATH" and environment.get(key)
        environment[key] = f"{value}{os.pathsep}{environment[key]}" if joined else value
    return environment


def state_dir(environ: Mapping[str, str] = os.environ) -> Path:
    """Where the launcher keeps per-user state outside every experiment folder."""
    base = environ.get("XDG_STATE_HOME") or str(Path(environ.get("HOME") or Path.home()) / ".local" / "state")
    return Path(base) / "sam3-tasks"


def write_secret_files(plan_env: Mapping[str, str], environ: Mapping[str, str] = os.environ) -> None:
    """Before launch: W&B's API key into the file the plan names, where only this user can read it (a
    folder 0700, a file 0600, written by rename); one file for every run, as wandb's ~/.netrc entry is."""
    if WANDB_KEY_FILE_VAR not in plan_env:
        return
    path = Path(plan_env[WANDB_KEY_FILE_VAR])
    folder = path.parent
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    partial = folder / f".wandb-api-key.{os.getpid()}"
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(environ["WANDB_API_KEY"])
    os.replace(partial, path)
