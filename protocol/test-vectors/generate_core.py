"""Generate protocol/test-vectors/{index,session}.json from the implementation.

Run: python protocol/test-vectors/generate_core.py
tests/unit/test_protocol_vectors.py recomputes both files and requires byte equality, so a
change in any encoding shows up as a diff here first, and checks the session's proofs
independently with RFC 9497 POPRF Finalize.

Both are POPRF (RFC 9497 mode 0x02) under ``info = evaluation_info(ORGANISATION, mode,
key_id)`` (SPEC.md section 4.4); session.json is a whole verifiable session: every
evaluated batch carries its batched DLEQ proof, made with a fixed nonce here only.
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
from blindmatch.core.purpose import evaluation_info, shuffle_context
from blindmatch.core.requester import RequesterSession
from blindmatch.crypto import group, oprf, poprf
from blindmatch.crypto.batch import BatchEngine
from blindmatch.crypto.modes import i2osp
from blindmatch.crypto.shuffle import ShuffleRandomness, chunk_count
from blindmatch.vocabulary import Mode

HERE = Path(__file__).resolve().parent
SEED = bytes.fromhex("a3" * 32)
KEY_INFO = b"blindmatch test vector key"
SCHEMA_FINGERPRINT = bytes(range(32))
HOLDER_KEYS = [b"", b"\x00", b"alice|1 MAIN ST|12345", b"bob|2 ELM AVE APT 3|54321", b"x" * 300]
REQUESTER_KEYS = [b"alice|1 MAIN ST|12345", b"carol|3 OAK DR|11111", b"x" * 300]
SESSION_ID = bytes(range(16))
ORGANISATION = "Example County"


def fixed_blind(i: int) -> bytes:
    """Deterministic blinds for the vectors only; real sessions use libsodium's CSPRNG."""
    return oprf.hash_to_scalar(b"blindmatch test vector blind" + i.to_bytes(4, "big"))


def fixed_proof_nonce(seq: int) -> bytes:
    """Deterministic DLEQ nonces for the vectors only; real sessions draw them at random."""
    return oprf.hash_to_scalar(b"blindmatch test vector proof nonce" + seq.to_bytes(4, "big"))


def _key() -> HolderKey:
    return HolderKey(poprf.derive_key_pair(SEED, KEY_INFO)[0])


def _infos(key: HolderKey) -> dict[Mode, bytes]:
    return {mode: evaluation_info(ORGANISATION, mode, key.key_id) for mode in Mode}


