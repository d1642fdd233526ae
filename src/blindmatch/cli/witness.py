"""``blindmatch witness``: the independent witness of the audit logs.

``keygen`` creates the witness's signing key, ``serve`` runs the gRPC daemon until
SIGTERM, ``export`` prints the latest checkpoint the witness cosigned for a log (for
a reviewer's ``blindmatch audit verify DIR --witness KEY --witnessed FILE``).
Format of ``witness.toml``: ``blindmatch.witness.config``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from blindmatch.cli.commands import CommandGroup, add_log_format, serve_daemon
from blindmatch.cli.errors import CliError
from blindmatch.keyfile import KeyFileError
from blindmatch.vocabulary import ExitCode
from blindmatch.witness.config import WitnessConfig, WitnessConfigError, load_witness_config


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    group = CommandGroup(subparsers, "witness", "the witness: cosigns audit-log checkpoints that extend the last")
    keygen = group.add("keygen", _keygen, "create the witness's signing key",
                       "Write KEY_FILE (Ed25519, PEM PKCS#8, mode 0600) and KEY_FILE.pub (the verifier key "
                       "NAME+KEYID+BASE64 that logs and reviewers pin). Never overwrites.", config=False)
    keygen.add_argument("--name", required=True, help="the witness's name, e.g. witness.ig.example/w1")
    keygen.add_argument("--out", required=True, type=Path, metavar="KEY_FILE")
    serve = group.add("serve", _serve, "run the witness's gRPC daemon (mutual TLS 1.3)",
                      "Serve AddCheckpoint on witness.listen until SIGTERM or SIGINT. Prints "
                      "'witness NAME listening on HOST:PORT' when ready and 'stopped' when done. "
                      "Logs go to stderr, one JSON object per line.")
    add_log_format(serve)
    export = group.add("export", _export, "print the latest cosigned checkpoint of a log",
                       "Print the latest checkpoint the witness cosigned for ORIGIN (a signed note with "
                       "the witness's cosignature), read from the state directory.")
    export.add_argument("origin", metavar="ORIGIN")


def _config(args: argparse.Namespace) -> WitnessConfig:
    try:
        return load_witness_config(args.config)
    except WitnessConfigError as exc:
        raise CliError(str(exc), ExitCode.USAGE) from None


def _keygen(args: argparse.Namespace) -> int:
    from blindmatch.keyfile import public_key_path
    from blindmatch.witness.keys import create_witness_key

    try:
        key = create_witness_key(args.out, args.name)
    except KeyFileError as exc:
        raise CliError(str(exc), ExitCode.FAILURE) from None
    print(f"wrote {args.out} (private, mode 0600) and {public_key_path(args.out)}: {key.verifier_key()}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    from blindmatch.witness.service import WitnessStartError, run_daemon
    from blindmatch.witness.state import WitnessStateError

    config = _config(args)
    return serve_daemon(lambda announce: run_daemon(config, announce), args.log_format,
                        {(WitnessStartError, WitnessStateError, OSError): ExitCode.FAILURE})


def _export(args: argparse.Namespace) -> int:
    from blindmatch.witness.state import LOGS, log_id

    config = _config(args)
    if config.log(args.origin) is None:
        raise CliError(f"{args.config} does not witness the log {args.origin!r}", ExitCode.USAGE)
    path = config.state_dir / LOGS / f"{log_id(args.origin)}.note"
    try:
        sys.stdout.write(path.read_text())
    except FileNotFoundError:
        raise CliError(f"the witness has not cosigned any checkpoint of {args.origin!r} yet", ExitCode.FAILURE) from None
    return 0
