"""`efflab script list|show|run|new` and `efflab experiment new`: scripts as
first-class citizens, the way Collective Mind users reach for `cm run script`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from efflab.cli.common import Progress, find_repo, new_run_id, parse_sets, print_json
from efflab.cli.options import add_run_options, run_options
from efflab.core.errors import BadInput, RunFailed
from efflab.papers.spec import load_paper, paper_ids
from efflab.plan import scaffold
from efflab.plan.planner import Planner, load_experiment, single_invocation
from efflab.plan.registry import Registry, Script
from efflab.workflow.pipeline import run_experiment


def register(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser("script", help="list, show, run and scaffold scripts")
    ssub = s.add_subparsers(dest="script_cmd", metavar="SUBCOMMAND", required=True)
    ls = ssub.add_parser("list", help="every script (alias, tags, env, description)")
    ls.add_argument("tags", nargs="?", default=None, help="tag query, e.g. edge,-gpu")
    ls.add_argument("--json", action="store_true", help="machine-readable output")
    ls.set_defaults(func=cmd_list)
    sh = ssub.add_parser("show", help="one script: inputs, deps, outputs, users, key")
    sh.add_argument("script", metavar="ALIAS|TAGS")
    sh.add_argument("--json", action="store_true", help="machine-readable output")
    sh.set_defaults(func=cmd_show)
    r = ssub.add_parser("run", help="plan, key and run one invocation (cached, recorded)")
    r.add_argument("script", metavar="TAGS")
    r.add_argument("--set", action="append", metavar="NAME=VALUE", help="an input (repeatable)")
    r.add_argument("--repetitions", type=int, default=1, help="repetitions (default 1)")
    add_run_options(r, quick=False, profile=True, fresh=True)
    r.add_argument("--json", action="store_true", help="print the outputs as JSON")
    r.set_defaults(func=cmd_run)
    n = ssub.add_parser("new", help="scaffold scripts/ALIAS (meta.yaml, run.py|run.sh, a test)")
    n.add_argument("alias", metavar="ALIAS")
    n.add_argument("--tags", required=True, help="comma-separated tags (the first is the family)")
    n.add_argument("--env", default=None, help="env under envs/ (default: none, host)")
    n.add_argument("--shell", action="store_true", help="run.sh instead of run.py")
    n.set_defaults(func=cmd_new)

    e = sub.add_parser("experiment", help="scaffold experiments")
    esub = e.add_subparsers(dest="experiment_cmd", metavar="SUBCOMMAND", required=True)
    en = esub.add_parser("new", help="workflows/experiments/NAME.yaml from a script's inputs")
    en.add_argument("name", metavar="NAME")
    en.add_argument("--script", required=True, metavar="TAGS", help="the script it runs")
    en.set_defaults(func=cmd_experiment_new)


def brief(s: Script) -> dict[str, Any]:
    return {
        "alias": s.alias,
        "tags": sorted(s.tags),
        "env": s.env,
        "description": s.description,
        "collection": s.collection,
        "origin": s.origin,
        "trusted": s.trusted,
        "path": str(s.path),
    }


def cmd_list(args: argparse.Namespace) -> int:
    reg = Registry.for_repo(find_repo(args.repo), lenient=True)
    for exc in reg.broken:  # one broken meta.yaml is named and skipped, not fatal
        print(f"efflab: skipped: {exc}", file=sys.stderr)
    hits = reg.query(args.tags) if args.tags else list(reg.scripts.values())
    if args.tags and not hits:  # an empty answer is an answer: exit 0, with the near misses
        print(
            f"efflab: no script matches '{args.tags}': {reg.no_match(args.tags)}", file=sys.stderr
        )
    hits = sorted(hits, key=lambda s: s.alias)
    if args.json:
        print_json([brief(s) for s in hits])
        return 0
    if not hits:
        return 0
    w = max(len(s.alias) for s in hits)
    for s in hits:
        print(
            f"{s.alias:<{w}}  [{','.join(sorted(s.tags))}]  env={s.env or 'host'}  {s.description}"
        )
    return 0


def users(repo: Path, reg: Registry, script: Script) -> tuple[list[str], list[str]]:
    """Experiments whose measured script is this one, and papers that need them."""
    exps = []
    for f in sorted((repo / "workflows" / "experiments").glob("*.yaml")):
        try:
            if reg.find(load_experiment(repo, f.stem).script).alias == script.alias:
                exps.append(f.stem)
        except BadInput:
            continue  # a broken experiment is reported by its own commands
    papers = []
    for pid in paper_ids(repo):
        try:
            if {n.name for n in load_paper(repo, pid).experiments} & set(exps):
                papers.append(pid)
        except BadInput:
            continue
    return exps, papers


def show_data(repo: Path, reg: Registry, s: Script) -> dict[str, Any]:
    planner = Planner(repo, reg, inspecting=True)  # never imports a collection's check.py
    inv = planner.invocation(s, {}, s.meta_file, {})
    deps = []
    for d in s.deps:
        target = reg.find(d.tags, s.meta_file)
        deps.append(
            {"name": d.name, "tags": d.tags, "inputs": d.inputs, "resolves_to": target.alias}
        )
    exps, papers = users(repo, reg, s)
    return {
        **brief(s),
        "uid": s.uid,
        "version": s.version,
        "run": s.run,
        "inputs": s.inputs,
        "deps": deps,
        "outputs": {"metrics": s.metrics, "files": s.files},
        "resources": s.resources,
        "requires": {
            "tools": [t.name for t in s.requires.tools],
            "packages": [p.dist for p in s.requires.packages],
        },
        "experiments": exps,
        "papers": papers,
        "key_for_defaults": inv.key,
    }


def cmd_show(args: argparse.Namespace) -> int:
    repo = find_repo(args.repo)
    reg = Registry.for_repo(repo)
    d = show_data(repo, reg, reg.find(args.script, "ALIAS|TAGS"))
    if args.json:
        print_json(d)
        return 0
    print(f"{d['alias']} ({d['uid']}, v{d['version']}) [{','.join(d['tags'])}]\n{d['description']}")
    print(f"path {d['path']} · run {d['run']} · env {d['env'] or 'host'}"
          + (f" · collection {d['collection']}" if d["collection"] else ""))  # fmt: skip
    print("\ninputs:")
    for name, p in d["inputs"].items():
        rng = [f"{k} {p[k]}" for k in ("minimum", "maximum", "enum", "pattern") if k in p]
        print(f"  {name}: {p.get('type', '?')} = {p['default']!r}"
              + (f" ({', '.join(map(str, rng))})" if rng else "")
              + (f" — {p['description']}" if p.get("description") else ""))  # fmt: skip
    print("deps:" + ("" if d["deps"] else " none"))
    for x in d["deps"]:
        print(f"  {x['name']}: {x['tags']} -> {x['resolves_to']} {x['inputs'] or ''}")
    print("outputs:")
    for name, m in d["outputs"]["metrics"].items():
        print(f"  metric {name} [{m['unit']}], {m['better']} is better")
    for name in d["outputs"]["files"]:
        print(f"  file {name}")
    print(f"resources: {d['resources'] or 'defaults'}")
    req = d["requires"]
    print(
        f"requires: tools {', '.join(req['tools']) or 'none'}; packages {', '.join(req['packages']) or 'none'}"
    )
    print(
        f"used by experiments: {', '.join(d['experiments']) or 'none'}; papers: {', '.join(d['papers']) or 'none'}"
    )
    print(f"key for default inputs: {d['key_for_defaults']}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    repo = find_repo(args.repo)
    reg = Registry.for_repo(repo)
    script = reg.find(args.script, "TAGS")
    if args.repetitions < 1:
        raise BadInput("--repetitions", "$", "a whole number >= 1", args.repetitions)
    exp = single_invocation(script, parse_sets(args.set), args.repetitions)
    run_id = new_run_id()
    opts = run_options(args, repo)
    salt = run_id if args.fresh else ""
    plan = Planner(repo, reg, salt=salt, runtime=opts.runtime.identity()).plan(exp)
    with Progress(f"script {script.alias}", opts.quiet) as prog:
        res = run_experiment(repo, exp.name, opts, run_id=run_id, prepared=plan,
                             on_progress=prog.update)  # fmt: skip
    recs = res.collected.ok + res.collected.failed if res.collected else []
    out = [
        {
            "alias": r.alias,
            "key": r.key,
            "status": r.status,
            "cached": res.jobs_run == 0,
            "inputs": r.inputs,
            "metrics": r.metric_values(),
            "values": r.values,
            "error": r.error,
            "record": f"results/{exp.name}/runs/{r.file_name}",
        }
        for r in sorted(recs, key=lambda r: r.repetition)
    ]
    if args.json:
        print_json(out[0] if len(out) == 1 else out)
    else:
        for o in out:
            print(f"{o['alias']} {o['key']} ({'cached' if o['cached'] else 'ran'}): {o['status']}")
            for m, v in o["metrics"].items():
                print(f"  {m} = {v:.6g} {script.metrics[m]['unit']}")
            print(f"  record: {o['record']}")
    if res.failures:
        for f in res.failures:
            print(f"efflab: FAILED {f}", file=sys.stderr)
        raise RunFailed(f"{script.alias} failed")
    return 0


def cmd_new(args: argparse.Namespace) -> int:
    repo = find_repo(args.repo)
    tags = [t.strip() for t in args.tags.split(",") if t.strip()]
    script, written = scaffold.new_script(repo, args.alias, tags, args.env, args.shell)
    print(f"scaffolded {script.alias} (uid {script.uid}); it validates as written:")
    for f in written:
        print(f"  {f.relative_to(repo)}")
    print(f"try: efflab script run {script.alias} --runtime host")
    return 0


def cmd_experiment_new(args: argparse.Namespace) -> int:
    repo = find_repo(args.repo)
    script = Registry.for_repo(repo).find(args.script, "--script")
    f = scaffold.new_experiment(repo, args.name, script)
    try:
        Planner(repo).plan(load_experiment(repo, args.name))  # validates and plans as written
    except BadInput:
        f.unlink(missing_ok=True)
        raise
    print(f"scaffolded {f.relative_to(repo)}; try: efflab plan {args.name}")
    return 0
