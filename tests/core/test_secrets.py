"""The one secret test (tasks/lib/core/secrets.py): by name, by value, and the scrub every message goes
through; a positive and a negative example for each row of its table."""

import pytest

from tasks.lib.core import secrets

GITHUB = "ghp_" + "A1b2C3d4E5" * 3 + "F6g7H8"  # 36 characters after the prefix
HF = "hf_" + "aBcDeFgHiJ" * 3 + "kLmN"
AWS = "AKIA" + "IOSFODNN7EXAMPLE"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
PEM = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----"
COMMIT = "0123456789abcdef0123456789abcdef01234567"  # a git commit: 40 hex digits, like a W&B key

SHAPES = [  # (a value holding a secret, what must be gone from it once scrubbed)
    ("postgres://u:canary-db-pw@db/x", "canary-db-pw"),
    ("https://proxy-user:pr0xy-pw@proxy.example:3128", "pr0xy-pw"),
    ("s3://AKIA123:secret@bucket/x", "AKIA123:secret"),
    ("https://api.example/x?api_key=k3y-value&nocache=true", "k3y-value"),
    ("https://store.example/a.zip?X-Goog-Signature=abc123&key=zzz", "abc123"),
    ("DefaultEndpointsProtocol=https;AccountName=a;AccountKey=" + "Zm9vYmFy" * 6 + "==", "Zm9vYmFy"),
    (PEM, "b3BlbnNzaC1rZXktdjEAAAAA"),
    (JWT, "eyJzdWIiOiIxMjM0NTY3ODkwIn0"),
    (HF, HF),
    (GITHUB, GITHUB),
    ("github_pat_" + "11ABCDEFG0" * 3 + "_" + "x" * 30, "11ABCDEFG0"),
    ("glpat-" + "xYz12" * 4, "xYz12"),
    ("xoxb-1234567890-abcdefghij", "abcdefghij"),
    (AWS, AWS),
    ("AIza" + "SyA1" * 8 + "bcd", "SyA1"),
    ("sk-proj-" + "Ab1" * 10, "Ab1Ab1"),
    ("npm_" + "a1B2" * 9, "a1B2"),
    ("pypi-AgEIcHlwaS5vcmc" + "Q" * 40, "QQQQ"),
]
HARMLESS = [
    "/data/rf100vl/actions/train",
    "ssh://git@github.com/org/repo.git",  # a user, no password
    "http://localhost:8080/path",
    COMMIT,
    "sam3.model.decoder.TransformerDecoder",
    "scratch.lr_scale=0.1",
    "task-managed-by-someone-with-a-long-name",  # sk- only at a word's start
    "ghp_short",
    "https://wandb.ai/authorize",
]


@pytest.mark.parametrize(("value", "gone"), SHAPES)
def test_each_secret_shape_is_found_and_scrubbed_in_a_sentence(value, gone):
    assert secrets.value_looks_secret(value)
    shown = secrets.scrub(f"failed: {value} (retrying)", environ={})
    assert gone not in shown and "***" in shown and shown.startswith("failed: ") and shown.endswith(" (retrying)")


@pytest.mark.parametrize("value", HARMLESS)
def test_paths_plain_urls_commits_and_config_keys_are_no_secrets(value):
    assert not secrets.value_looks_secret(value)
    assert secrets.scrub(value, environ={}) == value


def test_url_credentials_hide_user_and_password_and_keep_the_host():
    assert secrets.scrub("https://user:pw@host/path", environ={}) == "https://***@host/path"
    assert secrets.scrub("s3://AKIA123:secret@bucket/x", environ={}) == "s3://***@bucket/x"


def test_a_wandb_key_is_a_secret_only_under_a_wandb_name():
    assert secrets.value_looks_secret(COMMIT, "WANDB_KEY") and secrets.value_looks_secret(COMMIT, "x.wandb_api_key")
    assert not secrets.value_looks_secret(COMMIT, "GIT_COMMIT") and not secrets.value_looks_secret(COMMIT)
    assert secrets.value_looks_secret("local-" + COMMIT, "WANDB_API_KEY")


@pytest.mark.parametrize(
    "name",
    [
        "HF_TOKEN",
        "WANDB_API_KEY",
        "AWS_SECRET_ACCESS_KEY",
        "GITHUB_TOKEN",
        "MY_DB_PASSWORD",
        "GOOGLE_APPLICATION_CREDENTIALS",
        "SSH_AUTH_SOCK",
        "MY_ORG_PAT",
        "DB_PASS",
        "X_CREDS",
        "SIGNING_KEY",
        "AZURE_STORAGE_KEY",
        "SAM3_DVC_SSH_PASSPHRASE",
    ],
)
def test_secret_names(name):
    assert secrets.name_looks_secret(name)


@pytest.mark.parametrize(
    "name",
    [
        "PATH",
        "PWD",
        "HOME",
        "SAM3_TASKS_WANDB_KEY_FILE",
        "SAM3_DVC_SSH_KEYFILE",
        "KEYBOARD_LAYOUT",
        "PATTERN",
        "PASSAGE",
        "HF_HOME",
        "CUDA_VISIBLE_DEVICES",
    ],
)
def test_names_that_are_no_secret(name):
    assert not secrets.name_looks_secret(name)


def test_scrub_hides_the_environments_secret_values_and_the_known_ones_also_url_quoted():
    environ = {
        "MY_SERVICE_TOKEN": "canary value/with+chars",
        "X_CRED_URL": "plain-but-named-secret",
        "SHORT_TOKEN": "1",
        "GOOGLE_APPLICATION_CREDENTIALS": "/home/me/key.json",
        "OTHER": "canary value",
    }
    text = "a canary value/with+chars b canary%20value%2Fwith%2Bchars c plain-but-named-secret d 1 e /home/me/key.json"
    shown = secrets.scrub(text + " f given-secret", "given-secret", environ=environ)
    assert shown == "a *** b *** c *** d 1 e /home/me/key.json f ***"  # a path to a key file is no secret
    assert secrets.secret_values(environ) == ["canary value/with+chars", "plain-but-named-secret"]


def test_a_variable_is_secret_by_its_name_or_by_its_value():
    assert secrets.is_secret("DATABASE_URL", "postgres://u:pw@db/x") and secrets.is_secret("X_CRED", HF)
    assert secrets.is_secret("HF_TOKEN", "anything") and not secrets.is_secret("HTTPS_PROXY", "http://proxy:3128")


def test_mask_keeps_numbers_and_lists_and_secret_status_never_shows_a_value():
    assert secrets.mask(8) == 8 and secrets.mask(0.5) == 0.5 and secrets.mask(True) is True
    assert secrets.mask(["A", "postgres://u:pw@db/x"]) == ["A", "postgres://***@db/x"]
    status = secrets.secret_status(
        {"HF_TOKEN": "hf_abcdef123456", "WANDB_API_KEY": "", "DATABASE_URL": "x://u:p@h", "PATH": "/bin"}
    )
    assert ("HF_TOKEN", "set (hidden)") in status and ("WANDB_API_KEY", "not set") in status
    assert status[-1] == ("DATABASE_URL", "set (hidden)") and "PATH" not in dict(status)
    assert "hf_abcdef123456" not in repr(status)
