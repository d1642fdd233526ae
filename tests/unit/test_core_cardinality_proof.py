"""Cardinality sessions are proven: the requester counts only after the shuffle proof verifies.

A dishonest holder (``helpers.dishonest_engine``) lowers the count of a requester that
skips the proof, and makes the real requester abort with ``proof_invalid`` before it
unblinds, hashes or counts anything.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import replace

import pytest
from helpers.core_setup import built_holder
from helpers.dishonest_engine import CHEATS, DishonestEngine, TrustingEngine

from blindmatch.core.errors import ProtocolError
from blindmatch.core.events import BatchReceived
from blindmatch.core.holder import HolderConfig, HolderSession, HolderState, unsigned_close
from blindmatch.core.index import EncryptedIndex
from blindmatch.core.messages import BlindedBatch, EvaluatedBatch, Hello
from blindmatch.core.pacing import run_local
from blindmatch.core.requester import RequesterSession, RequesterState
from blindmatch.crypto.batch import BatchEngine
from blindmatch.crypto.group import IDENTITY
from blindmatch.crypto.oprf import public_key
from blindmatch.crypto.shuffle import CHUNK_PROOF_BYTES, HEADER_BYTES, RECORD_BYTES
from blindmatch.vocabulary import Mode, Reason

FINGERPRINT = hashlib.sha256(b"schema").digest()
ORG = "Example County"
HOLDER_KEYS = [f"holder person {i}".encode() for i in range(40)]
# 6 of the holder's, then 14 strangers: 20 keys in batches of 8 (8, 8, 4).
KEYS = HOLDER_KEYS[:6] + [f"stranger {i}".encode() for i in range(14)]
TRUE_COUNT = 6


@pytest.fixture(scope="module")
def built(engine: BatchEngine) -> tuple[HolderConfig, dict[Mode, EncryptedIndex]]:
    _key, config, indexes = built_holder(engine, HOLDER_KEYS, FINGERPRINT, ORG, max_batch=8)
    return config, indexes


@pytest.fixture(scope="module")
def setup(built: tuple[HolderConfig, dict[Mode, EncryptedIndex]]) -> tuple[HolderConfig, EncryptedIndex]:
    """The holder's configuration and its cardinality index."""
    return built[0], built[1][Mode.CARDINALITY]


def _requester(setup: tuple[HolderConfig, EncryptedIndex], engine: object, keys: list[bytes] = KEYS,
               session_id: bytes | None = None, blinds: bytes | None = None) -> RequesterSession:
    config, index = setup
    return RequesterSession(keys, Mode.CARDINALITY, index, session_id or os.urandom(16), 8, engine,  # type: ignore[arg-type]
                            organisation=ORG, public_key=public_key(config.sk), blinds=blinds)


def _answers(setup: tuple[HolderConfig, EncryptedIndex], holder_engine: object,
             requester: RequesterSession) -> list[EvaluatedBatch]:
    """The session up to the holder's proven, shuffled answer, which is returned unread."""
    holder = HolderSession(setup[0], holder_engine, unsigned_close, ORG)  # type: ignore[arg-type]
    holder.receive(requester.hello())
    requester.receive(holder.accept())
    answers: list[EvaluatedBatch] = []
    while (batch := requester.next_batch()) is not None:
        answers += [m for m in holder.receive(batch).messages if isinstance(m, EvaluatedBatch)]
    return answers


def _refused(requester: RequesterSession, answers: list[EvaluatedBatch]) -> ProtocolError:
    """Feed the answers; the requester must fail on one, with nothing counted or reported."""
    events = []
    with pytest.raises(ProtocolError) as err:
        for batch in answers:
            events += requester.receive(batch).events
    assert requester.state is RequesterState.FAILED
    assert requester.match_count == 0 and not [e for e in events if isinstance(e, BatchReceived)]
    return err.value


