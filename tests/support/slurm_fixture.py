"""A real single-node SLURM cluster for the tests: scripts/slurm-local in a per-session folder.

Use it from a test module with

    pytest_plugins = ["support.slurm_fixture"]

    def test_x(slurm_cluster):
        job = slurm_cluster.sbatch("--wrap", "true")
        assert slurm_cluster.wait(job) == {job: "COMPLETED"}

(or the same pytest_plugins line once in tests/conftest.py, for every module). A plugin is
registered once, so one cluster starts per session (for the first test that asks for it) and is
stopped at the end; even a `from slurm_fixture import slurm_cluster` in several modules shares it.
Import nothing else from this module at the top of a test module before the plugin line takes
effect, or pytest warns that it cannot rewrite its asserts. It skips, with the reason, where the SLURM and munge binaries are missing or
the tests do not run as root; SAM3_REQUIRE_SERVICES=1 (CI) turns those skips into failures.

`slurm_cluster.env` is os.environ plus SLURM_CONF: pass it to subprocesses, or
monkeypatch.setenv("SLURM_CONF", slurm_cluster.conf) for code that calls sbatch itself (submitit).
"""

import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import skip_unless_required

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "slurm-local"
NEEDED = ("/usr/sbin/slurmctld", "/usr/sbin/slurmd", "/usr/sbin/munged", "sbatch", "squeue", "scontrol", "sinfo")
FINISHED = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE"}
WAIT_S = 60.0
MAX_ARRAY_SIZE = 2
MAX_JOB_COUNT = 400


def why_no_slurm():
    """Why this machine cannot run the cluster, or None when it can."""
    missing = [name for name in NEEDED if shutil.which(name) is None]
    if missing:
        return f"no SLURM here ({', '.join(missing)} missing): run sudo scripts/install-system-deps"
    if os.geteuid() != 0:
        return "the local SLURM cluster needs root (slurmd, mknod for the fake GPUs)"
    return None


@dataclass
class LocalSlurm:
    """A running cluster: its folder, SLURM_CONF, and helpers that wait with a bound."""

    root: Path
    conf: Path
    env: dict = field(repr=False)
    node: str = ""
    partitions: tuple = ("debug", "long")
    num_gpus: int = 4

    def run(self, *args, check=True, timeout=30):
        """A SLURM command against this cluster; text output."""
        result = subprocess.run(
            [str(a) for a in args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(map(str, args))} exited {result.returncode}: {result.stderr.strip()}")
        return result

    def sbatch(self, *args):
        """Submit with `sbatch --parsable ARGS`; the job id."""
        out = self.run("sbatch", "--parsable", *args).stdout.strip()
        return out.split(";")[0]

    def take_gpus(self):
        """A job holding all the node's fake GPUs for 10 minutes (scancel it when done): jobs that ask for a
        GPU stay pending meanwhile. Debian's sbatch has no SBATCH_HOLD variable to queue them held."""
        gpus = f"gpu:{self.num_gpus}"
        return self.sbatch("--partition", "debug", "--gres", gpus, "--output", "/dev/null", "--wrap", "sleep 600")

    def states(self, job_id):
        """{job id: state} for the job, or for each task of an array (array tasks as 12_0, 12_1)."""
        out = self.run("scontrol", "show", "job", "-o", job_id, check=False)
        states = {}
        for line in out.stdout.splitlines():
            fields = dict(item.partition("=")[::2] for item in line.split(" ") if "=" in item)
            if "JobState" not in fields:
                continue
            task = fields.get("ArrayTaskId")
            key = f"{fields['ArrayJobId']}_{task}" if task and task.isdigit() else fields["JobId"]
            states[key] = fields["JobState"]
        return states

    def wait(self, job_id, timeout=WAIT_S, until=FINISHED):
        """Poll until the job (every task of an array) is in one of `until`; its {id: state}."""
        deadline = time.monotonic() + timeout
        states = {}
        while time.monotonic() < deadline:
            states = self.states(job_id)
            if states and all(state in until for state in states.values()):
                return states
            time.sleep(0.2)
        queue = self.run("squeue", check=False).stdout
        raise AssertionError(f"job {job_id} not {sorted(until)} after {timeout:.0f} s: {states}\n{queue}")


_started = {}


def _script(command, folder, timeout=90):
    # limits low enough for the tests to meet them: a 3-dataset array splits, a big grid does not fit
    env = dict(
        os.environ,
        SAM3_SLURM_DIR=str(folder),
        SAM3_SLURM_MAX_ARRAY_SIZE=str(MAX_ARRAY_SIZE),
        SAM3_SLURM_MAX_JOB_COUNT=str(MAX_JOB_COUNT),
    )
    env.pop("SAM3_SLURM_PORT", None)  # free ports, next to any cluster the user runs
    return subprocess.run(
        [str(SCRIPT), command], env=env, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory):
    """A running single-node cluster in a per-session folder (skips where it cannot run)."""
    reason = why_no_slurm()
    if reason:
        skip_unless_required(reason)
    if "cluster" in _started:  # imported into several modules: still one cluster
        yield _started["cluster"]
        return
    folder = tmp_path_factory.mktemp("slurm")
    result = _script("start", folder)
    if result.returncode != 0:
        _script("stop", folder)
        pytest.fail(f"scripts/slurm-local start failed:\n{result.stdout}{result.stderr}")
    conf = folder / "slurm.conf"
    env = dict(os.environ, SLURM_CONF=str(conf))
    for name in [k for k in env if k.startswith(("SLURM_", "SBATCH_", "SRUN_", "SALLOC_")) and k != "SLURM_CONF"]:
        del env[name]
    node = next(
        line.split("=", 1)[1].split()[0] for line in conf.read_text().splitlines() if line.startswith("NodeName=")
    )
    cluster = LocalSlurm(root=folder, conf=conf, env=env, node=node)
    _started["cluster"] = cluster
    try:
        yield cluster
    finally:
        _started.pop("cluster", None)
        stopped = _script("stop", folder)
        assert stopped.returncode == 0, f"scripts/slurm-local stop failed:\n{stopped.stdout}{stopped.stderr}"
