"""Fixtures shared by tests/remote: one login node with a checkout set up by `inv -H --setup` (one real
bootstrap for the package), and a second sshd whose sessions know the test SLURM, with a run held there."""

import json
import shutil
from pathlib import Path

import pytest
from support import ssh_server as sshd
from support.project_copy import project_copy
from support.remote_site import Site, git, inv
from support.ssh_login import add_host, alias, close_masters, login_home

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="package")
def site(ssh_server, tmp_path_factory):
    base = tmp_path_factory.mktemp("hosts")
    local = project_copy(base)
    git(local, "add", "-A")
    git(local, "commit", "-q", "--allow-empty", "-m", "the working tree under test")
    remote = base / "login" / "sam3-tasks"
    environ = login_home(base, ssh_server, remote)
    runtime = base / "runtime.yaml"
    runtime.write_text(
        f"paths:\n  experiment_root: {base / 'exp'}\n  demo_data_root: {base / 'demo-data'}\n"
        f"sam3:\n  train_venv: {(ROOT / '.venv-train').resolve()}\n"
    )
    setup = inv(["-H", "login-node", "--setup", "-f", runtime, "config.show", "--json"], environ, local, timeout=900)
    try:
        yield Site(base, local, remote, runtime, environ, setup)
    finally:
        close_masters(environ)


@pytest.fixture(scope="package")
def slurm_login(site, slurm_cluster, tmp_path_factory):
    """A second sshd whose sessions know the test SLURM (SLURM_CONF), as `slurm-login` in the laptop's
    ~/.ssh/config (a login node's ~/.bashrc would `module load slurm`). Its sessions' sbatch is the real one,
    which answers 8 s late while the yielded flag file exists (a busy slurmctld: the job is queued, the
    answer not yet back)."""
    folder = tmp_path_factory.mktemp("sshd-slurm")
    shims, slow = folder / "bin", folder / "sbatch-answers-late"
    shims.mkdir()
    (shims / "sbatch").write_text(
        f'#!/bin/sh\n{shutil.which("sbatch")} "$@"; code=$?\nif [ -e {slow} ]; then sleep 8; fi\nexit $code\n'
    )
    (shims / "sbatch").chmod(0o755)
    path = f"{shims}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    process, server = sshd.start(folder, (f"SetEnv SLURM_CONF={slurm_cluster.conf} PATH={path}",))
    add_host(site.environ, alias("slurm-login", server), server)
    try:
        yield server, process, slow
    finally:
        close_masters(site.environ)
        sshd.stop(process)


@pytest.fixture(scope="package")
def held_run(site, slurm_login, slurm_cluster):
    """run.train --mode cluster from the laptop, its job kept pending by one holding all 4 fake GPUs: the
    submission is real, and nothing trains."""
    hold = slurm_cluster.sbatch(
        "--partition", "debug", "--gres", "gpu:4", "--output", str(site.base / "hold.out"), "--wrap", "sleep 900"
    )
    done = site.inv(
        "-H",
        "slurm-login",
        "-f",
        site.runtime,
        "run.train",
        "--mode",
        "cluster",
        "--partition",
        "debug",
        "--num-gpus",
        "1",
        "--datasets",
        "actions",
        "--name",
        "held",
        timeout=600,
    )
    record_path = site.base / "exp" / "held" / "launch.json"
    record = json.loads(record_path.read_text()) if record_path.is_file() else {"tasks": []}
    yield done, record
    jobs = [task["job_id"] for task in record["tasks"] if task.get("job_id")]
    slurm_cluster.run("scancel", hold, *jobs, check=False)
