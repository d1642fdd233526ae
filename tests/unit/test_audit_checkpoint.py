"""Signed-note checkpoints, verifier keys and transcript signatures."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from blindmatch.audit import sign_transcript, verify_transcript_signature
from blindmatch.audit.checkpoint import (
    CheckpointError,
    parse_checkpoint,
    sign_checkpoint,
    split_notes,
)
from blindmatch.audit.keys import (
    AuditKeyError,
    format_verifier_key,
    parse_verifier_key,
    raw_public_key,
    verify_ed25519,
)

# Example from the golang.org/x/mod/sumdb/note package documentation.
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
GO_SIG = "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM="

ORIGIN = "example.org/audit"
ROOT = bytes(range(32))
TIME = "2024-05-06T09:00:00.000000Z"


def test_key_hash_and_signature_interoperate_with_go_note() -> None:
    name, public_key = parse_verifier_key(GO_VKEY)
    assert name == "PeterNeumann"
    assert format_verifier_key(name, public_key) == GO_VKEY
    blob = base64.b64decode(GO_SIG)
    assert blob[:4].hex() == "c74f20a3"
    assert verify_ed25519(public_key, blob[4:], GO_TEXT.encode())


@pytest.mark.parametrize(
    "bad",
    [
        "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # wrong hash
        "PeterNeumanm+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # wrong name
        "PeterNeumann+c74f20a3+AhpcD2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # wrong alg
        "PeterNeumann+c74f20a3",
        "PeterNeumann+c74f20a3+!!!",
    ],
)
def test_bad_verifier_keys_are_rejected(bad: str) -> None:
    with pytest.raises(AuditKeyError):
        parse_verifier_key(bad)


def test_checkpoint_note_format_and_round_trip() -> None:
    key = Ed25519PrivateKey.generate()
    cp = sign_checkpoint(key, ORIGIN, 7, ROOT, TIME)
    body, sig_line = cp.note.split("\n\n")
    assert body + "\n" == f"{ORIGIN}\n7\n{base64.b64encode(ROOT).decode()}\n{TIME}\n"
    assert sig_line.startswith(f"\u2014 {ORIGIN} ") and sig_line.endswith("\n")
    blob = base64.b64decode(sig_line.split(" ")[2])
    assert len(blob) == 68
    assert verify_ed25519(raw_public_key(key), blob[4:], cp.body().encode())
    parsed = parse_checkpoint(cp.note, ORIGIN, raw_public_key(key))
    assert (parsed.origin, parsed.size, parsed.root, parsed.time) == (ORIGIN, 7, ROOT, TIME)


def test_checkpoint_rejects_tampering_and_foreign_keys() -> None:
    key = Ed25519PrivateKey.generate()
    pub = raw_public_key(key)
    note = sign_checkpoint(key, ORIGIN, 7, ROOT, TIME).note
    with pytest.raises(CheckpointError, match="does not verify"):
        parse_checkpoint(note.replace("\n7\n", "\n8\n"), ORIGIN, pub)
    with pytest.raises(CheckpointError, match="no signature"):
        parse_checkpoint(note, ORIGIN, raw_public_key(Ed25519PrivateKey.generate()))
    with pytest.raises(CheckpointError, match="origin"):
        parse_checkpoint(note, "other.example", pub)
    with pytest.raises(CheckpointError):
        parse_checkpoint(note.replace("\n7\n", "\n07\n"), ORIGIN, pub)


def test_split_notes_finds_complete_notes_and_torn_tail() -> None:
    key = Ed25519PrivateKey.generate()
    notes = [sign_checkpoint(key, ORIGIN, n, ROOT, TIME).note for n in (1, 2, 3)]
    data = "".join(note + "\n" for note in notes).encode()
    assert split_notes(data) == (notes, len(data))
    complete = len("".join(note + "\n" for note in notes[:2]).encode())
    for cut in range(complete, len(data)):
        assert split_notes(data[:cut]) == (notes[:2], complete), cut


def test_transcript_signatures_are_bound_to_session_and_key() -> None:
    key = Ed25519PrivateKey.generate()
    pub = raw_public_key(key)
    sid, transcript = bytes.fromhex("00112233445566778899aabbccddeeff"), bytes(range(32))
    sig = sign_transcript(key, sid, transcript)
    assert verify_transcript_signature(pub, sid, transcript, sig)
    assert not verify_transcript_signature(pub, sid[:-1], transcript, sig)
    assert not verify_transcript_signature(pub, sid, bytes(32), sig)
    assert not verify_transcript_signature(raw_public_key(Ed25519PrivateKey.generate()), sid, transcript, sig)
    assert not verify_transcript_signature(pub, sid, transcript[:31], sig)
    # Domain separation: the raw message without the context prefix is not what was signed.
    assert not verify_ed25519(pub, sig, sid + transcript)
    with pytest.raises(ValueError):
        sign_transcript(key, sid, transcript[:31])
