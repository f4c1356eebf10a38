"""Weights & Biases for SAM3 runs: the API key checked, the login proven (or offline mode), and what a
run needs to log there.

SAM3 0.1.4 declares `trainer.logging.wandb_writer` (LoggingConf, default None) but never reads it: its
Logger builds only `tensorboard_writer`. So a wandb_writer override would be silently ignored. Runs log to
W&B through wandb's own TensorBoard integration instead: `writer_overrides()` points
`trainer.logging.tensorboard_writer._target_` at `sam3_wandb.make_tensorboard_logger` (tasks/lib/run/plugins/,
put on the job's PYTHONPATH) and adds the task's W&B name, group, folder and job type to that node; the
plugin starts `wandb.init(sync_tensorboard=True)` on rank 0 and then returns SAM3's own TensorBoard
logger, so TensorBoard files are written as before and every scalar also goes to W&B. Project, entity
and mode come from the environment (`wandb_job_env()`: WANDB_PROJECT, ...); the API key never does (SAM3's
Trainer logs its environment): online jobs read it from a 0600 file (tasks/lib/run/job_env.py).

wandb is imported inside functions or run in a subprocess (the launcher's start-up stays light).
"""

import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..core import secrets
from ..core.errors import ConfigError, ToolError
from ..core.report import FAIL, PASS, SKIP, WARN, Check

KEY_ENV = "WANDB_API_KEY"
DEFAULT_BASE_URL = "https://api.wandb.ai"
AUTHORIZE_URL = "https://wandb.ai/authorize"
PLUGIN_DIR = Path(__file__).resolve().parents[1] / "run" / "plugins"
WRITER_KEY = "trainer.logging.tensorboard_writer"
SAM3_WRITER_TARGET = "sam3.train.utils.logger.make_tensorboard_logger"
PLUGIN_TARGET = "sam3_wandb.make_tensorboard_logger"
LOGIN_TIMEOUT_S = 60


# --- the key -----------------------------------------------------------------------------------------


