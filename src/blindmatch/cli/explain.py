"""``blindmatch explain``: at which tier two records would match, or which field keeps them apart.

A steward's local tool for checking why a person was (not) found: it prints canonical
forms, i.e. personal data; the output must not be sent to a peer or kept in a shared log.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from blindmatch.cli.errors import CliError
from blindmatch.cli.matchkeys import SCHEMA_HELP, load_schema_arg
from blindmatch.normalize import NormalizationError, Schema
from blindmatch.vocabulary import ExitCode


def _record(text: str, which: str) -> dict[str, str]:
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CliError(f"{which} record is not a JSON object: {exc.msg}", ExitCode.USAGE) from None
    if not isinstance(obj, dict):
        raise CliError(f"{which} record is not a JSON object", ExitCode.USAGE)
    return {str(k): str(v) for k, v in obj.items()}


def explain(schema: Schema, requester: dict[str, str], holder: dict[str, str]) -> dict[str, Any]:
    """``{"tier", "confirms", "differences"}``: the strongest tier at which the keys meet (or None)
    and, per field, the canonical forms of both sides where they differ."""
    try:
        req_views = schema.normalize_record(requester)
    except NormalizationError as exc:
        return {"tier": None, "confirms": False, "error": f"requester record: {exc}", "differences": {}}
    try:
        hold_views = schema.normalize_record(holder)
    except NormalizationError as exc:
        return {"tier": None, "confirms": False, "error": f"holder record: {exc}", "differences": {}}
    held = {k for _, k in schema.match_keys(holder, "holder")}
    tier = next((t for t, k in schema.match_keys(requester, "requester") if k in held), None)
    differences = {
        f: {"requester": req_views[f][""], "holder": hold_views[f][""]}
        for f in schema.tier_fields
        if req_views[f][""] != hold_views[f][""]
    }
    return {"tier": tier, "confirms": tier in schema.confirming_tiers(), "error": None, "differences": differences}


def _cmd(args: argparse.Namespace) -> int:
    schema = load_schema_arg(args.schema)
    result = explain(schema, _record(args.requester, "requester"), _record(args.holder, "holder"))
    if args.json:
        print(json.dumps(result, sort_keys=True))
    elif result["error"]:
        print(result["error"])
    else:
        if result["tier"] is None:
            print("no tier matches")
        else:
            print(f"match at tier {result['tier']} ({'confirms' if result['confirms'] else 'for review'})")
        for field, forms in result["differences"].items():
            print(f"{field}: requester {forms['requester']!r} / holder {forms['holder']!r}")
    return 0 if result["tier"] is not None else 1


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``explain`` to the ``blindmatch`` command."""
    p = subparsers.add_parser(
        "explain",
        help="say at which tier two records would match, or which normalised field keeps them apart",
        description="Normalise a requester record and a holder record (JSON objects with the schema's "
        "fields) and print the strongest tier at which their match keys meet, and each field whose "
        "canonical forms differ. Exit status 0 when they match at some tier, 1 when not. A steward's "
        "local tool: the output holds personal data; do not send it to a peer or keep it in a log.",
    )
    p.add_argument("requester", metavar="REQUESTER_JSON", help='e.g. \'{"name": "Bill Smith", "address": "..."}\'')
    p.add_argument("holder", metavar="HOLDER_JSON", help="the holder's record, same fields")
    p.add_argument("--schema", metavar="NAME|FILE", help=SCHEMA_HELP)
    p.add_argument("--json", action="store_true", help='print {"tier", "confirms", "error", "differences"}')
    p.set_defaults(func=_cmd)
