"""Rendering every view shares: one HTML page shell, and numbered output folders.

Reports (papers), leaderboards (tournaments), the nightly dashboard and table
versions all write a folder that appears whole or not at all (built under a temp
name, then renamed to the next free number) and, for people, a self-contained HTML
page with one look. Keeping both here means a fix to either applies to every view.
"""

from __future__ import annotations

import html
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

BASE_CSS = (
    "body{font-family:system-ui,sans-serif;max-width:75em;margin:2em auto;padding:0 1em}"
    "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.3em .6em}"
    "th{background:#f4f4f4}code{background:#f4f4f4}img{max-width:100%}"
)


def html_page(title: str, body: str, css: str = "") -> str:
    """A complete, self-contained HTML document (no external assets)."""
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{BASE_CSS}{css}</style></head>"
        f"<body>{body}</body></html>\n"
    )


def numbers(root: Path, prefix: str = "") -> list[int]:
    """The numbered folders under root (`<prefix><n>`), ascending."""
    if not root.is_dir():
        return []
    out = []
    for p in root.iterdir():
        tail = p.name[len(prefix) :] if p.name.startswith(prefix) else ""
        if p.is_dir() and tail.isdigit():
            out.append(int(tail))
    return sorted(out)


def write_numbered(root: Path, fill: Callable[[Path, int], None], prefix: str = "") -> int:
    """Build a folder with `fill(tmp, n)` and rename it to `root/<prefix><n>`, the next
    free number. `fill` may run again with a higher n when another process takes the
    number first; nothing is ever overwritten and a failure leaves nothing behind."""
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=".tmp-"))
    try:
        while True:
            n = (numbers(root, prefix) or [0])[-1] + 1
            fill(tmp, n)
            try:
                os.rename(tmp, root / f"{prefix}{n}")
                return n
            except OSError:
                if not (root / f"{prefix}{n}").exists():
                    raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
