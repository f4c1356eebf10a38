"""env.weights: the real `inv` and the real huggingface_hub against a hub-like server on loopback (HF_ENDPOINT).

The server (tests/hub_server.py) serves facebook/sam3 gated, with the headers and metadata the client reads,
and can cut, refuse or slow a download. Known token values are checked never to appear in output or files.
"""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import closed_port
from support.hub_server import HubServer
from support.sam3_configs import require_configs

from tasks.lib.env import weights as W

ROOT = Path(__file__).resolve().parents[2]
GOOD = "hf_CanaryGoodToken0123456789abcdefABCDEF"
NO_ACCESS = "hf_CanaryNotApproved0123456789abcdefABCD"
WRONG = "hf_CanaryWrongToken0123456789abcdefABCDEF"
CONFIG = b'{"model_type": "sam3", "fake": true}\n'
WEIGHTS = random.Random(5).randbytes(2_000_000)


def run_env(args, env, timeout=120):
    return subprocess.run(
        [str(Path(sys.executable).with_name("inv")), "--search-root", str(ROOT), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def hub():
    with HubServer(granted={GOOD}, known={NO_ACCESS}) as server:
        server.add("config.json", CONFIG, lfs=False)
        server.add("sam3.pt", WEIGHTS)
        yield server


@pytest.fixture
def env(clean_env, tmp_path, hub):
    """HF_HOME in a temp folder, the fake hub as HF_ENDPOINT, no token unless a test adds one."""
    return dict(
        clean_env,
        HF_ENDPOINT=hub.url,
        HF_HOME=str(tmp_path / "hf"),
        INVOKE_HW_DISK_WEIGHTS_GB="0.001",
        SAM3_EXPERIMENT_ROOT=str(tmp_path / "exp"),
    )


def folder(env) -> Path:
    return W.repo_folder(Path(env["HF_HOME"]))


def assert_secret_free(done, *roots):
    for token in (GOOD, NO_ACCESS, WRONG):
        assert token not in done.stdout + done.stderr
        for root in roots:
            for path in Path(root).rglob("*"):
                if path.is_file() and path.name != "token":  # the user's own `hf auth login` file
                    assert token.encode() not in path.read_bytes(), path


def test_no_token_is_one_line_exit_2_and_nothing_written(env, hub):
    done = run_env(["env.weights"], env)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: no Hugging Face token"), done.stderr
    assert W.ACCESS_URL in lines[0] and "HF_TOKEN" in lines[0] and "hf auth login" in lines[0]
    assert not Path(env["HF_HOME"]).exists()
    assert hub.log == []  # checked before any request


def test_wrong_token_is_a_401_explained(env, hub):
    done = run_env(["env.weights"], dict(env, HF_TOKEN=WRONG))
    assert done.returncode == 2, done.stderr
    assert "token from env HF_TOKEN was refused (401" in done.stderr and W.TOKENS_URL in done.stderr
    assert "Traceback" not in done.stderr and hub.downloads() == []
    assert not (folder(env) / "blobs").exists()
    assert_secret_free(done, env["HF_HOME"])


def test_token_not_approved_yet_is_told_where_to_ask(env, hub):
    done = run_env(["env.weights"], dict(env, HF_TOKEN=NO_ACCESS))
    assert done.returncode == 1, done.stderr
    assert "no access to facebook/sam3 yet (403, gated)" in done.stderr and W.ACCESS_URL in done.stderr
    assert hub.downloads() == [] and not (folder(env) / "blobs").exists()
    assert_secret_free(done, env["HF_HOME"])


def test_dry_run_with_a_stored_login_writes_nothing(env, hub):
    hf_home = Path(env["HF_HOME"])
    hf_home.mkdir()
    (hf_home / "token").write_text(GOOD + "\n")
    done = run_env(["env.weights", "--dry-run"], env)
    assert done.returncode == 0, done.stderr
    assert "would download" in done.stdout and "nothing written" in done.stdout
    assert sorted(p.name for p in hf_home.iterdir()) == ["token"]
    assert hub.downloads() == []


def test_download_verifies_records_the_commit_and_a_second_run_downloads_nothing(env, hub):
    env = dict(env, HF_TOKEN=GOOD)
    done = run_env(["env.weights"], env)
    assert done.returncode == 0, done.stderr
    hf_home = Path(env["HF_HOME"])
    snapshot = W.local_weights(hf_home)
    assert snapshot == folder(env) / "snapshots" / hub.commit
    assert (snapshot / "sam3.pt").read_bytes() == WEIGHTS and (snapshot / "config.json").read_bytes() == CONFIG
    assert f"SAM3 checkpoint: {snapshot / 'sam3.pt'}" in done.stdout and f"commit {hub.commit}" in done.stdout
    assert (folder(env) / "refs" / "main").read_text() == hub.commit  # SAM3's own offline lookup of 'main'
    record = json.loads(W.record_path(hf_home).read_text())
    assert record["commit"] == hub.commit and record["requested"] == "main"
    assert record["files"]["sam3.pt"]["etag"] == hub.files["sam3.pt"].sha256
    assert W.job_overrides(hf_home) == {"trainer.model.checkpoint_path": str(snapshot / "sam3.pt")}
    assert W.offline_hub_environment(hf_home)["HF_HUB_OFFLINE"] == "1"
    assert len(hub.downloads()) == 2

    before = len(hub.log)
    again = run_env(["env.weights", "--json"], env)
    assert again.returncode == 0, again.stderr
    assert [f["action"] for f in json.loads(again.stdout)["files"]] == ["present", "present"]
    assert len(hub.downloads()) == 2  # no file requested again
    assert [entry[1].split("?")[0] for entry in hub.log[before:]] == ["/api/models/facebook/sam3/revision/main"]
    assert_secret_free(done, env["HF_HOME"])
    assert_secret_free(again, env["HF_HOME"])


def test_without_token_or_network_a_verified_copy_is_used(env, hub):
    assert run_env(["env.weights"], dict(env, HF_TOKEN=GOOD)).returncode == 0
    before = len(hub.log)
    no_token = run_env(["env.weights"], env)
    assert no_token.returncode == 0, no_token.stderr
    assert "no token: not checked against the hub" in no_token.stdout
    offline = run_env(["env.weights"], dict(env, HF_TOKEN=GOOD, HF_HUB_OFFLINE="1"))
    assert offline.returncode == 0, offline.stderr
    assert "hub not reachable" in offline.stdout
    assert len(hub.log) == before
    refused = run_env(["env.weights"], dict(env, HF_TOKEN=WRONG))  # an expired token does not block jobs
    assert refused.returncode == 0 and "was refused (401" in refused.stdout
    assert WRONG not in refused.stdout + refused.stderr


def test_a_cut_connection_resumes_with_range_in_the_same_run(env, hub):
    body = random.Random(7).randbytes(12_000_000)  # over huggingface_hub's 10 MB read chunk: resumes mid-file
    served = hub.add("sam3.pt", body)
    served.cut_after, served.cuts = 11_000_000, 1
    done = run_env(["env.weights"], dict(env, HF_TOKEN=GOOD))
    assert done.returncode == 0, done.stderr
    gets = [entry for entry in hub.downloads() if entry[1].endswith("/sam3.pt")]
    assert len(gets) == 2 and gets[0][2] is None and gets[1][2] == "bytes=10485760-", gets
    assert (W.local_weights(Path(env["HF_HOME"])) / "sam3.pt").read_bytes() == body
    assert not list((folder(env) / "blobs").glob("*.incomplete"))


def test_a_download_that_fails_midway_is_completed_by_the_next_run(env, hub):
    served = hub.files["sam3.pt"]
    served.cut_after, served.cuts, served.fail_gets = 500_000, 1, 1  # cut, then the resume attempt gets a 503
    env = dict(env, HF_TOKEN=GOOD)
    first = run_env(["env.weights"], env)
    assert first.returncode == 1, first.stderr
    assert "download of sam3.pt stopped" in first.stderr and "re-run env.weights" in first.stderr
    assert "Traceback" not in first.stderr
    assert not list((folder(env) / "blobs").glob("*.incomplete"))
    assert W.local_weights(Path(env["HF_HOME"])) is None

    second = run_env(["env.weights"], env)
    assert second.returncode == 0, second.stderr
    assert (W.local_weights(Path(env["HF_HOME"])) / "sam3.pt").read_bytes() == WEIGHTS
    assert sum(entry[1].endswith("/config.json") for entry in hub.downloads()) == 1  # kept from the first run
    assert_secret_free(second, env["HF_HOME"])


def test_a_killed_download_leaves_no_orphan_after_the_next_run(env, hub):
    served = hub.files["sam3.pt"]
    served.rate = 400_000  # ~5 s for 2 MB: time to kill it
    env = dict(env, HF_TOKEN=GOOD)
    cmd = [str(Path(sys.executable).with_name("inv")), "--search-root", str(ROOT), "env.weights"]
    process = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    blobs = folder(env) / "blobs"
    deadline = time.monotonic() + 30
    while (served.sent < 400_000 or not list(blobs.glob("*.incomplete"))) and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert list(blobs.glob("*.incomplete")), "the download was not caught mid-way"

    served.rate = None
    done = run_env(["env.weights"], env)
    assert done.returncode == 0, done.stderr
    assert "removed 1 partial download(s)" in done.stdout
    assert not list(blobs.glob("*.incomplete"))
    assert (W.local_weights(Path(env["HF_HOME"])) / "sam3.pt").read_bytes() == WEIGHTS


def test_a_corrupted_blob_is_detected_and_downloaded_again(env, hub):
    env = dict(env, HF_TOKEN=GOOD)
    assert run_env(["env.weights"], env).returncode == 0
    blob = folder(env) / "blobs" / hub.files["sam3.pt"].sha256
    blob.write_bytes(b"\0" * len(WEIGHTS))  # same size, wrong bytes
    done = run_env(["env.weights"], env)
    assert done.returncode == 0, done.stderr
    assert "re-downloaded" in done.stdout and "cached copy is bad" in done.stdout
    assert blob.read_bytes() == WEIGHTS and len(hub.downloads()) == 3

    stat = blob.stat()  # corrupted again, mtime kept: only --verify re-hashes an unchanged-looking file
    blob.write_bytes(b"\1" * len(WEIGHTS))
    os.utime(blob, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    quick = run_env(["env.weights", "--json"], env)
    assert [f["action"] for f in json.loads(quick.stdout)["files"]] == ["present", "present"]
    full = run_env(["env.weights", "--verify"], env)
    assert full.returncode == 0 and "re-downloaded" in full.stdout
    assert blob.read_bytes() == WEIGHTS


def test_a_disk_too_small_is_refused_before_downloading(env, hub):
    done = run_env(["env.weights"], dict(env, HF_TOKEN=GOOD, INVOKE_HW_DISK_WEIGHTS_GB="1000000000"))
    assert done.returncode == 1, done.stderr
    assert "not enough disk for the SAM3 weights" in done.stderr and "hw.disk_weights_gb" in done.stderr
    assert "point paths.hf_home at a larger disk" in done.stderr
    assert hub.downloads() == [] and not (folder(env) / "blobs").exists()


def test_an_unknown_revision_is_a_config_error(env, hub):
    done = run_env(["env.weights", "--revision", "no-such-branch"], dict(env, HF_TOKEN=GOOD))
    assert done.returncode == 2 and "revision 'no-such-branch' does not exist" in done.stderr


def test_token_lookup_follows_huggingface_hub(tmp_path):
    (tmp_path / "token").write_text(" stored \n")
    assert W.find_token(tmp_path, {"HF_TOKEN": "a", "HUGGING_FACE_HUB_TOKEN": "b"}) == ("a", "env HF_TOKEN")
    assert W.find_token(tmp_path, {"HUGGING_FACE_HUB_TOKEN": "b"}) == ("b", "env HUGGING_FACE_HUB_TOKEN")
    assert W.find_token(tmp_path, {}) == ("stored", f"stored login {tmp_path / 'token'}")
    assert W.find_token(tmp_path / "none", {}) == (None, "")


def test_blob_check_knows_lfs_sha256_and_git_sha1_names(tmp_path):
    from support.hub_server import git_blob_sha1

    path = tmp_path / "blob"
    path.write_bytes(CONFIG)
    assert W.blob_problem(path, git_blob_sha1(CONFIG), len(CONFIG)) is None
    assert "does not match its name" in W.blob_problem(path, "0" * 40, len(CONFIG))
    assert "expected" in W.blob_problem(path, git_blob_sha1(CONFIG), len(CONFIG) + 1)
    assert W.blob_problem(tmp_path / "nothing", "0" * 64, 1) == "missing"
    assert W.local_weights(tmp_path) is None


@pytest.mark.skipif(not (ROOT / ".venv-train" / "bin" / "python").exists(), reason="no training env (.venv-train)")
def test_run_train_points_sam3_at_the_verified_local_checkpoint(env, tmp_path):
    """After env.weights, a SAM3 config's model loads the local sam3.pt (jobs run offline), not the hub."""
    env = dict(env, HF_TOKEN=GOOD, SAM3_CONFIGS_DIR=str(require_configs()))
    assert run_env(["env.weights"], env).returncode == 0
    done = run_env(
        ["run.train", "--config", "roboflow_v100_full_ft_100_images", "--datasets", "actions", "--dry-run"], env
    )
    assert done.returncode == 0, done.stderr
    snapshot = next((tmp_path / "hf" / "hub" / "models--facebook--sam3" / "snapshots").iterdir())
    assert f"+    checkpoint_path: {snapshot / 'sam3.pt'}" in done.stdout
    assert "+    load_from_HF: false" in done.stdout and "no verified SAM3 weights" not in done.stdout


@pytest.mark.skipif(not (ROOT / ".venv-train" / "bin" / "python").exists(), reason="no training env (.venv-train)")
def test_run_train_fetches_the_weights_first_when_its_config_loads_sam3(env, hub, tmp_path):
    """Makefile-style: a config with SAM3's model builder gets env.weights before it launches (once);
    --dry-run only says so. The job (tests/support/job_trainers/checkpoint_probe.py as the trainer) is handed the
    verified checkpoint, offline."""
    import yaml

    config = yaml.safe_load((ROOT / "demo" / "demo_rf100vl_cpu.yaml").read_text())
    config["trainer"] = {
        "_target_": "checkpoint_probe.CheckpointProbe",
        "data": config["trainer"]["data"],
        "model": {"_target_": "sam3.model_builder.build_sam3_image_model", "eval_mode": False},
    }
    path = tmp_path / "demo-with-sam3-model.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    env = dict(
        env,
        HF_TOKEN=GOOD,
        ROBOFLOW_VL_100_ROOT=str(tmp_path / "rf"),
        PYTHONPATH=str(ROOT / "tests" / "support" / "job_trainers"),
    )
    assert run_env(["data.synth", "--root", str(tmp_path / "rf"), "--datasets", "actions"], env).returncode == 0
    args = ["run.train", "--config", str(path), "--datasets", "actions", "--name", "w"]

    dry = run_env([*args, "--dry-run"], env)
    assert dry.returncode == 0, dry.stderr
    assert "no verified SAM3 weights under" in dry.stdout and "runs env.weights first" in dry.stdout
    assert hub.downloads() == []

    done = run_env(args, env, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert done.stdout.index("env.weights facebook/sam3@main") < done.stdout.index("pre-flight")
    checkpoint = next((folder(env) / "snapshots").iterdir()) / "sam3.pt"
    log = (tmp_path / "exp" / "w" / "actions" / "train.log").read_text()
    assert f"would load {checkpoint} (present), load_from_HF=False" in log
    fetched = len(hub.downloads())
    assert fetched >= 1

    again = run_env(args, env, timeout=300)
    assert again.returncode == 0 and "env.weights" not in again.stdout and len(hub.downloads()) == fetched
    assert_secret_free(done, env["HF_HOME"], tmp_path / "exp")


def test_a_dry_run_without_the_hub_plans_and_exits_0(clean_env, tmp_path):
    """Offline, a dry run says what it would download, that sizes are unknown, and succeeds; a real run
    fails in one line. Credentials in HF_ENDPOINT's URL are never shown."""
    env = dict(
        clean_env,
        HF_ENDPOINT=f"http://me:hubpass@127.0.0.1:{closed_port()}",
        HF_HOME=str(tmp_path / "hf"),
        HF_TOKEN=GOOD,
        INVOKE_HW_DISK_WEIGHTS_GB="0.001",
    )
    dry = run_env(["env.weights", "--dry-run"], env)
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "would download" in dry.stdout and "size unknown (hub not reachable)" in dry.stdout
    assert "note: the hub at http://***@127.0.0.1:" in dry.stdout and "commit unknown offline" in dry.stdout
    assert not (tmp_path / "hf" / "hub").exists() and GOOD not in dry.stdout + dry.stderr
    real = run_env(["env.weights"], env)
    assert real.returncode != 0 and "cannot reach the Hugging Face hub" in real.stderr
    assert len(real.stderr.strip().splitlines()) == 1
    assert "hubpass" not in dry.stdout + dry.stderr + real.stdout + real.stderr  # credentials in HF_ENDPOINT
