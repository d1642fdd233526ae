"""``blindmatch pki init``: a ready-made CA and mTLS certificates for a pilot."""

from __future__ import annotations

import argparse
from pathlib import Path

from blindmatch.cli.commands import CommandGroup
from blindmatch.cli.errors import CliError
from blindmatch.transport.pki import PkiError, init_pki


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    group = CommandGroup(subparsers, "pki", "certificates for mutual TLS between holder and requesters")
    init = group.add(
        "init", _init, "create a CA and per-organisation client/server certificates",
        "Create DIR/ca.crt and DIR/ca.key (reused if present) and, for each --org, "
        "DIR/<org>/client.{crt,key} and server.{crt,key} with O=<org> in the subject. "
        "Private keys are written with mode 0600. For pilots and tests: production "
        "deployments point holder.toml at certificates from their own PKI.",
        config=False,
    )
    init.add_argument("directory", type=Path, metavar="DIR", help="directory to create the files in")
    init.add_argument(
        "--org", action="append", required=True, metavar="NAME", help="organisation name (repeat for each organisation)"
    )
    init.add_argument(
        "--hosts",
        default="localhost,127.0.0.1",
        help="comma-separated host names/IP addresses for the server certificates (default: %(default)s)",
    )


def _init(args: argparse.Namespace) -> int:

    hosts = [h.strip() for h in args.hosts.split(",") if h.strip()]
    try:
        created = init_pki(args.directory, args.org, hosts)
    except (PkiError, OSError) as exc:
        raise CliError(str(exc)) from None
    print(f"CA: {args.directory / 'ca.crt'}")
    for files in created:
        print(f"{files.organisation}: {files.directory}/{{client,server}}.{{crt,key}}")
    return 0
