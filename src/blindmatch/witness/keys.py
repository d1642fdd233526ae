"""The witness's Ed25519 signing key: a 0600 PEM file plus its public verifier key file.

The key is the witness's whole value: anyone holding it can cosign a forked log. It
is therefore created 0600, never overwritten, and refused at start when group or
others can access it (as ssh does), with an error that says how to fix it.
"""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from blindmatch.audit.cosignature import WitnessKey, format_witness_verifier_key
from blindmatch.audit.events import valid_origin
from blindmatch.audit.keys import raw_public_key
from blindmatch.keyfile import KeyFileError, create_ed25519_key, create_new_file, public_key_path, read_ed25519_key


def create_witness_key(key_path: Path, name: str) -> WitnessKey:
    """Create a new key (0600) and its verifier key file; refuses to overwrite either."""
    if not valid_origin(name):
        raise KeyFileError(f"witness name {name!r} must be printable ASCII without spaces or '+'")
    pub_path = public_key_path(key_path)
    if pub_path.exists():
        raise KeyFileError(f"{pub_path} already exists; refusing to overwrite a key")
    public = WitnessKey(name, raw_public_key(create_ed25519_key(key_path)))
    create_new_file(pub_path, (format_witness_verifier_key(name, public.public_key) + "\n").encode(), 0o644)
    return public


def load_witness_key(key_path: Path) -> Ed25519PrivateKey:
    """Load the signing key, refusing a file that group or others can access."""
    return read_ed25519_key(key_path)
