"""The no-plaintext guard: only allowlisted events with typed fields reach the log."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from blindmatch.audit import AuditLog
from blindmatch.audit.events import EVENTS, validate_fields

SID = "0f" * 16
SHA = "ab" * 32

GOOD_OPENED: dict[str, Any] = dict(
    session_id=SID,
    peer="Benefits Office",
    official="alice@benefits.example",
    mode="membership",
    records=10,
    held_back=0,
    legal_basis="Tax Code §6103(i)(1) final order",
    request_sha256=SHA,
    request_signature="cd" * 64,
    role="holder",
)


def test_valid_payload_passes() -> None:
    validate_fields("session_opened", GOOD_OPENED)
    validate_fields("session_refused", dict(session_id=SID, peer="Bank", official="", reason="expired", status="PERMISSION_DENIED"))


@pytest.mark.parametrize(
    "change, message",
    [
        ({"name": "Jane Doe"}, "not allowed"),  # a record field
        ({"date_of_birth": "1970-01-01"}, "not allowed"),
        ({"record_sha256": SHA}, "not allowed"),  # an unkeyed hash of a record
        ({"records": [{"name": "Jane Doe"}]}, "integer"),
        ({"records": True}, "integer"),
        ({"records": -1}, "integer"),
        ({"peer": "Jane Doe\n1970-01-01"}, "identity"),
        ({"peer": "x" * 200}, "identity"),
        ({"official": "jane  doe"}, "identity"),
        ({"official": ""}, "identity"),
        ({"legal_basis": "x" * 201}, "characters"),
        ({"legal_basis": "basis\nJane Doe"}, "control"),
        ({"request_sha256": b"\x00" * 32}, "hex"),
        ({"request_sha256": "AB" * 32}, "hex"),
        ({"request_sha256": "ab" * 33}, "32 bytes"),
        ({"session_id": "4a616e6520446f65"[:-2]}, "bytes"),
        ({"mode": "lookup"}, "one of"),
        ({"role": "auditor"}, "one of"),
    ],
)
def test_bad_session_opened_payloads_are_rejected(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        validate_fields("session_opened", {**GOOD_OPENED, **change})


def test_missing_field_and_unknown_event_are_rejected() -> None:
    fields = dict(GOOD_OPENED)
    del fields["legal_basis"]
    with pytest.raises(ValueError, match="missing"):
        validate_fields("session_opened", fields)
    with pytest.raises(ValueError, match="unknown audit event"):
        validate_fields("record_matched", {"session_id": SID})


def test_refusal_reasons_and_statuses_are_enumerated() -> None:
    base = dict(session_id=SID, peer="Bank", official="", reason="over_budget", status="RESOURCE_EXHAUSTED")
    with pytest.raises(ValueError, match="one of"):
        validate_fields("session_refused", {**base, "reason": "Jane Doe not found"})
    with pytest.raises(ValueError, match="one of"):
        validate_fields("session_refused", {**base, "status": "resource exhausted"})


def test_every_policy_reason_is_loggable_and_failures_are_not_refusals() -> None:
    from blindmatch.policy import REASONS

    refused = {"session_id": SID, "peer": "Bank", "official": ""}
    for reason in REASONS:
        validate_fields("session_refused", {**refused, "reason": reason, "status": "FAILED_PRECONDITION"})
    for reason, status in (("cancelled", "CANCELLED"), ("internal", "INTERNAL"), ("bad_request", "INVALID_ARGUMENT")):
        validate_fields("session_failed", {"session_id": SID, "peer": "Bank", "reason": reason, "status": status})
    # A refusal is the holder's decision; a cancelled or crashed session was granted first.
    with pytest.raises(ValueError, match="one of"):
        validate_fields("session_refused", {**refused, "reason": "internal", "status": "INTERNAL"})


def test_envelope_keys_cannot_be_supplied_as_fields() -> None:
    for schema in EVENTS.values():
        assert not {"index", "time", "event", "sig"} & (set(schema.required) | set(schema.optional))


def test_rejected_append_writes_nothing(tmp_path: Path) -> None:
    log = AuditLog.open(tmp_path, "side.example")
    log.append("daemon_started", role="holder", version="0.1.0")
    before = (tmp_path / "audit" / "log.jsonl").read_bytes()
    with pytest.raises(ValueError):
        log.append("session_opened", **{**GOOD_OPENED, "name": "Jane Doe"})
    with pytest.raises(ValueError):
        log.append("daemon_started", role="holder", version="0.1.0", index=5)
    assert (tmp_path / "audit" / "log.jsonl").read_bytes() == before
    assert log.append("daemon_stopped", role="holder", version="0.1.0") == 1
    log.close()
    assert b"Jane" not in (tmp_path / "audit" / "log.jsonl").read_bytes()
