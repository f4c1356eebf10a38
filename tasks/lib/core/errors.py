"""Exceptions that carry a one-line message with the fix, and the exit code they mean.

Exit codes (documented in README.md):
  0  success (warnings allowed)
  1  a check failed (hw.check, data.validate, pre-flight)
  2  bad configuration or usage (unknown key, bad value, bad flag)
  3  no NVIDIA GPU found (pass --allow-no-gpu for CPU-only flows)
  4  busy: another launch of the same run holds its lock (wait for it, then try again)
"""

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_CONFIG = 2
EXIT_NO_GPU = 3
EXIT_BUSY = 4


class ToolError(Exception):
    """An expected failure: one line for the user, with the fix, and an exit code."""

    code = EXIT_CHECK_FAILED


class ConfigError(ToolError):
    """A configuration value or a flag is wrong."""

    code = EXIT_CONFIG
