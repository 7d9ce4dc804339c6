"""`efflab tournament serve | worker | status` and `submit --server`: the submission service
(efflab.tournaments.service), its verifier workers and the participant's client."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from efflab.cli.common import find_repo, print_json
from efflab.core.errors import BadInput


def register(ts: argparse._SubParsersAction) -> None:
    sv = ts.add_parser(
        "serve",
        help="organiser: the submission service (HTTP API, queue, local verifier worker, live leaderboard)",  # fmt: skip
        description="Serve tournaments over HTTP (127.0.0.1 by default): signed streamed uploads, "
        "a durable SQLite queue under results/tournaments/.service/, one local verifier worker, "
        "the leaderboard as JSON and a live HTML page, organiser and worker endpoints "
        "(tokens: $EFFLAB_ORGANISER_TOKEN / $EFFLAB_WORKER_TOKEN, else "
        "results/tournaments/.service/tokens.json). API: /api/v1/openapi.json.",
    )
    sv.add_argument("tournaments", nargs="*", help="tournament ids (default: all)")
    sv.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    sv.add_argument("--port", type=int, default=8787)
    sv.add_argument("--no-local-worker", action="store_true", help="verify only on remote workers")  # fmt: skip
    sv.add_argument("--queue-cap", type=int, default=200, help="waiting submissions before 503 (default 200)")  # fmt: skip
    sv.add_argument("--max-uploads", type=int, default=8, help="uploads read at once (default 8)")  # fmt: skip
    sv.add_argument("--max-body-mb", type=float, default=16.0, help="hard limit of one upload (default 16)")  # fmt: skip
    sv.add_argument("--body-timeout-s", type=float, default=60.0, help="an upload's whole body must arrive within this (default 60)")  # fmt: skip
    sv.add_argument("--idle-timeout-s", type=float, default=15.0, help="longest pause between body bytes (default 15)")  # fmt: skip
    sv.add_argument("--clock-skew-s", type=float, default=300.0, help="how old (or early) a signature may be (default 300)")  # fmt: skip
    sv.add_argument("--lease-s", type=float, default=120.0, help="a worker's lease without heartbeat (default 120)")  # fmt: skip
    sv.add_argument("--infra-retries", type=int, default=2, help="runs again after an infrastructure-error (default 2)")  # fmt: skip
    sv.add_argument("--machine-class", help="only workers reporting this machine class verify")
    sv.set_defaults(func=cmd_serve)

    wk = ts.add_parser(
        "worker",
        help="a verifier worker: lease jobs from a service, verify them sealed here, post results",
        description="Pull jobs from --server, fetch each entry, verify it in sealed containers "
        "in this project (the same tournament specs and scripts), post the result signed "
        "with this machine's worker key. One verification at a time.",
    )
    wk.add_argument("--server", required=True, help="the service's URL")
    wk.add_argument("--token", help="the worker token (default: $EFFLAB_WORKER_TOKEN)")
    wk.add_argument("--name", help="this worker's name (default: the hostname)")
    wk.add_argument("--machine-class", help="the machine class to report (default: CPU model and cores)")  # fmt: skip
    wk.add_argument("--key", type=Path, help="the worker's private key (default: kept in the organiser config folder)")  # fmt: skip
    wk.add_argument("--once", action="store_true", help="stop when the queue is empty")
    wk.add_argument("--local", action="store_true", help=argparse.SUPPRESS)
    wk.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    wk.set_defaults(func=cmd_worker)

    st = ts.add_parser("status", help="a submission's status on a service")
    st.add_argument("id", help="the submission id (from `submit --server`)")
    st.add_argument("--server", required=True, help="the service's URL")
    st.add_argument("--wait", action="store_true", help="wait for the verdict")
    st.add_argument("--json", action="store_true", help="machine-readable output")
    st.set_defaults(func=cmd_status)


def add_remote_submit(sm: argparse.ArgumentParser) -> None:
    sm.add_argument("--server", help="submit to this service instead of verifying here")
    sm.add_argument("--key", type=Path, help="your private key (from keygen): signs the entry, here or for --server (no FILE.sig needed)")  # fmt: skip
    sm.add_argument("--no-wait", action="store_true", help="with --server: exit after the upload is queued")  # fmt: skip


def cmd_serve(args: argparse.Namespace) -> int:
    from efflab.tournaments.service.app import Settings, load_tokens, serve

    repo = find_repo(args.repo)
    tokens = load_tokens(repo)
    s = Settings(
        host=args.host,
        port=args.port,
        tournaments=args.tournaments or None,
        organiser_token=tokens["organiser"],
        worker_token=tokens["worker"],
        local_worker=not args.no_local_worker,
        queue_cap=args.queue_cap,
        max_uploads=args.max_uploads,
        max_body_bytes=int(args.max_body_mb * (1 << 20)),
        body_timeout_s=args.body_timeout_s,
        idle_timeout_s=args.idle_timeout_s,
        clock_skew_s=args.clock_skew_s,
        lease_s=args.lease_s,
        infra_retries=args.infra_retries,
        machine_class=args.machine_class,
    )
    for name, v in (("--port", s.port), ("--queue-cap", s.queue_cap), ("--max-uploads", s.max_uploads)):  # fmt: skip
        if v < 1:
            raise BadInput(name, "$", "a positive number", v)
    print(f"efflab: serving on http://{s.host}:{s.port}/ (API /api/v1, OpenAPI /api/v1/openapi.json); tokens in results/tournaments/.service/tokens.json", file=sys.stderr)  # fmt: skip
    serve(repo, s)
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from efflab.tournaments.service.worker import Worker

    if args.local and os.environ.get("EFFLAB_SERVICE_PID", "").isdigit():
        import signal

        from efflab.core.lifeline import set_parent_death_signal

        # the server's own worker dies with it: a restarted server runs the job again
        set_parent_death_signal(signal.SIGKILL, int(os.environ["EFFLAB_SERVICE_PID"]))
    repo = find_repo(args.repo)
    token = args.token or os.environ.get("EFFLAB_WORKER_TOKEN")
    if not token:
        raise BadInput("--token", "$", "the worker token (--token or $EFFLAB_WORKER_TOKEN)", "none")  # fmt: skip
    say = (lambda s: None) if args.quiet else (lambda s: print(f"efflab worker: {s}", file=sys.stderr, flush=True))  # fmt: skip
    w = Worker(repo, args.server, token, args.local, args.name, args.machine_class, args.key, say)
    say(f"{w.owner} on {w.machine['class']}: pulling from {args.server}")
    n = w.run(once=args.once)
    say(f"{n} jobs done")
    return 0


def _describe(body: dict[str, Any]) -> str:
    st = body.get("status")
    if st == "queued":
        return f"queued, position {body.get('position')}"
    if st == "running":
        return f"verifying (run {body.get('runs')}, retries {body.get('retries')})"
    return str(st)


def _final(body: dict[str, Any], as_json: bool) -> int:
    if as_json:
        print_json(body)
        return int(body.get("exit_code") or 0) if body.get("status") in ("accepted", "rejected", "infrastructure-error") else 0  # fmt: skip
    es = body.get("ledger") or []
    e = es[-1] if es else None
    print(f"{body.get('status')}: {body.get('participant')}/{body.get('entry')} (submission {body.get('id')}{', ledger entry ' + str(e['seq']) if e else ''})")  # fmt: skip
    if e:
        for m, v in (e.get("metrics") or {}).items():
            print(f"  {m:<24} {v:.4g}")
        for f in e.get("flags") or []:
            print(f"  ⚑ {f}")
        w = (e.get("verification") or {}).get("worker") or {}
        if w:
            print(f"  verified by {w.get('name')} ({(w.get('machine') or {}).get('class')}), key {w.get('key')}")  # fmt: skip
    if body.get("status") == "rejected" and e:
        print(f"efflab: rejected ({e.get('stage')}): {e.get('reason')}", file=sys.stderr)
    if body.get("status") == "infrastructure-error":
        print(f"efflab: the verifier failed, not the entry ({body.get('retries')} retries): {body.get('reason')}", file=sys.stderr)  # fmt: skip
    return {"accepted": 0}.get(str(body.get("status")), 1) if body.get("status") in ("accepted", "rejected", "infrastructure-error") else 0  # fmt: skip


def _refused(a: Any, as_json: bool = False) -> int:
    """An error answer: its JSON with --json, one line on stderr; its exit code."""
    if as_json:
        print_json(a.body)
    err = a.body.get("error") or {}
    print(f"efflab: the server refused ({a.status} {err.get('code')}): {err.get('message')}", file=sys.stderr)  # fmt: skip
    return a.exit_code


def cmd_remote_submit(args: argparse.Namespace) -> int:
    import httpx

    from efflab.tournaments.service import client

    quiet = args.quiet or args.json
    parts = client.prepare(args.tournament, args.file, args.archive, args.key)

    shown = [-1]

    def progress(sent: int, total: int) -> None:  # a line per MiB, and the last
        if not quiet and (sent == total or sent >> 20 > shown[0]):
            shown[0] = sent >> 20
            print(f"efflab: uploading {sent}/{total} bytes", file=sys.stderr, flush=True)

    try:

        def busy(wait: float) -> None:
            if not quiet:
                print(f"efflab: the server is busy; sending again in {wait:g} s", file=sys.stderr, flush=True)  # fmt: skip

        a = client.upload(args.server, args.tournament, parts, progress, on_busy=busy)
    except httpx.TransportError as exc:
        print(f"efflab: cannot reach {args.server}: {exc}", file=sys.stderr)
        return 1
    if a.status != 202:
        return _refused(a, args.json)
    sid = a.body["id"]
    if not quiet:
        print(f"efflab: submission {sid} queued at position {a.body['position']} (efflab tournament status {sid} --server {args.server})", file=sys.stderr)  # fmt: skip
    if args.no_wait:
        if args.json:
            print_json(a.body)
        else:
            print(sid)
        return 0
    done = client.wait(args.server, sid, lambda b: quiet or print(f"efflab: {sid}: {_describe(b)}", file=sys.stderr, flush=True))  # fmt: skip
    if done.status != 200:
        return _refused(done, args.json)
    return _final(done.body, args.json)


def cmd_status(args: argparse.Namespace) -> int:
    import httpx

    from efflab.tournaments.service import client

    try:
        if args.wait:
            a = client.wait(args.server, args.id, lambda b: args.json or print(f"efflab: {args.id}: {_describe(b)}", file=sys.stderr, flush=True))  # fmt: skip
        else:
            a = client.status(args.server, args.id)
    except httpx.TransportError as exc:
        print(f"efflab: cannot reach {args.server}: {exc}", file=sys.stderr)
        return 1
    if a.status != 200:
        return _refused(a, args.json)
    if a.body.get("status") in ("queued", "running") and not args.json:
        print(f"{a.body.get('status')}: {_describe(a.body)}")
        return 0
    return _final(a.body, args.json)
