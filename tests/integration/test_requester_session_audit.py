"""The requester logs a session as opened only once the holder accepted it (issue 17), so a
session that never reached the holder (down, restarting) leaves no one-sided entry."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from blindmatch.audit import AuditLog
from blindmatch.core.events import Event, SessionAccepted
from blindmatch.policy import SessionRequest
from blindmatch.requester.holder_client import HolderUnavailable
from blindmatch.requester.session import run_session

SESSION_ID = bytes(range(16))
ISSUED = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
REQUEST = SessionRequest(
    organisation="Example County Court", official="Judge Example", mode="membership", record_count=10, held_back=0,
    legal_basis="Example Act s. 1", nonce=bytes(16), issued_at=ISSUED, expires_at=ISSUED + timedelta(minutes=30),
    session_id=SESSION_ID, key_id=bytes(32), index_digest=bytes(32), blinded_commitment=bytes(32))
SIGNER_KEY = b"\x03" * 32
ENVELOPE = REQUEST.encode() + b"\x02" * 64  # the log keeps it; nothing here verifies it


class FailingClient:
    """A holder client whose Match fails with UNAVAILABLE, after an Accept or before one."""

    def __init__(self, accept_first: bool) -> None:
        self.accept_first = accept_first

    def match(self, session: Any, envelope: bytes, window: int, sign: Any, key: bytes,
              on_event: Callable[[Event], None]) -> None:
        if self.accept_first:
            on_event(SessionAccepted(SESSION_ID, 64))
        raise HolderUnavailable("Match: connection refused", "UNAVAILABLE")


def events(tmp_path: Path) -> list[str]:
    return [json.loads(line)["event"] for line in (tmp_path / "audit" / "log.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("accepted", [False, True])
def test_session_opened_is_logged_only_after_accept(tmp_path: Path, accepted: bool) -> None:
    with AuditLog.open(tmp_path, "requester/test") as audit, pytest.raises(HolderUnavailable):
        run_session(FailingClient(accepted), audit, SimpleNamespace(session_id=SESSION_ID),  # type: ignore[arg-type]
                    REQUEST, ENVELOPE, "holder", 1, b"\x00" * 32, lambda batch: None, [SIGNER_KEY])
    assert ("session_opened" in events(tmp_path)) is accepted
