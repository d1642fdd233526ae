"""Audit event schema and the no-plaintext guard.

An audit entry must never carry a plaintext record or an unkeyed hash of one,
yet the log is written by daemon code that handles records all day. Instead of
trying to recognise personal data, the log accepts only an explicit allowlist:
known event names, and per event known field names whose values are typed
(hex digests of protocol messages, counts, short identity strings, enums, one
bounded free-text legal basis). Anything else raises :class:`ValueError`, so a
record cannot slip in by accident through a new field or a wrong variable.

The same schema is re-checked by the verifier, so an entry edited after the
fact to contain arbitrary data is reported too.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from blindmatch.identity import IDENTITY_MAX, identity_problem
from blindmatch.vocabulary import FAILURE_REASONS, REFUSAL_REASONS, Mode, Reason

# Keys the log layer itself writes into every entry; events may not use them.
ENVELOPE_KEYS = ("event", "index", "sig", "time")

_HEX_RE = re.compile(r"[0-9a-f]*")
_TIME_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?Z", re.ASCII)
TEXT_MAX = 200

GRPC_STATUSES = frozenset(
    {
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    }
)


@dataclass(frozen=True)
class FieldType:
    """A named value check; ``check`` returns an error message or None."""

    name: str
    check: Callable[[Any], str | None]


def _hex(min_bytes: int, max_bytes: int) -> FieldType:
    def check(value: Any) -> str | None:
        if not isinstance(value, str) or not _HEX_RE.fullmatch(value) or len(value) % 2:
            return "must be a lowercase hex string"
        if not min_bytes <= len(value) // 2 <= max_bytes:
            if min_bytes == max_bytes:
                return f"must encode exactly {min_bytes} bytes"
            return f"must encode {min_bytes}..{max_bytes} bytes"
        return None

    label = f"hex{min_bytes}" if min_bytes == max_bytes else f"hex{min_bytes}-{max_bytes}"
    return FieldType(label, check)


def _uint(value: Any) -> str | None:
    if type(value) is not int or not 0 <= value < 2**63:
        return "must be a non-negative integer"
    return None


def _ident(allow_empty: bool) -> FieldType:
    def check(value: Any) -> str | None:
        if value == "" and allow_empty:
            return None
        return identity_problem(value)

    return FieldType("ident?" if allow_empty else "ident", check)


def _text(value: Any) -> str | None:
    if not isinstance(value, str) or not 0 < len(value) <= TEXT_MAX:
        return f"must be a string of 1..{TEXT_MAX} characters"
    if not value.isprintable():
        return "must not contain control characters"
    return None


def _enum(*values: str) -> FieldType:
    allowed = frozenset(values)

    def check(value: Any) -> str | None:
        # isinstance first: a tampered entry may hold a list or object, which is unhashable
        if not isinstance(value, str) or value not in allowed:
            return "must be one of " + ", ".join(sorted(allowed))
        return None

    return FieldType("enum", check)


def _timestamp(value: Any) -> str | None:
    if not isinstance(value, str) or not _TIME_RE.fullmatch(value):
        return "must be an RFC 3339 UTC timestamp"
    return None


def _reason_counts(value: Any) -> str | None:
    """A refusal summary's ``{reason: count}``: known reasons only, counts >= 1."""
    if not isinstance(value, dict) or not value:
        return "must be a non-empty object of reason: count"
    for reason, count in value.items():
        if reason not in REFUSAL_REASONS:
            return f"has an unknown reason {reason!r}"
        if type(count) is not int or not 0 < count < 2**63:
            return f"count of {reason!r} must be a positive integer"
    return None


SHA256 = _hex(32, 32)
SIGNATURE = _hex(64, 64)
PUBLIC_KEY = _hex(32, 32)
SESSION_ID = _hex(8, 64)
REQUEST_SIGNATURE = _hex(32, 512)
SIGNED_REQUEST = _hex(1, 4096)
SIGNATURES = _hex(64, 512)
SIGNER_KEYS = _hex(32, 256)
KEY_ID = _hex(4, 64)
NONCE = _hex(16, 16)
UINT = FieldType("uint", _uint)
IDENT = _ident(allow_empty=False)
IDENT_OR_EMPTY = _ident(allow_empty=True)
TEXT = FieldType("text", _text)
ROLE = _enum("holder", "requester")
MODE = _enum(*Mode)
REASON = _enum(*sorted(REFUSAL_REASONS))
FAILURE_REASON = _enum(*sorted(FAILURE_REASONS))
STATUS = _enum(*GRPC_STATUSES)
TIMESTAMP = FieldType("time", _timestamp)
REASON_COUNTS = FieldType("reason-counts", _reason_counts)


