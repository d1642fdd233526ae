"""``blindmatch oprf``: the raw RFC 9497 function, for interoperability checks."""

from __future__ import annotations

import argparse
import sys

from blindmatch.cli.commands import CommandGroup
from blindmatch.cli.errors import CliError
from blindmatch.crypto import oprf
from blindmatch.crypto.group import InvalidScalarError, decode_scalar
from blindmatch.vocabulary import ExitCode


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    group = CommandGroup(subparsers, "oprf", "RFC 9497 OPRF primitives", "RFC 9497 OPRF(ristretto255, SHA-512) primitives.")
    evaluate = group.add(
        "evaluate", _evaluate, "RFC 9497 Evaluate of hex inputs read from stdin",
        "Read inputs as hex, one per line, on stdin (an empty line is the empty input) and print "
        "RFC 9497 Evaluate(skS, input) as lowercase hex, one line per input, in order.",
        config=False,
    )
    evaluate.add_argument("--key-hex", required=True, help="the secret scalar skS as 64 hex digits (little-endian encoding)")


def _evaluate(args: argparse.Namespace) -> int:
    try:
        sk = decode_scalar(bytes.fromhex(args.key_hex))
    except (ValueError, InvalidScalarError) as exc:
        raise CliError(f"--key-hex: {exc}", ExitCode.USAGE) from None
    out = sys.stdout
    for number, line in enumerate(sys.stdin, start=1):
        text = line.rstrip("\r\n")
        try:
            data = bytes.fromhex(text)
        except ValueError:
            raise CliError(f"line {number}: not hexadecimal") from None
        try:
            out.write(oprf.evaluate(sk, data).hex() + "\n")
        except oprf.InvalidInputError as exc:
            raise CliError(f"line {number}: {exc}") from None
    return 0
