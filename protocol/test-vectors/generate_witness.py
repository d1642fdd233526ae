"""Generate protocol/test-vectors/witness.json (SPEC.md section 14) from the implementation.

Run: python protocol/test-vectors/generate_witness.py
tests/test_witness_vectors.py recomputes the file and requires byte equality, and checks
the vector with the verification functions alone (RFC 9162 consistency, cosignature/v1).
Keys come from fixed seeds and Ed25519 is deterministic, so the output is reproducible.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from blindmatch.audit.checkpoint import sign_checkpoint
from blindmatch.audit.cosignature import cosign, format_witness_verifier_key, note_body, signed_message
from blindmatch.audit.keys import format_verifier_key, raw_public_key
from blindmatch.audit.merkle import MerkleTree
from blindmatch.witness.protocol import format_add_checkpoint

HERE = Path(__file__).resolve().parent
LOG_SEED = bytes.fromhex("11" * 32)
WITNESS_SEED = bytes.fromhex("22" * 32)
ORIGIN = "example.org/blindmatch-test-log"
WITNESS_NAME = "witness.example/test"
LEAVES = [f'{{"index":{i},"test":"leaf {i}"}}'.encode() for i in range(7)]
OLD_SIZE, NEW_SIZE = 3, 7
TIMES = {OLD_SIZE: "2026-12-01T12:00:00.000000Z", NEW_SIZE: "2026-12-01T12:05:00.000000Z"}
COSIGNATURE_TIMESTAMP = 1796126700  # 2026-12-01T12:05:00Z


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def witness_vectors() -> dict:
    log_key = Ed25519PrivateKey.from_private_bytes(LOG_SEED)
    witness_key = Ed25519PrivateKey.from_private_bytes(WITNESS_SEED)
    tree = MerkleTree()
    for leaf in LEAVES:
        tree.append(leaf)
    old = sign_checkpoint(log_key, ORIGIN, OLD_SIZE, tree.root(OLD_SIZE), TIMES[OLD_SIZE])
    new = sign_checkpoint(log_key, ORIGIN, NEW_SIZE, tree.root(NEW_SIZE), TIMES[NEW_SIZE])
    proof = tree.consistency_proof(OLD_SIZE, NEW_SIZE)
    cosignature = cosign(witness_key, WITNESS_NAME, note_body(new.note), COSIGNATURE_TIMESTAMP)
    return {
        "description": "Witness (SPEC.md section 14): two checkpoints of a 7-leaf log, the RFC 9162 consistency "
                       "proof between them, the C2SP tlog-witness add-checkpoint body, and the witness's "
                       "cosignature/v1 (Ed25519) of the new checkpoint at a fixed timestamp",
        "log_seed": LOG_SEED.hex(),
        "log_verifier_key": format_verifier_key(ORIGIN, raw_public_key(log_key)),
        "leaves": [leaf.decode() for leaf in LEAVES],
        "old_checkpoint": old.note,
        "new_checkpoint": new.note,
        "consistency_proof": [_b64(h) for h in proof],
        "add_checkpoint_body": format_add_checkpoint(OLD_SIZE, proof, new.note).decode(),
        "witness_seed": WITNESS_SEED.hex(),
        "witness_name": WITNESS_NAME,
        "witness_verifier_key": format_witness_verifier_key(WITNESS_NAME, raw_public_key(witness_key)),
        "cosignature_timestamp": COSIGNATURE_TIMESTAMP,
        "cosignature_signed_message": signed_message(note_body(new.note), COSIGNATURE_TIMESTAMP).decode(),
        "cosignature_line": cosignature.line,
        "cosigned_checkpoint": new.note + cosignature.line,
    }


def render(data: dict) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def main() -> None:
    (HERE / "witness.json").write_text(render(witness_vectors()), encoding="utf-8")


if __name__ == "__main__":
    main()
