"""``blindmatch issuer``: the authority that issues eligibility tokens.

``keygen`` creates the OPRF seed and the signing key named in issuer.toml, ``serve`` runs the
blind-evaluation daemon for holders, ``issue``
writes the signed token file for the eligible rows of ORDERS.csv, ``public-key`` prints
the epoch's OPRF public key that holders pin to verify the issuer's proofs.
Format of ``issuer.toml``: ``blindmatch.issuer.config``.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

from blindmatch.cli.commands import CommandGroup, add_log_format, announce
from blindmatch.issuer.config import IssuerConfig, load_issuer_config


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    group = CommandGroup(subparsers, "issuer", "the issuer: eligibility tokens for records under a final order")
    group.add("keygen", _keygen, "create the issuer's OPRF seed and signing key",
              "Write issuer.seed_file (the OPRF seed of every epoch's key, mode 0600) and "
              "issuer.signing_key (Ed25519 PEM, mode 0600) with signing_key.pub (hex, for requesters "
              "to pin). Never overwrites. Prints the current epoch's OPRF public key.")
    issue = group.add("issue", _issue, "write the signed token file for the eligible rows of ORDERS.csv",
                      "For each row whose order is final, within the legal basis and under the per-person "
                      "address cap, compute the tokens of the current epoch; write them, signed, to TOKENS.")
    issue.add_argument("orders", type=Path, metavar="ORDERS.csv")
    issue.add_argument("--out", required=True, type=Path, metavar="TOKENS")
    serve = group.add("serve", _serve,
                      "run the issuer's gRPC daemon (mutual TLS 1.3): blind evaluations for configured holders",
                      "Serve GetEpoch and BlindEvaluate on issuer.listen until SIGTERM or SIGINT. Prints "
                      "'issuer NAME listening on HOST:PORT' when ready and 'stopped' when done. "
                      "Logs go to stderr, one JSON object per line.")
    add_log_format(serve)
    group.add("public-key", _public_key, "print the current epoch's OPRF public key (JSON)",
              "Print {\"issuer\", \"epoch\", \"not_before\", \"expires\", \"public_key\"} for holders to pin.")


def _epoch_public_key(config: IssuerConfig) -> dict[str, str]:
    from blindmatch.issuer.epochs import Epoch, epoch_key_pair
    from blindmatch.issuer.keys import read_seed

    epoch = Epoch.containing(datetime.now(UTC), config.epoch_months)
    pk = epoch_key_pair(read_seed(config.seed_file), epoch)[1]
    return {"issuer": config.name, "epoch": epoch.name, "not_before": epoch.not_before.isoformat(),
            "expires": epoch.expires.isoformat(), "public_key": pk.hex()}


def _keygen(args: argparse.Namespace) -> int:
    from blindmatch.issuer.keys import create_seed, create_signing_key
    from blindmatch.keyfile import public_key_path

    config = load_issuer_config(args.config)
    create_seed(config.seed_file)
    create_signing_key(config.signing_key)
    print(f"wrote {config.seed_file} and {config.signing_key} (0600), {public_key_path(config.signing_key)}")
    print(json.dumps(_epoch_public_key(config)))
    return 0


def _issue(args: argparse.Namespace) -> int:
    from blindmatch.issuer.issue import issue_tokens

    report = issue_tokens(args.orders, load_issuer_config(args.config), args.out)
    print(report.summary())
    return 0


def _serve(args: argparse.Namespace) -> int:
    from blindmatch.issuer.service import run_daemon
    from blindmatch.transport.jsonlog import configure_logging

    config = load_issuer_config(args.config)
    configure_logging(args.log_format)
    return run_daemon(config, announce)


def _public_key(args: argparse.Namespace) -> int:
    json.dump(_epoch_public_key(load_issuer_config(args.config)), sys.stdout)
    print()
    return 0
