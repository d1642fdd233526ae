"""``blindmatch holder``: the holder's key, index and daemon.

``keygen`` creates the OPRF key, ``index`` builds the encrypted index from the
holder's records, ``rotate-audit-key`` retires the audit key for a new one,
``serve`` runs the gRPC daemon until SIGTERM. All take
``--config holder.toml`` (format: ``blindmatch.holder.config``).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

from blindmatch.cli.errors import CliError
from blindmatch.holder.config import ConfigError, HolderNodeConfig, load_holder_config
from blindmatch.vocabulary import ExitCode


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("holder", help="the holder: OPRF key, encrypted index, gRPC daemon")
    commands = parser.add_subparsers(dest="holder_command", metavar="SUBCOMMAND", required=True)

    def add(name: str, help_text: str, description: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=description)
        sub.add_argument("--config", required=True, type=Path, metavar="HOLDER_TOML", help="the holder's configuration file")
        return sub

    keygen = add("keygen", "create the holder's OPRF key",
                 "Create holder.key_file (mode 0600). Refuses to overwrite an existing key: a new key "
                 "invalidates every index requesters have downloaded.")
    keygen.set_defaults(func=_keygen)

    index = add("index", "build the encrypted index from a records CSV",
                "Read RECORDS.csv (UTF-8, header row, columns at least name,address), normalise each row "
                "with the configured schema and write the membership and cardinality indexes to "
                "holder.index_dir, replacing the old ones atomically. Creates the OPRF key if missing and no index exists yet. "
                "Rejected rows are listed by row number (1 = the first data row; blank rows are not counted) "
                "and field (never value) in index_dir/rejects.csv. The build's audit entries are written "
                "before it replaces the live index; a build that fails leaves no new key or file. "
                "A running 'holder serve' keeps serving the old index until restarted. Without "
                "--rotate-key the index is rebuilt with the key it was built with (refused if the key "
                "file holds another key).")
    index.add_argument("records", type=Path, metavar="RECORDS.csv", help="the holder's records")
    index.add_argument("--rotate-key", action="store_true",
                       help="build the index under a fresh OPRF key and switch key and index together "
                            "(crash-safe); the old key is kept as KEY_FILE.retired-<key id prefix> (mode 0600) "
                            "and the operator should destroy it per their retention policy. Requesters "
                            "see the new key id and index digest in GetInfo and download the new index; "
                            "restart 'holder serve' to serve it")
    index.add_argument("--cluster", metavar="ADDRESS",
                       help="evaluate on a Dask cluster (scheduler address, e.g. tcp://10.0.0.5:8786); "
                            "needs the 'cluster' extra")
    index.add_argument("--allow-shrink", action="store_true",
                       help="build even if more rows are rejected than holder.index_guard.max_rejected_share "
                            "(default 5%%) or the index loses more records than max_shrink_share (default 1%%); "
                            "a build that indexes no row is always refused, and a refused build keeps the old index")
    index.add_argument("--quiet", action="store_true", help="no progress bar")
    index.add_argument("--json", action="store_true",
                       help='print {"rows", "indexed", "rejected", "entries", "key_id", "indexes": [...]} as the last '
                            'line; a failure prints {"error", "exit_code"}')
    index.set_defaults(func=_index)

    pins = add("pins", "print what a requester pins: organisation, OPRF public key, audit key",
               "Print the [holder] entries of a requester's configuration that pin this holder: its "
               "organisation (the O= of its server certificate), the OPRF public key of the committed "
               "index's key and its audit verifier key. Hand them to requesters out of band; they refuse "
               "any server that differs. Run 'holder index' (and 'holder serve' once) first.")
    pins.set_defaults(func=_pins)
    rebuild = add("rebuild-budgets", "rebuild the budget database from the verified audit log",
                  "Verify the holder's audit log, then rebuild holder.budget_db from its budget_debited "
                  "entries (every debit, its nonce and time), record 'budgets_rebuilt' in the log and "
                  "replace the database, keeping the old one as BUDGET_DB.replaced-<time>. Use it when "
                  "'holder serve' refuses to start because the database is missing, corrupt, emptied or "
                  "disagrees with the log. Stop the holder first.")
    rebuild.set_defaults(func=_rebuild_budgets)

    _add_rotate_audit_key(add)

    serve = add("serve", "run the holder's gRPC daemon (mutual TLS)",
                "Serve GetInfo, DownloadIndex and Match on holder.listen until SIGTERM or SIGINT, then "
                "stop accepting calls, let running sessions finish (limits.shutdown_grace_seconds), "
                "write the audit checkpoint and exit 0. Prints 'listening on HOST:PORT' when ready. "
                "Logs go to stderr, one JSON object per line; Prometheus metrics are served on "
                "holder.metrics.listen when it is set.")
    serve.add_argument("--log-format", choices=("json", "text"), default="json",
                       help="stderr log lines: one JSON object each (default) or plain text")
    serve.set_defaults(func=_serve)


def _add_rotate_audit_key(add: Callable[[str, str, str], argparse.ArgumentParser]) -> None:
    rotate = add("rotate-audit-key", "retire the audit key for a new one, announced by a signed statement",
                 "Stop 'holder serve' first. Create a new audit key (audit/audit.key, mode 0600), record the "
                 "rotation in the audit log with the retiring key, sign the handover checkpoint with both keys, "
                 "and store the audit key statement (signed by both) where GetInfo serves it: requesters pinned "
                 "to the old key follow it and re-pin on their next call; 'audit verify' follows the chain of "
                 "keys (audit/retired.pub). The handover checkpoint is sent to the configured witnesses, which "
                 "verify it with the old key; their operators must then set the log's verifier_key to the new "
                 "key printed here (their stored checkpoint verifies under either). A crash at any point is "
                 "finished or undone by the next command that opens the audit log.")
    rotate.add_argument("--json", action="store_true",
                        help='print {"previous_key", "key", "verifier_key", "handover_size", "statement_sha256", '
                             '"cosigned_by", "witness_failures"} as the last line')
    rotate.set_defaults(func=_rotate_audit_key)


def _cli_error(message: str, configuration: bool = False) -> Exception:
    """A CliError; ``configuration`` errors exit 2 ("usage or configuration", README), others 1."""

    return CliError(message, ExitCode.USAGE if configuration else ExitCode.FAILURE)


def _config(args: argparse.Namespace) -> HolderNodeConfig:
    try:
        return load_holder_config(args.config)
    except ConfigError as exc:
        raise _cli_error(str(exc), configuration=True) from None


def _keygen(args: argparse.Namespace) -> int:
    from blindmatch.core.keys import HolderKey
    from blindmatch.holder.store import StoreError, write_key_file

    config = _config(args)
    key = HolderKey.generate()
    try:
        write_key_file(config.key_file, key)
    except StoreError as exc:
        raise _cli_error(str(exc)) from None
    print(f"wrote {config.key_file} (mode 0600); key id {key.key_id.hex()}")
    return 0


def _index(args: argparse.Namespace) -> int:
    from blindmatch.audit import AuditError, AuditLog
    from blindmatch.holder.index_build import IndexBuildError, build_index, slot_order
    from blindmatch.holder.rotation import publish_statement
    from blindmatch.holder.store import StoreError, load_committed_key
    from blindmatch.holder.tokens import configured_tokens
    from blindmatch.issuer.client import IssuerError
    from blindmatch.normalize import SchemaError

    config = _config(args)
    try:
        with configured_tokens(config) as tokens:  # [holder.issuer]: the index is over eligibility tokens
            report = build_index(args.records, config, progress=not args.quiet, rotate_key=args.rotate_key,
                                 cluster=args.cluster, allow_shrink=args.allow_shrink, tokens=tokens, audit=True)
    except (IndexBuildError, StoreError, SchemaError, OSError, IssuerError) as exc:
        raise _cli_error(str(exc)) from None
    assert report.manifest is not None
    if report.key_rotated:  # audited before the commit; stored now for the requesters to follow (SPEC.md 2.3)
        key = load_committed_key(config.key_file, config.index_dir, report.manifest.key_id)
        try:
            with AuditLog.open(config.audit_dir, config.audit_origin) as audit:
                publish_statement(config.index_dir, report.manifest, key.public_key, config.organisation, audit)
        except (AuditError, OSError, StoreError) as exc:
            raise _cli_error(f"the index is built and audited, but its rotation statement could not be stored ({exc}); "
                             "'holder serve' stores it when it starts") from None
    if report.key_created:
        print(f"created OPRF key {config.key_file} (mode 0600)")
    if report.key_rotated:
        print(f"rotated OPRF key {config.key_file}: new key id {report.manifest.key_id.hex()}")
        if report.retired_key is not None:
            print(f"old key kept as {report.retired_key} (mode 0600); destroy it per your retention policy")
        print(f"epoch {report.manifest.epoch}: rotation statement signed with the audit key in "
              f"{config.index_dir / 'key-rotations'}; requesters pinned to the old key follow it")
    print(report.summary())
    indexes = sorted(report.manifest.files.items(), key=slot_order)
    for (org, kind), f in indexes:
        print(f"{kind.value} index for {org}: {f.digest.hex()} ({f.entries} entries, {f.size_bytes} bytes)")
    if args.json:
        print(json.dumps({
            "rows": report.rows, "indexed": report.rows - report.rejected, "rejected": report.rejected,
            "entries": report.entries, "key_id": report.manifest.key_id.hex(), "rejects_file": str(report.rejects_file),
            "indexes": [{"organisation": org, "kind": kind.value, "digest": f.digest.hex(), "entries": f.entries,
                         "size_bytes": f.size_bytes} for (org, kind), f in indexes],
        }, sort_keys=True))
    return 0


def _pins(args: argparse.Namespace) -> int:
    from blindmatch.audit.keys import AuditKeyError, parse_verifier_key
    from blindmatch.audit.log import AUDIT_SUBDIR, PUB_NAME
    from blindmatch.holder.store import StoreError, load_committed_key, read_manifest

    config = _config(args)
    audit_pub = config.audit_dir / AUDIT_SUBDIR / PUB_NAME
    try:
        key = load_committed_key(config.key_file, config.index_dir, read_manifest(config.index_dir).key_id)
        _name, audit_key = parse_verifier_key(audit_pub.read_text())
    except StoreError as exc:
        raise _cli_error(str(exc)) from None
    except OSError as exc:
        raise _cli_error(f"cannot read the audit verifier key {audit_pub}: {exc.strerror}; start the holder once") from None
    except AuditKeyError as exc:
        raise _cli_error(f"{audit_pub}: {exc}") from None
    print(f'organisation = "{config.organisation}"')
    print(f'oprf_public_key = "{key.public_key.hex()}"')
    print(f'audit_public_key = "{audit_key.hex()}"')
    return 0


def _rebuild_budgets(args: argparse.Namespace) -> int:
    from blindmatch.audit import AuditError
    from blindmatch.holder.budget_ledger import rebuild_budgets
    from blindmatch.holder.store import StoreError

    config = _config(args)
    try:
        report = rebuild_budgets(config.budget_db, config.audit_dir, config.audit_origin)
    except (StoreError, AuditError, OSError) as exc:
        raise _cli_error(str(exc)) from None
    print(f"rebuilt {config.budget_db} from the audit log: {report.debits} debits, {report.records} records")
    if report.replaced is not None:
        print(f"the previous database is kept as {report.replaced}")
    return 0


def _rotate_audit_key(args: argparse.Namespace) -> int:
    import hashlib

    from blindmatch.audit import AuditError
    from blindmatch.audit.keys import AuditKeyError, format_verifier_key
    from blindmatch.holder.rotation import rotate_audit_key
    from blindmatch.holder.store import StoreError

    config = _config(args)
    try:
        done = rotate_audit_key(config)
    except (AuditError, AuditKeyError, StoreError, OSError) as exc:
        raise _cli_error(str(exc)) from None
    verifier_key = format_verifier_key(config.audit_origin, done.key)
    print(f"rotated the audit key of {config.audit_origin}: {done.previous_key.hex()} -> {done.key.hex()}")
    print(f"handover checkpoint (size {done.handover_size}) signed with both keys; statement stored in "
          f"{config.index_dir / 'key-rotations'}: requesters follow it on their next call")
    for name in done.cosigned_by:
        print(f"witness {name} cosigned the handover; in its witness.toml set the [[witness.log]] of origin "
              f'"{config.audit_origin}" to verifier_key = "{verifier_key}" and restart it')
    for failure in done.witness_failures:
        print(f"witness did not cosign the handover ({failure}); it cannot verify the new key's checkpoints, "
              "and its stored checkpoint verifies only under the old key: its operator must reset its state for "
              f"{config.audit_origin} and set verifier_key = \"{verifier_key}\"")
    print(f"new requesters pin audit_public_key = \"{done.key.hex()}\" ('blindmatch holder pins')")
    if args.json:
        print(json.dumps({
            "previous_key": done.previous_key.hex(), "key": done.key.hex(), "verifier_key": verifier_key,
            "handover_size": done.handover_size, "statement_sha256": hashlib.sha256(done.statement).hexdigest(),
            "cosigned_by": list(done.cosigned_by), "witness_failures": list(done.witness_failures),
        }, sort_keys=True))
    return 0


def _serve(args: argparse.Namespace) -> int:
    from blindmatch.audit import AuditError
    from blindmatch.holder.run import run_daemon
    from blindmatch.holder.store import StoreError
    from blindmatch.policy import PolicyError
    from blindmatch.transport.jsonlog import configure_logging

    config = _config(args)
    configure_logging(args.log_format)

    def announce(line: str) -> None:
        print(line, flush=True)

    try:
        return run_daemon(config, announce)
    except PolicyError as exc:  # the policy file is configuration too
        raise _cli_error(str(exc), configuration=True) from None
    except (StoreError, OSError, AuditError) as exc:
        raise _cli_error(str(exc)) from None
