"""The one test of what is a secret, by its name and by its value; every part of the project asks this
module: the job environment (run/job_env.py), the launch record (run/launch_record.py: the command and
--set values, by value only), `inv config.show`, and every message we print or store (data/transfer.py,
env/tracking.py, env/dvc_setup.py, env/weights.py, env/trainenv.py).

By name (environment variables only): the variables the project knows (SECRET_ENV_VARS), names that
contain TOKEN, SECRET, PASSWORD, API_KEY, CREDENTIAL, ..., and names with a word PAT, PASS, CRED or CREDS,
or whose last word is KEY. Config keys are never judged by name: SAM3 has model keys such as
`presence_token`, and a masked config value would drop out of a run's identity.

By value (anything): credentials in URLs (`scheme://user:password@host`, `?token=...` and other
credential query parameters), Azure `AccountKey=`, PEM private keys, JWTs, and the token shapes of
Hugging Face (hf_), GitHub (ghp_, gho_, ghu_, ghs_, ghr_, github_pat_), GitLab (glpat-), Slack (xox?-),
AWS access key ids (AKIA, ASIA), Google API keys (AIza), OpenAI-style keys (sk-), npm (npm_) and PyPI
(pypi-). A W&B key is 40 hex digits, like a git commit: only a value under a name with WANDB in it counts.
`scrub` also hides the values of the environment's secret variables wherever they appear.

Why a regex table of our own and not detect-secrets (Yelp's, the maintained library on PyPI; 1.5.0, May
2024): tried on these shapes, it finds no Hugging Face or Google key, no OpenAI project key, and for a
GitHub or GitLab token it returns only the prefix ('ghp') as the secret, so it cannot say which
characters to hide; it is built to scan source files (plugins loaded by name into a global settings
context) and its entropy plugins flag git commits and checkpoint hashes, which the launch record must
keep. The table below is what we would have had to configure it down to, without a dependency in the
launcher; tests/core/test_secrets.py holds a positive and a negative example for every row.
"""

import functools
import os
import re
import urllib.parse
from collections.abc import Iterable, Mapping
from typing import Any

# Environment variables whose values are secrets: reported as set/not set, never shown.
SECRET_ENV_VARS = (
    "HF_TOKEN",
    "WANDB_API_KEY",
    "ROBOFLOW_API_KEY",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AZURE_STORAGE_KEY",
    "AZURE_STORAGE_CONNECTION_STRING",
    "GDRIVE_CREDENTIALS_DATA",
)
NAME_PARTS = (
    "TOKEN",
    "SECRET",
    "PASSWORD",
    "PASSWD",
    "PASSPHRASE",
    "API_KEY",
    "APIKEY",
    "CREDENTIAL",
    "PRIVATE_KEY",
    "ACCESS_KEY",
    "CONNECTION_STRING",
    "SSH_AUTH_SOCK",
)
NAME_WORDS = frozenset({"PAT", "PASS", "CRED", "CREDS"})
MASK = "***"
MIN_LENGTH = 6  # shorter values of secret-named variables are not hunted for in text ("true" would be everywhere)

