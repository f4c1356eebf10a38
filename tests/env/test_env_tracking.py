"""env.wandb and env.dvc through the real `inv`: W&B for real (offline runs, and login against a loopback
server), DVC for real with a local-folder remote and with an S3 remote served by moto on loopback.

Known secret values are set and every output and every file written is scanned for them (DVC credentials
may only be in .dvc/config.local).
"""

import importlib.metadata
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import files_holding
from packaging.version import Version
from support.wandb_server import WandbServer

from tasks.lib.env import dvc_setup, tracking

ROOT = Path(__file__).resolve().parents[2]
WANDB_KEY = "0c0ffee0canary0wandb0key0123456789abcdef"  # 40 characters, the classic form
AWS_CANARY = "awsCanarySecret0123456789abcdefABCDEFGHIJ"


def run_env(args, env, cwd=ROOT, timeout=180):
    return subprocess.run(
        [str(Path(sys.executable).with_name("inv")), "--search-root", str(ROOT), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def env(tool_env, tmp_path):
    return dict(tool_env, SAM3_EXPERIMENT_ROOT=str(tmp_path / "exp"))


# --- W&B -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        "a" * 40,
        "local-" + "b" * 40,
        "local-" + "b" * 39,
        "short",
        "",
        "x" * 39 + "!",
        "hdr.payload.sig",
        "a-b-" + "c" * 40,
    ],
)
def test_key_form_is_the_one_wandb_accepts(key):
    from wandb.sdk.lib.wbauth.validation import check_api_key

    assert tracking.key_problem(key) == check_api_key(key)
    assert (tracking._key_problem(key) is None) == (check_api_key(key) is None)


def test_wandb_without_a_key_is_one_line_exit_2(env):
    done = run_env(["env.wandb"], env)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "WANDB_API_KEY is not set" in done.stderr
    assert "--offline" in done.stderr and "Traceback" not in done.stderr


def test_a_malformed_key_is_refused_without_showing_it(env):
    bad = "local-0123456789canary"
    done = run_env(["env.wandb", "--offline"], dict(env, WANDB_API_KEY=bad))
    assert done.returncode == 2 and "malformed: API key must have 40+ characters" in done.stderr
    assert bad not in done.stdout + done.stderr


def test_offline_check_runs_a_real_offline_run_and_the_key_goes_nowhere(env, tmp_path):
    env = dict(
        env,
        WANDB_API_KEY=WANDB_KEY,
        INVOKE_TRACKING_WANDB_PROJECT="sam3-ft",
        INVOKE_SAM3_TRAIN_VENV=str(tmp_path / "no-venv"),
    )
    done = run_env(["env.wandb", "--offline", "--json"], env)
    assert done.returncode == 0, done.stderr
    checks = {c["check"]: c for c in json.loads(done.stdout)["checks"]}
    assert checks["offline run"]["status"] == "pass" and checks["login"]["status"] == "skip"
    assert checks["project"]["status"] == "pass" and checks["training env"]["status"] == "warn"
    assert WANDB_KEY not in done.stdout + done.stderr
    assert files_holding(WANDB_KEY, tmp_path) == []
    assert not (Path(env["HOME"]) / ".netrc").exists()


def test_login_is_proven_against_a_server_and_a_wrong_key_is_named(env, tmp_path):
    with WandbServer(WANDB_KEY) as server:
        env = dict(env, WANDB_BASE_URL=server.url)
        good = run_env(["env.wandb"], dict(env, WANDB_API_KEY=WANDB_KEY))
        assert good.returncode == 0, good.stderr
        assert "key accepted (default entity tester)" in good.stdout
        wrong_key = "f" * 40
        wrong = run_env(["env.wandb"], dict(env, WANDB_API_KEY=wrong_key))
        assert wrong.returncode == 2, wrong.stderr
        assert f"W&B at {server.url} refused the API key from env WANDB_API_KEY" in wrong.stderr
        assert any(good_auth for path, good_auth in server.log if path == "/graphql")
    for done, key in ((good, WANDB_KEY), (wrong, wrong_key)):
        assert key not in done.stdout + done.stderr
    assert files_holding(WANDB_KEY, tmp_path) == [] and not (Path(env["HOME"]) / ".netrc").exists()


def test_dry_run_contacts_nothing(env):
    done = run_env(["env.wandb", "--dry-run"], dict(env, WANDB_API_KEY=WANDB_KEY, WANDB_BASE_URL="http://127.0.0.1:9"))
    assert done.returncode == 0, done.stderr
    assert "dry run: would log in to http://127.0.0.1:9" in done.stdout


# --- DVC -------------------------------------------------------------------------------------------------


def git_repo(path: Path) -> Path:
    path.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(path)], check=True)
    (path / "data" / "ds").mkdir(parents=True)
    (path / "data" / "ds" / "a.json").write_text('{"x": 1}\n')
    return path


