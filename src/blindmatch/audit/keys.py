"""Audit signing keys: files on disk, verifier keys, transcript signatures.

Each side has its own Ed25519 audit key, separate from its TLS and OPRF keys,
so that rotating or revoking those never invalidates the audit trail and the
audit key can be handed to nothing but the log. The public half is written as
a signed-note verifier key (``name+hash+base64``, golang.org/x/mod/sumdb/note),
which names the log it belongs to and can be pinned by reviewers.
"""

from __future__ import annotations

import base64
import hashlib
import struct
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from blindmatch.crypto.ed25519 import WeakPublicKeyError, load_public_key_strict, verify_strict
from blindmatch.keyfile import create_new_file, read_private
from blindmatch.vocabulary import BlindmatchError

ALG_ED25519 = 1
TRANSCRIPT_CONTEXT = b"blindmatch audit transcript v1\x00"


class AuditKeyError(BlindmatchError):
    """The audit key files are missing, malformed or unsafe."""


def raw_public_key(key: Ed25519PrivateKey) -> bytes:
    """The 32-byte raw encoding of the public half of ``key``."""
    return key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )


def key_hash(name: str, public_key: bytes) -> bytes:
    """4-byte key id of the signed-note format: SHA-256(name || "\\n" || alg || key)[:4]."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([ALG_ED25519]) + public_key).digest()[:4]


def format_verifier_key(name: str, public_key: bytes) -> str:
    """Encode a verifier key as ``<name>+<8 hex key hash>+<base64(0x01 || key)>``."""
    encoded = base64.b64encode(bytes([ALG_ED25519]) + public_key).decode()
    return f"{name}+{key_hash(name, public_key).hex()}+{encoded}"


def parse_verifier_key(text: str) -> tuple[str, bytes]:
    """Decode a verifier key; returns (name, raw 32-byte Ed25519 public key)."""
    parts = text.strip().split("+", 2)
    if len(parts) != 3:
        raise AuditKeyError("verifier key is not <name>+<hash>+<key>")
    name, hash_hex, encoded = parts
    try:
        blob = base64.b64decode(encoded, validate=True)
    except ValueError as exc:
        raise AuditKeyError("verifier key is not valid base64") from exc
    if len(blob) != 33 or blob[0] != ALG_ED25519:
        raise AuditKeyError("verifier key is not an Ed25519 key")
    public_key = blob[1:]
    try:
        name.encode()
    except UnicodeEncodeError:  # a lone surrogate, e.g. from a non-UTF-8 command line
        raise AuditKeyError("verifier key name is not valid UTF-8") from None
    try:
        load_public_key_strict(public_key, what=f"verifier key {name!r}")
    except WeakPublicKeyError as exc:
        raise AuditKeyError(str(exc)) from None
    if key_hash(name, public_key).hex() != hash_hex:
        raise AuditKeyError("verifier key hash does not match its name and key")
    return name, public_key


def read_verifier_file(path: Path) -> tuple[str, bytes]:
    """(name, raw public key) from a verifier key file such as ``audit.pub``.

    The file is the reviewer's and the peer's trust anchor, so one that is not even text
    is reported as a bad key, naming the file, like any other malformed one.
    """
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise AuditKeyError(f"{path} is not a verifier key (not UTF-8 text at byte {exc.start})") from None
    try:
        return parse_verifier_key(text)
    except AuditKeyError as exc:
        raise AuditKeyError(f"{path}: {exc}") from None


def load_or_create_signing_key(key_path: Path, pub_path: Path, name: str) -> Ed25519PrivateKey:
    """Load the audit key, creating it (mode 0600) and its verifier key on first use.

    Callers hold the log's lock, so two processes never race to create it. A
    key readable by group or others is refused, as ssh does: an audit key that
    leaked lets anyone forge the trail.
    """
    if not key_path.exists():
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        create_new_file(key_path, pem, 0o600)
        create_new_file(pub_path, (format_verifier_key(name, raw_public_key(key)) + "\n").encode(), 0o644)
        return key
    key = load_signing_key(key_path)
    if not pub_path.exists():
        create_new_file(pub_path, (format_verifier_key(name, raw_public_key(key)) + "\n").encode(), 0o644)
    pub_name, pub = read_verifier_file(pub_path)
    if pub != raw_public_key(key):
        raise AuditKeyError(f"{pub_path} does not match {key_path}")
    if pub_name != name:
        raise AuditKeyError(f"this audit log belongs to origin {pub_name!r}, not {name!r}")
    return key


def load_signing_key(key_path: Path) -> Ed25519PrivateKey:
    """The Ed25519 audit key in ``key_path`` (PKCS#8 PEM, refused unless 0600)."""
    try:
        loaded = serialization.load_pem_private_key(read_private(key_path, AuditKeyError, "audit key"), password=None)
    except ValueError as exc:
        raise AuditKeyError(f"{key_path} is not a PEM private key") from exc
    if not isinstance(loaded, Ed25519PrivateKey):
        raise AuditKeyError(f"{key_path} is not an Ed25519 key")
    return loaded


def _transcript_message(session_id: bytes, transcript_hash: bytes) -> bytes:
    if len(transcript_hash) != 32:
        raise ValueError("transcript hash must be 32 bytes")
    if not 0 < len(session_id) <= 0xFFFF:
        raise ValueError("session id must be 1..65535 bytes")
    return TRANSCRIPT_CONTEXT + struct.pack(">H", len(session_id)) + session_id + transcript_hash


def sign_transcript(audit_key: Ed25519PrivateKey, session_id: bytes, transcript_hash: bytes) -> bytes:
    """Sign a session transcript hash; the context prefix keeps these signatures
    from ever being valid as checkpoint or entry signatures, and vice versa."""
    return audit_key.sign(_transcript_message(session_id, transcript_hash))


def verify_transcript_signature(
    public_key: bytes, session_id: bytes, transcript_hash: bytes, signature: bytes
) -> bool:
    """True iff ``signature`` is the peer's transcript signature for this session."""
    try:
        message = _transcript_message(session_id, transcript_hash)
    except ValueError:
        return False
    return verify_ed25519(public_key, signature, message)


def verify_ed25519(public_key: bytes, signature: bytes, message: bytes) -> bool:
    """Strict Ed25519 verification (small-order keys and R, S >= L refused), as a bool."""
    return verify_strict(public_key, signature, message)