def test_a_proven_cardinality_session_counts_exactly(setup, engine) -> None:  # type: ignore[no-untyped-def]
    holder = HolderSession(setup[0], engine, unsigned_close, ORG)
    requester = _requester(setup, engine)
    events: list[object] = []
    wire = run_local(holder, requester, on_event=events.append)
    assert requester.closed and holder.state is HolderState.CLOSED and requester.match_count == TRUE_COUNT
    evaluated = [m for m in wire if isinstance(m, EvaluatedBatch)]
    assert [len(m.elements) // 32 for m in evaluated] == [8, 8, 4]
    assert [len(m.proof) for m in evaluated] == [HEADER_BYTES + 8 * RECORD_BYTES + CHUNK_PROOF_BYTES,
                                                 8 * RECORD_BYTES + CHUNK_PROOF_BYTES, 4 * RECORD_BYTES + CHUNK_PROOF_BYTES]
    # The requester reports its batches only once the whole proof has verified: all three at the end.
    received = [e for e in events if isinstance(e, BatchReceived)]
    assert [e.seq for e in received] == [0, 1, 2]
    assert holder.transcript_hash == requester.transcript_hash


@pytest.mark.parametrize("cheat", CHEATS)
def test_a_dishonest_holder_lowers_an_unverified_count_and_fails_the_proof(setup, engine, cheat: str) -> None:  # type: ignore[no-untyped-def]
    """Input 0 is one of the holder's records; input 10 a stranger's."""
    liar = DishonestEngine(engine, cheat, target=0, source=10)
    trusting = _requester(setup, TrustingEngine(engine))
    for batch in _answers(setup, liar, trusting):
        trusting.receive(batch)
    if cheat == "flipped proof byte":
        assert trusting.match_count == TRUE_COUNT  # the outputs are honest; only the proof is not
    else:
        assert trusting.match_count < TRUE_COUNT  # the cheat works where the proof is not checked
    requester = _requester(setup, engine)
    error = _refused(requester, _answers(setup, liar, requester))
    assert error.code is Reason.PROOF_INVALID and "the holder did not evaluate every element" in error.message


def test_a_holder_repeating_an_evaluation_fails_the_proof(setup, engine) -> None:  # type: ignore[no-untyped-def]
    """Copying one output over another (to count a match twice) is caught by the proof, not by a repeat check."""
    requester = _requester(setup, engine)
    answers = _answers(setup, engine, requester)
    first = answers[0]
    answers[0] = replace(first, elements=first.elements[:32] * 2 + first.elements[64:])
    assert _refused(requester, answers).code is Reason.PROOF_INVALID


def test_the_requesters_own_repeated_keys_still_verify(setup, engine) -> None:  # type: ignore[no-untyped-def]
    keys = [HOLDER_KEYS[0], HOLDER_KEYS[0], HOLDER_KEYS[1]] + [f"stranger {i}".encode() for i in range(10)]
    requester = _requester(setup, engine, keys)
    for batch in _answers(setup, engine, requester):
        requester.receive(batch)
    assert requester.state is RequesterState.CLOSING and requester.match_count == 3


def test_another_sessions_proof_does_not_verify(setup, engine) -> None:  # type: ignore[no-untyped-def]
    """Same keys, same blind, so the same blinded elements: only the session id (in ctx) differs."""
    blind = bytes.fromhex("0b" * 31 + "00")
    earlier = _requester(setup, engine, session_id=b"\x01" * 16, blinds=blind)
    replayed = _answers(setup, engine, earlier)
    requester = _requester(setup, engine, session_id=b"\x02" * 16, blinds=blind)
    _answers(setup, engine, requester)
    assert _refused(requester, replayed).code is Reason.PROOF_INVALID


@pytest.mark.parametrize(
    ("change", "code"),
    [
        (lambda b: replace(b, proof=b""), Reason.BAD_REQUEST),  # a missing proof part
        (lambda b: replace(b, proof=b.proof[:-1]), Reason.BAD_REQUEST),
        (lambda b: replace(b, elements=b.elements[:-32]), Reason.BAD_REQUEST),
        (lambda b: replace(b, elements=IDENTITY + b.elements[32:]), Reason.INVALID_ELEMENT),
        (lambda b: replace(b, elements=b"\xff" * 32 + b.elements[32:]), Reason.INVALID_ELEMENT),
        (lambda b: replace(b, seq=b.seq + 1), Reason.UNEXPECTED_MESSAGE),
    ],
)
def test_a_malformed_cardinality_batch_fails_the_session(setup, engine, change, code: Reason) -> None:  # type: ignore[no-untyped-def]
    requester = _requester(setup, engine)
    answers = _answers(setup, engine, requester)
    answers[1] = change(answers[1])
    assert _refused(requester, answers).code is code


def test_a_batch_after_the_last_is_unexpected(setup, engine) -> None:  # type: ignore[no-untyped-def]
    requester = _requester(setup, engine)
    answers = _answers(setup, engine, requester)
    for batch in answers:
        requester.receive(batch)
    assert requester.match_count == TRUE_COUNT
    with pytest.raises(ProtocolError) as err:
        requester.receive(replace(answers[-1], seq=len(answers)))
    assert err.value.code is Reason.UNEXPECTED_MESSAGE and requester.state is RequesterState.FAILED


def test_the_holder_refuses_invalid_elements_on_arrival(setup, engine) -> None:  # type: ignore[no-untyped-def]
    """Held until the last batch, a cardinality batch is still validated when it arrives."""
    requester = _requester(setup, engine)
    holder = HolderSession(setup[0], engine, unsigned_close, ORG)
    hello = requester.hello()
    bad = b"\xff" * 32 + os.urandom(32) * 7
    holder.receive(replace(hello, batch_digests=(hashlib.sha256(bad).digest(), *hello.batch_digests[1:])))
    holder.accept()
    with pytest.raises(ProtocolError) as err:
        holder.receive(BlindedBatch(0, bad))
    assert err.value.code is Reason.INVALID_ELEMENT and "batch 0: element 0" in err.value.message


def test_the_holder_refuses_cardinality_batches_above_one_proof_chunk(setup, engine) -> None:  # type: ignore[no-untyped-def]
    config, _ = setup
    holder = HolderSession(replace(config, max_batch=2**16), engine, unsigned_close, ORG)
    hello: Hello = _requester(setup, engine).hello()
    with pytest.raises(ProtocolError) as err:
        holder.receive(replace(hello, batch_size=2**15 + 1, batch_digests=(hello.batch_digests[0],)))
    assert err.value.code is Reason.LIMIT_EXCEEDED and "32768" in err.value.message



@pytest.mark.parametrize(("mode", "after_answer"), [(Mode.CARDINALITY, 3 * 60.0), (Mode.MEMBERSHIP, 60.0)])
def test_the_holder_waits_longer_for_the_close_of_a_proven_cardinality_session(
        built, engine, mode: Mode, after_answer: float) -> None:  # type: ignore[no-untyped-def]
    """The requester checks the whole proof before its Close: one idle timeout per batch, then (SPEC.md 9.7)."""
    from blindmatch.holder.match_progress import quiet_allowed

    config, indexes = built
    holder = HolderSession(config, engine, unsigned_close, ORG)
    requester = RequesterSession(KEYS, mode, indexes[mode], os.urandom(16), 8, engine, organisation=ORG,
                                 public_key=public_key(config.sk))
    assert quiet_allowed(holder, 60.0) == 60.0  # before the Hello
    holder.receive(requester.hello())
    requester.receive(holder.accept())
    while (batch := requester.next_batch()) is not None:
        assert quiet_allowed(holder, 60.0) == 60.0  # while batches are due
        holder.receive(batch)
    assert holder.state is HolderState.AWAITING_CLOSE and quiet_allowed(holder, 60.0) == after_answer
