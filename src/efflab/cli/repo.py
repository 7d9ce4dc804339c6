"""`efflab repo add|list|remove`: script collections from other folders or git
repositories, resolved alongside the project's scripts (efflab.plan.collections)."""

from __future__ import annotations

import argparse

from efflab.cli.common import find_repo, print_json
from efflab.plan import collections
from efflab.plan.registry import Registry


def register(sub: argparse._SubParsersAction) -> None:
    r = sub.add_parser("repo", help="script collections from other folders or git repositories")
    rsub = r.add_subparsers(dest="repo_cmd", metavar="SUBCOMMAND", required=True)
    a = rsub.add_parser("add", help="register a collection (a git one is pinned to a commit)")
    a.add_argument("source", metavar="PATH|GIT-URL")
    a.add_argument("--ref", default=None, help="branch, tag or commit (default: HEAD)")
    a.add_argument("--name", default=None, help="collection name (default: the folder name)")
    a.add_argument(
        "--trust",
        action="store_true",
        help="let its code run on the host (its check.py at plan time, --runtime host); "
        "without it the collection's scripts run only in containers (docs/security.md)",
    )
    a.set_defaults(func=cmd_add)
    t = rsub.add_parser("trust", help="let a collection's code run on the host (recorded)")
    t.add_argument("name")
    t.set_defaults(func=cmd_trust, trusted=True)
    u = rsub.add_parser("distrust", help="back to containers only for a collection's code")
    u.add_argument("name")
    u.set_defaults(func=cmd_trust, trusted=False)
    ls = rsub.add_parser("list", help="registered collections and their scripts")
    ls.add_argument("--json", action="store_true", help="machine-readable output")
    ls.set_defaults(func=cmd_list)
    rm = rsub.add_parser("remove", help="unregister a collection (its cached checkout stays)")
    rm.add_argument("name")
    rm.set_defaults(func=cmd_remove)


def cmd_add(args: argparse.Namespace) -> int:
    repo = find_repo(args.repo)
    c = collections.add(repo, args.source, args.name, args.ref, args.trust)
    try:  # the project must still resolve: an alias clash is an error naming both files
        reg = Registry.for_repo(repo)
    except Exception:
        collections.remove(repo, c.name)
        raise
    root = collections.checkout(repo, c)
    mine = sorted(s.alias for s in reg.scripts.values() if s.path.parent == root.resolve())
    print(f"added {c.label} from {c.source}: {len(mine)} scripts ({', '.join(mine)})")
    print(f"pinned in {collections.FILE} (commit it)")
    if not c.trusted:
        print(
            "not trusted: its code runs only in containers (--runtime docker); "
            f"efflab repo trust {c.name} lets it run on the host"
        )
    return 0


def cmd_trust(args: argparse.Namespace) -> int:
    c = collections.set_trust(find_repo(args.repo), args.name, args.trusted)
    say = "trusted: its code may run on the host" if c.trusted else "not trusted: containers only"
    print(f"{c.label}: {say} (recorded in {collections.FILE})")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    repo = find_repo(args.repo)
    items = collections.load(repo)
    rows = []
    for c in items:
        root = collections.checkout(repo, c)
        scripts = sorted(p.parent.name for p in root.glob("*/meta.yaml"))
        rows.append({**vars(c), "label": c.label, "scripts": scripts})
    if args.json:
        print_json(rows)
        return 0
    if not rows:
        print("no collections (efflab repo add PATH|GIT-URL)")
    for r in rows:
        trust = "trusted" if r["trusted"] else "untrusted (containers only)"
        print(
            f"{r['label']}  {r['source']}  ref={r['ref'] or '-'}  {trust}  "
            f"scripts: {', '.join(r['scripts'])}"
        )
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    c = collections.remove(find_repo(args.repo), args.name)
    print(f"removed {c.label}")
    return 0
