"""Shared fixtures. Tests import the very module `inv` loads: tasks.py, whose __path__ is tasks/."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SUPPORT = ROOT / "tests" / "support"
SHIM = SUPPORT / "nvml_shim"

# A suite started in the background by a shell without job control (`cmd &` in a script) inherits SIGINT
# ignored, under nohup SIGHUP too, and so would every process a test starts; the tests that press Ctrl-C or
# close a terminal need them delivered. A handler here (not SIG_IGN) makes every started program begin with
# the default again; the suite itself still outlives a hangup.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
if signal.getsignal(signal.SIGHUP) == signal.SIG_IGN:
    signal.signal(signal.SIGHUP, lambda signum, frame: None)

sys.path.insert(0, str(ROOT / "tests"))  # for `from support.fake_nvml import ...`
pytest_plugins = ["support.slurm_fixture", "support.ssh_server"]  # one real SLURM cluster and one real sshd per session


@pytest.fixture
def clean_env(tmp_path, monkeypatch):
    """An environment without the user's config or our variables: HOME is an empty folder."""
    home = tmp_path / "home"
    home.mkdir()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("INVOKE_", "SAM3_", "ROBOFLOW", "ODINW", "HF_", "FAKE_NVML"))
    }
    env["HOME"] = str(home)
    return env


def skip_unless_required(reason: str) -> None:
    """Skip a test whose system service cannot run here; under SAM3_REQUIRE_SERVICES=1 (CI) fail instead."""
    if os.environ.get("SAM3_REQUIRE_SERVICES") == "1":
        pytest.fail(f"SAM3_REQUIRE_SERVICES=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture
def tool_env(clean_env, tmp_path):
    """clean_env without cloud, DVC, SSH-agent or W&B variables, with TMPDIR, the XDG folders and DVC's
    site cache under tmp_path: what the env.dvc and env.wandb tests run in."""
    home = Path(clean_env["HOME"])
    (tmp_path / "tmp").mkdir()
    environ = {k: v for k, v in clean_env.items() if not k.startswith(("AWS_", "DVC_", "SSH_", "WANDB_"))}
    return dict(
        environ,
        TMPDIR=str(tmp_path / "tmp"),
        XDG_CACHE_HOME=str(home / ".cache"),
        XDG_CONFIG_HOME=str(home / ".config"),
        DVC_SITE_CACHE_DIR=str(tmp_path / "dvc-site-cache"),
    )


def run_inv(args, env, cwd=ROOT, nvml_scenario=None, timeout=120):
    """Run the real `inv` CLI in a subprocess; with a scenario, NVML is the fake shim."""
    env = dict(env)
    if nvml_scenario is not None:
        import json

        env["FAKE_NVML_SCENARIO"] = json.dumps(nvml_scenario)
        env["PYTHONPATH"] = os.pathsep.join([str(SHIM), env.get("PYTHONPATH", "")])
    inv = Path(sys.executable).with_name("inv")
    return subprocess.run([str(inv), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def files_holding(secret: str, *roots, allow=()) -> list[Path]:
    """Every regular file under roots whose bytes contain secret (links are not followed)."""
    found = []
    for root in roots:
        for path in Path(root).rglob("*"):
            if path.is_file() and not path.is_symlink() and path not in allow and secret.encode() in path.read_bytes():
                found.append(path)
    return found


def closed_port() -> int:
    """A loopback port nothing listens on (once this returns): a connection is refused at once."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
