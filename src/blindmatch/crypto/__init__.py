"""RFC 9497 OPRF(ristretto255, SHA-512) over libsodium (via rbcl). Pure computation, no I/O.

Modules: ``oprf`` (mode 0x00), ``voprf`` (0x01) and ``poprf`` (0x02) with ``dleq``
proofs, batched on all cores by ``batch.BatchEngine``; ``ed25519`` strict signature
checks; ``sodium`` is the only importer of rbcl.
"""

from blindmatch.crypto.dleq import ProofError
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
    "ProofError",
    "blind",
    "blind_evaluate",
    "derive_key_pair",
    "evaluate",
    "finalize",
    "hash_to_group",
    "public_key",
    "unblind",
]
