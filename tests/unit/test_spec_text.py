"""SPEC.md's printable-text rule (section 7.4.1 for signed requests, ``text`` in 10.2.1 for
the audit log) is what the request codec and the audit log enforce.

The rule: no character of general category C or Z except U+0020 SPACE. Both validators use
``str.isprintable``, so the test checks that Python's definition is exactly that rule for
every code point, that SPEC still states it, and that both validators apply it.
"""

from __future__ import annotations

import re
import sys
import unicodedata
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from blindmatch.audit.events import validate_fields
from blindmatch.policy.request import RequestFormatError, SessionRequest

SPEC = Path(__file__).resolve().parents[2] / "protocol" / "SPEC.md"
RULE_CATEGORIES = "`Cc`, `Cf`, `Cs`, `Co`, `Cn`"


def spec_printable(char: str) -> bool:
    return char == " " or unicodedata.category(char)[0] not in "CZ"


def test_spec_states_the_rule_for_requests_and_log_text() -> None:
    text = re.sub(r"\s+", " ", SPEC.read_text(encoding="utf-8"))
    assert text.count(f"category C ({RULE_CATEGORIES}") == 2
    assert text.count("(`Zs`, `Zl`, `Zp`) except U+0020 SPACE") == 1
    assert text.count("Z (`Zs`, `Zl`, `Zp`) other than U+0020 SPACE") == 1


def test_isprintable_is_the_spec_rule_for_every_code_point() -> None:
    differing = [hex(cp) for cp in range(sys.maxunicode + 1) if chr(cp).isprintable() != spec_printable(chr(cp))]
    assert differing == []


NOW = datetime(2026, 6, 1, tzinfo=UTC)
REQUEST = SessionRequest(
    organisation="County Court of Example", official="Alice Clerk", mode="membership",
    record_count=1, held_back=0, legal_basis="Act § 1", nonce=b"\x01" * 16,
    issued_at=NOW, expires_at=NOW + timedelta(minutes=5), session_id=b"\x02" * 16,
    key_id=b"\x03" * 32, index_digest=b"\x04" * 32, blinded_commitment=b"\x05" * 32,
)
SAMPLES = ["Act §\u00a01", "Act\u2028§ 1", "Act\u200b§ 1", "Act\u202e§ 1", "Act\t§ 1", "Act \ue000", "Act \u0378",
           "Act § 1", "Act – § 1 (ü)", "法 第1条"]


@pytest.mark.parametrize("value", SAMPLES, ids=ascii)
def test_request_and_log_apply_the_rule(value: str) -> None:
    expected = all(spec_printable(c) for c in value)
    try:
        replace(REQUEST, legal_basis=value)
        request_ok = True
    except RequestFormatError:
        request_ok = False
    try:
        validate_fields("session_opened", dict(
            session_id="0f" * 16, peer="Court", official="Alice", mode="membership", records=1,
            held_back=0, legal_basis=value, request_sha256="ab" * 32, request_signature="cd" * 64,
            role="holder"))
        log_ok = True
    except ValueError:
        log_ok = False
    assert request_ok is expected and log_ok is expected
