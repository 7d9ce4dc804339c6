"""LoadGen's log files read back (summary `key : value` lines, detail `:::MLLOG` JSON).

A module of its own without LoadGen or torch, so that any harness (the home-made
engine's, vLLM's) parses its logs in the script's process with nothing heavy loaded.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any


def parse_summary(path: Path) -> dict[str, Any]:
    """Key: value lines of mlperf_log_summary.txt (numbers converted)."""
    out: dict[str, Any] = {}
    for line in path.read_text().splitlines():
        m = re.match(r"^\s*([^:=]+?)\s*:\s*(.+?)\s*$", line)
        if not m:
            continue
        key, val = m.group(1), m.group(2)
        try:
            out[key] = float(val)
        except ValueError:
            out[key] = val
    return out


def parse_detail(path: Path) -> dict[str, Any]:
    """`:::MLLOG {json}` records of mlperf_log_detail.txt as {key: value}."""
    out: dict[str, Any] = {}
    for line in path.read_text().splitlines():
        if ":::MLLOG" not in line:
            continue
        rec = json.loads(line.split(":::MLLOG", 1)[1])
        out[rec.get("key")] = rec.get("value")
    return out
