"""The session cores against a peer that runs its own modified code (found attacking the live daemons by hand)."""

from __future__ import annotations

import hashlib
import os
from dataclasses import replace

import pytest

from blindmatch.core.errors import ProtocolError
from blindmatch.core.holder import HolderConfig, HolderSession, unsigned_close
from blindmatch.core.index import EncryptedIndex
from blindmatch.core.index_builder import IndexBuilder
from blindmatch.core.keys import HolderKey
from blindmatch.core.messages import BlindedBatch, EvaluatedBatch
from blindmatch.core.requester import RequesterSession, RequesterState
from blindmatch.crypto.batch import BatchEngine
from blindmatch.crypto.oprf import public_key
from blindmatch.vocabulary import Mode, Reason

FINGERPRINT = hashlib.sha256(b"schema").digest()
ORG = "Example County"
HOLDER_KEYS = [f"holder person {i}".encode() for i in range(40)]


@pytest.fixture(scope="module")
def setup(engine: BatchEngine) -> tuple[HolderConfig, dict[Mode, EncryptedIndex]]:
    key = HolderKey.generate()
    builder = IndexBuilder(key, FINGERPRINT, engine, ORG)
    builder.add(HOLDER_KEYS)
    indexes = {mode: EncryptedIndex.parse(data) for mode, data in builder.finish().items()}
    return HolderConfig(key.sk, key.key_id, FINGERPRINT, {m: i.digest for m, i in indexes.items()}, max_batch=8), indexes


def _cardinality(setup: tuple[HolderConfig, dict[Mode, EncryptedIndex]], engine: BatchEngine,
                 keys: list[bytes]) -> tuple[RequesterSession, list[EvaluatedBatch]]:
    """A cardinality session run up to the holder's shuffled answer, which is returned unread."""
    config, indexes = setup
    holder = HolderSession(config, engine, unsigned_close, ORG)
    requester = RequesterSession(keys, Mode.CARDINALITY, indexes[Mode.CARDINALITY], os.urandom(16), 8, engine,
                                 organisation=ORG, public_key=public_key(config.sk))
    holder.receive(requester.hello())
    requester.receive(holder.accept())
    answers: list[EvaluatedBatch] = []
    while (batch := requester.next_batch()) is not None:
        assert isinstance(batch, BlindedBatch)
        answers += [m for m in holder.receive(batch).messages if isinstance(m, EvaluatedBatch)]
    return requester, answers


def test_a_holder_repeating_a_cardinality_evaluation_is_caught(setup, engine) -> None:  # type: ignore[no-untyped-def]
    """Cardinality answers carry no proof; a holder copying one matching evaluation over
    another would count that match twice. Distinct keys give distinct evaluations, so a repeat is refused."""
    keys = HOLDER_KEYS[:4] + [f"stranger {i}".encode() for i in range(12)]
    requester, answers = _cardinality(setup, engine, keys)
    first = answers[0]
    answers[0] = replace(first, elements=first.elements[:32] + first.elements[:32] + first.elements[64:])
    with pytest.raises(ProtocolError) as err:
        for batch in answers:
            requester.receive(batch)
    assert err.value.code == Reason.BAD_REQUEST
    assert "repeats an evaluation" in err.value.message
    assert requester.state is RequesterState.FAILED


def test_repeated_keys_of_the_requester_itself_still_close(setup, engine) -> None:  # type: ignore[no-untyped-def]
    """The check allows the repeats the requester's own keys explain (callers normally send distinct keys)."""
    keys = [HOLDER_KEYS[0], HOLDER_KEYS[0], HOLDER_KEYS[1]] + [f"stranger {i}".encode() for i in range(10)]
    requester, answers = _cardinality(setup, engine, keys)
    for batch in answers:
        requester.receive(batch)
    assert requester.state is RequesterState.CLOSING
    assert requester.match_count == 3