_QUERY_NAMES = (
    "api_key|apikey|access_token|token|key|signature|sig|password|passwd|secret|client_secret|"
    "x-amz-signature|x-amz-credential|x-amz-security-token|x-goog-signature|x-goog-credential"
)
# (what it is, the pattern; the named group `s` is what is hidden, else the whole match)
VALUE_PATTERNS = tuple(
    (label, re.compile(pattern))
    for label, pattern in (
        ("URL credentials", r"[A-Za-z][A-Za-z0-9+.-]*://(?P<s>[^\s/@:]*:[^\s/@]+)@"),
        ("URL query credential", rf"(?i)[?&;](?:{_QUERY_NAMES})=(?P<s>[^&\s\"'#<>]+)"),
        ("Azure account key", r"AccountKey=(?P<s>[A-Za-z0-9+/=]{20,})"),
        (
            "PEM private key",
            r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----[\s\S]*?(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----|\Z)",
        ),
        ("JWT", r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
        ("Hugging Face token", r"\bhf_[A-Za-z0-9]{30,}\b"),
        ("GitHub token", r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})\b"),
        ("GitLab token", r"\bglpat-[A-Za-z0-9_-]{20,}"),
        ("Slack token", r"\bxox[abposr]-[A-Za-z0-9-]{10,}"),
        ("AWS access key id", r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"),
        ("Google API key", r"\bAIza[0-9A-Za-z_-]{35}"),
        ("OpenAI-style key", r"\bsk-(?:[A-Za-z]+-)?[A-Za-z0-9_-]{20,}"),
        ("npm token", r"\bnpm_[A-Za-z0-9]{36}\b"),
        ("PyPI token", r"\bpypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{20,}"),
    )
)
_WANDB_KEY = re.compile(r"(?:[A-Za-z0-9]+-)?[A-Za-z0-9_]{40,}")


def name_looks_secret(name: str) -> bool:
    """Whether an environment variable's name says it holds a secret."""
    upper = name.upper()
    words = re.split(r"[^A-Z0-9]+", upper)
    return (
        name in SECRET_ENV_VARS
        or any(part in upper for part in NAME_PARTS)
        or bool(NAME_WORDS.intersection(words))
        or words[-1] == "KEY"
    )


def spans(text: str) -> list[tuple[int, int]]:
    """Where the secrets are in a text, by their shape: (start, end) pairs, sorted, not overlapping."""
    found = []
    for _, pattern in VALUE_PATTERNS:
        for match in pattern.finditer(text):
            found.append(match.span("s") if "s" in pattern.groupindex else match.span())
    merged: list[tuple[int, int]] = []
    for start, end in sorted(found):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def value_looks_secret(value: str, name: str = "") -> bool:
    """Whether a value holds a secret by its shape; a W&B-shaped key counts only under a WANDB name."""
    wandb_key = "WANDB" in name.upper() and _WANDB_KEY.fullmatch(value.strip()) is not None
    return wandb_key or bool(spans(value))


def is_secret(name: str, value: str) -> bool:
    """The test for an environment variable: by its name or by its value."""
    return name_looks_secret(name) or value_looks_secret(value, name)


def _hunted(value: str) -> bool:
    """A secret variable's value worth looking for in text: long enough, and not a path to a file that
    holds the secret (GOOGLE_APPLICATION_CREDENTIALS, SSH_AUTH_SOCK name files, and messages need them)."""
    return len(value) >= MIN_LENGTH and not value.startswith(("/", "~/", "./"))


@functools.lru_cache(maxsize=8)
def _values_of(items: tuple[tuple[str, str], ...]) -> tuple[str, ...]:
    values = {value.strip() for name, value in items if is_secret(name, value) and _hunted(value.strip())}
    return tuple(sorted(values, key=len, reverse=True))


def secret_values(environ: Mapping[str, str] | None = None) -> list[str]:
    """The values of the environment's secret variables (by name or value), longest first."""
    environ = os.environ if environ is None else environ
    return list(_values_of(tuple(sorted(environ.items()))))


def scrub(text: Any, *known: str | None, environ: Mapping[str, str] | None = None) -> str:
    """Text safe to print or store: the `known` secrets, the environment's secret values (environ, by
    default os.environ; {} for none) and everything shaped like a secret replaced by ***."""
    text = str(text)
    for start, end in reversed(spans(text)):  # first: a URL keeps its host, only its user:password@ is hidden
        text = text[:start] + MASK + text[end:]
    for value in sorted({value for value in known if value} | set(secret_values(environ)), key=len, reverse=True):
        text = text.replace(value, MASK).replace(urllib.parse.quote(value, safe=""), MASK)
    return text


def mask(value: Any) -> Any:
    """A setting's value safe to show: numbers stay numbers, each item of a list is scrubbed."""
    if isinstance(value, bool | int | float):
        return value
    if isinstance(value, list | tuple):
        return [mask(item) for item in value]
    return scrub(value)


def secret_status(environ: Mapping[str, str], known: Iterable[str] = SECRET_ENV_VARS) -> list[tuple[str, str]]:
    """Whether each known secret is set, and every other variable the test finds secret; never a value."""
    others = sorted(name for name, value in environ.items() if name not in known and is_secret(name, value))
    return [(name, "set (hidden)" if environ.get(name) else "not set") for name in (*known, *others)]
