"""RFC 9497 OPRF(ristretto255, SHA-512) over libsodium (via rbcl). Pure computation, no I/O."""

from blindmatch.crypto.group import (
    ELEMENT_BYTES,
    SCALAR_BYTES,
    InvalidElementError,
    InvalidScalarError,
)
from blindmatch.crypto.oprf import (
    CONTEXT_STRING,
    DeriveKeyPairError,
    InvalidInputError,
    blind,
    blind_evaluate,
    derive_key_pair,
    evaluate,
    finalize,
    hash_to_group,
    public_key,
    unblind,
)

__all__ = [
    "CONTEXT_STRING",
    "ELEMENT_BYTES",
    "SCALAR_BYTES",
    "DeriveKeyPairError",
    "InvalidElementError",
    "InvalidInputError",
    "InvalidScalarError",
    "blind",
    "blind_evaluate",
    "derive_key_pair",
    "evaluate",
    "finalize",
    "hash_to_group",
    "public_key",
    "unblind",
]
