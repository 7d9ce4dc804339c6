"""`efflab tournament list | show | submit | leaderboard | verify-ledger | keygen | register |
revoke | organiser-key | sign | serve | worker | status | retry | reverify | init-secret |
self-check`.

Exit codes follow the project convention: 0 success (an accepted submission, a ledger
that verifies), 1 a failed check (a rejected submission — recorded in the ledger — or
a tampered ledger), 2 bad usage or bad input (unknown tournament, broken spec, a
submission file that doesn't exist).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

from efflab.cli.common import Progress, find_repo, print_json
from efflab.cli.tournament_baseline import register as register_baseline
from efflab.cli.tournament_identity import register as register_identity
from efflab.cli.tournament_service import add_remote_submit, cmd_remote_submit
from efflab.cli.tournament_service import register as register_service
from efflab.core.errors import BadInput


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
    sm.add_argument(
        "--signature", type=Path, help="the detached signature (default: FILE.sig next to FILE)"
    )
    sm.add_argument("--json", action="store_true", help="the ledger entry as JSON")
    sm.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    add_remote_submit(sm)
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
        help="prove the ledger: chain, organiser signatures, participants' signatures, "
        "digests, stored files; exit 1 naming each entry that fails",
    )
    vl.add_argument("tournament")
    vl.add_argument(
        "--expect-head",
        metavar="HASH",
        help="a head hash published earlier: must be the current head or an organiser-signed "
        "ancestor (detects cut entries and rewritten ledgers)",
    )
    vl.add_argument(
        "--organiser-key",
        metavar="PUB",
        type=Path,
        help="the organiser's published public key (base64 file); default: the key kept on "
        "this machine",
    )
    vl.add_argument("--json", action="store_true", help="machine-readable output")
    vl.set_defaults(func=cmd_verify_ledger)
    register_identity(ts)
    register_service(ts)
    _register_organiser(ts)
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
        try:
            t = load_tournament(repo, tid)
        except BadInput as exc:  # one broken spec is named and skipped; `show` exits 2
            print(f"efflab: skipped: {exc}", file=sys.stderr)
            continue
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


def cmd_show(args: argparse.Namespace) -> int:
    import yaml

    from efflab.tournaments.leaderboard import ranking_rule
    from efflab.tournaments.spec import example_submission, load_tournament

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
        "example_submission": example_submission(t),
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
    print(
        "  " + yaml.safe_dump(example_submission(t), sort_keys=False).replace("\n", "\n  ").rstrip()
    )
    return 0


def cmd_submit(args: argparse.Namespace) -> int:
    from efflab.tournaments.ledger import LedgerTampered
    from efflab.tournaments.spec import load_tournament
    from efflab.tournaments.submit import submit

    if args.server:  # a participant elsewhere: upload, follow, same exit codes
        return cmd_remote_submit(args)
    repo = find_repo(args.repo)
    quiet = args.quiet or args.json
    t = load_tournament(repo, args.tournament)
    with tempfile.TemporaryDirectory(prefix="efflab-sig-") as tmp:
        sig = args.signature
        if args.key is not None:  # sign exactly what submit digests, in memory
            from efflab.tournaments.signing import signature

            if args.signature is not None:
                raise BadInput("--key", "$", "either --key or --signature", "both")
            if not args.file.is_file():
                raise BadInput(args.file, "$", "an existing submission file", "no such file")
            text = signature(repo, t.id, args.file, args.key, args.archive)[0]
            sig = Path(tmp) / "submission.sig"
            sig.write_text(text + "\n")
        try:
            with Progress(f"verifying {args.file.name} for {t.id}", quiet) as bar:
                v = submit(repo, t.id, args.file, args.archive, sig, on_progress=bar.update)
        except LedgerTampered as exc:
            print(f"efflab: the ledger does not verify, nothing recorded: {exc}", file=sys.stderr)
            return 1
    return _report(repo, t, v, args.json)


def _report(repo: Path, t: Any, v: Any, as_json: bool) -> int:
    """Print one attempt's verdict; its exit code (0 accepted, 1 otherwise)."""
    from efflab.tournaments.leaderboard import build

    e = v.entry
    if not v.recorded:  # an unregistered participant: answered, no ledger line
        if as_json:
            print_json({"verdict": v.verdict, "stage": v.stage, "reason": v.reason, "recorded": False})  # fmt: skip
        print(f"efflab: rejected ({v.stage}): {v.reason}; not recorded (no such participant)", file=sys.stderr)  # fmt: skip
        return 1
    position = None
    if v.accepted:
        b = build(repo, t)
        position = next((r["position"] for r in b["entries"] if r["seq"] == e["seq"]), None)
    if as_json:
        print_json({**e, "position": position})
    else:
        sub = e["submission"]
        who = f"{sub.get('participant')}/{sub.get('entry')}"
        print(f"{e['verdict']}: {who} (submission {sub['id']}, ledger entry {e['seq']})")
        for m in dict.fromkeys([o.metric for o in t.objectives] + [c.metric for c in t.constraints]):  # fmt: skip
            if m in v.metrics:
                claimed = (sub.get("claimed") or {}).get(m)
                extra = f"  (claimed {claimed:g})" if claimed is not None else ""
                iv = (e.get("intervals") or {}).get(m)
                span = f" [{iv['lo']:.4g}, {iv['hi']:.4g}] ({iv['coverage']:.0%})" if iv else ""
                print(f"  {m:<24} {v.metrics[m]:.4g} {t.unit(m)}{span}{extra}")
        for f in v.flags:
            print(f"  ⚑ {f}")
        ver = e["verification"]
        if ver.get("keys"):  # something ran
            queued = f" after {ver['queued_s']:.0f} s in the queue" if ver.get("queued_s", 0) >= 1 else ""  # fmt: skip
            print(f"  verified in {ver['duration_s']:.1f} s{queued}: {ver['repetitions']} repetitions ({ver['aggregate']}) in sealed containers")  # fmt: skip
        if position is not None:
            print(f"  position {position} on the leaderboard")
    if e["verdict"] == "infrastructure-error":
        print(f"efflab: the verifier failed, not the entry: {v.reason}; recorded as infrastructure-error and re-queued (`efflab tournament retry {t.id}`)", file=sys.stderr)  # fmt: skip
        return 1
    if not v.accepted:
        print(f"efflab: rejected ({v.stage}): {v.reason}", file=sys.stderr)
        return 1
    return 0


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from efflab.tournaments.leaderboard import build
    from efflab.tournaments.ledger import LedgerTampered
    from efflab.tournaments.render import write
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
    from efflab.core.errors import BadInput
    from efflab.tournaments.proof import prove
    from efflab.tournaments.spec import load_tournament

    repo = find_repo(args.repo)
    t = load_tournament(repo, args.tournament)
    pub = None
    if args.organiser_key is not None:
        if not args.organiser_key.is_file():
            raise BadInput(args.organiser_key, "$", "the organiser's public key file", "no such file")  # fmt: skip
        pub = args.organiser_key.read_text()[:200]
    res = prove(repo, t, args.expect_head, pub)
    out = res.to_json()
    ch = res.chain
    if args.json:
        print_json(out)
    elif res.ok:
        n = len(ch.entries)
        print(f"ledger {ch.path}: {n} entries verify; organiser key {res.organiser or '-'} (pinned by {res.pinned or '-'}); head {out['head']}")  # fmt: skip
    else:
        if not ch.ok:
            print(
                f"efflab: ledger {ch.path}: entry {ch.first_bad} (line {ch.first_bad + 1}) "
                f"is the first that does not verify: {ch.reason}",
                file=sys.stderr,
            )
        for p in res.problems:
            print(f"efflab: ledger {ch.path}: {p.text()}", file=sys.stderr)
    return 0 if res.ok else 1


