"""Secrets by name and by value, end to end (tasks/lib/core/secrets.py, tasks/lib/run/job_env.py): a real
demo run (SAM3's Trainer logs its whole environment) with canary secrets under names no list knows and
under names jobs are allowed; a config key named like a secret (`presence_token`) that is recorded as
given and counts in the run's identity; `inv config.show` with the same canaries."""

import json
import os

import pytest
from conftest import ROOT, run_inv
from support.canaries import BY_VALUE, CANARIES, leaked

TRAIN_VENV = ROOT / ".venv-train"
PRESENCE = "trainer.model.transformer.decoder.presence_token"  # a switch of SAM3's decoder, no secret
pytestmark = pytest.mark.skipif(
    not (TRAIN_VENV / "bin" / "python").exists(), reason="no training env: scripts/setup-tests builds .venv-train"
)


@pytest.fixture(scope="module")
def secret_run(tmp_path_factory):
    """One epoch of the demo on `actions`, a canary in every secret the launcher's environment holds."""
    base = tmp_path_factory.mktemp("secrets")
    (base / "home").mkdir()
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("INVOKE_", "SAM3_", "HF_", "WANDB_"))}
    environ.update(
        HOME=str(base / "home"),
        SAM3_EXPERIMENT_ROOT=str(base / "exp"),
        INVOKE_PATHS_DEMO_DATA_ROOT=str(base / "demo-data"),
        **CANARIES,
    )
    args = ["run.train", "--datasets", "actions", "--name", "sec", "--set", "trainer.max_epochs=1"]
    done = run_inv([*args, "--set", f"{PRESENCE}=true"], environ, timeout=900)
    return base, done, environ, args


def test_no_canary_reaches_the_output_the_jobs_log_the_record_or_any_file(secret_run):
    base, done, _, _ = secret_run
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    run_dir = base / "exp" / "sec"
    log = (run_dir / "actions" / "logs" / "actions" / "log.txt").read_text()
    assert "SAM3_EXPERIMENT_ROOT=" in log and "HF_HUB_OFFLINE=1" in log  # SAM3 did log its environment
    assert (run_dir / "actions" / "train.log").is_file() and (run_dir / "launch.json").is_file()
    generated = sorted(TRAIN_VENV.glob("lib/python*/site-packages/sam3/train/configs/generated/sec--*"))
    assert leaked([done.stdout, done.stderr], base, *generated) == []  # run folder, configs, HOME
    line = next(line for line in done.stdout.splitlines() if line.startswith("job environment: kept out"))
    for name in (*BY_VALUE, "HF_TOKEN", "WANDB_API_KEY", "SAM3_DVC_SSH_PASSWORD"):
        assert f"{name}," in line or f"{name})" in line, name  # said by name, never by value


def test_a_config_key_named_like_a_secret_is_recorded_and_decides_the_identity(secret_run):
    base, done, environ, args = secret_run
    assert done.returncode == 0, done.stdout[-3000:]
    record = json.loads((base / "exp" / "sec" / "launch.json").read_text())
    assert f"{PRESENCE}=true" in record["request"]["sets"] and f"{PRESENCE}=true" in record["command"]
    assert record["identity"]["config"]["trainer"]["model"]["transformer"]["decoder"]["presence_token"] is True
    other = run_inv([*args, "--set", f"{PRESENCE}=false"], environ, timeout=300)
    assert other.returncode == 2, other.stdout[-2000:] + other.stderr
    assert f"run 'sec' exists with other settings ({PRESENCE}: True -> False)" in other.stderr
    assert leaked([other.stdout, other.stderr]) == []


def test_config_show_names_the_secrets_it_finds_and_shows_none(clean_env):
    environ = dict(clean_env, **CANARIES)
    shown = run_inv(["config.show", "--json"], dict(environ, INVOKE_JOBS_ENV_ALLOW="MYLAB_ROOT,MYLAB_*"))
    assert shown.returncode == 0, shown.stderr
    result = json.loads(shown.stdout)
    assert result["values"]["jobs.env_allow"] == {
        "value": ["MYLAB_ROOT", "MYLAB_*"],
        "source": "env INVOKE_JOBS_ENV_ALLOW",
    }
    assert {name: result["secrets"].get(name) for name in CANARIES} == dict.fromkeys(CANARIES, "set (hidden)")
    table = run_inv(["config.show"], environ)
    assert "jobs.env_allow" in table.stdout and leaked([shown.stdout, table.stdout, table.stderr]) == []
