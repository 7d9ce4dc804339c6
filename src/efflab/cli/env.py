"""`efflab env`: bootstrap the base image, build, list and prune env images."""

from __future__ import annotations

import argparse
import sys
import time

from efflab.cli.common import find_repo, print_json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("env", help="Docker environments: bootstrap, build, list, prune")
    esub = p.add_subparsers(dest="env_command", metavar="ACTION")

    b = esub.add_parser(
        "bootstrap",
        help="build the local Debian base image (debootstrap -> docker import); no registry",
    )
    b.add_argument("--force", action="store_true", help="rebuild even when present")
    b.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    b.set_defaults(func=cmd_bootstrap)

    bl = esub.add_parser("build", help="build env images (cached by content digest)")
    bl.add_argument("names", nargs="*", metavar="NAME", help="envs to build (default: all)")
    bl.add_argument(
        "--no-cache", action="store_true", help="rebuild every layer even when the tag exists"
    )
    bl.add_argument("--json", action="store_true", help="machine-readable output")
    bl.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    bl.set_defaults(func=cmd_build)

    ls = esub.add_parser("list", help="envs, their digests and whether they are built")
    ls.add_argument("--json", action="store_true", help="machine-readable output")
    ls.set_defaults(func=cmd_list)

    pr = esub.add_parser("prune", help="remove stale env images and stopped efflab containers")
    pr.add_argument("--json", action="store_true", help="machine-readable output")
    pr.set_defaults(func=cmd_prune)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _log(quiet: bool):
    return (lambda _m: None) if quiet else (lambda m: print(f"efflab: {m}", file=sys.stderr))


def cmd_bootstrap(args: argparse.Namespace) -> int:
    from efflab.envs import images

    client = images.connect()
    if images.base_ref() != images.BOOTSTRAP_REF:
        print(
            f"efflab: EFFLAB_BASE_IMAGE={images.base_ref()}: no bootstrap needed", file=sys.stderr
        )
        ref, image_id = images.ensure_base(client, _log(args.quiet))
    else:
        ref, image_id = images.BOOTSTRAP_REF, images.bootstrap(client, args.force, _log(args.quiet))
    print(f"{ref}  {image_id}")
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    from efflab.core.envspec import known_envs
    from efflab.envs import images

    repo = find_repo(args.repo)
    names = args.names or known_envs(repo)
    for name in names:  # unknown names are bad input before anything is built
        images.check_env(repo, name)
    client = images.connect()
    rows = []
    for name in names:
        t0 = time.perf_counter()
        img = images.ensure_built(repo, name, client, _log(args.quiet or args.json), args.no_cache)
        rows.append({**vars(img), "seconds": round(time.perf_counter() - t0, 2)})
    if args.json:
        print_json(rows)
        return 0
    for r in rows:
        how = "cached" if r["cached"] else f"built in {r['build_s']:.1f} s"
        print(f"{r['name']:<10} {r['tag']:<44} {r['image_id'][7:19]}  {how}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from efflab.envs import images

    repo = find_repo(args.repo)
    rows = images.status(repo, images.connect())
    if args.json:
        print_json([vars(r) for r in rows])
        return 0
    print(f"{'env':<10} {'context digest':<14} {'image tag':<44} {'built':<6} size_mb")
    for r in rows:
        print(
            f"{r.name:<10} {r.context_digest[:12]:<14} {r.tag or '-':<44} "
            f"{'yes' if r.built else 'no':<6} {r.size_mb if r.size_mb is not None else '-'}"
            + (f"  ({r.note})" if r.note else "")
        )
    return 0


def cmd_prune(args: argparse.Namespace) -> int:
    from efflab.envs import cleanup as imagegc
    from efflab.envs import images

    repo = find_repo(args.repo)
    removed = imagegc.prune(repo, images.connect())
    if args.json:
        print_json(removed)
    else:
        print("\n".join(removed) if removed else "nothing to prune")
    return 0
