"""`efflab site serve`: the built site on localhost, rebuilt when results/ changes.

For a quick look only: the standard library's threaded HTTP server, bound to
127.0.0.1. A watcher thread compares a cheap fingerprint of results/ (the folders'
and the ledgers'/history's modification times — adding a record changes its folder's
mtime — never a walk over every record) and rebuilds; the build swaps the site folder
in whole, so a request never sees half a site.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

from efflab.core import layout
from efflab.site.build import build


def fingerprint(repo: Path, out: Path) -> tuple:
    """Modification times of results/'s folders two levels down, and of a few files."""
    root = layout.results_dir(repo)
    marks: list[tuple[str, int]] = []
    skip = {out.resolve(), (root / "site-screenshots").resolve()}

    def add(p: Path) -> None:
        try:
            marks.append((str(p), os.stat(p).st_mtime_ns))
        except OSError:
            pass

    if not root.is_dir():
        return ()
    add(root)
    for d in sorted(root.iterdir()):
        if not d.is_dir() or d.resolve() in skip or d.name.startswith("."):
            continue
        add(d)
        for sub in d.iterdir():
            if sub.is_dir():
                add(sub)
                for leaf in ("runs", "tables", "ledger.jsonl"):
                    if (sub / leaf).exists():
                        add(sub / leaf)
        for leaf in ("runs", "tables", "history.jsonl"):
            if (d / leaf).exists():
                add(d / leaf)
    return tuple(marks)


class _Quiet(SimpleHTTPRequestHandler):
    """The stdlib's file handler, quiet, and answering a hostile path with an error
    instead of an exception (`/index.html%00.js` made `os.stat` raise ValueError)."""

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - stdlib's name
        pass

    def send_head(self):
        if "\0" in unquote(self.path) or "\0" in self.path:
            self.send_error(HTTPStatus.BAD_REQUEST, "a path with a NUL byte")
            return None
        try:
            return super().send_head()
        except (ValueError, OSError):  # an undecodable or unreadable path: never a traceback
            self.send_error(HTTPStatus.NOT_FOUND, "no such file")
            return None

    def end_headers(self) -> None:
        self.send_header("X-Content-Type-Options", "nosniff")  # a .png is never run as HTML
        super().end_headers()


def serve(
    repo: Path,
    out: Path,
    port: int,
    interval: float = 2.0,
    log: Callable[[str], None] = print,
    ready: threading.Event | None = None,
    stop: threading.Event | None = None,
) -> None:
    out = out.resolve()
    res = build(repo, out)
    log(f"site built in {res.seconds:.1f} s ({len(res.pages)} pages)")
    handler = functools.partial(_Quiet, directory=str(out))
    httpd = ThreadingHTTPServer(("127.0.0.1", port), handler)
    stop = stop or threading.Event()
    log(f"serving http://127.0.0.1:{httpd.server_address[1]}/ (Ctrl-C stops)")

    first = fingerprint(repo, out)  # before `ready`: a change right after it is seen

    def watch() -> None:
        last = first
        while not stop.wait(interval):
            now = fingerprint(repo, out)
            if now != last:
                try:
                    r = build(repo, out)
                    log(f"results changed: rebuilt in {r.seconds:.1f} s")
                except Exception as exc:  # keep serving the last good site
                    log(f"rebuild failed: {type(exc).__name__}: {exc}")
                last = now

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    server = threading.Thread(target=httpd.serve_forever, daemon=True)
    server.start()
    if ready is not None:
        ready.port = httpd.server_address[1]  # type: ignore[attr-defined]
        ready.set()
    try:
        stop.wait()
    except KeyboardInterrupt:
        log("stopped")
    finally:
        stop.set()
        httpd.shutdown()
        httpd.server_close()
