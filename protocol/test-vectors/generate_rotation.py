"""Generate protocol/test-vectors/rotation.json (SPEC.md sections 2.3, 2.4) from the implementation.

Run: python protocol/test-vectors/generate_rotation.py
tests/unit/test_rotation_vectors.py recomputes the file and requires byte equality, and
checks the statements from first principles (the signed text, the signed-note key hash,
strict Ed25519 and the key ids). Keys come from fixed seeds (RFC 9497 DeriveKeyPair for
the OPRF keys) and Ed25519 is deterministic, so the output is reproducible.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from blindmatch.core.keys import key_id_of
from blindmatch.core.rotation import AuditKeyStatement, RotationStatement, sign_audit_key_statement, sign_statement
from blindmatch.crypto.poprf import derive_key_pair

HERE = Path(__file__).resolve().parent
AUDIT_SEED = bytes.fromhex("33" * 32)
NEW_AUDIT_SEED = bytes.fromhex("44" * 32)
THIRD_AUDIT_SEED = bytes.fromhex("55" * 32)  # the audit key statement retires the second audit key for it
AUDIT_TREE_SIZE = 42
OPRF_SEEDS = [bytes([n]) * 32 for n in (0x51, 0x52, 0x53)]
ORIGIN = "holder/Tax-Authority"
ORGANISATION = "Tax Authority"
VALID_FROM = [datetime(2026, 12, 27, 0, 0, tzinfo=UTC), datetime(2027, 1, 26, 0, 0, tzinfo=UTC)]


def _pair(seed: bytes) -> tuple[bytes, bytes]:
    return derive_key_pair(seed, b"blindmatch/v1 rotation test vector")


def rotation_vectors() -> dict:
    audit = Ed25519PrivateKey.from_private_bytes(AUDIT_SEED)
    new_audit = Ed25519PrivateKey.from_private_bytes(NEW_AUDIT_SEED)
    audit_pk, new_audit_pk = audit.public_key().public_bytes_raw(), new_audit.public_key().public_bytes_raw()
    keys = [_pair(seed)[1] for seed in OPRF_SEEDS]
    # Epoch 2 keeps the audit key; epoch 3 also moves to a new audit key, so both keys sign it.
    second = RotationStatement(ORIGIN, ORGANISATION, 2, VALID_FROM[0], key_id_of(keys[0]), keys[1], audit_pk)
    third = RotationStatement(ORIGIN, ORGANISATION, 3, VALID_FROM[1], key_id_of(keys[1]), keys[2], new_audit_pk)
    return {
        "description": "Key rotation statements (SPEC.md section 2.3): a requester pinned to pinned_oprf_public_key "
                       "and pinned_audit_public_key follows both statements in order; the second also changes "
                       "the audit key and carries a signature by each key",
        "organisation": ORGANISATION,
        "origin": ORIGIN,
        "pinned_oprf_public_key": keys[0].hex(),
        "pinned_key_id": key_id_of(keys[0]).hex(),
        "pinned_audit_public_key": audit_pk.hex(),
        "audit_seed": AUDIT_SEED.hex(),
        "new_audit_seed": NEW_AUDIT_SEED.hex(),
        "statements": [
            {"epoch": s.epoch, "oprf_public_key": s.oprf_public_key.hex(), "key_id": s.key_id.hex(),
             "audit_public_key": s.audit_public_key.hex(), "signed_text": s.body(), "note": note.decode()}
            for s, note in ((second, sign_statement(second, [(audit_pk, audit.sign)])),
                            (third, sign_statement(third, [(audit_pk, audit.sign), (new_audit_pk, new_audit.sign)])))
        ],
        "verify_at": "2027-01-26T00:00:00Z",
        "audit_key_statement": audit_key_vector(new_audit),
    }


def audit_key_vector(retiring: Ed25519PrivateKey) -> dict:
    """After the two statements, the holder retires its (second) audit key alone (SPEC.md 2.4)."""
    new = Ed25519PrivateKey.from_private_bytes(THIRD_AUDIT_SEED)
    statement = AuditKeyStatement(ORIGIN, AUDIT_TREE_SIZE, retiring.public_key().public_bytes_raw(),
                                  new.public_key().public_bytes_raw())
    return {
        "description": "An audit key statement: after both statements, the pin's audit key moves from "
                       "previous_audit_public_key to audit_public_key; OPRF key and epoch stay; signed by the "
                       "retiring key, then the new one",
        "new_audit_seed": THIRD_AUDIT_SEED.hex(),
        "tree_size": AUDIT_TREE_SIZE,
        "previous_audit_public_key": statement.previous_audit_public_key.hex(),
        "audit_public_key": statement.audit_public_key.hex(),
        "signed_text": statement.body(),
        "note": sign_audit_key_statement(statement, retiring.sign, new.sign).decode(),
    }


def render(data: dict) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def main() -> None:
    (HERE / "rotation.json").write_text(render(rotation_vectors()), encoding="utf-8")


if __name__ == "__main__":
    main()
