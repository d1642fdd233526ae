"""The issuer's two secrets: the OPRF seed (every epoch's key) and the Ed25519 signing key.

Both are created 0600, never overwritten, and refused when group or others may read
them. The signing key signs token files; its public half (``<file>.pub``, hex) is what
requesters pin. The OPRF public key of each epoch is published by ``issuer keygen`` and
``issuer public-key`` so that holders can verify the issuer's proofs.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from blindmatch.audit.keys import raw_public_key
from blindmatch.crypto.ed25519 import WeakPublicKeyError, load_public_key_strict
from blindmatch.keyfile import (
    KeyFileError,
    create_ed25519_key,
    create_new_file,
    create_secret_file,
    public_key_path,
    read_ed25519_key,
    read_private,
)

SEED_HEADER = "blindmatch-issuer-oprf-seed-v1"
SEED_BYTES = 32


def create_seed(path: Path) -> None:
    """A fresh 32-byte OPRF seed in a new 0600 file."""
    create_secret_file(path, f"{SEED_HEADER}\n{secrets.token_bytes(SEED_BYTES).hex()}\n".encode())


def read_seed(path: Path) -> bytes:
    try:
        lines = read_private(path, what="issuer seed file").decode("ascii").split()
    except UnicodeDecodeError:
        raise KeyFileError(f"{path} is not a blindmatch issuer seed file") from None
    if len(lines) != 2 or lines[0] != SEED_HEADER or len(lines[1]) != 2 * SEED_BYTES:
        raise KeyFileError(f"{path} is not a blindmatch issuer seed file")
    try:
        return bytes.fromhex(lines[1])
    except ValueError:
        raise KeyFileError(f"{path} is not a blindmatch issuer seed file") from None


def create_signing_key(path: Path) -> bytes:
    """A new Ed25519 key (PEM, 0600) and ``<path>.pub`` (hex); returns the raw public key."""
    pub_path = public_key_path(path)
    if pub_path.exists():
        raise KeyFileError(f"{pub_path} already exists; refusing to overwrite a key")
    public = raw_public_key(create_ed25519_key(path))
    create_new_file(pub_path, (public.hex() + "\n").encode(), 0o644)
    return public


def load_signing_key(path: Path) -> Ed25519PrivateKey:
    return read_ed25519_key(path, what="issuer signing key")


def read_public_signing_key(path: Path) -> bytes:
    """A pinned issuer signing key (hex, 32 bytes), strictly checked (no weak or small-order key)."""
    try:
        raw = bytes.fromhex(path.read_text(encoding="ascii").strip())
    except OSError as exc:
        raise KeyFileError(f"cannot read issuer public key {path}: {exc.strerror}") from None
    except (ValueError, UnicodeDecodeError):
        raise KeyFileError(f"{path} is not a hex Ed25519 public key") from None
    try:
        load_public_key_strict(raw, what=f"issuer signing key {path}")
    except WeakPublicKeyError as exc:
        raise KeyFileError(str(exc)) from None
    return raw
