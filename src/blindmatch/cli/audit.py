"""``blindmatch audit``: reviewer tools over the audit logs (verify, show, reconcile, report)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from blindmatch.audit import AuditError, load_entries, reconcile, verify_log, write_report
from blindmatch.audit.cosignature import WitnessKey, parse_witness_verifier_key
from blindmatch.audit.events import ENVELOPE_KEYS, canonical_json
from blindmatch.audit.keys import AuditKeyError, parse_verifier_key
from blindmatch.audit.requests import RequestReview, check_requests
from blindmatch.audit.witness_check import SourcedNote
from blindmatch.cli.errors import CliError
from blindmatch.policy.officials import Policy, PolicyError
from blindmatch.vocabulary import ExitCode


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("audit", help="verify, inspect, reconcile and report on audit logs")
    commands = parser.add_subparsers(dest="audit_command", metavar="SUBCOMMAND", required=True)

    verify = commands.add_parser(
        "verify", help="recompute the Merkle tree and check every signature and checkpoint"
    )
    verify.add_argument("directory", type=Path, metavar="DIR", help="a side's working directory (or its audit/)")
    verify.add_argument(
        "--key", metavar="VKEY", help="expected audit verifier key (text or file), instead of trusting DIR's audit.pub"
    )
    _add_witness_options(verify)
    verify.add_argument(
        "--policy", type=Path, action="append", default=[], metavar="FILE",
        help="the holder's policy file in force over the log's period (repeatable): each kept request's "
        "signer keys must be officials of the requesting organisation with a mandate at the time",
    )
    verify.add_argument("--json", action="store_true", help="print the result as JSON")
    verify.set_defaults(func=cmd_verify)

    show = commands.add_parser("show", help="print the log entries")
    show.add_argument("directory", type=Path, metavar="DIR")
    show.add_argument("--session", metavar="ID", help="only entries of this session id (hex, prefix allowed)")
    show.add_argument("--json", action="store_true", help="print entries as JSON Lines")
    show.set_defaults(func=cmd_show)

    rec = commands.add_parser("reconcile", help="check both sides recorded the same sessions")
    rec.add_argument("holder", type=Path, metavar="HOLDER_DIR")
    rec.add_argument("requester", type=Path, metavar="REQUESTER_DIR")
    rec.set_defaults(func=cmd_reconcile)

    report = commands.add_parser("report", help="write a self-contained HTML report")
    report.add_argument("directory", type=Path, metavar="DIR")
    report.add_argument("--out", type=Path, required=True, metavar="FILE", help="HTML file to write")
    _add_witness_options(report)
    report.add_argument("--witness-ledger", type=Path, action="append", default=[], metavar="FILE",
                        help="a witness's events.jsonl: its refusals of this log are shown (repeatable)")
    report.add_argument(
        "--policy", type=Path, action="append", default=[], metavar="FILE",
        help="the holder's policy file(s) over the log's period: the sessions table names who approved each",
    )
    report.add_argument("--peer", type=Path, metavar="DIR",
                        help="the other side's log: the report shows every reconciliation difference")
    report.set_defaults(func=cmd_report)


def _add_witness_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--witness", action="append", default=[], metavar="KEYFILE",
        help="a witness's verifier key file (NAME+KEYID+BASE64, from 'blindmatch witness keygen'): fail unless "
             "the log contains every checkpoint this witness cosigned (repeatable)")
    parser.add_argument(
        "--witnessed", type=Path, action="append", default=[], metavar="NOTE",
        help="a witness's latest cosigned checkpoint ('blindmatch witness export'), checked like the "
             "cosignatures stored in DIR/audit/cosigned; catches a rollback that also removed those (repeatable)")


def _require_dir(path: Path) -> None:
    if not path.is_dir():
        raise CliError(f"{path}: no such directory", ExitCode.USAGE)


def _pinned_key(value: str) -> bytes:
    text = Path(value).read_text() if Path(value).is_file() else value
    try:
        return parse_verifier_key(text)[1]
    except AuditKeyError as exc:
        raise CliError(f"--key: {exc}", ExitCode.USAGE) from exc


def _witness_keys(values: list[str]) -> list[WitnessKey]:
    keys = []
    for value in values:
        try:
            keys.append(parse_witness_verifier_key(Path(value).read_text() if Path(value).is_file() else value))
        except (AuditKeyError, OSError) as exc:
            raise CliError(f"--witness {value}: {exc}", ExitCode.USAGE) from exc
    return keys


def _witness_inputs(args: argparse.Namespace) -> tuple[list[WitnessKey], list[SourcedNote]]:
    """The --witness keys and the --witnessed notes (which mean nothing without a key)."""
    if args.witnessed and not args.witness:
        raise CliError("--witnessed needs --witness KEYFILE to check the cosignatures", ExitCode.USAGE)
    notes = []
    for path in args.witnessed:
        try:
            notes.append(SourcedNote(path.read_text(), str(path)))
        except (OSError, UnicodeDecodeError) as exc:
            raise CliError(f"--witnessed {path}: {exc}", ExitCode.USAGE) from exc
    return _witness_keys(args.witness), notes


def _policies(args: argparse.Namespace) -> list[Policy]:
    policies = []
    for path in args.policy:
        try:
            policies.append(Policy.load(path))
        except PolicyError as exc:
            raise CliError(f"--policy: {exc}", ExitCode.USAGE) from None
    return policies


def _review_requests(args: argparse.Namespace) -> RequestReview:
    """Re-verify every signed request the log keeps (against ``--policy`` files when given)."""
    return check_requests(load_entries(args.directory), _policies(args))


def cmd_verify(args: argparse.Namespace) -> int:
    _require_dir(args.directory)
    witnesses, witnessed = _witness_inputs(args)
    result = verify_log(
        args.directory,
        public_key=_pinned_key(args.key) if args.key else None,
        witnesses=witnesses,
        witnessed=witnessed,
    )
    review = _review_requests(args) if result.ok else None
    if args.json:
        print(
            json.dumps(
                {
                    "ok": result.ok and not (review and review.problems),
                    "requests": None if review is None else {
                        "verified": len(review.approvals), "problems": review.problems, "warnings": review.warnings},
                    "error": result.error,
                    "origin": result.origin,
                    "size": result.size,
                    "checkpoints": result.checkpoints,
                    "root": result.root.hex() if result.root else None,
                    "unsigned_tail": result.unsigned_tail,
                    "witnesses": [
                        {"witness": w.witness, "size": w.size, "time": w.time, "root": w.root.hex()}
                        for w in result.witnesses
                    ],
                    "warnings": list(result.warnings),
                },
                indent=2,
            )
        )
    if not args.json:
        for warning in result.warnings:
            print(f"warning: {warning}")
    if not result.ok:
        raise CliError(f"{args.directory}: verification failed: {result.error}", ExitCode.FAILURE)
    assert review is not None
    if not args.json:
        for warning in review.warnings:
            print(f"warning: {warning}")
    if review.problems:
        raise CliError(f"{args.directory}: a kept signed request does not verify: {review.problems[0]}"
                       + (f" (and {len(review.problems) - 1} more)" if len(review.problems) > 1 else ""), ExitCode.FAILURE)
    if not args.json:
        root = result.root.hex() if result.root else ""
        print(f"{args.directory}: OK: {result.origin}: {result.size} entries, "
              f"{result.checkpoints} checkpoints, root {root}; {len(review.approvals)} signed requests re-verified"
              + (" against the policy" if args.policy else ""))
        for status in result.witnesses:
            print(f"witnessed: {status.witness} cosigned size {status.size} at {status.time}")
        if result.unsigned_tail:
            print(f"warning: the last {result.unsigned_tail} entries are not yet covered by a checkpoint")
    return 0


def _format_entry(entry: dict[str, Any]) -> str:
    fields = " ".join(
        f"{key}={value}" for key, value in sorted(entry.items()) if key not in ENVELOPE_KEYS
    )
    return f"{entry.get('index')}\t{entry.get('time')}\t{entry.get('event')}\t{fields}"


def cmd_show(args: argparse.Namespace) -> int:
    _require_dir(args.directory)
    try:
        entries = load_entries(args.directory)
    except (AuditError, OSError) as exc:
        raise CliError(str(exc), ExitCode.USAGE) from exc
    if args.session:
        wanted = args.session.lower()
        entries = [e for e in entries if str(e.get("session_id", "")).startswith(wanted)]
        if not entries:
            raise CliError(f"no entries for session {args.session}", ExitCode.FAILURE)
    for entry in entries:
        sys.stdout.write((canonical_json(entry).decode() if args.json else _format_entry(entry)) + "\n")
    return 0


def cmd_reconcile(args: argparse.Namespace) -> int:
    _require_dir(args.holder)
    _require_dir(args.requester)
    result = reconcile(args.holder, args.requester)
    for mismatch in result.mismatches:
        print(mismatch)
    if not result.ok:
        raise CliError(f"{len(result.mismatches)} mismatch(es) between the holder and requester logs")
    held, kept = result.peer_checkpoints
    print(f"OK: {result.sessions} sessions recorded identically on both sides; each log consistent with "
          f"the checkpoints it handed over ({held} kept by the holder, {kept} by the requester)")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    _require_dir(args.directory)
    witnesses, witnessed = _witness_inputs(args)
    try:
        if args.peer is not None:
            _require_dir(args.peer)
        write_report(args.directory, args.out, witnesses=witnesses, witnessed=witnessed, ledgers=args.witness_ledger,
                     peer=args.peer, policies=_policies(args))
    except (AuditError, OSError) as exc:
        raise CliError(str(exc), ExitCode.FAILURE) from exc
    print(f"wrote {args.out}")
    return 0
