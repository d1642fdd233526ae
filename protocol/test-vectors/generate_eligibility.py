"""Generate protocol/test-vectors/eligibility.json (SPEC.md section 15) from the implementation.

Run: python protocol/test-vectors/generate_eligibility.py
The vectors: the issuer's per-epoch key from its seed, tokens (VOPRF Evaluate) of the
match keys of one record, the holder's blind, verifiable evaluation of those keys with
the issuer (fixed blinds and proof nonce), a composed index entry (the holder's OPRF
output over a token), a whole signed token file, and a whole verifiable membership
session on tokens (the holder's index over two records' tokens; the requester sends one
record's tokens and a token made under another key, which matches nothing). tests/unit/test_eligibility_vectors.py
recomputes the file and requires byte equality.
"""

from __future__ import annotations

import importlib.util
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from blindmatch.audit.keys import raw_public_key
from blindmatch.core.holder import HolderConfig, HolderSession, unsigned_close
from blindmatch.core.index import EncryptedIndex, encode_index
from blindmatch.core.keys import HolderKey
from blindmatch.core.outputs import split_outputs
from blindmatch.core.pacing import run_local
from blindmatch.core.purpose import evaluation_info
from blindmatch.core.requester import RequesterSession
from blindmatch.crypto import oprf, poprf, voprf
from blindmatch.crypto.batch import BatchEngine
from blindmatch.issuer.epochs import Epoch, epoch_key_pair
from blindmatch.issuer.tokenfile import TokenHeader, records_digest, render
from blindmatch.normalize import default_schema
from blindmatch.vocabulary import Mode

HERE = Path(__file__).resolve().parent
ISSUER_SEED = bytes.fromhex("5e" * 32)
SIGNING_SEED = bytes.fromhex("51" * 32)
HOLDER_SEED = bytes.fromhex("a3" * 32)
HOLDER_INFO = b"blindmatch test vector key"
EPOCH = "2026-12"
REQUESTER_ORG = "County Court of Example"
RECORD = {"name": "Alice Smith", "address": "100 Main St Apt 4, Springfield, IL 62701", "order_date": "2025-01-02"}
PROOF_NONCE = oprf.hash_to_scalar(b"blindmatch test vector proof nonce")
OTHER_RECORD = {"name": "Bob Jones", "address": "12 Oak Ave, Springfield, IL 62701", "order_date": "2025-03-04"}
SESSION_ID = bytes(range(16))
_core_spec = importlib.util.spec_from_file_location("generate_core", HERE / "generate_core.py")
assert _core_spec and _core_spec.loader
core = importlib.util.module_from_spec(_core_spec)
_core_spec.loader.exec_module(core)  # the session vectors' fixed blinds, proof nonces and message encoding


def fixed_blind(i: int) -> bytes:
    """Deterministic blinds for the vectors only; real evaluations use a CSPRNG."""
    return oprf.hash_to_scalar(b"blindmatch test vector issuer blind" + i.to_bytes(4, "big"))


def session_on_tokens(issuer_sk: bytes, holder_sk: bytes) -> dict[str, Any]:
    """A whole membership session whose inputs are tokens, from the holder's index to the transcript."""
    schema = default_schema()
    holder = HolderKey(holder_sk)
    info = evaluation_info(REQUESTER_ORG, Mode.MEMBERSHIP, holder.key_id)
    holder_tokens = [voprf.evaluate(issuer_sk, key) for record in (RECORD, OTHER_RECORD)
                     for _, key in schema.match_keys(record, "holder")]
    hi, lo = split_outputs(b"".join(poprf.evaluate(holder_sk, token, info) for token in holder_tokens))
    index = EncryptedIndex.parse(encode_index(Mode.MEMBERSHIP, holder.key_id, schema.fingerprint, hi, lo))
    made_up = voprf.derive_key_pair(bytes(32), b"not the issuer")[0]  # a requester's own "tokens"
    sent = [voprf.evaluate(issuer_sk, key) for _, key in schema.match_keys(RECORD, "requester")]
    sent += [voprf.evaluate(made_up, key) for _, key in schema.match_keys(OTHER_RECORD, "requester")[:1]]
    blinds = [core.fixed_blind(i) for i in range(len(sent))]
    engine = BatchEngine(1)
    config = HolderConfig(holder_sk, holder.key_id, schema.fingerprint, {Mode.MEMBERSHIP: index.digest},
                          max_batch=2, max_session_elements=16)
    holder_session = HolderSession(config, engine, unsigned_close, REQUESTER_ORG, proof_nonce=core.fixed_proof_nonce)
    requester = RequesterSession(sent, Mode.MEMBERSHIP, index, SESSION_ID, 2, engine, organisation=REQUESTER_ORG,
                                 public_key=holder.public_key, blinds=b"".join(blinds))
    wire = run_local(holder_session, requester, authorization=b"")
    engine.close()
    return {
        "holder_records": [RECORD, OTHER_RECORD],
        "holder_tokens": [t.hex() for t in holder_tokens],
        "index_digest": index.digest.hex(),
        "session_id": SESSION_ID.hex(),
        "requester_tokens": [t.hex() for t in sent],
        "blinds": [b.hex() for b in blinds],
        "messages": [core._message_json(m) for m in wire],
        "transcript_hash": requester.transcript_hash.hex(),
        "matched": requester.matched.tolist(),
    }


