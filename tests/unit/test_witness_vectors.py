"""protocol/test-vectors/witness.json is current and checks out from first principles."""

from __future__ import annotations

import base64
import hashlib
import json
import struct

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from helpers.vector_files import VECTOR_DIR, load_generator

from blindmatch.audit.merkle import leaf_hash, verify_consistency
from blindmatch.witness.protocol import parse_add_checkpoint

generate_witness = load_generator("generate_witness")
DATA = json.loads((VECTOR_DIR / "witness.json").read_text(encoding="utf-8"))


def _mth(leaves: list[bytes]) -> bytes:
    """RFC 9162 2.1.1 Merkle Tree Hash, recursively, as the RFC writes it."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaf_hash(leaves[0])
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return hashlib.sha256(b"\x01" + _mth(leaves[:k]) + _mth(leaves[k:])).digest()


def test_vector_file_is_current() -> None:
    committed = (VECTOR_DIR / "witness.json").read_text(encoding="utf-8")
    assert committed == generate_witness.render(generate_witness.witness_vectors()), "run generate_witness.py"


def test_consistency_proof_verifies_between_the_checkpoint_roots() -> None:
    leaves = [leaf.encode() for leaf in DATA["leaves"]]
    old_root = base64.b64decode(DATA["old_checkpoint"].split("\n")[2])
    new_root = base64.b64decode(DATA["new_checkpoint"].split("\n")[2])
    assert (old_root, new_root) == (_mth(leaves[:3]), _mth(leaves))
    proof = [base64.b64decode(h) for h in DATA["consistency_proof"]]
    assert verify_consistency(3, 7, old_root, new_root, proof)
    assert not verify_consistency(3, 7, new_root, old_root, proof)
    request = parse_add_checkpoint(DATA["add_checkpoint_body"].encode())
    assert (request.old_size, list(request.proof), request.note) == (3, proof, DATA["new_checkpoint"])
    assert DATA["add_checkpoint_body"].startswith("old 3\n" + DATA["consistency_proof"][0] + "\n")


def test_cosignature_follows_tlog_cosignature_byte_for_byte() -> None:
    name, key_id_hex, encoded = DATA["witness_verifier_key"].split("+", 2)
    material = base64.b64decode(encoded)
    assert name == DATA["witness_name"] and material[0] == 0x04
    key_id = hashlib.sha256(name.encode() + b"\n" + material).digest()[:4]
    assert key_id.hex() == key_id_hex
    body = DATA["new_checkpoint"].split("\n\n")[0] + "\n"
    message = f"cosignature/v1\ntime {DATA['cosignature_timestamp']}\n".encode() + body.encode()
    assert message.decode() == DATA["cosignature_signed_message"]
    prefix = f"\u2014 {name} "
    line = DATA["cosignature_line"]
    assert line.startswith(prefix) and line.endswith("\n")
    blob = base64.b64decode(line[len(prefix):-1])
    assert blob[:4] == key_id and struct.unpack(">Q", blob[4:12])[0] == DATA["cosignature_timestamp"]
    Ed25519PublicKey.from_public_bytes(material[1:]).verify(blob[12:], message)  # raises if wrong
    assert DATA["cosigned_checkpoint"] == DATA["new_checkpoint"] + line
