"""Generator of protocol/test-vectors/signed-request.json.

The vector pins the SPEC's signed-request layout: fixed seed and fields, so the
encoding and the (deterministic) Ed25519 signature are reproducible byte for byte.
Regenerate with ``python -m blindmatch.policy.testvector protocol/test-vectors/signed-request.json``.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from blindmatch.policy.request import SessionRequest, sign_request

SEED = bytes(range(32))  # test key only: never use a published seed

REQUEST = SessionRequest(
    organisation="County Court of Example",
    official="Alice Clerk",
    mode="membership",
    record_count=1234,
    held_back=5,
    legal_basis="Example Enforcement Act 2025 § 12(3)",  # non-ASCII on purpose: pins UTF-8
    nonce=bytes.fromhex("000102030405060708090a0b0c0d0e0f"),
    issued_at=datetime(2026, 3, 1, 9, 30, 0, tzinfo=UTC),
    expires_at=datetime(2026, 3, 1, 9, 45, 0, tzinfo=UTC),
    session_id=bytes.fromhex("f0" * 16),
    key_id=bytes.fromhex("11" * 32),
    index_digest=bytes.fromhex("22" * 32),
    blinded_commitment=bytes.fromhex("33" * 32),
)


def _rfc3339(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_vector() -> dict[str, object]:
    """The vector as a JSON-ready dict (bytes as lowercase hex)."""
    key = Ed25519PrivateKey.from_private_bytes(SEED)
    envelope = sign_request(REQUEST, key)
    encoded = REQUEST.encode()
    return {
        "description": "blindmatch v1 signed session request (SPEC: Signed session request)",
        "ed25519_seed": SEED.hex(),
        "public_key": key.public_key().public_bytes_raw().hex(),
        "request": {
            "organisation": REQUEST.organisation,
            "official": REQUEST.official,
            "mode": REQUEST.mode,
            "record_count": REQUEST.record_count,
            "held_back": REQUEST.held_back,
            "legal_basis": REQUEST.legal_basis,
            "nonce": REQUEST.nonce.hex(),
            "issued_at": _rfc3339(REQUEST.issued_at),
            "expires_at": _rfc3339(REQUEST.expires_at),
            "session_id": REQUEST.session_id.hex(),
            "key_id": REQUEST.key_id.hex(),
            "index_digest": REQUEST.index_digest.hex(),
            "blinded_commitment": REQUEST.blinded_commitment.hex(),
        },
        "encoded_request": encoded.hex(),
        "signature": envelope[len(encoded) :].hex(),
        "envelope": envelope.hex(),
    }


def render() -> str:
    """The exact file content (stable key order, UTF-8, trailing newline)."""
    return json.dumps(build_vector(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m blindmatch.policy.testvector OUT.json", file=sys.stderr)
        return 2
    Path(argv[0]).write_text(render(), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
