"""The add-checkpoint body and the cosignature/verifier-key encodings reject what they must."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from blindmatch.audit.checkpoint import sign_checkpoint
from blindmatch.audit.cosignature import (
    WitnessKey,
    cosign,
    cosignatures_in,
    note_body,
    parse_witness_verifier_key,
    signed_message,
    verify_cosignature_line,
)
from blindmatch.audit.keys import AuditKeyError, format_verifier_key, raw_public_key
from blindmatch.witness.protocol import (
    MAX_BODY_BYTES,
    ProtocolFormatError,
    format_add_checkpoint,
    parse_add_checkpoint,
)

LOG_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
WITNESS_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))
NOTE = sign_checkpoint(LOG_KEY, "example.org/log", 5, bytes(32), "2026-12-01T12:00:00.000000Z").note
WITNESS = WitnessKey("witness.example/w", raw_public_key(WITNESS_KEY))


def test_body_round_trips() -> None:
    proof = [bytes([i]) * 32 for i in range(3)]
    request = parse_add_checkpoint(format_add_checkpoint(2, proof, NOTE))
    assert (request.old_size, list(request.proof), request.note) == (2, proof, NOTE)
    assert parse_add_checkpoint(b"old 0\n\n" + NOTE.encode()).proof == ()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"old 0\n" + NOTE.encode().replace(b"\n\n", b"\n"), "no empty line"),
        (b"old 00\n\n" + NOTE.encode(), "'old <size>'"),
        (b"old -1\n\n" + NOTE.encode(), "'old <size>'"),
        (b"new 1\n\n" + NOTE.encode(), "'old <size>'"),
        (b"old 1\n!!!!\n\n" + NOTE.encode(), "line 2: proof hash is not base64"),
        (b"old 1\n" + base64.b64encode(bytes(31)) + b"\n\n" + NOTE.encode(), "line 2: proof hash is not 32 bytes"),
        (b"old 1\n" + (base64.b64encode(bytes(32)) + b"\n") * 64 + b"\n" + NOTE.encode(), "more than 63"),
        (b"old 0\n\n" + NOTE.encode()[:-1], "does not end with a newline"),
        (b"old 0\n\n\xff\n", "not UTF-8"),
        (b"old 0\n\n" + b"x" * MAX_BODY_BYTES, "larger than"),
    ],
)
def test_malformed_bodies_are_named(body: bytes, message: str) -> None:
    with pytest.raises(ProtocolFormatError, match=message.replace("(", r"\(")):
        parse_add_checkpoint(body)


def test_cosignature_verifies_and_binds_the_body_and_time() -> None:
    body = note_body(NOTE)
    cosignature = cosign(WITNESS_KEY, WITNESS.name, body, 1_700_000_000)
    assert verify_cosignature_line(cosignature.line, body, WITNESS) == cosignature
    other_body = body.replace("\n5\n", "\n6\n")
    with pytest.raises(ValueError, match="does not verify"):
        verify_cosignature_line(cosignature.line, other_body, WITNESS)
    blob = bytearray(base64.b64decode(cosignature.line.split(" ")[2]))
    blob[11] ^= 1  # another timestamp
    retimed = f"\u2014 {WITNESS.name} {base64.b64encode(bytes(blob)).decode()}\n"
    with pytest.raises(ValueError, match="does not verify"):
        verify_cosignature_line(retimed, body, WITNESS)
    assert signed_message(body, 7).startswith(b"cosignature/v1\ntime 7\nexample.org/log\n5\n")


def test_lines_of_other_keys_are_ignored() -> None:
    other = WitnessKey("witness.example/other", raw_public_key(Ed25519PrivateKey.generate()))
    note = NOTE + cosign(WITNESS_KEY, WITNESS.name, note_body(NOTE), 1).line
    assert cosignatures_in(note, other) == []
    assert len(cosignatures_in(note, WITNESS)) == 1
    assert verify_cosignature_line(NOTE.split("\n\n")[1], note_body(NOTE), WITNESS) is None  # the log's own line


def test_verifier_key_parsing() -> None:
    assert parse_witness_verifier_key(WITNESS.verifier_key() + "\n") == WITNESS
    log_vkey = format_verifier_key("example.org/log", raw_public_key(LOG_KEY))
    with pytest.raises(AuditKeyError, match=r"not a cosignature/v1 \(type 0x04\)"):
        parse_witness_verifier_key(log_vkey)
    name, key_id, key = WITNESS.verifier_key().split("+", 2)
    with pytest.raises(AuditKeyError, match="key ID does not match"):
        parse_witness_verifier_key(f"{name}x+{key_id}+{key}")
    with pytest.raises(AuditKeyError, match="not <name>"):
        parse_witness_verifier_key("just-a-name")
    with pytest.raises(ValueError, match="out of range"):
        signed_message("x\n", 2**63)


def test_cosigned_store_cuts_a_torn_tail_and_serialises_appends(tmp_path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from blindmatch.audit.cosigned import COSIGNED_NAME, CosignedStoreError, append_cosigned, read_cosigned

    note = NOTE + cosign(WITNESS_KEY, WITNESS.name, note_body(NOTE), 1).line
    append_cosigned(tmp_path, note)
    with (tmp_path / COSIGNED_NAME).open("a") as handle:
        handle.write(note[:20])  # a crash in the middle of the next append
    assert read_cosigned(tmp_path) == ([note], True)
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda _: append_cosigned(tmp_path, note), range(20)))
    assert read_cosigned(tmp_path) == ([note] * 21, False)
    (tmp_path / COSIGNED_NAME).write_text(note + "\njunk\n\n" + note + "\n")
    with pytest.raises(CosignedStoreError, match=f"corrupt at byte {len(note.encode()) + 1}"):
        read_cosigned(tmp_path)
