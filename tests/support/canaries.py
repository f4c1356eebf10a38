"""Canary values for every secret the project knows (and names that only look secret), and a scan for them."""

from pathlib import Path

# A canary in every secret the project knows, and in names that only look secret.
CANARIES = {name: f"canary-{name.lower()}-0123456789abcdef0123456789" for name in (
    "HF_TOKEN", "WANDB_API_KEY", "ROBOFLOW_API_KEY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
    "AZURE_STORAGE_KEY", "AZURE_STORAGE_CONNECTION_STRING", "GOOGLE_APPLICATION_CREDENTIALS", "SAM3_DVC_SSH_PASSWORD",
    "MY_SERVICE_TOKEN", "DB_PASSWORD", "SOME_API_KEY")}  # fmt: skip


def leaked(texts, *roots) -> list[str]:
    """Every canary value found in the texts or in a file under roots."""
    found = [name for name, value in CANARIES.items() if any(value in text for text in texts)]
    for root in roots:
        for path in Path(root).rglob("*"):
            if path.is_file() and not path.is_symlink():
                data = path.read_bytes()
                found += [f"{name} in {path}" for name, value in CANARIES.items() if value.encode() in data]
    return found
