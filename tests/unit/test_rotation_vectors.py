"""protocol/test-vectors/rotation.json is current and checks out from first principles (SPEC.md 2.3, 2.4)."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import datetime

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from helpers.vector_files import VECTOR_DIR, load_generator

from blindmatch.core.rotation import Pin, RotationError, follow_rotations

generate_rotation = load_generator("generate_rotation")
DATA = json.loads((VECTOR_DIR / "rotation.json").read_text(encoding="utf-8"))
VERIFY_AT = datetime.fromisoformat(DATA["verify_at"].replace("Z", "+00:00"))


def pinned() -> Pin:
    return Pin(DATA["organisation"], bytes.fromhex(DATA["pinned_oprf_public_key"]),
               bytes.fromhex(DATA["pinned_audit_public_key"]))


def test_vector_file_is_current() -> None:
    committed = (VECTOR_DIR / "rotation.json").read_text(encoding="utf-8")
    assert committed == generate_rotation.render(generate_rotation.rotation_vectors()), "run generate_rotation.py"


def test_statements_are_signed_notes_over_their_text() -> None:
    audit_keys = [Ed25519PrivateKey.from_private_bytes(bytes.fromhex(DATA[seed])).public_key().public_bytes_raw()
                  for seed in ("audit_seed", "new_audit_seed")]
    assert audit_keys[0].hex() == DATA["pinned_audit_public_key"]
    previous = DATA["pinned_key_id"]
    for statement in DATA["statements"]:
        text, signatures = statement["note"].split("\n\n")
        assert text + "\n" == statement["signed_text"]
        lines = statement["signed_text"].splitlines()
        assert lines[0] == "blindmatch/v1 key rotation" and lines[5] == f"previous-key-id {previous}"
        pk = bytes.fromhex(statement["oprf_public_key"])
        assert hashlib.sha256(b"blindmatch/v1 key-id" + pk).hexdigest() == statement["key_id"] == lines[6][7:]
        signers = audit_keys[:1] if statement["audit_public_key"] == audit_keys[0].hex() else audit_keys
        found = signatures.splitlines()
        assert len(found) == len(signers)
        for line, key in zip(found, signers, strict=True):
            dash, name, encoded = line.split(" ")
            blob = base64.b64decode(encoded)
            assert dash == "\u2014" and name == DATA["origin"]
            assert blob[:4] == hashlib.sha256(name.encode() + b"\n\x01" + key).digest()[:4]
            Ed25519PublicKey.from_public_bytes(key).verify(blob[4:], statement["signed_text"].encode())
        previous = statement["key_id"]


def test_a_requester_follows_the_chain_and_refuses_a_flipped_bit() -> None:
    notes = [s["note"].encode() for s in DATA["statements"]]
    final = DATA["statements"][-1]
    pin, applied = follow_rotations(notes, pinned(), bytes.fromhex(final["oprf_public_key"]), VERIFY_AT)
    assert pin == Pin(DATA["organisation"], bytes.fromhex(final["oprf_public_key"]),
                      bytes.fromhex(final["audit_public_key"]), 3)
    assert [s.epoch for s, _ in applied] == [2, 3]
    second = bytes.fromhex(DATA["statements"][0]["oprf_public_key"])
    for bit in range(len(notes[0]) * 8):  # every bit, the base64 padding bits included
        flipped = bytearray(notes[0])
        flipped[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(RotationError):
            follow_rotations([bytes(flipped)], pinned(), second, VERIFY_AT)


def test_the_audit_key_statement_checks_out_and_is_followed_after_the_chain() -> None:
    vector = DATA["audit_key_statement"]
    retiring = bytes.fromhex(vector["previous_audit_public_key"])
    new = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(vector["new_audit_seed"])).public_key().public_bytes_raw()
    assert retiring.hex() == DATA["statements"][-1]["audit_public_key"] and new.hex() == vector["audit_public_key"]
    text, signatures = vector["note"].split("\n\n")
    assert text + "\n" == vector["signed_text"]
    assert vector["signed_text"].splitlines() == [
        "blindmatch/v1 audit key rotation", f"origin {DATA['origin']}", f"tree-size {vector['tree_size']}",
        f"previous-audit-public-key {retiring.hex()}", f"audit-public-key {new.hex()}"]
    for line, key in zip(signatures.splitlines(), (retiring, new), strict=True):  # the retiring key first
        dash, name, encoded = line.split(" ")
        blob = base64.b64decode(encoded)
        assert dash == "\u2014" and name == DATA["origin"]
        assert blob[:4] == hashlib.sha256(name.encode() + b"\n\x01" + key).digest()[:4]
        Ed25519PublicKey.from_public_bytes(key).verify(blob[4:], vector["signed_text"].encode())
    notes = [s["note"].encode() for s in DATA["statements"]] + [vector["note"].encode()]
    final = bytes.fromhex(DATA["statements"][-1]["oprf_public_key"])
    pin, applied = follow_rotations(notes, pinned(), final, VERIFY_AT, new)
    assert pin == Pin(DATA["organisation"], final, new, 3) and len(applied) == 3
    middle = Pin(DATA["organisation"], final, retiring, 3)
    note = vector["note"].encode()
    for bit in range(len(note) * 8):
        flipped = bytearray(note)
        flipped[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(RotationError):
            follow_rotations([bytes(flipped)], middle, final, VERIFY_AT, new)