def index_vectors() -> dict:
    key = _key()
    infos = _infos(key)
    t_inverse = {mode: group.invert(poprf.tweaked_secret(key.sk, info)) for mode, info in infos.items()}
    entries = []
    outputs: dict[Mode, list[bytes]] = {Mode.MEMBERSHIP: [], Mode.CARDINALITY: []}
    for k in HOLDER_KEYS:
        member_element = group.scalar_mult(t_inverse[Mode.MEMBERSHIP], poprf.input_element(k))
        card_element = group.scalar_mult(t_inverse[Mode.CARDINALITY], poprf.input_element(k))
        member = poprf.evaluate(key.sk, k, infos[Mode.MEMBERSHIP])
        card = cardinality_output(infos[Mode.CARDINALITY], card_element)
        outputs[Mode.MEMBERSHIP].append(member)
        outputs[Mode.CARDINALITY].append(card)
        entries.append({"match_key": k.hex(), "membership_element": member_element.hex(), "membership_output": member.hex(),
                        "cardinality_element": card_element.hex(), "cardinality_output": card.hex()})
    result = {
        "description": "Holder index for one organisation: match keys -> RFC 9497 POPRF Evaluate outputs under "
                       "info(organisation, membership, key_id) and CardinalityFinalize outputs under "
                       "info(organisation, cardinality, key_id) -> Elias-Fano index bytes",
        "seed": SEED.hex(),
        "key_info": KEY_INFO.hex(),
        "skS": key.sk.hex(),
        "pkS": key.public_key.hex(),
        "key_id": key.key_id.hex(),
        "organisation": ORGANISATION,
        "info": {mode.value: info.hex() for mode, info in infos.items()},
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
    if isinstance(message, BlindedBatch):
        return {"type": "BlindedBatch", "seq": message.seq, "elements": message.elements.hex(), "canonical": message.canonical().hex()}
    if isinstance(message, EvaluatedBatch):
        return {"type": "EvaluatedBatch", "seq": message.seq, "elements": message.elements.hex(), "proof": message.proof.hex(),
                "proof_nonce": fixed_proof_nonce(message.seq).hex(), "canonical": message.canonical().hex()}
    if isinstance(message, Close):
        return {"type": "Close", "transcript_hash": message.transcript_hash.hex()}
    if isinstance(message, Closed):
        return {"type": "Closed", "transcript_hash": message.transcript_hash.hex(), "element_count": message.element_count}
    raise TypeError(type(message))


def session_vectors() -> dict:
    key = _key()
    info = _infos(key)[Mode.MEMBERSHIP]
    engine = BatchEngine(1)
    builder_outputs = b"".join(poprf.evaluate(key.sk, k, info) for k in HOLDER_KEYS)
    hi, lo = split_outputs(builder_outputs)
    index = EncryptedIndex.parse(encode_index(Mode.MEMBERSHIP, key.key_id, SCHEMA_FINGERPRINT, hi, lo))
    blinds = [fixed_blind(i) for i in range(len(REQUESTER_KEYS))]
    config = HolderConfig(key.sk, key.key_id, SCHEMA_FINGERPRINT, {Mode.MEMBERSHIP: index.digest}, max_batch=2, max_session_elements=16)
    holder = HolderSession(config, engine, unsigned_close, ORGANISATION, proof_nonce=fixed_proof_nonce)
    requester = RequesterSession(REQUESTER_KEYS, Mode.MEMBERSHIP, index, SESSION_ID, 2, engine,
                                 organisation=ORGANISATION, public_key=key.public_key, blinds=b"".join(blinds))
    wire = run_local(holder, requester, authorization=b"")
    engine.close()
    return {
        "description": "One verifiable (POPRF) membership session with fixed blinds and proof nonces: the info, the "
                       "tweaked key, every message's canonical encoding (each evaluated batch with its batched DLEQ "
                       "proof) and the transcript hash",
        "skS": key.sk.hex(),
        "pkS": key.public_key.hex(),
        "key_id": key.key_id.hex(),
        "organisation": ORGANISATION,
        "mode": Mode.MEMBERSHIP.value,
        "info": info.hex(),
        "tweaked_key": poprf.tweaked_key(key.public_key, info).hex(),
        "index_digest": index.digest.hex(),
        "session_id": SESSION_ID.hex(),
        "requester_keys": [k.hex() for k in REQUESTER_KEYS],
        "blinds": [b.hex() for b in blinds],
        "blinded_commitment": blinded_commitment(requester.element_count, requester.batch_digests).hex(),
        "messages": [_message_json(m) for m in wire],
        "transcript_hash": requester.transcript_hash.hex(),
        "matched": requester.matched.tolist(),
    }


# The cardinality session's permutation: output position i shows input SHUFFLE_PERMUTATION[i] (0-based).
SHUFFLE_PERMUTATION = (2, 0, 1)


def fixed_shuffle_scalars(label: str, count: int) -> bytes:
    """Deterministic non-zero scalars for the vectors only; real holders draw every one from a CSPRNG."""
    return b"".join(oprf.hash_to_scalar(f"blindmatch test vector session shuffle {label}".encode() + i2osp(i, 4))
                    for i in range(count))


def fixed_shuffle_randomness(n: int, chunk: int) -> ShuffleRandomness:
    """Every random value of the cardinality session's shuffle proof (SPEC.md 6.1), fixed and listed in the vector."""
    return ShuffleRandomness(
        s=fixed_shuffle_scalars("s", 1), permutation=SHUFFLE_PERMUTATION, rho=fixed_shuffle_scalars("rho", n),
        r=fixed_shuffle_scalars("r", n), r_hat=fixed_shuffle_scalars("r_hat", n), w=fixed_shuffle_scalars("w", 4),
        w_hat=fixed_shuffle_scalars("w_hat", n), w_prime=fixed_shuffle_scalars("w_prime", n),
        dleq_nonces=fixed_shuffle_scalars("dleq", 2 * chunk_count(n, chunk)))


def _randomness_json(randomness: ShuffleRandomness) -> dict:
    def hexes(data: bytes) -> list[str]:
        return [data[i : i + 32].hex() for i in range(0, len(data), 32)]

    return {"s": randomness.s.hex(), "permutation": list(randomness.permutation), "rho": hexes(randomness.rho),
            "r": hexes(randomness.r), "r_hat": hexes(randomness.r_hat), "w1_w2_w3_w4": hexes(randomness.w),
            "w_hat": hexes(randomness.w_hat), "w_prime": hexes(randomness.w_prime),
            "dleq_nonces": hexes(randomness.dleq_nonces)}


def cardinality_session_vectors() -> dict:
    key = _key()
    info = _infos(key)[Mode.CARDINALITY]
    engine = BatchEngine(1)
    t_inverse = group.invert(poprf.tweaked_secret(key.sk, info))
    outputs = b"".join(cardinality_output(info, group.scalar_mult(t_inverse, poprf.input_element(k))) for k in HOLDER_KEYS)
    hi, lo = split_outputs(outputs)
    index = EncryptedIndex.parse(encode_index(Mode.CARDINALITY, key.key_id, SCHEMA_FINGERPRINT, hi, lo))
    blind = fixed_blind(0)
    config = HolderConfig(key.sk, key.key_id, SCHEMA_FINGERPRINT, {Mode.CARDINALITY: index.digest}, max_batch=2,
                          max_session_elements=16)
    randomness = fixed_shuffle_randomness(len(REQUESTER_KEYS), 2)
    holder = HolderSession(config, engine, unsigned_close, ORGANISATION, shuffle_randomness=randomness)
    requester = RequesterSession(REQUESTER_KEYS, Mode.CARDINALITY, index, SESSION_ID, 2, engine,
                                 organisation=ORGANISATION, public_key=key.public_key, blinds=blind)
    wire = run_local(holder, requester, authorization=b"")
    engine.close()
    messages = [_message_json(m) for m in wire]
    for m in messages:
        m.pop("proof_nonce", None)  # the shuffle proof's nonces are listed with its other random values
    return {
        "description": "One cardinality session (sections 6 and 6.1): one blind for the session, the holder's "
                       "shuffled evaluation with its shuffle proof (every random value fixed and listed), re-batched "
                       "with each batch's part of the proof, every message's canonical encoding, the transcript hash "
                       "and the count of matching keys",
        "skS": key.sk.hex(),
        "pkS": key.public_key.hex(),
        "key_id": key.key_id.hex(),
        "organisation": ORGANISATION,
        "mode": Mode.CARDINALITY.value,
        "info": info.hex(),
        "index_digest": index.digest.hex(),
        "session_id": SESSION_ID.hex(),
        "requester_keys": [k.hex() for k in REQUESTER_KEYS],
        "blind": blind.hex(),
        "tweaked_key": poprf.tweaked_key(key.public_key, info).hex(),
        "ctx": shuffle_context(SESSION_ID, info).hex(),
        "chunk": 2,
        "shuffle_randomness": _randomness_json(randomness),
        "blinded_commitment": blinded_commitment(requester.element_count, requester.batch_digests).hex(),
        "messages": messages,
        "transcript_hash": requester.transcript_hash.hex(),
        "match_count": requester.match_count,
    }


def render(data: dict) -> str:
    return json.dumps(data, indent=2) + "\n"


def main() -> None:
    (HERE / "index.json").write_text(render(index_vectors()))
    (HERE / "session.json").write_text(render(session_vectors()))
    (HERE / "session-cardinality.json").write_text(render(cardinality_session_vectors()))


if __name__ == "__main__":
    main()