def _register_organiser(ts: argparse._SubParsersAction) -> None:
    for name, helptext, func in (
        ("retry", "verify again submissions queued by an infrastructure-error", cmd_retry),
        ("reverify", "measure stale entries again under the current spec", cmd_reverify),
    ):
        q = ts.add_parser(name, help=helptext)
        q.add_argument("tournament")
        q.add_argument("--json", action="store_true", help="the new ledger entries as JSON")
        q.add_argument("-q", "--quiet", action="store_true", help="no progress output")
        q.set_defaults(func=func)
    se = ts.add_parser("init-secret", help="organiser: create the secret scoring data derives from (outside the repo)")  # fmt: skip
    se.add_argument("tournament")
    se.add_argument("--force", action="store_true", help="rotate it (older entries become stale)")
    se.set_defaults(func=cmd_init_secret)
    sc = ts.add_parser("self-check", help="probe the sandbox: network, read-only root, caps, uid, quota")  # fmt: skip
    sc.add_argument("tournament")
    sc.add_argument("--json", action="store_true", help="machine-readable output")
    sc.set_defaults(func=cmd_self_check)


def _many(args: argparse.Namespace, what: str) -> int:
    from efflab.tournaments import submit as flow
    from efflab.tournaments.spec import load_tournament

    repo = find_repo(args.repo)
    t = load_tournament(repo, args.tournament)
    fn = flow.retry if what == "retry" else flow.reverify
    with Progress(f"{what} {t.id}", args.quiet or args.json) as bar:
        vs = fn(repo, t.id, on_progress=bar.update)
    if args.json:
        print_json([v.entry for v in vs])
    elif not vs:
        print(f"nothing to {what} for {t.id}")
    codes = [_report(repo, t, v, False) for v in vs] if not args.json else []
    return 0 if all(v.accepted for v in vs) and not any(codes) else 1


def cmd_retry(args: argparse.Namespace) -> int:
    return _many(args, "retry")


def cmd_reverify(args: argparse.Namespace) -> int:
    return _many(args, "reverify")


def cmd_init_secret(args: argparse.Namespace) -> int:
    from efflab.tournaments.private import init_secret
    from efflab.tournaments.spec import load_tournament

    repo = find_repo(args.repo)
    t = load_tournament(repo, args.tournament)
    f = init_secret(repo, t.id, args.force)
    print(f"wrote the organiser's secret for {t.id} to {f} (0600; keep it out of the repo)")
    return 0


def cmd_self_check(args: argparse.Namespace) -> int:
    from efflab.tournaments.sandbox import probe
    from efflab.tournaments.spec import load_tournament
    from efflab.tournaments.submit import sealed_settings

    repo = find_repo(args.repo)
    t = load_tournament(repo, args.tournament)
    rep = probe(repo, t.env or "base", sealed_settings(t))
    if args.json:
        print_json(
            {"ok": rep.ok, "problems": rep.problems, "facts": rep.facts, "seconds": rep.seconds}
        )
    else:
        for k, v in rep.facts.items():
            print(f"  {k:<12} {v}")
        print(("sandbox ok" if rep.ok else "SANDBOX BROKEN: " + "; ".join(rep.problems)) + f" ({rep.seconds:.1f} s)")  # fmt: skip
    return 0 if rep.ok else 1
