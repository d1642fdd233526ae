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
    "blindmatch.cli.bench",
    "blindmatch.cli.keys",
    "blindmatch.cli.oprf",
)

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


class CliError(Exception):
    """An error to report to the user as one line, with a meaningful exit code."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.exit_code = exit_code


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
        return int(args.func(args) or EXIT_OK)
    except CliError as exc:
        print(f"blindmatch: error: {exc}", file=sys.stderr)
        if getattr(args, "json", False):  # scripts read the last stdout line: give them one
            print(json.dumps({"error": str(exc), "exit_code": exc.exit_code}))
        return exc.exit_code
    except KeyboardInterrupt:
        print("blindmatch: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    # Run through the package module so CliError raised by command modules is this same class.
    from blindmatch.cli import main as _package_main

    sys.exit(_package_main.main())
