#!/usr/bin/env python3
"""Markdown verdict table from one or more runs of `efflab reproduce ... --json`.

    efflab reproduce --all --quick --json > amd.json
    python tools/verdicts-table.py amd.json [intel.json ...] [--label "AMD EPYC" ...] \\
        [--note "load average ..."] > docs/verdicts-quick.md

A run is a `reproduce --json` output, or a recorded-fixture verdicts.json
(tests/papers/recorded/verdicts.json). One run: one row per claim (kind, value, 95%
interval, thresholds with their source, verdict, control). Several runs (the machine
kind varies between AVX-512 and AVX2-only hosts): a totals row per run, the range of
counted reproduced claims across them (not the best run), and one verdict column per
run. Counting: a claim counts when its kind is `claim` (not a sanity check, not shown
by construction) and it is applicable on that machine; a claim cited by several papers
(`cites:`) counts once, under the claim it cites. Stdlib only.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

VERDICTS = ("reproduced", "not reproduced", "inconclusive", "error", "not applicable")


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


def control(c: dict) -> str:
    ctl = c.get("control")
    if ctl is None:
        return "none declared"
    if isinstance(ctl, str):  # a recorded fixture keeps the outcome only
        return f"control {ctl}"
    if "none" in ctl:
        return f"uncontrolled ({ctl['none']})"
    return f"control {ctl['outcome']} ({ctl.get('ours', '')})"


def load_run(path: Path) -> dict:
    """A run as {label, cpu, papers: [{paper, claims: [...]}]} from either format."""
    data = json.loads(path.read_text())
    if isinstance(data.get("claims"), dict):  # recorded fixtures
        by: dict[str, list] = {}
        for key, c in data["claims"].items():
            pid, cid = key.split("/", 1)
            by.setdefault(pid, []).append({"id": cid, **c})
        info = data.get("papers") or {}
        cpus = sorted({str(v.get("cpu_model")) for v in info.values() if v.get("cpu_model")})
        papers = [{"paper": p, "claims": cs} for p, cs in by.items()]
        return {"cpu": " + ".join(cpus) or "?", "papers": papers, "ok": None}
    cpus = sorted(
        {(p.get("machine") or {}).get("cpu_model") or "?" for p in data.get("papers") or []}
    )
    return {"cpu": " + ".join(cpus) or "?", "papers": data["papers"], "ok": data.get("ok")}


def counted(run: dict) -> dict[str, str]:
    """Counted claim key -> verdict; a cited claim once, under the claim it cites."""
    seen: dict[str, str] = {}
    for p in run["papers"]:
        for c in p["claims"]:
            if (c.get("kind") or "claim") != "claim" or c["verdict"] == "not applicable":
                continue
            seen.setdefault(c.get("cites") or f"{p['paper']}/{c['id']}", c["verdict"])
    return seen


def totals(run: dict) -> dict[str, int]:
    seen = counted(run)
    out = {v: sum(x == v for x in seen.values()) for v in VERDICTS}
    out["counted"] = len(seen)
    claims = [c for p in run["papers"] for c in p["claims"]]
    out["not applicable"] = sum(
        c["verdict"] == "not applicable" and (c.get("kind") or "claim") == "claim" for c in claims
    )
    out["sanity"] = sum((c.get("kind") or "claim") == "sanity" for c in claims)
    out["by construction"] = sum(bool(c.get("by_construction")) for c in claims)
    out["uncontrolled"] = sum(
        isinstance(c.get("control"), dict) and "none" in c["control"] for c in claims
    )
    return out


def totals_table(runs: list[dict]) -> list[str]:
    lines = [
        "| run | CPU | counted | reproduced | not reproduced | inconclusive | error "
        "| not applicable | sanity (by construction) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        t = totals(r)
        lines.append(
            f"| {cell(r['label'])} | {cell(r['cpu'])} | {t['counted']} | {t['reproduced']} "
            f"| {t['not reproduced']} | {t['inconclusive']} | {t['error']} "
            f"| {t['not applicable']} | {t['sanity']} ({t['by construction']}) |"
        )
    good = [totals(r)["reproduced"] for r in runs]
    lines += [
        "",
        f"Counted claims reproduced: **{min(good)}–{max(good)}** across {len(runs)} run(s) "
        "(the range, not the best run).",
    ]
    return lines


def one_run(run: dict) -> list[str]:
    lines = [
        "| paper | claim | kind | value | 95% interval | condition | thresholds (source) "
        "| verdict | control |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for p in run["papers"]:
        for c in p["claims"]:
            kind = c.get("kind") or "claim"
            if c.get("cites"):
                kind += f" (cites {c['cites']}: counted once)"
            iv = "—" if c.get("low") is None else f"[{fmt(c['low'])}, {fmt(c['high'])}]"
            lines.append(
                f"| {p['paper']} | {c['id']} | {cell(kind)} | {cell(fmt(c.get('value')))} | {iv} "
                f"| {cell(c.get('condition') or '')} | {cell(thresholds(c))} "
                f"| **{c['verdict']}** | {cell(control(c))} |"
            )
    return lines


def side_by_side(runs: list[dict]) -> list[str]:
    head = " | ".join(cell(r["label"]) for r in runs)
    lines = [f"| paper | claim | {head} |", "|---|---|" + "---|" * len(runs)]
    keys: list[tuple[str, str]] = []
    for r in runs:
        for p in r["papers"]:
            for c in p["claims"]:
                if (p["paper"], c["id"]) not in keys:
                    keys.append((p["paper"], c["id"]))
    index = [{(p["paper"], c["id"]): c for p in r["papers"] for c in p["claims"]} for r in runs]
    for k in sorted(keys):
        cells = []
        for ix in index:
            c = ix.get(k)
            if c is None:
                cells.append("—")
                continue
            kind = c.get("kind") or "claim"
            cells.append(c["verdict"] + (" (sanity)" if kind == "sanity" else ""))
        lines.append(f"| {k[0]} | {k[1]} | " + " | ".join(cells) + " |")
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("json", type=Path, nargs="+", help="runs (reproduce --json or fixtures)")
    ap.add_argument("--label", action="append", default=[], help="a name per run, in order")
    ap.add_argument("--title", default="Verdicts: `efflab reproduce --all --quick`")
    ap.add_argument("--note", action="append", default=[], help="a line under the title")
    a = ap.parse_args()
    runs = [load_run(p) for p in a.json]
    for i, r in enumerate(runs):
        r["label"] = a.label[i] if i < len(a.label) else a.json[i].stem
    lines = [f"# {a.title}", ""]
    lines += [f"{n}  " for n in a.note] + [""] if a.note else []
    lines += totals_table(runs) + [""]
    if len(runs) > 1:
        lines += ["## Verdicts side by side", "", *side_by_side(runs), ""]
    lines += [f"## Claims ({runs[0]['label']})", "", *one_run(runs[0]), ""]
    details = [
        f"- {p['paper']}/{c['id']} ({c['verdict']}): {c.get('detail') or '—'}"
        for p in runs[0]["papers"]
        for c in p["claims"]
        if c["verdict"] != "reproduced" or c.get("by_construction")
    ]
    if details:
        lines += ["## Why not reproduced, or not counted", "", *details, ""]
    exps = [(p["paper"], e) for p in runs[0]["papers"] for e in p.get("experiments") or []]
    if exps:
        lines += [
            "## Experiments",
            "",
            "| paper | experiment | jobs run | runtime | wall s | contended records "
            "| re-measured | still contended | failures |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for pid, e in exps:
            lines.append(
                f"| {pid} | {e['experiment']} | {e['jobs_run']} | {e['runtime']} "
                f"| {e['wall_s']} | {e['contended_records']} | {e['remeasured']} "
                f"| {e['still_contended']} | {len(e.get('failures') or [])} |"
            )
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
