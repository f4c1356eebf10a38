"""Canary values for every secret the project knows, names that only look secret, and secrets that only
their value gives away (under names no list knows, or names jobs are allowed); and a scan for them."""

import re
from pathlib import Path

# A canary in every secret the project knows, and in names that only look secret.
BY_NAME = {
    name: f"canary-{name.lower()}-0123456789abcdef0123456789"
    for name in (
        "HF_TOKEN",
        "WANDB_API_KEY",
        "ROBOFLOW_API_KEY",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AZURE_STORAGE_KEY",
        "AZURE_STORAGE_CONNECTION_STRING",
        "GOOGLE_APPLICATION_CREDENTIALS",
        "SAM3_DVC_SSH_PASSWORD",
        "MY_SERVICE_TOKEN",
        "DB_PASSWORD",
        "SOME_API_KEY",
    )
}
# Secrets found by their shape: a password in a URL (under a name no list knows, and under SAM3_*, which
# jobs get), a GitHub personal access token, Hugging Face tokens (one under HF_*, which jobs get).
BY_VALUE = {
    "DATABASE_URL": "postgres://u:canary-database-url-0123456789abcdef@db/x",
    "SAM3_DATA_URL": "https://u:canary-sam3-data-url-0123456789abcdef@data.example/x",
    "MY_ORG_PAT": "ghp_" + "canary0my0org0pat".ljust(36, "0"),
    "X_CRED": "hf_" + "canary0x0cred".ljust(34, "0"),
    "HF_X_UPLOAD": "hf_" + "canary0hf0x0upload".ljust(34, "0"),
}
CANARIES = {**BY_NAME, **BY_VALUE}


def needle(value: str) -> str:
    """What must never show of a canary: a URL's password, else the whole value."""
    password = re.search(r"://[^:/@]*:([^@]+)@", value)
    return password.group(1) if password else value


def leaked(texts, *roots) -> list[str]:
    """Every canary found in the texts or in a file under roots."""
    found = [name for name, value in CANARIES.items() if any(needle(value) in text for text in texts)]
    for root in roots:
        for path in Path(root).rglob("*"):
            if path.is_file() and not path.is_symlink():
                data = path.read_bytes()
                found += [f"{name} in {path}" for name, value in CANARIES.items() if needle(value).encode() in data]
    return found
