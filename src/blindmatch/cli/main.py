"""Entry point of the ``blindmatch`` command.

Every command group lives in its own module under ``blindmatch.cli`` and exposes
``register(subparsers)``; each registered sub-command sets ``func`` to a callable
taking the parsed arguments and returning a process exit code.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys

from blindmatch import __version__
from blindmatch.vocabulary import BlindmatchError, ExitCode

# Order is the order of ``blindmatch --help``.
COMMAND_MODULES: tuple[str, ...] = (
    "blindmatch.cli.demo",
    "blindmatch.cli.holder",
    "blindmatch.cli.requester",
    "blindmatch.cli.official",
    "blindmatch.cli.pki",
    "blindmatch.cli.normalize",
    "blindmatch.cli.matchkeys",
    "blindmatch.cli.explain",
    "blindmatch.cli.audit",
    "blindmatch.cli.witness",
    "blindmatch.cli.issuer",
    "blindmatch.cli.bench",
    "blindmatch.cli.keys",
    "blindmatch.cli.oprf",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="blindmatch",
        description="Privacy-preserving record matching between a requester and a holder "
        "(OPRF-based private set intersection, RFC 9497 ristretto255-SHA512).",
    )
    parser.add_argument("--version", action="version", version=f"blindmatch {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or ExitCode.OK)
    except BlindmatchError as exc:  # every deliberate failure exits as its reason says (vocabulary.TRAITS)
        print(f"blindmatch: error: {exc}", file=sys.stderr)
        if getattr(args, "json", False):  # scripts read the last stdout line: give them one
            print(json.dumps({"error": str(exc), "exit_code": int(exc.exit_code)}))
        return int(exc.exit_code)
    except KeyboardInterrupt:
        print("blindmatch: interrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
