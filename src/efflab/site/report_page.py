"""An imported reproduction report, rendered by the site itself from its `verdicts.json`.

Why: a report made on another machine is foreign data. Its `report.html` could hold a
`<script>` that would run on the site's own origin, so it is never copied (`efflab
results import` leaves it behind; a report imported before that rule had it is not
copied either). The site writes the report page from the verdicts instead, every
string through the same escaping as every other page, and copies only the report's
raster images and JSON (checked by their first bytes; never SVG, which can hold
scripts).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from efflab.core.errors import BadInput
from efflab.results import safe_copy
from efflab.site.html import Page, esc, fmt

VERDICT_CLASS = {"reproduced": "ok", "not reproduced": "bad", "error": "err", "inconclusive": "inc"}


def _text(v: Any) -> str:
    return esc(fmt(v) if isinstance(v, int | float) and not isinstance(v, bool) else v)


def copy_safe_files(folder: Path, dest: Path) -> list[str]:
    """The report's images and JSON into `dest` (links and devices refused: BadInput);
    returns the images copied (relative paths)."""
    tmp = dest.parent / f".{dest.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        copied, _ = safe_copy.copy_tree(
            folder,
            tmp,
            keep=lambda rel, data: rel.endswith(".json") or safe_copy.is_image(rel, data),
        )
        tmp.rename(dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return [rel for rel in copied if not rel.endswith(".json")]


def imported_report(
    path: str, paper: str, number: int, verdicts: dict[str, Any], host: str, images: list[str]
) -> Page:
    """The report page of an imported run (at `path`, inside its copied folder)."""
    claims = [c for c in verdicts.get("claims") or [] if isinstance(c, dict)]
    rows = []
    for c in claims:
        cid, verdict = str(c.get("id")), str(c.get("verdict"))
        rows.append(
            f"<tr><td><a href='#{esc(cid)}'>{esc(cid)}</a></td><td>{_text(c.get('kind'))}</td>"
            f"<td>{_text(c.get('paper'))}</td><td>{_text(c.get('ours'))}</td>"
            f"<td><span class='cell {VERDICT_CLASS.get(verdict, 'other')}'>{esc(verdict)}</span></td></tr>"
        )
    details = []
    shown = set(images)
    for c in claims:
        cid = str(c.get("id"))
        items = [
            f"<li>{label}: {_text(c.get(k))}</li>"
            for k, label in (
                ("condition", "Condition"),
                ("paper", "Paper"),
                ("ours", "Ours"),
                ("detail", "Detail"),
                ("note", "Note"),
                ("cites", "The same check as"),
            )  # fmt: skip
            if c.get(k) not in (None, "", [])
        ]
        img = f"plots/{cid}.png"
        plot = f"<img src='{esc(img)}' alt='{esc(cid)}'>" if img in shown else ""
        details.append(
            f"<h3 id='{esc(cid)}'>{esc(cid)} — {esc(c.get('verdict'))}</h3>"
            f"<blockquote>{_text(c.get('statement'))}</blockquote><ul>{''.join(items)}</ul>{plot}"
        )
    exps = [e for e in verdicts.get("experiments") or [] if isinstance(e, dict)]
    erows = "".join(
        f"<tr><td>{_text(e.get('experiment'))}</td><td>{_text(e.get('table_version'))}</td>"
        f"<td><code>{_text(e.get('git_commit'))}</code></td><td>{_text(e.get('runtime'))}</td></tr>"
        for e in exps
    )
    body = (
        f"<p><i>Imported from {esc(host)}</i>: rendered here from the run's verdicts.json "
        "(the report file it came with is not published). "
        f"Mode: {'quick' if verdicts.get('quick') else 'full'} · started "
        f"{_text(verdicts.get('started'))} · <a href='verdicts.json'>verdicts.json</a></p>"
        "<h2>Verdicts</h2><table><thead><tr><th>claim</th><th>kind</th><th>paper's value</th>"
        f"<th>ours</th><th>verdict</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
        f"<h2>Claims</h2>{''.join(details)}"
        "<h2>Experiments</h2><table><thead><tr><th>experiment</th><th>table</th><th>commit</th>"
        f"<th>runtime</th></tr></thead><tbody>{erows}</tbody></table>"
    )
    title = f"Reproduction #{number}: {verdicts.get('title') or paper}"
    data = {"kind": "report", "paper": paper, "run": number, "imported": True}
    return Page(path, title, body, data, hosts=[host])


def render_imported(
    folder: Path, dest: Path, path: str, paper: str, number: int, verdicts: dict, host: str
) -> Page:
    """Copy an imported report's safe files and return its page; BadInput when a link
    or device is found in it (the caller skips the report and names it)."""
    if dest.exists():
        raise BadInput(dest, "$", "a new report folder in the site", "one already there")
    images = copy_safe_files(folder, dest)
    return imported_report(path, paper, number, verdicts, host, images)