@dataclass(frozen=True)
class EventSchema:
    """Required and optional fields of one event type."""

    required: Mapping[str, FieldType]
    optional: Mapping[str, FieldType]


_BATCH = {
    "session_id": SESSION_ID,
    "seq": UINT,
    "count": UINT,
    "blinded_sha256": SHA256,
    "evaluated_sha256": SHA256,
}
_DAEMON = {"role": ROLE, "version": IDENT}

EVENTS: Mapping[str, EventSchema] = {
    "session_opened": EventSchema(
        {
            "session_id": SESSION_ID,
            "peer": IDENT,
            "official": IDENT,
            "mode": MODE,
            "records": UINT,
            "held_back": UINT,
            "legal_basis": TEXT,
            "request_sha256": SHA256,
            "request_signature": REQUEST_SIGNATURE,
            "role": ROLE,
        },
        # The signed request in full (audit.requests re-verifies it); absent in older logs.
        {"request": SIGNED_REQUEST, "signatures": SIGNATURES, "signer_keys": SIGNER_KEYS},
    ),
    "session_refused": EventSchema(
        {
            "session_id": SESSION_ID,
            "peer": IDENT,
            "official": IDENT_OR_EMPTY,
            "reason": REASON,
            "status": STATUS,
        },
        {},
    ),
    # A session that was accepted (and debited) but did not reach session_closed.
    "session_failed": EventSchema(
        {
            "session_id": SESSION_ID,
            "peer": IDENT,
            "reason": FAILURE_REASON,
            "status": STATUS,
        },
        {},
    ),
    "batch_evaluated": EventSchema(_BATCH, {}),
    "batch_received": EventSchema(_BATCH, {}),
    "budget_debited": EventSchema(
        {
            "session_id": SESSION_ID,
            "organisation": IDENT,
            "official": IDENT,
            "records": UINT,
            "day_used": UINT,
            "day_limit": UINT,
            "month_used": UINT,
            "month_limit": UINT,
        },
        {"nonce": NONCE},
    ),
    "session_closed": EventSchema(
        {
            "session_id": SESSION_ID,
            "peer": IDENT,
            "elements": UINT,
            "transcript_hash": SHA256,
            "own_signature": SIGNATURE,
            "peer_signature": SIGNATURE,
            "peer_audit_key": PUBLIC_KEY,
        },
        {"matches": UINT},
    ),
    # Refusals of unsigned, unverified or malformed calls over one period (SPEC.md 10.6).
    "refusals_summarised": EventSchema(
        {"since": TIMESTAMP, "refused": UINT, "peers": UINT, "reasons": REASON_COUNTS}, {},
    ),
    # One download of an index, or one part of a resumed one; ``ended`` marks a part cut short (SPEC.md 9).
    "index_downloaded": EventSchema(
        {"peer": IDENT, "kind": MODE, "digest": SHA256, "key_id": KEY_ID, "bytes": UINT, "offset": UINT},
        {"ended": _enum(Reason.CANCELLED)},
    ),
    # A session's reservation settled to the elements the holder evaluated (SPEC section 7.6).
    "budget_settled": EventSchema({"session_id": SESSION_ID, "reserved": UINT, "records": UINT}, {}),
    # The operator rebuilt the holder's budget store from this log (SPEC section 7.6).
    "budgets_rebuilt": EventSchema({"debits": UINT, "records": UINT}, {}),
    # One index built; ``issuer_epoch`` names the issuer epoch of the tokens it is over (SPEC.md 15.6).
    "index_built": EventSchema({"digest": SHA256, "entries": UINT, "kind": IDENT}, {"issuer_epoch": IDENT}),
    # The holder's key rotation, with the new key's epoch and its rotation statement's SHA-256 (SPEC.md 2.3).
    "key_rotated": EventSchema({"key_id": KEY_ID}, {"epoch": UINT, "statement": SHA256}),
    # The next epoch could not be built ahead (SPEC.md 2.1): it is rebuilt once the epoch ended.
    "epoch_prebuild_refused": EventSchema({"epoch": UINT, "reason": TEXT}, {"issuer_epoch": IDENT}),
    # The requester re-pinned the holder through a verified rotation statement (SPEC.md 2.3).
    "holder_repinned": EventSchema(
        {"peer": IDENT, "previous_key_id": KEY_ID, "key_id": KEY_ID, "epoch": UINT, "statement": SHA256},
        {"audit_public_key": PUBLIC_KEY}),
    # The log's own audit key is retired for a new one (SPEC.md 2.4), signed with the retiring key:
    # the entries after it and the checkpoints from its size + 1 on are signed with ``key``.
    "audit_key_rotated": EventSchema({"previous_key": PUBLIC_KEY, "key": PUBLIC_KEY, "statement": SHA256}, {}),
    # The issuer's entries (SPEC.md 15.7): counts and identities only, never a record.
    "tokens_issued": EventSchema(
        {"epoch": IDENT, "rows": UINT, "issued": UINT, "refused": UINT, "file_sha256": SHA256},
        {"by_approval": UINT},  # rows checked against the issuer's records: issued on an approved link only
    ),
    # A named person at the issuer decided a linkage request; ``request`` is a keyed digest of the file.
    "linkage_approved": EventSchema(
        {"by": IDENT, "request": SHA256, "epoch": IDENT, "rows": UINT, "approved": UINT, "on_record": UINT,
         "rejected": UINT}, {},
    ),
    "linkage_revoked": EventSchema(
        {"by": IDENT, "request": SHA256, "epoch": IDENT, "rows": UINT, "revoked": UINT, "not_revoked": UINT}, {},
    ),
    "blind_evaluation": EventSchema(
        {"peer": IDENT, "epoch": IDENT, "count": UINT, "epoch_used": UINT, "epoch_limit": UINT},
        {"blinded_sha256": SHA256},
    ),
    # The same blinded batch again (a holder resuming after a lost answer): answered, not counted.
    "blind_evaluation_repeated": EventSchema(
        {"peer": IDENT, "epoch": IDENT, "count": UINT, "epoch_used": UINT, "epoch_limit": UINT,
         "blinded_sha256": SHA256}, {},
    ),
    "blind_evaluation_refused": EventSchema({"peer": IDENT, "epoch": IDENT, "count": UINT, "why": TEXT}, {}),
    "daemon_started": EventSchema(_DAEMON, {}),
    "daemon_stopped": EventSchema(_DAEMON, {}),
    # Written by the log itself when it truncates a torn last line on open.
    "log_repaired": EventSchema({"dropped_bytes": UINT, "dropped_sha256": SHA256}, {}),
}


