"""`efflab tournament list | show | submit | leaderboard | verify-ledger`.

Exit codes follow the project convention: 0 success (an accepted submission, a ledger
that verifies), 1 a failed check (a rejected submission — recorded in the ledger — or
a tampered ledger), 2 bad usage or bad input (unknown tournament, broken spec, a
submission file that doesn't exist).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from efflab.cli.common import Progress, find_repo, print_json
from efflab.cli.tournament_baseline import register as register_baseline


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "tournament",
        help="optimization tournaments: submit entries, verified sealed, ranked on leaderboards",
        description="Tournaments (workflows/tournaments/<id>.yaml): submissions are re-run by "
        "efflab in sealed containers, scored on objectives under constraints, ranked, and "
        "recorded in a tamper-evident ledger (results/tournaments/<id>/ledger.jsonl).",
    )
    ts = p.add_subparsers(dest="tournament_command", metavar="ACTION")
    ls = ts.add_parser("list", help="the tournaments, their status and leaders")
    ls.add_argument("--json", action="store_true", help="machine-readable output")
    ls.set_defaults(func=cmd_list)
    sh = ts.add_parser("show", help="rules: what to submit, objectives, constraints, limits")
    sh.add_argument("tournament")
    sh.add_argument("--json", action="store_true", help="machine-readable output")
    sh.set_defaults(func=cmd_show)
    sm = ts.add_parser(
        "submit",
        help="verify a submission in a sealed container and record the verdict",
        description="Validate FILE (YAML/JSON: participant, entry, inputs, optional claimed "
        "metrics and archive), re-run the base experiment for it in sealed containers, check "
        "constraints and append the verdict to the ledger. Exit 0 accepted, 1 rejected.",
    )
    sm.add_argument("tournament")
    sm.add_argument("file", type=Path, help="the submission file")
    sm.add_argument(
        "--archive",
        type=Path,
        help="a .tar.gz (or a folder) with the script folder replacing the tournament's step",
    )
    sm.add_argument("--json", action="store_true", help="the ledger entry as JSON")
    sm.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    sm.set_defaults(func=cmd_submit)
    lb = ts.add_parser(
        "leaderboard",
        help="ranked accepted entries (writes md, html, json and a plot)",
        description="Rank the ledger's accepted entries and write results/tournaments/<id>/"
        "leaderboard/{leaderboard.md,leaderboard.html,leaderboard.json,front.png}; print "
        "the chosen format.",
    )
    lb.add_argument("tournament")
    lb.add_argument("--format", choices=["md", "html", "json"], default="md")
    lb.add_argument("--json", action="store_true", help="same as --format json")
    lb.set_defaults(func=cmd_leaderboard)
    vl = ts.add_parser(
        "verify-ledger",
        help="recompute the ledger's hash chain; exit 1 at the first tampered entry",
    )
    vl.add_argument("tournament")
    vl.add_argument(
        "--expect-head", metavar="HASH", help="a head hash published earlier: detects cut entries"
    )
    vl.add_argument("--json", action="store_true", help="machine-readable output")
    vl.set_defaults(func=cmd_verify_ledger)
    register_baseline(ts)
    p.set_defaults(func=lambda a: (p.print_help(), 2)[1])


def _board_or_none(repo: Path, t: Any) -> dict[str, Any] | None:
    from efflab.tournaments.leaderboard import build
    from efflab.tournaments.ledger import LedgerTampered

    try:
        return build(repo, t)
    except LedgerTampered:
        return None


def cmd_list(args: argparse.Namespace) -> int:
    from efflab.tournaments.spec import load_tournament, tournament_ids

    repo = find_repo(args.repo)
    out = []
    for tid in tournament_ids(repo):
        t = load_tournament(repo, tid)
        b = _board_or_none(repo, t)
        leader = b["entries"][0] if b and b["entries"] else None
        out.append(
            {
                "id": t.id,
                "title": t.title,
                "status": t.status(),
                "close": t.close.isoformat() if t.close else None,
                "ranked": len(b["entries"]) if b else None,
                "ledger_entries": b["ledger"]["entries"] if b else None,
                "ledger_ok": b is not None,
                "leader": f"{leader['participant']}/{leader['entry']}" if leader else None,
            }
        )
    if args.json:
        print_json(out)
        return 0
    if not out:
        print("no tournaments under workflows/tournaments/")
    for r in out:
        state = "LEDGER TAMPERED" if not r["ledger_ok"] else f"{r['ranked']} ranked"
        lead = f", leader {r['leader']}" if r["leader"] else ""
        print(f"{r['id']:<20} {r['status']:<9} {state}{lead}  {r['title']}")
    return 0


def _describe_input(name: str, prop: dict[str, Any]) -> str:
    bits = []
    for k in ("type", "enum", "minimum", "maximum", "pattern", "default"):
        if k in prop:
            bits.append(f"{k}={prop[k]}")
    if prop.get("description"):
        bits.append(f"— {prop['description']}")
    return f"{name}: {' '.join(bits)}"


def _skeleton(t: Any) -> dict[str, Any]:
    props = t.inputs_schema.get("properties") or {}
    inputs = {
        k: v.get("default", t.input_defaults.get(k, (v.get("enum") or [None])[0]))
        for k, v in props.items()
    }
    sk: dict[str, Any] = {"participant": "your-name", "entry": "my-entry", "inputs": inputs}
    if t.objectives:
        sk["claimed"] = {o.metric: 0.0 for o in t.objectives}
    if t.script:
        sk["archive"] = f"my-{t.script.step}.tar.gz"
    return sk


def cmd_show(args: argparse.Namespace) -> int:
    import yaml

    from efflab.tournaments.leaderboard import ranking_rule
    from efflab.tournaments.spec import load_tournament

    repo = find_repo(args.repo)
    t = load_tournament(repo, args.tournament)
    b = _board_or_none(repo, t)
    info = {
        "id": t.id,
        "title": t.title,
        "description": t.description,
        "status": t.status(),
        "open": t.open.isoformat() if t.open else None,
        "close": t.close.isoformat() if t.close else None,
        "experiment": t.experiment,
        "measured_step": t.measured,
        "fixed_inputs": t.fixed_inputs,
        "submission_inputs": t.inputs_schema,
        "script": vars(t.script) if t.script else None,
        "objectives": [vars(o) for o in t.objectives],
        "constraints": [c.text() for c in t.constraints],
        "ranking": {"method": t.ranking, "rule": ranking_rule(t)},
        "verification": {
            "repetitions": t.repetitions,
            "aggregate": t.aggregate,
            "env": t.env,
            "limits": t.limits,
            "claim_tolerance": t.claim_tolerance,
        },
        "ledger": b["ledger"] if b else "does not verify (run verify-ledger)",
        "file": str(t.file),
        "example_submission": _skeleton(t),
    }
    if args.json:
        print_json(info)
        return 0
    window = f"{info['open'] or 'always'} → {info['close'] or 'no close date'}"
    print(f"{t.title}  [{t.id}, {info['status']}: {window}]\n")
    if t.description:
        print(t.description.strip() + "\n")
    print(f"base experiment: {t.experiment} (measured step: {t.measured})")
    if t.fixed_inputs:
        print("fixed inputs:    " + ", ".join(f"{k}={v}" for k, v in t.fixed_inputs.items()))
    print("a submission may set:")
    for name, prop in (t.inputs_schema.get("properties") or {}).items():
        print("  " + _describe_input(name, prop))
    if t.script:
        need = "required" if t.script.required else "optional"
        print(
            f"script archive ({need}): replaces step '{t.script.step}' (≤ {t.script.max_files}"
            f" files, ≤ {t.script.max_bytes} bytes; no links, no absolute or '..' paths)"
        )
    print("objectives:      " + ", ".join(f"{o.direction} {o.metric}" for o in t.objectives))
    print("constraints:     " + (", ".join(info["constraints"]) or "none"))
    print(f"ranking:         {info['ranking']['rule']}")
    lim = ", ".join(f"{k}={v}" for k, v in t.limits.items())
    print(
        f"verification:    {t.repetitions} repetitions ({t.aggregate}), env {t.env or 'per step'},"
        f" no network, read-only root, limits {lim}; claims flagged beyond "
        f"{t.claim_tolerance:.0%}"
    )
    if b:
        print(f"ledger:          {b['ledger']['entries']} entries, {len(b['entries'])} ranked")
    print("\nexample submission:\n")
    print("  " + yaml.safe_dump(_skeleton(t), sort_keys=False).replace("\n", "\n  ").rstrip())
    return 0


def cmd_submit(args: argparse.Namespace) -> int:
    from efflab.tournaments.leaderboard import build
    from efflab.tournaments.ledger import LedgerTampered
    from efflab.tournaments.spec import load_tournament
    from efflab.tournaments.verification import submit

    repo = find_repo(args.repo)
    quiet = args.quiet or args.json
    t = load_tournament(repo, args.tournament)
    try:
        with Progress(f"verifying {args.file.name} for {t.id}", quiet) as bar:
            v = submit(repo, t.id, args.file, args.archive, on_progress=bar.update)
    except LedgerTampered as exc:
        print(f"efflab: the ledger does not verify, nothing recorded: {exc}", file=sys.stderr)
        return 1
    e = v.entry
    position = None
    if v.accepted:
        b = build(repo, t)
        position = next((r["position"] for r in b["entries"] if r["seq"] == e["seq"]), None)
    if args.json:
        print_json({**e, "position": position})
    else:
        sub = e["submission"]
        who = f"{sub.get('participant')}/{sub.get('entry')}"
        print(f"{e['verdict']}: {who} (submission {sub['id']}, ledger entry {e['seq']})")
        for m in dict.fromkeys(
            [o.metric for o in t.objectives] + [c.metric for c in t.constraints]
        ):
            if m in v.metrics:
                claimed = (sub.get("claimed") or {}).get(m)
                extra = f"  (claimed {claimed:g})" if claimed is not None else ""
                print(f"  {m:<24} {v.metrics[m]:.4g} {t.unit(m)}{extra}")
        for f in v.flags:
            print(f"  ⚑ {f}")
        ver = e["verification"]
        queued = (
            f" after {ver['queued_s']:.0f} s in the queue" if ver.get("queued_s", 0) >= 1 else ""
        )
        print(
            f"  verified in {ver['duration_s']:.1f} s{queued}: {ver['repetitions']} repetitions "
            f"({ver['aggregate']}) in sealed containers"
        )
        if position is not None:
            print(f"  position {position} on the leaderboard")
    if not v.accepted:
        print(f"efflab: rejected ({v.stage}): {v.reason}", file=sys.stderr)
        return 1
    return 0


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from efflab.tournaments.leaderboard import build, write
    from efflab.tournaments.ledger import LedgerTampered
    from efflab.tournaments.spec import load_tournament

    repo = find_repo(args.repo)
    t = load_tournament(repo, args.tournament)
    try:
        b = build(repo, t)
    except LedgerTampered as exc:
        print(
            f"efflab: no leaderboard from a ledger that does not verify: {exc} "
            f"(see `efflab tournament verify-ledger {t.id}`)",
            file=sys.stderr,
        )
        return 1
    w = write(repo, t, b)
    fmt = "json" if args.json else args.format
    sys.stdout.write(w.files[fmt].read_text())
    print(f"efflab: wrote {w.folder}/", file=sys.stderr)
    return 0


def cmd_verify_ledger(args: argparse.Namespace) -> int:
    from efflab.tournaments.ledger import Ledger
    from efflab.tournaments.spec import load_tournament

    repo = find_repo(args.repo)
    t = load_tournament(repo, args.tournament)
    res = Ledger(t.root(repo) / "ledger.jsonl").verify(args.expect_head)
    files = _check_files(t.root(repo), res.entries) if res.ok else []
    out = {**res.to_json(), "files": files, "ok": res.ok and not files}
    if args.json:
        print_json(out)
    elif out["ok"]:
        print(f"ledger {res.path}: {len(res.entries)} entries verify; head {out['head']}")
    else:
        if not res.ok:
            print(
                f"efflab: ledger {res.path}: entry {res.first_bad} (line {res.first_bad + 1}) "
                f"is the first that does not verify: {res.reason}",
                file=sys.stderr,
            )
        for f in files:
            print(f"efflab: {f}", file=sys.stderr)
    return 0 if out["ok"] else 1


def _check_files(root: Path, entries: list[dict[str, Any]]) -> list[str]:
    """Stored submission files that no longer match the digests their entry recorded."""
    from efflab.tournaments.submission import sha256_file

    bad = []
    for e in entries:
        sub = e["submission"]
        for name, digest in ((sub.get("file"), sub.get("sha256")),
                             (sub.get("archive"), sub.get("archive_sha256"))):  # fmt: skip
            if not name or not digest:
                continue
            f = root / name
            if not f.is_file():
                bad.append(f"entry {e['seq']}: stored {name} is missing")
            elif sha256_file(f) != digest:
                bad.append(f"entry {e['seq']}: stored {name} differs from its recorded sha256")
    return bad