def dvc(args, repo, env, check=True):
    done = subprocess.run(
        [sys.executable, "-m", "dvc", *args],
        cwd=repo,
        env=dict(env, DVC_NO_ANALYTICS="1"),
        capture_output=True,
        text=True,
    )
    assert not check or done.returncode == 0, done.stderr
    return done


def test_dry_run_changes_nothing_and_shows_the_plugin_install(env, tmp_path):
    repo = git_repo(tmp_path / "repo")
    gs = run_env(["env.dvc", "--repo", str(repo), "--remote", "gs://bucket/dvc", "--dry-run"], env)
    assert gs.returncode == 0, gs.stderr
    if importlib.util.find_spec("dvc_gs") is None:
        version = importlib.metadata.version("dvc")
        assert f"-m pip install --quiet 'dvc[gs]=={version}'" in gs.stdout.replace("\n", " ")
    s3 = run_env(
        [
            "env.dvc",
            "--repo",
            str(repo),
            "--remote",
            "s3://bucket/dvc",
            "--track",
            str(repo / "data" / "ds"),
            "--dry-run",
        ],
        dict(env, AWS_ACCESS_KEY_ID="AKIACANARY", AWS_SECRET_ACCESS_KEY=AWS_CANARY),
    )
    assert s3.returncode == 0, s3.stderr
    for command in (
        "dvc init -q",
        "dvc remote add -d storage s3://bucket/dvc",
        "dvc remote modify storage verify true",
        "dvc remote modify --local storage access_key_id $AWS_ACCESS_KEY_ID secret_access_key $AWS_SECRET_ACCESS_KEY",
        "dvc add -q data/ds",
    ):
        assert command in s3.stdout, command
    assert AWS_CANARY not in s3.stdout + s3.stderr and "AKIACANARY" not in s3.stdout
    assert sorted(p.name for p in repo.iterdir()) == [".git", "data"]


