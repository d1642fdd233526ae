"""Official signing keys: generation, loading, and public key text forms.

An official's private key is what makes a matching request attributable to a named
person, so it is created owner-only (never widened by a umask race, never overwriting
an existing key) and refused when other users could read it. Errors name files and
problems, never key material.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from blindmatch.crypto.ed25519 import WeakPublicKeyError, load_public_key_strict
from blindmatch.keyfile import create_new_file, public_key_path, read_private
from blindmatch.vocabulary import BlindmatchError

PUBLIC_KEY_BYTES = 32


class OfficialKeyError(BlindmatchError, ValueError):
    """An official key file is missing, unsafe or unreadable."""


@dataclass(frozen=True)
class GeneratedKey:
    """Result of :func:`generate_official_key` (the public half only)."""

    name: str
    public_key: bytes
    private_key_file: Path
    public_key_file: Path

    @property
    def public_key_b64(self) -> str:
        return base64.b64encode(self.public_key).decode("ascii")


def parse_public_key(text: str) -> bytes:
    """Raw 32-byte Ed25519 public key from its hex (64 digits) or base64 form."""
    text = text.strip()
    raw: bytes | None = None
    if len(text) == 2 * PUBLIC_KEY_BYTES:
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            raw = None
    if raw is None:
        try:
            raw = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise OfficialKeyError("public key is neither hex nor base64") from None
    if len(raw) != PUBLIC_KEY_BYTES:
        raise OfficialKeyError(f"public key must be {PUBLIC_KEY_BYTES} raw bytes, got {len(raw)}")
    try:
        load_public_key_strict(raw, what="public key")
    except WeakPublicKeyError as exc:
        raise OfficialKeyError(str(exc)) from None
    return raw


def read_public_key_file(path: Path) -> bytes:
    """Public key from a ``.pub`` file as written by :func:`generate_official_key`."""
    try:
        text = path.read_text(encoding="ascii")
    except (OSError, ValueError) as exc:  # ValueError: not ASCII, or a NUL byte in the path
        raise OfficialKeyError(f"cannot read public key file {path}: {exc.__class__.__name__}") from None
    try:
        return parse_public_key(text)
    except OfficialKeyError as exc:
        raise OfficialKeyError(f"{path}: {exc}") from None


MIN_PASSPHRASE_BYTES = 8


def generate_official_key(name: str, out: Path, passphrase: bytes) -> GeneratedKey:
    """Create a new key pair: ``out`` (PEM PKCS#8 encrypted under ``passphrase``, mode
    0600) and ``out.pub`` (base64).

    The key is encrypted at rest so that a copy of the file (a backup, a stolen laptop)
    does not let anyone sign in the official's name. Refuses to overwrite either file.
    ``name`` only labels the result; the policy file, not the key, binds a key to a person.
    """
    if not name.strip():
        raise OfficialKeyError("official name must not be empty")
    if len(passphrase) < MIN_PASSPHRASE_BYTES:
        raise OfficialKeyError(f"the passphrase must be at least {MIN_PASSPHRASE_BYTES} bytes")
    out = Path(out)
    pub = public_key_path(out)
    for path in (out, pub):
        if path.exists() or path.is_symlink():
            raise OfficialKeyError(f"{path} already exists; refusing to overwrite a key file")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.BestAvailableEncryption(passphrase)
    )
    raw_public = key.public_key().public_bytes_raw()
    try:
        create_new_file(out, pem, 0o600)
    except FileExistsError:
        raise OfficialKeyError(f"{out} already exists; refusing to overwrite a key file") from None
    except OSError as exc:
        raise OfficialKeyError(f"cannot create {out}: {exc.strerror}") from None
    try:
        create_new_file(pub, base64.b64encode(raw_public) + b"\n", 0o644)
    except OSError as exc:
        out.unlink()  # no orphan private key without its published half
        if isinstance(exc, FileExistsError):
            raise OfficialKeyError(f"{pub} already exists; refusing to overwrite a key file") from None
        raise OfficialKeyError(f"cannot create {pub}: {exc.strerror}") from None
    return GeneratedKey(name=name, public_key=raw_public, private_key_file=out, public_key_file=pub)


def load_official_key(path: Path, passphrase: bytes | None = None) -> Ed25519PrivateKey:
    """Load an official's private key, refusing files that group or others may access.

    Only encrypted keys (``official keygen`` writes only those) are accepted: a plain
    copy of an official's key would let whoever reads the file sign in their name.
    """
    data = read_private(Path(path), OfficialKeyError, "private key file")
    try:
        key = serialization.load_pem_private_key(data, password=passphrase or None)
    except TypeError:
        if passphrase:
            raise OfficialKeyError(f"{path} is not encrypted; an official's key must be encrypted at rest: "
                                   "create a new one with `blindmatch official keygen`") from None
        raise OfficialKeyError(f"{path} is encrypted: a passphrase is needed") from None
    except ValueError:
        if passphrase and b"ENCRYPTED" in data:
            raise OfficialKeyError(f"wrong passphrase for {path}") from None
        raise OfficialKeyError(f"{path} is not a PEM PKCS#8 private key") from None
    except UnsupportedAlgorithm:
        raise OfficialKeyError(f"{path} is not a PEM PKCS#8 private key") from None
    if not passphrase:  # it loaded without one: stored in the clear
        raise OfficialKeyError(f"{path} is not encrypted; an official's key must be encrypted at rest: "
                               "create a new one with `blindmatch official keygen`")
    if not isinstance(key, Ed25519PrivateKey):
        raise OfficialKeyError(f"{path} is not an Ed25519 private key")
    return key
