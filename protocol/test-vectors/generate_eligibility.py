"""Generate protocol/test-vectors/eligibility.json (SPEC.md section 15) from the implementation.

Run: python protocol/test-vectors/generate_eligibility.py
The vectors: the issuer's per-epoch key from its seed, tokens (VOPRF Evaluate) of the
match keys of one record, the holder's blind, verifiable evaluation of those keys with
the issuer (fixed blinds and proof nonce), a composed index entry (the holder's OPRF
output over a token), and a whole signed token file. tests/unit/test_eligibility_vectors.py
recomputes the file and requires byte equality.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from blindmatch.audit.keys import raw_public_key
from blindmatch.core.keys import HolderKey
from blindmatch.core.purpose import evaluation_info
from blindmatch.crypto import oprf, poprf, voprf
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


def fixed_blind(i: int) -> bytes:
    """Deterministic blinds for the vectors only; real evaluations use a CSPRNG."""
    return oprf.hash_to_scalar(b"blindmatch test vector issuer blind" + i.to_bytes(4, "big"))


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
    }


def render_json(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2) + "\n"


def main() -> None:
    (HERE / "eligibility.json").write_text(render_json(eligibility_vectors()))


if __name__ == "__main__":
    main()
