"""``blindmatch issuer``: the authority that issues eligibility tokens.

``keygen`` creates the OPRF seed and the signing key named in issuer.toml, ``serve`` runs the
blind-evaluation daemon for holders, ``issue``
writes the signed token file for the eligible rows of ORDERS.csv (or of a requester's file
checked against ORDERS.csv with ``--orders``), ``approve`` records a named person's decision
on a linkage request (``revoke`` takes approved links back), ``public-key`` prints
the epoch's OPRF public key that holders pin to verify the issuer's proofs.
Format of ``issuer.toml``: ``blindmatch.issuer.config``.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

from blindmatch.issuer.config import IssuerConfig, load_issuer_config


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser("issuer", help="the issuer: eligibility tokens for records under a final order")
    commands = parser.add_subparsers(dest="issuer_command", metavar="SUBCOMMAND", required=True)

    keygen = commands.add_parser(
        "keygen", help="create the issuer's OPRF seed and signing key",
        description="Write issuer.seed_file (the OPRF seed of every epoch's key, mode 0600) and "
                    "issuer.signing_key (Ed25519 PEM, mode 0600) with signing_key.pub (hex, for requesters "
                    "to pin). Never overwrites. Prints the current epoch's OPRF public key.")
    keygen.add_argument("--config", required=True, type=Path, metavar="ISSUER_TOML")
    keygen.set_defaults(func=_keygen)

    issue = commands.add_parser(
        "issue", help="write the signed token file for the eligible rows of ORDERS.csv",
        description="For each row whose order is final, within the legal basis and under the per-person "
                    "address cap, compute the tokens of the current epoch; write them, signed, to TOKENS. "
                    "With --orders, FILE is a requester's file whose rows name their order in the column "
                    "issuer.case_field: a row gets tokens only when that order in ORDERS.csv qualifies, is "
                    "the row's person's, and the address is on the issuer's record for that person or "
                    "linked by an approved linkage request ('issuer approve').")
    issue.add_argument("orders", type=Path, metavar="FILE")
    issue.add_argument("--orders", dest="records", type=Path, metavar="ORDERS.csv",
                       help="the issuer's own records to check FILE's rows against")
    issue.add_argument("--config", required=True, type=Path, metavar="ISSUER_TOML")
    issue.add_argument("--out", required=True, type=Path, metavar="TOKENS")
    issue.set_defaults(func=_issue)

    approve = commands.add_parser(
        "approve", help="approve a linkage request: link new addresses to persons under a final order",
        description="Decide every row of REQUEST.csv (the schema's name and address fields and the order "
                    "reference issuer.case_field) against ORDERS.csv: the order exists, is final and within "
                    "the legal basis, is the row's person's, and the person stays within "
                    "max_addresses_per_person counting the addresses on record, approved before and issued "
                    "this epoch. Rejected rows are listed with their reason. The approval is an entry of the "
                    "issuer's audit log naming --by; approved links then count as on record for "
                    "'issuer issue --orders'.")
    approve.add_argument("request", type=Path, metavar="REQUEST.csv")
    approve.add_argument("--orders", required=True, type=Path, metavar="ORDERS.csv")
    approve.add_argument("--by", required=True, metavar="NAME", help="the person at the issuer who approves")
    approve.add_argument("--config", required=True, type=Path, metavar="ISSUER_TOML")
    approve.set_defaults(func=_approve)

    revoke = commands.add_parser(
        "revoke", help="revoke approved links: the rows of REQUEST.csv (name and address fields)",
        description="Drop the approved (person, address) links the rows of REQUEST.csv name; rows that name no "
                    "approved link are listed. The revocation is an entry of the issuer's audit log naming --by. "
                    "Tokens already issued for a revoked link stay valid until their epoch ends.")
    revoke.add_argument("request", type=Path, metavar="REQUEST.csv")
    revoke.add_argument("--by", required=True, metavar="NAME", help="the person at the issuer who revokes")
    revoke.add_argument("--config", required=True, type=Path, metavar="ISSUER_TOML")
    revoke.set_defaults(func=_revoke)

    serve = commands.add_parser(
        "serve", help="run the issuer's gRPC daemon (mutual TLS 1.3): blind evaluations for configured holders",
        description="Serve GetEpoch and BlindEvaluate on issuer.listen until SIGTERM or SIGINT. Prints "
                    "'issuer NAME listening on HOST:PORT' when ready.")
    serve.add_argument("--config", required=True, type=Path, metavar="ISSUER_TOML")
    serve.set_defaults(func=_serve)

    public = commands.add_parser(
        "public-key", help="print the current epoch's OPRF public key (JSON)",
        description="Print {\"issuer\", \"epoch\", \"not_before\", \"expires\", \"public_key\"} for holders to pin.")
    public.add_argument("--config", required=True, type=Path, metavar="ISSUER_TOML")
    public.set_defaults(func=_public_key)


def _epoch_public_key(config: IssuerConfig) -> dict[str, str]:
    from blindmatch.issuer.epochs import Epoch, epoch_key_pair
    from blindmatch.issuer.keys import read_seed

    epoch = Epoch.containing(datetime.now(UTC), config.epoch_months)
    pk = epoch_key_pair(read_seed(config.seed_file), epoch)[1]
    return {"issuer": config.name, "epoch": epoch.name, "not_before": epoch.not_before.isoformat(),
            "expires": epoch.expires.isoformat(), "public_key": pk.hex()}


def _keygen(args: argparse.Namespace) -> int:
    from blindmatch.issuer.keys import create_seed, create_signing_key, public_key_path

    config = load_issuer_config(args.config)
    create_seed(config.seed_file)
    create_signing_key(config.signing_key)
    print(f"wrote {config.seed_file} and {config.signing_key} (0600), {public_key_path(config.signing_key)}")
    print(json.dumps(_epoch_public_key(config)))
    return 0


def _issue(args: argparse.Namespace) -> int:
    from blindmatch.issuer.issue import issue_tokens

    report = issue_tokens(args.orders, load_issuer_config(args.config), args.out, orders=args.records)
    print(report.summary())
    return 0


def _approve(args: argparse.Namespace) -> int:
    from blindmatch.issuer.linkage import approve_request

    report = approve_request(args.request, args.orders, load_issuer_config(args.config), args.by)
    print(report.summary(args.request))
    return 0


def _revoke(args: argparse.Namespace) -> int:
    from blindmatch.issuer.linkage import revoke_request

    report = revoke_request(args.request, load_issuer_config(args.config), args.by)
    print(report.summary(args.request))
    return 0


def _serve(args: argparse.Namespace) -> int:
    from blindmatch.issuer.service import run_daemon

    def announce(line: str) -> None:
        print(line, flush=True)

    return run_daemon(load_issuer_config(args.config), announce)


def _public_key(args: argparse.Namespace) -> int:
    json.dump(_epoch_public_key(load_issuer_config(args.config)), sys.stdout)
    print()
    return 0
