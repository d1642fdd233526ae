"""``blindmatch normalize address|name|date``: one value per stdin line to its canonical form.

Exactly one output line per input line, in order, so the output can be pasted next to
the input; a value that cannot be normalised gives an empty line and a warning on
stderr naming the line number (not the value, which may be personal data).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Callable
from typing import Any, TextIO

from blindmatch.normalize import NormalizationError, normalize_date, normalize_name, parse_address


def _address(text: str) -> tuple[str, dict[str, Any]]:
    a = parse_address(text)
    return a.canonical, {**dataclasses.asdict(a), "unit": a.unit}


def _name(text: str) -> tuple[str, dict[str, Any]]:
    n = normalize_name(text)
    return n, {"canonical": n}


def _date(text: str) -> tuple[str, dict[str, Any]]:
    d = normalize_date(text)
    return d.isoformat(), {"canonical": d.isoformat(), "year": d.year, "month": d.month, "day": d.day}


KINDS: dict[str, Callable[[str], tuple[str, dict[str, Any]]]] = {
    "address": _address,
    "name": _name,
    "date": _date,
}


def run(kind: str, as_json: bool, stdin: TextIO, stdout: TextIO, stderr: TextIO) -> int:
    """Normalise every line; returns 1 when any line failed, else 0."""
    fn = KINDS[kind]
    failed = 0
    for lineno, raw in enumerate(stdin, start=1):
        value = raw.rstrip("\r\n")
        try:
            canonical, parts = fn(value)
        except NormalizationError as exc:
            failed += 1
            print(f"blindmatch: warning: line {lineno}: {exc}", file=stderr)
            stdout.write("\n")
            continue
        stdout.write((json.dumps(parts, sort_keys=True) if as_json else canonical) + "\n")
    return 1 if failed else 0


def _cmd(args: argparse.Namespace) -> int:
    return run(args.kind, args.json, sys.stdin, sys.stdout, sys.stderr)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``normalize`` to the ``blindmatch`` command."""
    p = subparsers.add_parser(
        "normalize",
        help="print the canonical form of names, US addresses or dates (one per line)",
        description="Read one value per line on stdin, write its canonical form per line on stdout "
        "(an empty line and a warning on stderr when a value cannot be normalised).",
    )
    p.add_argument("kind", choices=sorted(KINDS), help="what the lines are")
    p.add_argument("--json", action="store_true", help="write the parsed components as one JSON object per line")
    p.set_defaults(func=_cmd)
