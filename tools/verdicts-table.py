#!/usr/bin/env python3
"""Markdown verdict table from `efflab reproduce ... --json` output.

    efflab reproduce --all --quick --json > v.json
    python tools/verdicts-table.py v.json [--note "load average ..."] > docs/verdicts-quick.md

One row per claim: paper, claim, kind, our value, 95% interval, thresholds with their
source (paper + where, or ours + why), verdict; then each experiment's wall time,
contended records and re-measurements. Stdlib only.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def fmt(x) -> str:
    if x is None:
        return "—"
    if isinstance(x, float):
        return f"{x:.4g}"
    return str(x)


def cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def thresholds(c: dict) -> str:
    out = []
    for t in c.get("thresholds") or []:
        basis = f": {t['basis']}" if t.get("basis") else ""
        out.append(f"{fmt(t['value'])} ({t['source']}{basis})")
    return "; ".join(out) or "—"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("json", type=Path)
    ap.add_argument("--title", default="Verdicts: `efflab reproduce --all --quick`")
    ap.add_argument("--note", action="append", default=[], help="a line under the title")
    a = ap.parse_args()
    data = json.loads(a.json.read_text())
    lines = [f"# {a.title}", ""]
    lines += [f"{n}  " for n in a.note] + [""] if a.note else []
    counts: dict[str, int] = {}
    rows = []
    for p in data["papers"]:
        for c in p["claims"]:
            kind = c.get("kind") or "claim"
            key = c["verdict"] if kind != "sanity" else f"{c['verdict']} (sanity)"
            counts[key] = counts.get(key, 0) + 1
            iv = "—" if c.get("low") is None else f"[{fmt(c['low'])}, {fmt(c['high'])}]"
            rows.append(
                f"| {p['paper']} | {c['id']} | {kind} | {cell(fmt(c.get('value')))} | {iv} "
                f"| {cell(c.get('condition') or '')} | {cell(thresholds(c))} | **{c['verdict']}** |"
            )
    lines.append(
        "Totals: " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())) + "; exit "
        f"{'0' if data.get('ok') else 'non-zero'} (every counted claim reproduced: "
        f"{bool(data.get('ok'))})."
    )
    lines += [
        "",
        "| paper | claim | kind | value | 95% interval | condition | thresholds (source) | verdict |",
        "|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        "## Experiments",
        "",
        "| paper | experiment | jobs run | runtime | wall s | contended records | re-measured | still contended | failures |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    details = [
        f"- {p['paper']}/{c['id']} ({c['verdict']}): {c.get('detail') or '—'}"
        for p in data["papers"]
        for c in p["claims"]
        if c["verdict"] != "reproduced"
    ]
    tail = ["", "## Why not reproduced", "", *details] if details else []
    for p in data["papers"]:
        for e in p.get("experiments") or []:
            lines.append(
                f"| {p['paper']} | {e['experiment']} | {e['jobs_run']} | {e['runtime']} "
                f"| {e['wall_s']} | {e['contended_records']} | {e['remeasured']} "
                f"| {e['still_contended']} | {len(e.get('failures') or [])} |"
            )
    sys.stdout.write("\n".join(lines + tail) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
