"""Generate protocol/test-vectors/{index,session}.json from the implementation.

Run: python protocol/test-vectors/generate_core.py
tests/test_protocol_vectors.py recomputes both files and requires byte equality, so a
change in any encoding shows up as a diff here first.
"""

from __future__ import annotations

import json
from pathlib import Path

from blindmatch.core.holder import HolderConfig, HolderSession, unsigned_close
from blindmatch.core.index import EncryptedIndex, encode_index
from blindmatch.core.keys import HolderKey
from blindmatch.core.messages import Accept, BlindedBatch, Close, Closed, EvaluatedBatch, Hello, blinded_commitment
from blindmatch.core.outputs import bucket_of, cardinality_output, split_outputs
from blindmatch.core.pacing import run_local
from blindmatch.core.requester import RequesterSession
from blindmatch.crypto import oprf
from blindmatch.crypto.batch import BatchEngine
from blindmatch.vocabulary import Mode

HERE = Path(__file__).resolve().parent
SEED = bytes.fromhex("a3" * 32)
KEY_INFO = b"blindmatch test vector key"
SCHEMA_FINGERPRINT = bytes(range(32))
HOLDER_KEYS = [b"", b"\x00", b"alice|1 MAIN ST|12345", b"bob|2 ELM AVE APT 3|54321", b"x" * 300]
REQUESTER_KEYS = [b"alice|1 MAIN ST|12345", b"carol|3 OAK DR|11111", b"x" * 300]
SESSION_ID = bytes(range(16))


def fixed_blind(i: int) -> bytes:
    """Deterministic blinds for the vectors only; real sessions use libsodium's CSPRNG."""
    return oprf.hash_to_scalar(b"blindmatch test vector blind" + i.to_bytes(4, "big"))


def _key() -> HolderKey:
    return HolderKey(oprf.derive_key_pair(SEED, KEY_INFO)[0])


def index_vectors() -> dict:
    key = _key()
    entries = []
    outputs = {Mode.MEMBERSHIP: [], Mode.CARDINALITY: []}
    for k in HOLDER_KEYS:
        element = oprf.blind_evaluate(key.sk, oprf.hash_to_group(k))
        member = oprf.evaluate(key.sk, k)
        card = cardinality_output(element)
        outputs[Mode.MEMBERSHIP].append(member)
        outputs[Mode.CARDINALITY].append(card)
        entries.append({"match_key": k.hex(), "evaluated_element": element.hex(), "membership_output": member.hex(), "cardinality_output": card.hex()})
    result = {
        "description": "Holder index: match keys -> RFC 9497 Evaluate outputs (membership) and CardinalityFinalize outputs -> Elias-Fano index bytes",
        "seed": SEED.hex(),
        "key_info": KEY_INFO.hex(),
        "skS": key.sk.hex(),
        "key_id": key.key_id.hex(),
        "schema_fingerprint": SCHEMA_FINGERPRINT.hex(),
        "entries": entries,
        "indexes": {},
    }
    n = len(HOLDER_KEYS)
    for mode, outs in outputs.items():
        hi, lo = split_outputs(b"".join(outs))
        data = encode_index(mode, key.key_id, SCHEMA_FINGERPRINT, hi, lo)
        result["indexes"][mode.value] = {
            "buckets": [int(b) for b in bucket_of(hi, n)],
            "lows": [f"{int(x):016x}" for x in lo],
            "encoded": data.hex(),
            "digest": EncryptedIndex.parse(data).digest.hex(),
        }
    return result


def _message_json(message) -> dict:  # type: ignore[no-untyped-def]
    if isinstance(message, Hello):
        return {"type": "Hello", "mode": message.mode.value, "element_count": message.element_count, "batch_size": message.batch_size,
                "batch_digests": [d.hex() for d in message.batch_digests], "canonical": message.canonical().hex()}
    if isinstance(message, Accept):
        return {"type": "Accept", "max_batch": message.max_batch, "canonical": message.canonical().hex()}
    if isinstance(message, (BlindedBatch, EvaluatedBatch)):
        return {"type": type(message).__name__, "seq": message.seq, "elements": message.elements.hex(), "canonical": message.canonical().hex()}
    if isinstance(message, Close):
        return {"type": "Close", "transcript_hash": message.transcript_hash.hex()}
    if isinstance(message, Closed):
        return {"type": "Closed", "transcript_hash": message.transcript_hash.hex(), "element_count": message.element_count}
    raise TypeError(type(message))


def session_vectors() -> dict:
    key = _key()
    engine = BatchEngine(1)
    builder_outputs = b"".join(oprf.evaluate(key.sk, k) for k in HOLDER_KEYS)
    hi, lo = split_outputs(builder_outputs)
    index = EncryptedIndex.parse(encode_index(Mode.MEMBERSHIP, key.key_id, SCHEMA_FINGERPRINT, hi, lo))
    blinds = [fixed_blind(i) for i in range(len(REQUESTER_KEYS))]
    config = HolderConfig(key.sk, key.key_id, SCHEMA_FINGERPRINT, {Mode.MEMBERSHIP: index.digest}, max_batch=2, max_session_elements=16)
    holder = HolderSession(config, engine, unsigned_close)
    requester = RequesterSession(REQUESTER_KEYS, Mode.MEMBERSHIP, index, SESSION_ID, 2, engine, blinds=b"".join(blinds))
    wire = run_local(holder, requester, authorization=b"")
    engine.close()
    return {
        "description": "One membership session with fixed blinds; every message's canonical encoding and the transcript hash",
        "skS": key.sk.hex(),
        "index_digest": index.digest.hex(),
        "session_id": SESSION_ID.hex(),
        "requester_keys": [k.hex() for k in REQUESTER_KEYS],
        "blinds": [b.hex() for b in blinds],
        "blinded_commitment": blinded_commitment(requester.element_count, requester.batch_digests).hex(),
        "messages": [_message_json(m) for m in wire],
        "transcript_hash": requester.transcript_hash.hex(),
        "matched": requester.matched.tolist(),
    }


def render(data: dict) -> str:
    return json.dumps(data, indent=2) + "\n"


def main() -> None:
    (HERE / "index.json").write_text(render(index_vectors()))
    (HERE / "session.json").write_text(render(session_vectors()))


if __name__ == "__main__":
    main()