def validate_fields(event: str, fields: Mapping[str, Any]) -> None:
    """Raise ValueError unless ``fields`` is exactly an allowed payload of ``event``."""
    schema = EVENTS.get(event)
    if schema is None:
        raise ValueError(f"unknown audit event {event!r}")
    for name, value in fields.items():
        ftype = schema.required.get(name) or schema.optional.get(name)
        if ftype is None:
            raise ValueError(f"{event}: field {name!r} is not allowed in the audit log")
        problem = ftype.check(value)
        if problem:
            raise ValueError(f"{event}: field {name!r} {problem}")
    missing = sorted(set(schema.required) - set(fields))
    if missing:
        raise ValueError(f"{event}: missing field(s) {', '.join(missing)}")


def validate_envelope(entry: Mapping[str, Any], expected_index: int) -> None:
    """Check the log-written keys of a parsed entry, then its event payload."""
    for key in ENVELOPE_KEYS:
        if key not in entry:
            raise ValueError(f"missing key {key!r}")
    if type(entry["index"]) is not int or entry["index"] != expected_index:
        raise ValueError(
            f"index is {entry['index']!r}, expected {expected_index} "
            "(an entry was deleted, inserted or reordered)"
        )
    if not isinstance(entry["time"], str) or not _TIME_RE.fullmatch(entry["time"]):
        raise ValueError("time is not an RFC 3339 UTC timestamp")
    if SIGNATURE.check(entry["sig"]):
        raise ValueError("sig is not a 64-byte hex signature")
    event = entry["event"]
    if not isinstance(event, str):
        raise ValueError("event is not a string")
    validate_fields(event, {k: v for k, v in entry.items() if k not in ENVELOPE_KEYS})


def valid_origin(origin: str) -> bool:
    """Origins double as signed-note key names: printable ASCII, no spaces or '+'."""
    return 0 < len(origin) <= IDENTITY_MAX and all("!" <= c <= "~" and c != "+" for c in origin)


def canonical_json(obj: Mapping[str, Any]) -> bytes:
    """The one serialisation of an entry: sorted keys, no spaces, UTF-8."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


ENTRY_SIGNATURE_CONTEXT = b"blindmatch audit entry v1\n"


def entry_signing_message(origin: str, entry: Mapping[str, Any]) -> bytes:
    """What each entry's ``sig`` signs: context, origin, entry without ``sig``.

    Per-entry signatures let a verifier name exactly which line was altered,
    including lines written after the last checkpoint.
    """
    unsigned = {k: v for k, v in entry.items() if k != "sig"}
    return ENTRY_SIGNATURE_CONTEXT + origin.encode() + b"\n" + canonical_json(unsigned)
