"""``blindmatch matchkeys``: every row's match keys, tier by tier, for a data steward's own checks.

A match key is the plain record in a fixed encoding (protocol/SPEC.md 8.4.1); the
command prints SHA-256 of each key, an unkeyed hash of personal data: anyone holding one
can test guessed records against it. The command is a local tool: its
output must stay with the steward, never be sent to a peer or written to a shared log.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import sys
from pathlib import Path
from typing import TextIO

from blindmatch.cli.errors import CliError
from blindmatch.normalize import (
    BUILTIN_SCHEMAS,
    NormalizationError,
    Schema,
    SchemaError,
    resolve_schema,
    schema_source,
)
from blindmatch.vocabulary import ExitCode

WARNING = (
    "Each key is printed as SHA-256 of the match key, an unkeyed hash of personal data (whoever holds "
    "one can test a guessed record against it): a steward's local tool; do not send the output to a peer or keep it in a log."
)


SCHEMA_HELP = f"a built-in schema ({', '.join(BUILTIN_SCHEMAS)}) or a schema TOML file (default: the built-in default)"


def load_schema_arg(path: str | None) -> Schema:
    """The schema named by ``--schema`` (a built-in name or a file), else the default; a bad file is a one-line error."""
    try:
        return resolve_schema(None if path is None else schema_source(path, Path.cwd()))
    except (OSError, SchemaError) as exc:
        raise CliError(f"schema {path}: {exc}", ExitCode.USAGE) from None


def row_keys(schema: Schema, record: dict[str, str], side: str, row: int) -> dict[str, object]:
    """The JSON object of one row: its keys strongest tier first, or the error naming the field."""
    confirming = set(schema.confirming_tiers())
    try:
        keys = schema.match_keys(record, side, row)  # type: ignore[arg-type]
    except NormalizationError as exc:
        return {"row": row, "keys": [], "error": str(exc)}
    return {
        "row": row,
        "keys": [{"tier": t, "confirms": t in confirming, "key": hashlib.sha256(k).hexdigest()} for t, k in keys],
        "error": None,
    }


def run(path: str, side: str, schema: Schema, as_json: bool, out: TextIO) -> int:
    """Print one line per data row; 1 when any row could not be normalised."""
    failed = 0
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            for row, record in enumerate(csv.DictReader(handle), start=1):
                obj = row_keys(schema, {k: v for k, v in record.items() if k is not None}, side, row)
                failed += obj["error"] is not None
                if as_json:
                    out.write(json.dumps(obj) + "\n")
                elif obj["error"] is not None:
                    out.write(f"{row}\terror\t{obj['error']}\n")
                else:
                    for k in obj["keys"]:  # type: ignore[attr-defined]
                        out.write(f"{row}\t{k['tier']}\t{'confirms' if k['confirms'] else 'review'}\t{k['key']}\n")
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}", ExitCode.USAGE) from None
    return 1 if failed else 0


def _cmd(args: argparse.Namespace) -> int:
    return run(args.records, args.side, load_schema_arg(args.schema), args.json, sys.stdout)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``matchkeys`` to the ``blindmatch`` command."""
    p = subparsers.add_parser(
        "matchkeys",
        help="print the match keys of every row of a CSV (a steward's local tool)",
        description="Print each data row's match keys, strongest tier first, with whether the tier "
        "confirms or is for review (rows counted from 1 = first data row). " + WARNING,
    )
    p.add_argument("records", metavar="RECORDS.csv", help="CSV with a header naming the schema's fields")
    p.add_argument("--side", choices=("holder", "requester"), required=True,
                   help="which side's keys: tiers differ by side (e.g. the holder's nickname forms)")
    p.add_argument("--schema", metavar="NAME|FILE", help=SCHEMA_HELP)
    p.add_argument("--json", action="store_true",
                   help='one JSON object per row: {"row", "keys": [{"tier", "confirms", "key": SHA-256 hex}], "error"}')
    p.set_defaults(func=_cmd)