def test_local_remote_round_trip_tracking_push_and_a_second_run(env, tmp_path):
    repo, remote = git_repo(tmp_path / "repo"), tmp_path / "remote"
    args = ["env.dvc", "--repo", str(repo), "--remote", str(remote), "--track", str(repo / "data" / "ds"), "--push"]
    done = run_env(args, env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "pushed and pulled a" in done.stdout and "pushed data/ds.dvc" in done.stdout
    config = (repo / ".dvc" / "config").read_text()
    assert f"url = {remote}" in config and "verify = true" in config and "remote = storage" in config
    assert (repo / "data" / "ds.dvc").exists()
    assert len(list((remote / "files" / "md5").rglob("*"))) >= 4  # the dataset (dir + file) and the canary
    again = run_env(["env.dvc", "--repo", str(repo), "--remote", str(remote), "--json"], env)
    assert again.returncode == 0, again.stderr
    details = {c["check"]: c["detail"] for c in json.loads(again.stdout)["checks"]}
    assert details["init"] == "already a DVC repository" and "already configured" in details["remote"]
    assert details["verify"] == "verify = true already set"
    assert not list(Path(env["TMPDIR"]).iterdir())  # the canary repository is gone


def test_the_task_modules_import_nothing_heavy():
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import tasks; from tasks import env; "
        "from tasks.lib.env import weights, tracking, dvc_setup; "
        "print(sorted(m for m in ('wandb', 'dvc', 'huggingface_hub', 'torch', 'rich') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code, str(ROOT)], capture_output=True, text=True)
    assert done.stdout.strip() == "[]", done.stderr


def test_bad_remote_urls_and_targets_are_config_errors(env, tmp_path):
    repo = git_repo(tmp_path / "repo")
    cases = [
        (["--remote", "http://example.com/dvc"], "scheme http:// is not one env.dvc sets up"),
        (["--remote", f"ssh://user:{AWS_CANARY}@host/dvc"], "the DVC remote URL holds a password"),
        (["--track", str(tmp_path)], "is not inside the DVC repository"),
        (["--track", str(repo / "missing")], "does not exist"),
    ]
    for extra, message in cases:
        done = run_env(["env.dvc", "--repo", str(repo), *extra, "--dry-run"], env)
        assert done.returncode == 2 and message in done.stderr, (extra, done.stderr)
        assert AWS_CANARY not in done.stdout + done.stderr
    assert sorted(p.name for p in repo.iterdir()) == [".git", "data"]


def _moto_python() -> str | None:
    try:
        ok = Version(importlib.metadata.version("moto")) >= Version("5.2.5") and importlib.util.find_spec("flask")
    except importlib.metadata.PackageNotFoundError:
        return None
    return sys.executable if ok else None


@pytest.fixture(scope="module")
def moto_s3():
    """moto's S3 server on loopback with IAM credentials enforced; yields {endpoint, bucket, key_id, secret}."""
    python = _moto_python()
    if python is None:
        pytest.skip("needs moto[server]>=5.2.5 in the launcher venv (older moto rejects aiobotocore 3's signatures)")
    process = subprocess.Popen(
        [python, str(ROOT / "tests" / "support" / "moto_s3.py")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        yield json.loads(process.stdout.readline())
    finally:
        process.stdin.close()
        process.wait(timeout=30)


def s3_client(server, secret=None):
    import botocore.session

    return botocore.session.get_session().create_client(
        "s3",
        endpoint_url=server["endpoint"],
        region_name="us-east-1",
        aws_access_key_id=server["key_id"],
        aws_secret_access_key=secret or server["secret"],
    )


def test_s3_remote_on_moto_keeps_credentials_local_and_verify_refuses_a_corrupted_object(env, tmp_path, moto_s3):
    repo = git_repo(tmp_path / "repo")
    secret = moto_s3["secret"]
    env = dict(env, AWS_ACCESS_KEY_ID=moto_s3["key_id"], AWS_SECRET_ACCESS_KEY=secret)
    args = [
        "env.dvc",
        "--repo",
        str(repo),
        "--remote",
        "s3://dvc/store",
        "--endpoint-url",
        moto_s3["endpoint"],
        "--track",
        str(repo / "data" / "ds"),
        "--push",
    ]
    done = run_env(args, env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "pushed and pulled a" in done.stdout and "pushed data/ds.dvc" in done.stdout
    local = repo / ".dvc" / "config.local"
    assert secret in local.read_text() and oct(local.stat().st_mode & 0o777) == "0o600"
    assert "verify = true" in (repo / ".dvc" / "config").read_text()
    subprocess.run(["git", "-C", str(repo), "check-ignore", "-q", ".dvc/config.local"], check=True)
    assert secret not in done.stdout + done.stderr
    assert files_holding(secret, tmp_path, allow={local}) == []

    # The remote object of data/ds/a.json gets other bytes; with verify = true the pull must refuse it.
    import hashlib

    md5 = hashlib.md5((repo / "data" / "ds" / "a.json").read_bytes()).hexdigest()
    s3_client(moto_s3).put_object(Bucket="dvc", Key=f"store/files/md5/{md5[:2]}/{md5[2:]}", Body=b'{"x": 2}\n')
    (repo / "data" / "ds" / "a.json").unlink()
    import shutil

    shutil.rmtree(repo / ".dvc" / "cache")
    refused = dvc(["pull"], repo, env, check=False)
    assert refused.returncode != 0
    assert not (repo / "data" / "ds" / "a.json").exists()
    # The same pull without verify takes the corrupted bytes silently: why env.dvc sets it.
    dvc(["remote", "modify", "storage", "verify", "false"], repo, env)
    accepted = dvc(["pull"], repo, env, check=False)
    assert accepted.returncode == 0 and (repo / "data" / "ds" / "a.json").read_text() == '{"x": 2}\n'


def test_s3_wrong_credentials_are_named_as_such(env, tmp_path, moto_s3):
    repo = git_repo(tmp_path / "repo")
    wrong = "wrongSecret" + AWS_CANARY
    env = dict(env, AWS_ACCESS_KEY_ID=moto_s3["key_id"], AWS_SECRET_ACCESS_KEY=wrong)
    done = run_env(
        ["env.dvc", "--repo", str(repo), "--remote", "s3://dvc/wrong", "--endpoint-url", moto_s3["endpoint"]], env
    )
    assert done.returncode == 1
    assert "refused the credentials on push" in done.stderr and "AWS_SECRET_ACCESS_KEY" in done.stderr
    assert done.stderr.strip().count("\n") == 0, done.stderr
    assert wrong not in done.stdout + done.stderr
    assert files_holding(wrong, tmp_path, allow={repo / ".dvc" / "config.local"}) == []


def test_urls_map_to_the_plugin_dvc_needs():
    assert dvc_setup.parse_remote("s3://b/p", "r").kind.extra == "s3"
    assert dvc_setup.parse_remote("gs://b/p", "r").kind.plugin == "dvc_gs"
    assert dvc_setup.parse_remote("azure://c/p", "r").kind.plugin == "dvc_azure"
    assert dvc_setup.parse_remote("ssh://user@host/p", "r").kind.plugin == "dvc_ssh"
    local = dvc_setup.parse_remote("relative/store", "r")
    assert local.kind.scheme == "local" and Path(local.url).is_absolute()
    assert dvc_setup.parse_remote("gs://b/p", "r", "http://x").endpoint == ""  # only S3 has an endpoint
    with pytest.raises(dvc_setup.ConfigError):
        dvc_setup.parse_remote("s3://b/p", "bad name")
    assert dvc_setup.explain_failure("push", dvc_setup.parse_remote("s3://b", "r"), "NoSuchBucket").startswith(
        "remote 'r' (s3://b) does not exist"
    )
