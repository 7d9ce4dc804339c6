"""The page frame every site page shares: navigation, the host filter, assets, page data.

Pages are plain HTML files with relative links, so the site works from `file://` and
from any static host. Interactive parts read one JSON block per page
(`<script id="page-data">`) and the scripts written once into `assets/`.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass, field
from typing import Any

NAV = [
    ("home", "index.html"),
    ("experiments", "index.html#experiments"),
    ("papers", "index.html#papers"),
    ("tournaments", "index.html#tournaments"),
    ("optimize", "index.html#optimize"),
    ("nightly", "nightly.html"),
    ("machines", "machines.html"),
]


def esc(v: Any) -> str:
    return html.escape("" if v is None else str(v), quote=True)


def slug(s: str) -> str:
    """A name as a file name: keeps it readable, never a path separator."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", s).strip(".") or "_"


def fmt(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        if v != v:  # NaN
            return "—"
        return f"{v:.0f}" if v.is_integer() and abs(v) < 1e15 else f"{v:.4g}"
    return str(v)


def table(head: list[str], rows: list[list[str]], attrs: list[str] | None = None) -> str:
    """An HTML table; cells are already-escaped HTML; attrs are per-row attributes."""
    out = ["<table><thead><tr>", *(f"<th>{esc(h)}</th>" for h in head), "</tr></thead><tbody>"]
    for i, r in enumerate(rows):
        a = f" {attrs[i]}" if attrs and attrs[i] else ""
        out.append(f"<tr{a}>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


@dataclass
class Page:
    """One page: its path inside the site, title and body, and the data its scripts use."""

    path: str  # relative to the site root, e.g. "experiments/edge-digits.html"
    title: str
    body: str
    data: dict[str, Any] = field(default_factory=dict)
    plots: bool = False
    hosts: list[str] = field(default_factory=list)

    @property
    def root(self) -> str:
        """Relative prefix from this page back to the site root."""
        return "../" * self.path.count("/")

    def render(self, site_title: str, all_hosts: list[str], built: str) -> str:
        r = self.root
        nav = " · ".join(f"<a href='{r}{href}'>{esc(name)}</a>" for name, href in NAV)
        opts = "".join(f"<option value='{esc(h)}'>{esc(h)}</option>" for h in all_hosts)
        data = json.dumps(self.data, separators=(",", ":"), default=str, allow_nan=False)
        # no `<` at all inside the script element: `</script>`, `<!--` and `<script` in
        # foreign data (an imported system description) cannot change the parser's state
        data = data.replace("<", "\\u003c")
        scripts = f"<script src='{r}assets/plotly.min.js'></script>" if self.plots else ""
        return (
            "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>{esc(self.title)} · {esc(site_title)}</title>"
            f"<link rel='stylesheet' href='{r}assets/site.css'></head><body>"
            f"<header><nav><b>{esc(site_title)}</b> · {nav}</nav>"
            "<label class='hostsel'>host <select id='host-filter'>"
            f"<option value=''>all hosts</option>{opts}</select></label></header>"
            f"<main><h1>{esc(self.title)}</h1>{self.body}</main>"
            f"<footer>built {esc(built)} by <code>efflab site build</code></footer>"
            f"<script type='application/json' id='page-data'>{data}</script>"
            f"{scripts}<script src='{r}assets/site.js'></script></body></html>\n"
        )
