"""SAM3's stats files (train_stats.json, val_stats.json: JSON lines, one per epoch or validation),
read to their last complete line; a last line cut short by a killed writer is passed over."""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

try:
    from orjson import loads as _loads
except ImportError:  # orjson is in requirements.txt; plain json reads the same
    _loads = json.loads


@dataclass
class Stats:
    """The last complete line of a JSONL stats file SAM3 writes, and what was skipped to find it."""

    last: dict[str, Any] | None
    lines: int  # complete lines
    truncated: bool  # a last line that does not parse (the writer was stopped mid-line) was skipped


def read_stats(path: Path) -> Stats:
    try:
        raw = path.read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        return Stats(None, 0, False)
    lines = [line for line in raw.split(b"\n") if line.strip()]
    truncated = False
    while lines:
        try:
            last = _loads(lines[-1])
        except ValueError:
            truncated, lines = True, lines[:-1]
            continue
        if isinstance(last, dict):
            return Stats(last, len(lines), truncated)
        truncated, lines = True, lines[:-1]
    return Stats(None, 0, truncated)