def eligibility_vectors() -> dict[str, Any]:
    schema = default_schema()
    epoch = Epoch.named(EPOCH)
    sk, pk = epoch_key_pair(ISSUER_SEED, epoch)
    tiered = schema.match_keys(RECORD, "requester")
    keys = [key for _, key in tiered]
    tokens = [voprf.evaluate(sk, key) for key in keys]
    blinds = [fixed_blind(i) for i in range(len(keys))]
    blinded = b"".join(voprf.blind(key, b)[1] for key, b in zip(keys, blinds, strict=True))
    evaluated, proof = voprf.blind_evaluate_batch(sk, pk, blinded, PROOF_NONCE)
    assert voprf.finalize_batch(keys, b"".join(blinds), evaluated, blinded, pk, proof) == tokens
    holder_sk = oprf.derive_key_pair(HOLDER_SEED, HOLDER_INFO)[0]
    info = evaluation_info(REQUESTER_ORG, Mode.MEMBERSHIP, HolderKey(holder_sk).key_id)
    signing = Ed25519PrivateKey.from_private_bytes(SIGNING_SEED)
    row: list[bytes | None] = [None] * len(schema.tier_names())
    for (name, _), token in zip(tiered, tokens, strict=True):
        row[schema.tier_rank[name]] = token
    header = TokenHeader("court.example", epoch, pk, raw_public_key(signing), schema.fingerprint, len(row), 1,
                         records_digest([(1, keys)]))
    token_file = render(header, [(1, row)], signing)
    return {
        "suite": "ristretto255-SHA512, VOPRF mode (issuer), POPRF mode (holder index, membership)",
        "issuer": {"seed": ISSUER_SEED.hex(), "epoch": EPOCH, "info": epoch.info.decode(),
                   "skI": sk.hex(), "pkI": pk.hex()},
        "record": RECORD,
        "schema_fingerprint": schema.fingerprint.hex(),
        "tiers": [
            {"tier": name, "rank": schema.tier_rank[name], "match_key": key.hex(), "token": token.hex(),
             "holder_index_output": poprf.evaluate(holder_sk, token, info).hex()}
            for (name, key), token in zip(tiered, tokens, strict=True)
        ],
        "holder": {"seed": HOLDER_SEED.hex(), "info": HOLDER_INFO.decode(), "skS": holder_sk.hex(),
                   "index_info": info.hex(), "organisation": REQUESTER_ORG, "mode": "membership"},
        "blind_evaluation": {"blinds": [b.hex() for b in blinds], "blinded": blinded.hex(),
                             "proof_nonce": PROOF_NONCE.hex(), "evaluated": evaluated.hex(), "proof": proof.hex()},
        "token_file": {"signing_seed": SIGNING_SEED.hex(), "signing_key": raw_public_key(signing).hex(),
                       "generated_for": datetime(2026, 12, 15, tzinfo=UTC).isoformat(),
                       "content": token_file.decode("ascii")},
        "session_on_tokens": session_on_tokens(sk, holder_sk),
    }


def render_json(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2) + "\n"


def main() -> None:
    (HERE / "eligibility.json").write_text(render_json(eligibility_vectors()))


if __name__ == "__main__":
    main()
