"""The environment a training or evaluation job runs in: the launcher's variables that jobs need, less
every secret.

SAM3's Trainer logs its whole environment, KEY=value, to the console and to log.txt
(sam3/train/utils/train_utils.py log_env_variables, called in Trainer.__init__), and sbatch exports
the submitting environment, which slurmctld keeps in its state folder (and accounting may store). So a
variable reaches a job only when both hold:
  1. its name is on the allow-list of what jobs need (ALLOWED: the process, Python, GPUs and math
     libraries, Hugging Face, W&B, SAM3, SLURM, proxies and CA bundles), which a user extends with
     `jobs.env_allow` in invoke.yaml (names or NAME_* prefixes);
  2. neither its name nor its value looks like a secret (tasks/lib/core/secrets.py).
Why both: a deny-list of secret-looking names let through whatever no list knows (DATABASE_URL with
user:password@, a personal access token under a name of its own); the allow-list keeps every unknown
name out whatever it holds, and the value test catches a secret under an allowed name (a proxy URL with
user:password@, a token in an HF_ variable). The launch says which names were kept out, never values.

Jobs run offline with the verified checkpoint and need no Hub, Roboflow or cloud credentials. The one
secret a job may need, W&B's API key for online logging, goes in a file only its owner can read, one
per launch (wandb_key_file: in the per-user state folder, never in the experiment folder), whose path
the job gets (SAM3_TASKS_WANDB_KEY_FILE); the W&B plugin reads it after SAM3 has logged the environment.
So each job reads the key of its own launch, however late it starts.
"""

import hashlib
import os
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

from ..core import secrets

WANDB_KEY_FILE_VAR = "SAM3_TASKS_WANDB_KEY_FILE"
KEY_FILE_DAYS = 30  # a launch's key file is removed by a later launch after this many days
LAUNCH = f"{os.getpid()}-{time.time_ns()}"  # this launcher process: one launch
ALLOWED = (
    *("PATH", "HOME", "USER", "LOGNAME", "SHELL", "HOSTNAME", "TERM", "LANG", "LANGUAGE", "LC_*", "TZ", "XDG_*"),
    *("TMPDIR", "TMP", "TEMP", "PYTHON*", "VIRTUAL_ENV", "MPLBACKEND", "MPLCONFIGDIR"),
    *("CUDA_*", "CUDNN_*", "CUBLAS_*", "NVIDIA_*", "NCCL_*", "TORCH_*", "TORCHINDUCTOR_*", "PYTORCH_*", "TRITON_*"),
    *("OMP_*", "MKL_*", "OPENBLAS_*", "KMP_*", "LD_LIBRARY_PATH", "LIBRARY_PATH", "CPATH"),
    *("MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "RANK", "LOCAL_RANK", "MDETR_*", "HYDRA_*", "SUBMITIT_*"),
    *("HF_*", "HUGGINGFACE_*", "WANDB_*", "SAM3_*", "SLURM_*", "SBATCH_*", "SALLOC_*", "SRUN_*"),
    *("http_proxy", "https_proxy", "no_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY"),
    *("SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"),
)


def allowed(name: str, extra: Iterable[str] = ()) -> bool:
    """Whether a name is on the allow-list (ALLOWED and jobs.env_allow; NAME_* is a prefix)."""
    return any(name.startswith(item[:-1]) if item.endswith("*") else name == item for item in (*ALLOWED, *extra))


def withheld(environ: Mapping[str, str] = os.environ, extra: Iterable[str] = ()) -> list[str]:
    """The names (never the values) of the variables kept out of every job, sorted."""
    extra = tuple(extra)
    return sorted(name for name, value in environ.items() if not _passes(name, value, extra))


def _passes(name: str, value: str, extra: tuple[str, ...]) -> bool:
    return allowed(name, extra) and not secrets.is_secret(name, value)


def describe_withheld(names: list[str], environ: Mapping[str, str] = os.environ, shown: int = 8) -> str:
    """One line for the launch: the secrets kept out, by name, and the other names not on the allow-list."""
    secret = [name for name in names if secrets.is_secret(name, environ.get(name, ""))]
    other = [name for name in names if name not in secret]
    parts = [f"{len(secret)} secret(s) ({', '.join(secret)})"] if secret else []
    if other:
        more = f", +{len(other) - shown} more" if len(other) > shown else ""
        parts.append(f"{len(other)} variable(s) not in jobs.env_allow ({', '.join(other[:shown])}{more})")
    return f"job environment: kept out {' and '.join(parts)}; SAM3's Trainer logs its whole environment"


def job_environment(
    plan_env: Mapping[str, str], environ: Mapping[str, str] = os.environ, extra: Iterable[str] = ()
) -> dict[str, str]:
    """The allowed, non-secret variables of environ, with the plan's on top (PYTHONPATH joined, not replaced)."""
    extra = tuple(extra)
    environment = {name: value for name, value in environ.items() if _passes(name, value, extra)}
    for key, value in plan_env.items():
        joined = key == "PYTHONPATH" and environment.get(key)
        environment[key] = f"{value}{os.pathsep}{environment[key]}" if joined else value
    return environment


def state_dir(environ: Mapping[str, str] = os.environ) -> Path:
    """Where the launcher keeps per-user state outside every experiment folder."""
    base = environ.get("XDG_STATE_HOME") or str(Path(environ.get("HOME") or Path.home()) / ".local" / "state")
    return Path(base) / "sam3-tasks"


def wandb_key_file(run_dir: Path, environ: Mapping[str, str] = os.environ, launch: str = LAUNCH) -> Path:
    """This launch's W&B key file: named by the run folder and the launch, in the per-user state folder."""
    digest = hashlib.sha256(f"{run_dir}\0{launch}".encode()).hexdigest()[:16]
    return state_dir(environ) / "wandb-keys" / f"{run_dir.name}-{digest}"


def write_secret_files(plan_env: Mapping[str, str], environ: Mapping[str, str] = os.environ) -> None:
    """Before launch: W&B's API key into the file the plan names, where only this user can read it (folders
    0700, the file 0600, written by rename); key files older than KEY_FILE_DAYS are removed."""
    if WANDB_KEY_FILE_VAR not in plan_env:
        return
    path = Path(plan_env[WANDB_KEY_FILE_VAR])
    path.parent.mkdir(parents=True, exist_ok=True)
    for folder in (path.parent.parent, path.parent):
        os.chmod(folder, 0o700)
    partial = path.parent / f".{path.name}.{os.getpid()}"
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(environ["WANDB_API_KEY"])
    os.replace(partial, path)
    old = time.time() - KEY_FILE_DAYS * 86400
    for stale in path.parent.iterdir():
        if stale.is_file() and stale.stat().st_mtime < old:
            stale.unlink(missing_ok=True)