def base_url(environ: Mapping[str, str] = os.environ) -> str:
    return (environ.get("WANDB_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")


def find_key(environ: Mapping[str, str] = os.environ) -> tuple[str | None, str]:
    """The API key wandb would use and where it came from (never the value): WANDB_API_KEY, then the
    .netrc entry `wandb login` writes for the server's host."""
    value = environ.get(KEY_ENV)
    if value is not None and value != "":
        return value, f"env {KEY_ENV}"
    import netrc

    path = Path(environ.get("NETRC") or Path(environ.get("HOME") or Path.home()) / ".netrc")
    host = urlsplit(base_url(environ)).hostname or ""
    try:
        entry = netrc.netrc(str(path)).authenticators(host)
    except (OSError, netrc.NetrcParseError):
        entry = None
    return (entry[2], f"{path} (machine {host})") if entry and entry[2] else (None, "")


def key_problem(key: str) -> str | None:
    """What is wrong with the key's form, as wandb itself judges it, or None.

    wandb accepts a 40+ character secret of letters, digits and underscores, optionally after a prefix
    and a dash (on-prem and newer keys, e.g. 'local-...'), or a JWT; leading or trailing whitespace is
    refused at login. The wandb package's own check is used when it has one; this is the same rule."""
    if key != key.strip():
        return "API key cannot start or end with whitespace."
    try:
        from wandb.sdk.lib.wbauth.validation import check_api_key
    except ImportError:
        return _key_problem(key)
    return check_api_key(key)


def _key_problem(key: str) -> str | None:
    if not key:
        return "API key is empty."
    if re.fullmatch(r"[\w-]+\.[\w-]+\.[\w-]+", key):
        return None
    secret = key.split("-", 1)[-1]
    if not re.fullmatch(r"[\w-]+", secret):
        return "API key may only contain the letters A-Z, digits and underscores."
    if len(secret) < 40:
        return f"API key must have 40+ characters, has {len(secret)}."
    return None


# --- login -------------------------------------------------------------------------------------------

_LOGIN = r"""
import json, sys
import wandb
try:
    ok = wandb.login(verify=True, prompt=False)
except Exception as error:  # AuthenticationError, CommError, ...
    print(json.dumps({"ok": False, "kind": type(error).__name__, "detail": str(error)}))
    sys.exit(0)
entity = None
try:
    entity = wandb.Api().default_entity
except Exception:
    pass
print(json.dumps({"ok": bool(ok), "entity": entity}))
"""


def login(key: str, environ: Mapping[str, str] = os.environ, python: str = sys.executable) -> dict[str, Any]:
    """Prove the key with the W&B server (wandb.login(verify=True)) in a subprocess.

    The key travels in the child's environment only (never argv); nothing is written to ~/.netrc."""
    env = dict(environ)
    env[KEY_ENV] = key
    env.pop("WANDB_MODE", None)
    env["WANDB_SILENT"] = "true"
    try:
        done = subprocess.run(
            [python, "-c", _LOGIN],
            env=env,
            capture_output=True,
            text=True,
            timeout=LOGIN_TIMEOUT_S,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        return {"ok": False, "kind": "Timeout", "detail": f"no answer within {LOGIN_TIMEOUT_S} s"}
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"ok": False, "kind": "Crash", "detail": scrub(tail, key)}
    result = json.loads(lines[-1])
    result["detail"] = scrub(result.get("detail") or "", key)
    return result


def scrub(text: str, *known: str | None) -> str:
    """Text safe to show: the known values (the key) and whatever tasks/lib/core/secrets.py finds hidden."""
    return secrets.scrub(text, *known)


def _unreachable(detail: str) -> bool:
    words = (
        "Failed to execute API request",
        "did not respond",
        "connection refused",
        "no such host",
        "timeout",
        "Timeout",
        "dial tcp",
        "no answer",
    )
    return any(word in detail for word in words)


# --- an offline run, for real --------------------------------------------------------------------------

_OFFLINE_SMOKE = r"""
import sys
sys.path.insert(0, sys.argv[1])
import sam3_wandb
run = sam3_wandb.start_run()
run.log({"sam3_tasks/check": 1.0})
run.finish()
print("RUN_DIR", run.dir)
"""


def offline_smoke(environ: Mapping[str, str] = os.environ, python: str = sys.executable) -> tuple[bool, str]:
    """Start, log to and finish a real offline W&B run in a throwaway folder, the way a job starts one."""
    with tempfile.TemporaryDirectory(prefix="sam3-wandb-check-") as tmp:
        env = dict(environ)
        env.update(
            WANDB_MODE="offline",
            WANDB_DIR=tmp,
            WANDB_PROJECT=env.get("WANDB_PROJECT") or "sam3-tasks-check",
            WANDB_SILENT="true",
        )
        try:
            done = subprocess.run(
                [python, "-c", _OFFLINE_SMOKE, str(PLUGIN_DIR)],
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired:
            return False, "the offline run did not finish within 120 s"
        if done.returncode != 0 or "RUN_DIR" not in done.stdout:
            tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
            return False, scrub(tail, environ.get(KEY_ENV))
        return True, "a real offline run started, logged and finished (then removed)"


# --- the training venv -----------------------------------------------------------------------------------


def train_env_wandb(train_venv: Path) -> tuple[str, str]:
    """(status, detail): whether the training venv's python can import wandb."""
    python = Path(train_venv) / "bin" / "python"
    if not python.exists():
        return WARN, f"no training venv at {train_venv} yet"
    code = "import importlib.metadata as m; print(m.version('wandb'))"
    done = subprocess.run([str(python), "-c", code], capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if done.returncode == 0:
        return PASS, f"wandb {done.stdout.strip()} in {train_venv}"
    return WARN, f"wandb is not installed in {train_venv}: runs cannot log to W&B"


# --- what run.* uses --------------------------------------------------------------------------------------


def wandb_job_env(settings, environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The WANDB_* variables every job of a run gets; {} when W&B logging is off (tracking.wandb_project '').

    No secret is in it (the key goes through a 0600 file, run/job_env.py). Online without a key is a
    ConfigError: every job would stop at wandb.init."""
    project = settings["tracking.wandb_project"]
    if not project:
        return {}
    if settings["tracking.wandb_mode"] == "online" and find_key(environ)[0] is None:
        raise ConfigError(
            f"W&B logging is on (tracking.wandb_project {project}) but {KEY_ENV} is not set, so every "
            f"job would stop at wandb.init: export {KEY_ENV}=... (from {AUTHORIZE_URL}), or set "
            "tracking.wandb_mode offline and `wandb sync` the runs later"
        )
    env = {"WANDB_PROJECT": project, "WANDB_MODE": settings["tracking.wandb_mode"], "WANDB_DISABLE_CODE": "true"}
    if settings["tracking.wandb_entity"]:
        env["WANDB_ENTITY"] = settings["tracking.wandb_entity"]
    return env


def writer_overrides(
    run_name: str, dataset: str | None, experiment_dir: str, job_type: str, group: str | None = None, instance: str = ""
) -> dict[str, str]:
    """The config keys that make a config's jobs log to W&B: the plugin as SAM3's TensorBoard writer, and
    the task's identity, which the plugin passes to wandb.init (dataset and experiment_dir may be
    interpolations that resolve per array task). A grid cell's tasks are named <run>/<cell>/<dataset>
    and grouped by the run."""
    keys = {
        f"{WRITER_KEY}._target_": PLUGIN_TARGET,
        f"{WRITER_KEY}.wandb_name": f"{run_name}/{dataset}" if dataset else run_name,
        f"{WRITER_KEY}.wandb_group": group or run_name,
        f"{WRITER_KEY}.wandb_dir": experiment_dir,
        f"{WRITER_KEY}.wandb_job_type": job_type,
    }
    if instance:  # a run started again in the same folder (--restart) is another W&B run
        keys[f"{WRITER_KEY}.wandb_instance"] = instance
    return keys


# --- the check --------------------------------------------------------------------------------------------


@dataclass
class Result:
    checks: list[Check]
    mode: str
    project: str
    entity: str

    def as_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "project": self.project, "entity": self.entity, "checks": self.checks}


def check(settings, offline: bool, dry_run: bool = False, environ: Mapping[str, str] = os.environ) -> Result:
    """Key, login (or a real offline run), project and entity, and wandb in the training venv.

    A missing key (online) or a malformed one is a ConfigError (exit 2) before anything else; a key
    the server refuses is a ConfigError too; an unreachable server is a ToolError (exit 1)."""
    mode = "offline" if offline else settings["tracking.wandb_mode"]
    project, entity = settings["tracking.wandb_project"], settings["tracking.wandb_entity"]
    key, source = find_key(environ)
    checks = [_key_check(key, source, mode)]
    checks += _login_checks(key, source, mode, dry_run, environ)
    if project:
        where = f"{entity}/{project}" if entity else f"{project} (the key's default entity)"
        checks.append(Check("project", "tracking.wandb_project", PASS, f"SAM3 runs log to {where}, mode {mode}"))
        venv = settings.path("sam3.train_venv")
        status, detail = train_env_wandb(venv)
        fix = "" if status == PASS else f"{venv}/bin/python -m pip install wandb (or re-run env.sam3)"
        checks.append(Check("training env", "sam3.train_venv", status, detail, fix))
    else:
        checks.append(
            Check(
                "project",
                "tracking.wandb_project",
                WARN,
                "not set: W&B logging is off for SAM3 runs",
                "set tracking.wandb_project in ~/.invoke.yaml or INVOKE_TRACKING_WANDB_PROJECT",
            )
        )
    return Result(checks, mode, project, entity)


def _key_check(key: str | None, source: str, mode: str) -> Check:
    """The key is there (online needs it) and well formed; neither is a ConfigError."""
    if key is None:
        if mode == "online":
            raise ConfigError(
                f"{KEY_ENV} is not set: copy your key from {AUTHORIZE_URL}, then export "
                f"{KEY_ENV}=... (never put it in invoke.yaml), or pass --offline to log runs "
                "locally and `wandb sync` them later"
            )
        return Check(
            "key",
            KEY_ENV,
            WARN,
            "not set: offline runs work; uploading them needs a key",
            f"export {KEY_ENV}=... before `wandb sync`",
        )
    problem = key_problem(key)
    if problem:
        raise ConfigError(
            f"the W&B API key from {source} is malformed: {problem} Copy it again from "
            f"{AUTHORIZE_URL} (the whole key, no spaces)"
        )
    return Check(
        "key",
        KEY_ENV if source.startswith("env") else "netrc",
        PASS,
        f"well formed ({len(key)} characters, from {source})",
    )


def _login_checks(key: str | None, source: str, mode: str, dry_run: bool, environ: Mapping[str, str]) -> list[Check]:
    """Online: the server accepts the key. Offline: a real offline run works. A dry run does neither."""
    url = base_url(environ)
    if dry_run:
        what = "start a real offline run in a temporary folder" if mode == "offline" else f"log in to {url}"
        return [Check("login", url, SKIP, f"dry run: would {what}")]
    if mode == "offline":
        ok, detail = offline_smoke(environ)
        return [
            Check("login", "offline", SKIP, f"offline mode: {url} not contacted"),
            Check(
                "offline run",
                "wandb",
                PASS if ok else FAIL,
                detail,
                "" if ok else "reinstall wandb in the launcher venv (scripts/bootstrap)",
            ),
        ]
    if key is None:
        return []
    result = login(key, environ)
    detail = result.get("detail", "")
    if not result.get("ok"):
        if _unreachable(detail):
            raise ToolError(
                f"cannot reach W&B at {url} ({detail}); check the network, HTTPS_PROXY or "
                "WANDB_BASE_URL, or pass --offline"
            )
        raise ConfigError(
            f"W&B at {url} refused the API key from {source} ({detail}): copy a current key "
            f"from {AUTHORIZE_URL} and export {KEY_ENV}=..."
        )
    who = f" (default entity {result['entity']})" if result.get("entity") else ""
    return [Check("login", url, PASS, f"key accepted{who}; nothing written to ~/.netrc")]
