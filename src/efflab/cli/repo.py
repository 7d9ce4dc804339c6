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
    a.set_defaults(func=cmd_add)
    ls = rsub.add_parser("list", help="registered collections and their scripts")
    ls.add_argument("--json", action="store_true", help="machine-readable output")
    ls.set_defaults(func=cmd_list)
    rm = rsub.add_parser("remove", help="unregister a collection (its cached checkout stays)")
    rm.add_argument("name")
    rm.set_defaults(func=cmd_remove)


def cmd_add(args: argparse.Namespace) -> int:
    repo = find_repo(args.repo)
    c = collections.add(repo, args.source, args.name, args.ref)
    try:  # the project must still resolve: an alias clash is an error naming both files
        reg = Registry.for_repo(repo)
    except Exception:
        collections.remove(repo, c.name)
        raise
    root = collections.checkout(repo, c)
    mine = sorted(s.alias for s in reg.scripts.values() if s.path.parent == root.resolve())
    print(f"added {c.label} from {c.source}: {len(mine)} scripts ({', '.join(mine)})")
    print(f"pinned in {collections.FILE} (commit it)")
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
        print(
            f"{r['label']}  {r['source']}  ref={r['ref'] or '-'}  scripts: {', '.join(r['scripts'])}"
        )
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    c = collections.remove(find_repo(args.repo), args.name)
    print(f"removed {c.label}")
    return 0
