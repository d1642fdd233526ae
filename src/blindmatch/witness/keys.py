"""The witness's Ed25519 signing key: a 0600 PEM file plus its public verifier key file.

The key is the witness's whole value: anyone holding it can cosign a forked log. It
is therefore created 0600, never overwritten, and refused at start when group or
others can access it (as ssh does), with an error that says how to fix it.
"""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from blindmatch.audit.cosignature import WitnessKey, format_witness_verifier_key
from blindmatch.audit.events import valid_origin
from blindmatch.audit.keys import raw_public_key
from blindmatch.keyfile import KeyFileError, create_new_file, read_private


def public_key_path(key_path: Path) -> Path:
    """Where the verifier key of ``key_path`` is written: ``<key_path>.pub``."""
    return key_path.with_name(key_path.name + ".pub")


def create_witness_key(key_path: Path, name: str) -> WitnessKey:
    """Create a new key (0600) and its verifier key file; refuses to overwrite either."""
    if not valid_origin(name):
        raise KeyFileError(f"witness name {name!r} must be printable ASCII without spaces or '+'")
    pub_path = public_key_path(key_path)
    if pub_path.exists():
        raise KeyFileError(f"{pub_path} already exists; refusing to overwrite a key")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    key_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        create_new_file(key_path, pem, 0o600)
    except FileExistsError:
        raise KeyFileError(f"{key_path} already exists; refusing to overwrite a key") from None
    public = WitnessKey(name, raw_public_key(key))
    create_new_file(pub_path, (format_witness_verifier_key(name, public.public_key) + "\n").encode(), 0o644)
    return public


def load_witness_key(key_path: Path) -> Ed25519PrivateKey:
    """Load the signing key, refusing a file that group or others can access."""
    pem = read_private(key_path)
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except ValueError:
        raise KeyFileError(f"{key_path} is not a PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"{key_path} is not an Ed25519 key")
    return key
