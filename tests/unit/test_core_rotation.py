"""Key rotation statements (SPEC.md 2.3) and the epoch schedule (SPEC.md 2.1)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from blindmatch.core.key_epochs import default_prebuild_lead, epoch_ended, epoch_ends_at, prebuild_starts_at
from blindmatch.core.keys import HolderKey
from blindmatch.core.rotation import (
    AuditKeyStatement,
    Pin,
    RotationError,
    RotationStatement,
    follow_rotations,
    note_key_hash,
    parse_audit_key_statement,
    parse_statement,
    sign_audit_key_statement,
    sign_statement,
    verify_audit_key_statement,
    verify_statement,
)

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
ORG = "Tax Authority"


def raw(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes_raw()


def statement(pin: Pin, new_key: HolderKey, audit: bytes, epoch: int = 2, when: datetime = NOW) -> RotationStatement:
    return RotationStatement("holder/Tax-Authority", ORG, epoch, when.replace(microsecond=0), pin.key_id,
                             new_key.public_key, audit)


@pytest.fixture()
def audit_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture()
def pin(audit_key: Ed25519PrivateKey) -> Pin:
    return Pin(ORG, HolderKey.generate().public_key, raw(audit_key))


def signed(s: RotationStatement, *keys: Ed25519PrivateKey) -> bytes:
    return sign_statement(s, [(raw(k), k.sign) for k in keys])


def test_a_valid_statement_moves_the_pin(pin: Pin, audit_key: Ed25519PrivateKey) -> None:
    new_key = HolderKey.generate()
    note = signed(statement(pin, new_key, pin.audit_public_key), audit_key)
    accepted = verify_statement(note, pin, NOW)
    assert accepted.oprf_public_key == new_key.public_key and accepted.key_id == new_key.key_id
    assert parse_statement(note)[0] == accepted
    assert note.decode().startswith("blindmatch/v1 key rotation\norigin holder/Tax-Authority\n")


def test_a_chain_of_statements_is_followed_from_the_pin(pin: Pin, audit_key: Ed25519PrivateKey) -> None:
    second, third = HolderKey.generate(), HolderKey.generate()
    first_note = signed(statement(pin, second, pin.audit_public_key, 2), audit_key)
    middle = Pin(ORG, second.public_key, pin.audit_public_key, 2)
    second_note = signed(statement(middle, third, pin.audit_public_key, 3), audit_key)
    new_pin, applied = follow_rotations([first_note, second_note], pin, third.public_key, NOW)
    assert new_pin == Pin(ORG, third.public_key, pin.audit_public_key, 3) and len(applied) == 2
    # A requester already at the middle pin skips the older statement.
    assert follow_rotations([first_note, second_note], middle, third.public_key, NOW)[0] == new_pin


@pytest.mark.parametrize("forgery", ["other key", "unsigned", "tampered", "wrong chain", "other organisation",
                                     "old epoch", "future", "same key", "control character", "epoch beyond 2^63"])
def test_forged_or_unchained_statements_are_refused(pin: Pin, audit_key: Ed25519PrivateKey, forgery: str) -> None:
    new_key = HolderKey.generate()
    s = statement(pin, new_key, pin.audit_public_key)
    note = signed(s, audit_key)
    if forgery == "other key":
        note = signed(s, Ed25519PrivateKey.generate())
    elif forgery == "unsigned":
        note = s.body().encode() + b"\n"
    elif forgery == "tampered":
        note = note.replace(b"epoch 2", b"epoch 9")
    elif forgery == "wrong chain":
        note = signed(RotationStatement(s.origin, ORG, 2, s.valid_from, HolderKey.generate().key_id,
                                        new_key.public_key, s.audit_public_key), audit_key)
    elif forgery == "other organisation":
        note = signed(RotationStatement(s.origin, "Other Org", 2, s.valid_from, pin.key_id, new_key.public_key,
                                        s.audit_public_key), audit_key)
    elif forgery == "old epoch":
        pin = Pin(ORG, pin.oprf_public_key, pin.audit_public_key, 2)
    elif forgery == "future":
        note = signed(statement(pin, new_key, pin.audit_public_key, when=NOW + timedelta(hours=1)), audit_key)
    elif forgery == "control character":  # signed, but not signed-note text: DEL is a control character
        note = note.replace(b"Tax Authority", b"Tax\x7fAuthority")
        pin = Pin("Tax\x7fAuthority", pin.oprf_public_key, pin.audit_public_key)
        with pytest.raises(ValueError, match="cannot be a line"):
            signed(RotationStatement(s.origin, pin.organisation, 2, s.valid_from, pin.key_id, new_key.public_key,
                                     s.audit_public_key), audit_key)
    elif forgery == "epoch beyond 2^63":  # 19 digits, but no audit log could record it
        note = signed(RotationStatement(s.origin, ORG, 2**63, s.valid_from, pin.key_id, new_key.public_key,
                                        s.audit_public_key), audit_key)
    elif forgery == "same key":
        note = signed(RotationStatement(s.origin, ORG, 2, s.valid_from, pin.key_id, pin.oprf_public_key,
                                        s.audit_public_key), audit_key)
    with pytest.raises(RotationError):
        verify_statement(note, pin, NOW)
    with pytest.raises(RotationError, match="no valid key rotation statement chains"):
        follow_rotations([note], pin, new_key.public_key, NOW)


def test_a_new_audit_key_must_sign_too(pin: Pin, audit_key: Ed25519PrivateKey) -> None:
    new_audit = Ed25519PrivateKey.generate()
    s = statement(pin, HolderKey.generate(), raw(new_audit))
    with pytest.raises(RotationError, match="not signed by the new one"):
        verify_statement(signed(s, audit_key), pin, NOW)
    assert verify_statement(signed(s, audit_key, new_audit), pin, NOW).audit_public_key == raw(new_audit)


def test_a_signature_of_small_order_is_refused(pin: Pin, audit_key: Ed25519PrivateKey) -> None:
    s = statement(pin, HolderKey.generate(), pin.audit_public_key)
    note = signed(s, audit_key)
    body, _, line = note.decode().partition("\n\n")
    blob = base64.b64decode(line.split(" ")[2])
    identity_r = (1).to_bytes(32, "little")  # R = identity, S = 0: verifies for small-order keys only
    forged = f"{body}\n\n\u2014 {s.origin} {base64.b64encode(blob[:4] + identity_r + bytes(32)).decode()}\n"
    with pytest.raises(RotationError, match="not signed by the pinned audit key"):
        verify_statement(forged.encode(), pin, NOW)


def audit_statement(pin: Pin, old: Ed25519PrivateKey, new: Ed25519PrivateKey, size: int = 7) -> bytes:
    return sign_audit_key_statement(AuditKeyStatement("holder/Tax-Authority", size, pin.audit_public_key, raw(new)),
                                    old.sign, new.sign)


def test_an_audit_key_statement_moves_only_the_audit_key(pin: Pin, audit_key: Ed25519PrivateKey) -> None:
    new_audit = Ed25519PrivateKey.generate()
    note = audit_statement(pin, audit_key, new_audit)
    assert note.decode().startswith("blindmatch/v1 audit key rotation\norigin holder/Tax-Authority\ntree-size 7\n")
    assert verify_audit_key_statement(note, pin).audit_public_key == raw(new_audit)
    assert parse_audit_key_statement(note)[0].previous_audit_public_key == pin.audit_public_key
    moved, applied = follow_rotations([note], pin, pin.oprf_public_key, NOW, raw(new_audit))
    assert moved == Pin(ORG, pin.oprf_public_key, raw(new_audit), pin.epoch) and applied == [(moved, note)]


@pytest.mark.parametrize("forgery", ["old key only", "new key only", "other key", "unchained", "same key",
                                     "tampered", "leading zero", "size beyond 2^63"])
def test_forged_audit_key_statements_are_refused(pin: Pin, audit_key: Ed25519PrivateKey, forgery: str) -> None:
    new_audit, stranger = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    s = AuditKeyStatement("holder/Tax-Authority", 7, pin.audit_public_key, raw(new_audit))
    note = sign_audit_key_statement(s, audit_key.sign, new_audit.sign)
    target = raw(new_audit)
    if forgery == "old key only":
        note = s.body().encode() + b"\n" + signed_line(s, audit_key) + b"\n"
    elif forgery == "new key only":
        note = s.body().encode() + b"\n" + signed_line(s, new_audit) + b"\n"
    elif forgery == "other key":
        note = sign_audit_key_statement(s, stranger.sign, new_audit.sign)
    elif forgery == "unchained":
        other = AuditKeyStatement("holder/Tax-Authority", 7, raw(stranger), raw(new_audit))
        note = sign_audit_key_statement(other, stranger.sign, new_audit.sign)
    elif forgery == "same key":
        same = AuditKeyStatement("holder/Tax-Authority", 7, pin.audit_public_key, pin.audit_public_key)
        note = sign_audit_key_statement(same, audit_key.sign, audit_key.sign)
        target = pin.audit_public_key
    elif forgery == "tampered":
        note = note.replace(b"tree-size 7", b"tree-size 8")
    elif forgery == "size beyond 2^63":  # 19 digits and signed by both keys, but no log has that size
        big = AuditKeyStatement("holder/Tax-Authority", 2**63, pin.audit_public_key, raw(new_audit))
        note = sign_audit_key_statement(big, audit_key.sign, new_audit.sign)
    else:  # the same number, not in canonical form: its signatures no longer cover the text
        note = note.replace(b"tree-size 7", b"tree-size 07")
    with pytest.raises(RotationError):
        verify_audit_key_statement(note, pin)
    if target != pin.audit_public_key:
        with pytest.raises(RotationError, match="no valid key rotation statement chains"):
            follow_rotations([note], pin, pin.oprf_public_key, NOW, target)


def signed_line(s: AuditKeyStatement, key: Ed25519PrivateKey) -> bytes:
    blob = note_key_hash(s.origin, raw(key)) + key.sign(s.body().encode())
    return f"\u2014 {s.origin} {base64.b64encode(blob).decode()}".encode()


def test_key_and_audit_key_statements_are_followed_in_turn(pin: Pin, audit_key: Ed25519PrivateKey) -> None:
    """OPRF key 1 -> 2 (old audit key), audit key rotated, OPRF key 2 -> 3 (new audit key).

    The walk repeats until no statement moves the pin, so a statement served before its turn
    is taken when its turn comes; the audit key statement comes after the key statements
    its old key signed, as the holder stores them.
    """
    second, third, new_audit = HolderKey.generate(), HolderKey.generate(), Ed25519PrivateKey.generate()
    first_note = signed(statement(pin, second, pin.audit_public_key, 2), audit_key)
    middle = Pin(ORG, second.public_key, pin.audit_public_key, 2)
    audit_note = audit_statement(middle, audit_key, new_audit)
    after = Pin(ORG, second.public_key, raw(new_audit), 2)
    last_note = signed(statement(after, third, raw(new_audit), 3), new_audit)
    final = Pin(ORG, third.public_key, raw(new_audit), 3)
    for notes in ([first_note, audit_note, last_note], [last_note, first_note, audit_note]):
        moved, applied = follow_rotations(notes, pin, third.public_key, NOW, raw(new_audit))
        assert moved == final and [note for _, note in applied] == [first_note, audit_note, last_note]
    # A requester already at the middle pin skips the statement before it.
    assert follow_rotations([first_note, audit_note, last_note], middle, third.public_key, NOW,
                            raw(new_audit))[0] == final
    # Without the audit key statement the chain breaks: the last statement is not signed by the pinned key.
    with pytest.raises(RotationError, match="not signed by the pinned audit key"):
        follow_rotations([first_note, last_note], pin, third.public_key, NOW, raw(new_audit))


def test_epochs_end_at_the_first_boundary_after_their_start() -> None:
    start = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    end = epoch_ends_at(start, 30)
    assert int(end.timestamp()) % (30 * 86_400) == 0 and start < end <= start + timedelta(days=30)
    assert not epoch_ended(start, 30, end - timedelta(seconds=1)) and epoch_ended(start, 30, end)
    assert epoch_ends_at(end, 30) == end + timedelta(days=30)  # a key started on a boundary serves a whole period
    assert epoch_ends_at(datetime(1970, 1, 1, tzinfo=UTC), 1) == datetime(1970, 1, 2, tzinfo=UTC)
    with pytest.raises(ValueError, match="at least 1"):
        epoch_ends_at(start, 0)


def test_the_next_epoch_is_built_a_day_ahead_or_a_quarter_of_a_short_epoch() -> None:
    assert default_prebuild_lead(30) == timedelta(days=1) and default_prebuild_lead(4) == timedelta(days=1)
    assert default_prebuild_lead(1) == timedelta(hours=6) and default_prebuild_lead(2) == timedelta(hours=12)
    start = datetime(2026, 3, 5, 13, 0, tzinfo=UTC)
    assert prebuild_starts_at(start, 1, timedelta(hours=6)) == datetime(2026, 3, 5, 18, 0, tzinfo=UTC)
