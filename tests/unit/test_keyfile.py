"""``keyfile``: the Ed25519 signing-key files the issuer and the witness share."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from blindmatch.keyfile import KeyFileError, create_ed25519_key, public_key_path, read_ed25519_key


def test_a_created_key_is_0600_reads_back_and_is_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "signing.key"
    key = create_ed25519_key(path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert read_ed25519_key(path).public_key().public_bytes_raw() == key.public_key().public_bytes_raw()
    with pytest.raises(KeyFileError, match="already exists; refusing to overwrite a key"):
        create_ed25519_key(path)
    assert public_key_path(path) == tmp_path / "sub" / "signing.key.pub"


def _write(path: Path, data: bytes, mode: int = 0o600) -> Path:
    path.write_bytes(data)
    path.chmod(mode)
    return path


@pytest.mark.parametrize(("data", "message"), [
    (b"not a key", "is not an unencrypted PEM private key"),
    (Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"passphrase")), "is not an unencrypted PEM private key"),
    (generate_private_key(SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
     "is not an Ed25519 key"),
])
def test_anything_but_an_unencrypted_ed25519_pem_is_refused(tmp_path: Path, data: bytes, message: str) -> None:
    with pytest.raises(KeyFileError, match=message):
        read_ed25519_key(_write(tmp_path / "k", data))


def test_a_key_others_may_read_is_refused_naming_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "k"
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    with pytest.raises(KeyFileError, match=r"witness key .* \(mode 0644\); run chmod 600"):
        read_ed25519_key(_write(path, pem, 0o644), what="witness key")
