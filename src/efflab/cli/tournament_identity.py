"""`efflab tournament init | keygen | register | revoke | organiser-key | sign`: the
organiser's set-up and participants' Ed25519 identities (efflab.tournaments.onboarding
/ identity / signing), apart from the submit and ranking commands."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from efflab.cli.common import find_repo, print_json
from efflab.core.errors import BadInput

# the tournaments modules are imported by the commands that use them: tournaments.submit
# pulls in scipy.stats (seconds), which every other `efflab` command would pay at start


def register(ts: argparse._SubParsersAction) -> None:
    it = ts.add_parser(
        "init",
        help="organiser: make a tournament ready (its secret; --demo: a participant's key too)",
        description="Create what the organiser must create before the first submission: "
        "the secret the private scoring data derives from (outside the repo, in "
        "$EFFLAB_ORGANISER_DIR, default ~/.config/efflab/organiser). With --demo, also a "
        "demo participant (default 'ada', the name the shipped examples use): a key pair "
        "beside the secret, registered, so `submit ... --key KEY` works at once. Running it "
        "again keeps what exists.",
    )
    it.add_argument("tournament")
    it.add_argument(
        "--demo",
        nargs="?",
        const="ada",
        default=None,
        metavar="NAME",
        help="also make and register a demo participant's key (default name: ada)",
    )
    it.add_argument("--json", action="store_true", help="machine-readable output")
    it.set_defaults(func=cmd_init)
    kg = ts.add_parser("keygen", help="a participant's Ed25519 key pair (KEY and KEY.pub)")
    kg.add_argument("key", type=Path, help="where to write the private key (KEY.pub: the public)")
    kg.add_argument("--json", action="store_true", help="machine-readable output")
    kg.set_defaults(func=cmd_keygen)
    rg = ts.add_parser("register", help="organiser: register a participant's public key")
    rg.add_argument("tournament")
    rg.add_argument("participant")
    rg.add_argument("public_key", type=Path, help="the participant's KEY.pub")
    rg.add_argument("--replace", action="store_true", help="rotate a registered key")
    rg.add_argument("--json", action="store_true", help="machine-readable output")
    rg.set_defaults(func=cmd_register)
    rv = ts.add_parser("revoke", help="organiser: withdraw a participant's key (a signed ledger entry)")  # fmt: skip
    rv.add_argument("tournament")
    rv.add_argument("participant")
    rv.add_argument("--json", action="store_true", help="machine-readable output")
    rv.set_defaults(func=cmd_revoke)
    ok = ts.add_parser("organiser-key", help="organiser: print the public key that signs the ledger's heads (publish it)")  # fmt: skip
    ok.add_argument("tournament")
    ok.add_argument("--json", action="store_true", help="machine-readable output")
    ok.set_defaults(func=cmd_organiser_key)
    sg = ts.add_parser("sign", help="sign a submission (writes FILE.sig)")
    sg.add_argument("tournament")
    sg.add_argument("file", type=Path, help="the submission file")
    sg.add_argument("--key", type=Path, required=True, help="your private key (from keygen)")
    sg.add_argument("--archive", type=Path, help="the archive, when given on submit")
    sg.add_argument("--json", action="store_true", help="machine-readable output")
    sg.set_defaults(func=cmd_sign)


def cmd_keygen(args: argparse.Namespace) -> int:
    from efflab.tournaments.identity import generate

    k = generate(args.key)
    if args.json:
        print_json(
            {"key": str(args.key), "public": f"{args.key}.pub", "fingerprint": k.fingerprint}
        )
    else:
        print(f"wrote {args.key} (private, 0600) and {args.key}.pub; fingerprint {k.fingerprint}")
    return 0


def cmd_register(args: argparse.Namespace) -> int:
    from efflab.tournaments.identity import Registry
    from efflab.tournaments.spec import load_tournament
    from efflab.tournaments.submit import participants_file

    repo = find_repo(args.repo)
    t = load_tournament(repo, args.tournament)
    if not args.public_key.is_file():
        raise BadInput(
            args.public_key, "$", "a public key file (KEY.pub from keygen)", "no such file"
        )
    k = Registry(participants_file(repo, t)).register(args.participant, args.public_key.read_text(), args.replace)  # fmt: skip
    if args.json:
        print_json({"participant": args.participant, "fingerprint": k.fingerprint})
    else:
        print(f"registered {args.participant} for {t.id}: key {k.fingerprint}")
    return 0


def cmd_sign(args: argparse.Namespace) -> int:
    from efflab.tournaments.signing import sign_submission

    repo = find_repo(args.repo)
    out, fp = sign_submission(repo, args.tournament, args.file, args.key, args.archive)
    if args.json:
        print_json({"signature": str(out), "fingerprint": fp})
    else:
        print(f"wrote {out} (key {fp})")
    return 0


def cmd_revoke(args: argparse.Namespace) -> int:
    from efflab.tournaments.identity import Registry
    from efflab.tournaments.spec import load_tournament
    from efflab.tournaments.submit import participants_file

    repo = find_repo(args.repo)
    t = load_tournament(repo, args.tournament)
    k = Registry(participants_file(repo, t)).revoke(args.participant)
    if args.json:
        print_json({"participant": args.participant, "revoked": k.fingerprint})
    else:
        print(f"revoked {args.participant}'s key {k.fingerprint} for {t.id}")
    return 0


def cmd_organiser_key(args: argparse.Namespace) -> int:
    from efflab.tournaments.organiser import key_file, load_or_create
    from efflab.tournaments.spec import load_tournament

    repo = find_repo(args.repo)
    t = load_tournament(repo, args.tournament)
    org = load_or_create(t.id)
    if args.json:
        print_json({"public_key": org.public_b64, "fingerprint": org.fingerprint, "private": str(key_file(t.id))})  # fmt: skip
    else:
        print(org.public_b64)
        print(f"efflab: fingerprint {org.fingerprint}; private key {key_file(t.id)}", file=sys.stderr)  # fmt: skip
    return 0


def cmd_init(args: argparse.Namespace) -> int:
    from efflab.tournaments.onboarding import init
    from efflab.tournaments.spec import load_tournament

    repo = find_repo(args.repo)
    t = load_tournament(repo, args.tournament)
    st = init(repo, t, args.demo)
    if args.json:
        print_json(
            {
                "tournament": t.id,
                "secret": None if st.secret is None else str(st.secret),
                "secret_created": st.secret_created,
                "participant": st.participant,
                "key": None if st.key is None else str(st.key),
                "fingerprint": st.fingerprint,
                "registered": st.registered,
            }
        )
        return 0
    if st.secret is not None:
        made = "wrote" if st.secret_created else "kept"
        print(f"{made} the organiser's secret for {t.id}: {st.secret} (0600; outside the repo)")
    if st.key is not None:
        made = "registered" if st.registered else "already registered"
        print(f"{made} demo participant '{st.participant}' for {t.id}: key {st.fingerprint}")
        print(f"  private key: {st.key}")
        print(f"  submit: efflab tournament submit {t.id} ENTRY.yaml --key {st.key}")
    print(f"ready: efflab tournament show {t.id} prints the rules and a submission template")
    return 0
